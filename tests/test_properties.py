"""Properties that must hold for every patient and every criterion (hypothesis).

Patients are the demo vignettes, or seeded synthetic patients made from them, changed by
edits (tests/property_patients.py); each property compares a patient with an edited copy, or
the two engines on the same patients. A failure names the criterion, the patient (vignette
and edits, in words) and the statuses before and after; hypothesis shrinks it to the
smallest change. FUZZ picks the size: unset `fast` (in `make test`), `ci`, `deep` (by hand).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import replace
from datetime import date, timedelta
from decimal import Decimal

import pytest
from hypothesis import HealthCheck, Phase, given, reject, settings
from hypothesis import strategies as st

from kb.catalogue.assumptions import AssumptionSet
from kb.catalogue.derived import age_in_years
from kb.factbase.build import reference_dates
from kb.factbase.exposures import POINT_EVENTS, single_dose
from kb.reasoning.evaluation import assess
from kb.records.patients import Event, Observation
from kb.screening.batch import evaluate_many
from tests.property_patients import (
    PROFILE,
    REPEATED,
    UNITS,
    Case,
    agents,
    assumptions,
    cases,
    criteria_reading,
    day,
    event_words,
    knowledge,
    loaded_observation,
    new_event,
    swap,
    synthetic_case,
    unread_agent_classes,
    without,
)

pytestmark = pytest.mark.fuzz

# Generation calls the knowledge base and builds the synthetic cohort once (too_slow); fast
# and ci are derandomized (CI must be deterministic), deep explores anew each time.
for _name, _random in (("fast", False), ("ci", False), ("deep", True)):
    settings.register_profile(
        _name,
        derandomize=not _random,
        database=None,
        deadline=None,
        print_blob=_random,
        suppress_health_check=[HealthCheck.too_slow],
        phases=[Phase.explicit, Phase.reuse, Phase.generate, Phase.target, Phase.shrink],
    )


def runs(fast: int, ci: int, deep: int) -> settings:
    return settings(settings.get_profile(PROFILE), max_examples={"fast": fast, "ci": ci, "deep": deep}[PROFILE])


TODAY = date(2026, 12, 1)
Outcome = tuple[str, dict[str, str]]  # the verdict, and every criterion's status


def outcome(case: Case, assumption_set: AssumptionSet, as_of: date | None = None) -> Outcome:
    """pyDatalog's answer (the reference engine), statuses only."""
    found = assess(case.patient, knowledge(), assumption_set, as_of, explain="status", today=TODAY)
    return found.verdict, {r.id: r.status for r in found.criteria}


def check(
    what: str,
    before: tuple[Case, Outcome],
    after: tuple[Case, Outcome],
    wrong: Callable[[str, str], bool],
    ids: Iterable[str] | None = None,
) -> None:
    """Fail naming every criterion whose (before, after) statuses are `wrong`."""
    __tracebackhide__ = True
    (case0, (verdict0, old)), (case1, (verdict1, new)) = before, after
    bad = [f"  {cid}: {old[cid]} before, {new[cid]} after" for cid in (ids or old) if wrong(old[cid], new[cid])]
    if bad:
        lines = [
            what,
            *bad,
            f"  verdict: {verdict0} before, {verdict1} after",
            f"  before: {case0}",
            f"  after:  {case1}",
        ]
        raise AssertionError("\n".join(lines))


def differ(old: str, new: str) -> bool:
    return old != new


EXCLUSIONS = [c.id for c in knowledge().criteria if c.kind == "exclusion"]
#: criteria that read an age (GI2; clearance and eGFR take the age in completed years)
AGES = criteria_reading(knowledge(), {"age_at", "crcl", "egfr"})
EXPOSURE_KINDS = ("medication", "vaccination", "transfusion", "cell_therapy")
#: frequencies of a single dose for any agent ("once" only for an agent given as single
#: administrations: for a tablet it reads as once daily)
SINGLE = ("single", "single dose", "stat", "单次", "once")


@st.composite
def exposure(draw: st.DrawFn, case: Case, how: str) -> tuple[Case, Event]:
    """An exposure of the case to change `how`: any exposure to remove; to lengthen or raise,
    a medication with an end date and a dose. Or one added (with both)."""
    if how == "removed":
        usable = [e for e in case.patient.events if e.kind in EXPOSURE_KINDS]
    else:
        usable = [
            e
            for e in case.patient.events
            if e.kind == "medication" and e.end and e.dose is not None and not single_dose(e)
        ]
    existing = draw(st.booleans())
    if usable and existing:
        return case, draw(st.sampled_from(usable))
    start = case.enrolment + timedelta(days=draw(st.integers(-400, 30)))
    name = draw(agents(EXPOSURE_KINDS if how == "removed" else ("medication",)))
    event = new_event(name, start, start + timedelta(draw(st.integers(0, 400))), Decimal(draw(st.integers(1, 80))), "")
    return case.then(f"add {event_words(event)}", events=[*case.patient.events, event]), event


@runs(fast=80, ci=600, deep=1500)
@given(data=st.data(), case=cases(), how=st.sampled_from(("later end", "ongoing", "higher dose", "removed")))
def test_more_exposure_never_unblocks_an_exclusion(data: st.DataObject, case: Case, how: str) -> None:
    """More exposure (a later end, an end dropped so that it is ongoing, a higher dose) never
    turns an exclusion from fail (blocks) to pass; less (the event removed) never from pass
    to fail. An exclusion's window asks whether exposure touches it: more cannot touch less."""
    case, event = data.draw(exposure(case, how))
    if how == "later end":
        assert event.end is not None
        longer = replace(event, end=event.end + timedelta(data.draw(st.integers(1, 400))))
        after = case.then(f"then that ends {longer.end} instead", events=swap(case.patient.events, event, longer))
    elif how == "ongoing":
        after = case.then("then that is ongoing", events=swap(case.patient.events, event, replace(event, end=None)))
    elif how == "higher dose":
        assert event.dose is not None
        higher = replace(event, dose=event.dose + data.draw(st.integers(1, 100)))
        after = case.then(f"then dose {higher.dose} mg", events=swap(case.patient.events, event, higher))
    else:
        after = case.then(f"then remove {event_words(event)}", events=without(case.patient.events, event))
    defaults = assumptions()
    before_outcome, after_outcome = outcome(case, defaults), outcome(after, defaults)
    unblocks = {"removed": ("pass", "fail")}.get(how, ("fail", "pass"))
    check(
        f"exposure {'decreased' if how == 'removed' else 'increased'}: an exclusion went {unblocks[0]} → {unblocks[1]}",
        (case, before_outcome),
        (after, after_outcome),
        lambda old, new: (old, new) == unblocks,
        EXCLUSIONS,
    )


@runs(fast=80, ci=600, deep=1500)
@given(data=st.data(), case=cases(), offset=st.integers(0, 60), by_assumption=st.booleans())
def test_ongoing_exposure_lasts_through_every_reference_date(
    data: st.DataObject, case: Case, offset: int, by_assumption: bool
) -> None:
    """DESIGN "What absence means": a repeated or continuous exposure with no end date is
    ongoing and lasts through every later reference date, apheresis included. So it gets the
    statuses of the same exposure ending on the latest reference date, or on any later day
    (after every record of the patient). Apheresis is put 0-60 days after enrolment, by date
    or by the assumption apheresis_offset_days. This holds for every criterion, DEF-RR's
    "more than 6 months" included: a course is measured up to enrolment (kb/factbase/exposures.py).

    Run on the code before this property existed, it found the defect it guards against
    unaided (an ongoing exposure was cut off at enrolment, so GE4.4 missed aldesleukin taken
    up to an apheresis two days later)."""
    if by_assumption:
        assumption_set = assumptions(f"apheresis_offset_days={offset}")
        case = case.then(f"assume apheresis_offset_days={offset}")
    else:
        assumption_set = assumptions()
        case = case.then(f"apheresis {day(offset, case.enrolment)}", apheresis_date=case.enrolment + timedelta(offset))
    latest = case.latest_reference(assumption_set)
    continuing = [
        e for e in case.patient.events if e.kind not in POINT_EVENTS and e.start <= latest and not single_dose(e)
    ]
    existing = data.draw(st.booleans())
    if continuing and existing:
        event = data.draw(st.sampled_from(continuing))
        events = case.patient.events
    else:
        start = case.enrolment + timedelta(data.draw(st.integers(-400, (latest - case.enrolment).days)))
        dose = Decimal(data.draw(st.integers(1, 80)))
        event = new_event(data.draw(agents()), start, None, dose, data.draw(st.sampled_from(REPEATED)))
        events = [*case.patient.events, event]
    last_record = max(
        [latest, *(o.date for o in case.patient.observations), *(a.date for a in case.patient.attestations if a.date)]
        + [d for e in events for d in (e.start, e.end) if d is not None and e is not event]
    )
    end = last_record + timedelta(data.draw(st.integers(0, 400)))
    ongoing = replace(event, end=None)
    ending = replace(event, end=end)
    before = case.then(event_words(ongoing), events=swap(events, event, ongoing))
    after = case.then(event_words(ending), events=swap(events, event, ending))
    check(
        f"ongoing ≠ ending on {end} (latest reference date {latest})",
        (before, outcome(before, assumption_set)),
        (after, outcome(after, assumption_set)),
        differ,
    )


@runs(fast=30, ci=200, deep=600)
@given(case=cases(), start=st.integers(-800, 30), name=agents(), once=st.sampled_from(SINGLE))
def test_single_dose_ends_on_its_start_day(case: Case, start: int, name: str, once: str) -> None:
    """DESIGN "What absence means": a single dose with no end date ends on its start day, so
    it gets the statuses of the same dose recorded with end = start. "Once" is a single dose
    only for an agent given as single administrations (an infusion, a vaccine); for a
    tablet it reads as once daily, which the ongoing property covers."""
    if once == "once" and not knowledge().vocabulary.agents[name].one_off:
        once = "single"
    when = case.enrolment + timedelta(start)
    open_dose = new_event(name, when, None, Decimal(10), once)
    closed = replace(open_dose, end=when)
    before = case.then(f"add {event_words(open_dose)}", events=[*case.patient.events, open_dose])
    after = case.then(f"add {event_words(closed)}", events=[*case.patient.events, closed])
    defaults = assumptions()
    check(
        "a single dose without an end date",
        (before, outcome(before, defaults)),
        (after, outcome(after, defaults)),
        differ,
    )


def shifted(case: Case, days: int) -> Case:
    """Every date of the patient moved by `days`."""
    p, by = case.patient, timedelta(days)

    def move(when: date | None) -> date | None:
        return when + by if when else None

    return case.then(
        f"every date moved by {days} days",
        birth_date=move(p.birth_date),
        screening_date=move(p.screening_date),
        enrolment_date=move(p.enrolment_date),
        apheresis_date=move(p.apheresis_date),
        observations=[replace(o, date=o.date + by) for o in p.observations],
        events=[replace(e, start=e.start + by, end=move(e.end)) for e in p.events],
        attestations=[replace(a, date=move(a.date)) for a in p.attestations],
    )


def ages(case: Case, assumption_set: AssumptionSet, as_of: date | None) -> list[Decimal]:
    """The patient's ages in completed years at the three reference dates (the calendar rule)."""
    born = case.patient.birth_date
    refs = reference_dates(case.patient, assumption_set, as_of, TODAY)
    return [age_in_years(born, when).value for when in (refs.screening, refs.enrolment, refs.apheresis)] if born else []


@runs(fast=50, ci=400, deep=1000)
@given(
    case=cases(),
    days=st.integers(-3650, 3650) | st.integers(-3, 3).map(lambda k: 1461 * k),
    as_of=st.none() | st.integers(-30, 30),
)
def test_moving_every_date_together_changes_nothing(case: Case, days: int, as_of: int | None) -> None:
    """Criteria read day differences, so moving every date of a patient (birth, reference
    dates, results, events, attestations) and the as-of date by the same days changes no
    status, under month_length=30. Ages and calendar months are calendar rules: a shift by
    whole 4-year blocks (1461 days, one 29 February each) keeps them too, and is checked with
    calendar months (the default); any other shift can change an age in completed years (a
    birthday near 29 February), and then the criteria that read an age (GI2, and the
    clearance and eGFR criteria) are left out of the comparison."""
    assumption_set = assumptions() if days % 1461 == 0 else assumptions("month_length=30")
    moved = shifted(case, days)
    at0 = case.enrolment + timedelta(as_of) if as_of is not None else None
    at1 = at0 + timedelta(days) if at0 else None
    ids = [c.id for c in knowledge().criteria]
    if ages(case, assumption_set, at0) != ages(moved, assumption_set, at1):
        ids = [cid for cid in ids if cid not in AGES]
    words = f"; as of {at0}" if at0 else ""
    check(
        f"time shift of {days} days{words}",
        (case, outcome(case, assumption_set, at0)),
        (moved.then(f"as of {at1}") if at1 else moved, outcome(moved, assumption_set, at1)),
        differ,
        ids,
    )


def _text(value: Decimal) -> str:
    return format(value.normalize(), "f")


@runs(fast=50, ci=400, deep=1000)
@given(data=st.data(), case=cases(), digits=st.integers(1, 4))
def test_a_result_in_another_unit_gets_the_same_statuses(data: st.DataObject, case: Case, digits: int) -> None:
    """A result written in another unit of the same quantity (g/dL for g/L, mg/dL for
    µmol/L, 10*3/uL or /uL for 10*9/L, µkat/L for U/L, IU/mL for copies/mL ...) is the same
    result: both rows go through the loader (in memory), and every status must agree. The
    value (and its limits) are first put on a grid both units write exactly (`digits`
    significant digits in the other unit)."""
    usable = [o for o in case.patient.observations if o.item in UNITS and isinstance(o.value, Decimal)]
    if not usable:
        reject()
    obs = data.draw(st.sampled_from(usable))
    assert isinstance(obs.value, Decimal)
    plain, _ = data.draw(st.sampled_from([u for u in UNITS[obs.item] if u[1] == 1]))
    other, factor = data.draw(st.sampled_from(UNITS[obs.item]))
    if obs.factor_assumption:
        factor = factor / Decimal(str(assumptions()[obs.factor_assumption]))  # the value is still in IU/mL

    def written(value: Decimal | None) -> tuple[str, str]:
        if value is None:
            return "", ""
        amount = value / factor
        if amount:
            amount = amount.quantize(Decimal(1).scaleb(amount.adjusted() - digits + 1))
        return _text(amount * factor), _text(amount)

    (value1, value2), (uln1, uln2), (lln1, lln2) = written(obs.value), written(obs.uln), written(obs.lln)
    if obs.factor_assumption:  # canonical copies/mL from the IU value
        ratio = Decimal(str(assumptions()[obs.factor_assumption]))
        value1, uln1, lln1 = (_text(Decimal(v) * ratio) if v else "" for v in (value1, uln1, lln1))
    rows = [(value1, plain, uln1, lln1), (value2, other, uln2, lln2)]
    loaded = [loaded_observation(obs.item, v, u, obs.date, uln, lln) for v, u, uln, lln in rows]
    if all(isinstance(x, str) for x in loaded):
        reject()  # out of the item's range in both: nothing to compare
    assert all(isinstance(x, Observation) for x in loaded), f"one unit is rejected: {loaded}"
    sides = []
    for (v, u, uln, _), new in zip(rows, loaded, strict=True):
        assert isinstance(new, Observation)
        kept = replace(new, date=obs.date, source=obs.source)
        limit = f" (ULN {uln})" if uln else ""
        sides.append(
            case.then(
                f"{obs.item} {obs.date} written {v} {u}{limit}", observations=swap(case.patient.observations, obs, kept)
            )
        )
    defaults = assumptions()
    check("unit changed", (sides[0], outcome(sides[0], defaults)), (sides[1], outcome(sides[1], defaults)), differ)


#: results that override another source of the same answer (DESIGN: a measured clearance wins
#: over Cockcroft-Gault from the creatinine); likewise classification items `<criteria>.<item>`
#: win over the attested `meets_<criteria>`
FALLS_BACK_ON = {"crcl_measured": ("creatinine",)}


@st.composite
def removal(draw: st.DrawFn, case: Case) -> Case:
    """The case with one datum gone: an item's results, an attestation item, a history's
    review, an event with the review of its history, or a patient field."""
    p, vocab = case.patient, knowledge().vocabulary
    what = draw(st.sampled_from(("results", "attestation", "review", "event", "field")))
    attested = sorted({a.item for a in p.attestations if not a.item.startswith("reviewed:")})
    reviews = sorted({a.item for a in p.attestations if a.item.startswith("reviewed:")})
    if what == "results" and p.observations:
        item = draw(st.sampled_from(sorted({o.item for o in p.observations})))
        items = {item, *FALLS_BACK_ON.get(item, ())}
        meets = f"meets_{item.partition('.')[0]}"
        overridden = {meets} if "." in item and meets in vocab.attestation_items else set()
        also = ", ".join(sorted((items - {item}) | overridden))
        return case.then(
            f"remove every {item} result" + (f" and what it overrides ({also})" if also else ""),
            observations=[o for o in p.observations if o.item not in items],
            attestations=[a for a in p.attestations if a.item not in overridden],
        )
    if what in ("attestation", "review") and (attested if what == "attestation" else reviews):
        item = draw(st.sampled_from(attested if what == "attestation" else reviews))
        return case.then(f"remove attestation {item}", attestations=[a for a in p.attestations if a.item != item])
    if what == "event" and p.events:
        event = draw(st.sampled_from(p.events))
        review = f"reviewed:{vocab.event_kinds[event.kind]}"
        return case.then(
            f"remove {event_words(event)} and the {review} declaration",
            events=without(p.events, event),
            attestations=[a for a in p.attestations if a.item != review],
        )
    fields = [f for f in ("sex", "birth_date", "weight_kg", "height_cm") if getattr(p, f) is not None]
    if not fields:
        reject()
    name = draw(st.sampled_from(fields))
    return case.then(f"remove {name}", **{name: None})


@runs(fast=80, ci=600, deep=1500)
@given(data=st.data(), case=cases())
def test_removing_a_datum_never_flips_a_known_answer(data: st.DataObject, case: Case) -> None:
    """Kleene's information order: less data may only turn a known status (pass, fail) into
    unknown, never into its opposite, and never turn eligible into ineligible or back. A
    datum is what the record cannot reveal an older or overridden version of: all of an
    item's results (the latest result wins, so dropping only it would reveal the one before),
    with the source they override (a measured clearance wins over the estimate from the
    creatinine; classification items over the attested `meets_<criteria>`: dropping only
    the winner would reveal the other, found by the deep run: P016 without its measured
    clearance fails GI6.7 on Cockcroft-Gault); all of an attestation item; a history's
    review; an event together with its history's review (an event dropped from a reviewed
    history is a record of absence, not less data)."""
    after = data.draw(removal(case))
    defaults = assumptions()
    before_outcome, after_outcome = outcome(case, defaults), outcome(after, defaults)
    check("a datum removed", (case, before_outcome), (after, after_outcome), lambda a, b: {a, b} == {"pass", "fail"})
    verdicts = {before_outcome[0], after_outcome[0]}
    assert verdicts != {"eligible", "ineligible"}, (
        f"verdict {before_outcome[0]} → {after_outcome[0]}\n  before: {case}\n  after:  {after}"
    )


IRRELEVANT = sorted(
    a.name for a in knowledge().vocabulary.agents.values() if set(a.classes) <= unread_agent_classes(knowledge())
)


@runs(fast=40, ci=300, deep=800)
@given(case=cases(), name=st.sampled_from(IRRELEVANT), start=st.integers(-400, 30))
def test_a_record_no_rule_reads_changes_nothing(case: Case, name: str, start: int) -> None:
    """A recognised record of an agent whose every class no rule names changes no status and
    not the verdict. The agents are found from the rules, not listed by hand: the non-live
    vaccines, platelet and plasma transfusions, and drugs no criterion names (antiplatelets,
    antifibrotics, pulmonary hypertension treatments, IVIG ...). No observation item
    qualifies (every item of items.csv is read); the other patients' rows are the next test."""
    event = new_event(name, case.enrolment + timedelta(start), None, None, "")
    after = case.then(f"add {event_words(event)}", events=[*case.patient.events, event])
    defaults = assumptions()
    before_outcome, after_outcome = outcome(case, defaults), outcome(after, defaults)
    check("an irrelevant record added", (case, before_outcome), (after, after_outcome), differ)
    assert before_outcome[0] == after_outcome[0], f"verdict changed\n  before: {case}\n  after:  {after}"


def test_some_agents_are_read_by_no_rule() -> None:
    """The irrelevance property above needs agents no rule reads; if every class came to be
    read, it would test nothing."""
    assert IRRELEVANT


ASSUMPTION_SETS = (
    (),
    ("month_length=30",),
    ("apheresis_offset_days=21",),
    ("ge4_3_scope=listed", "gi6_growth_factors=all", "ge4_7_antimalarials=counted"),
    ("tacrolimus_half_life_hours=12", "washout_rounding=nearest", "clotrexate_reading=methotrexate"),
    ("x_block_owner=itp_separate", "iim_entry=probable", "hbv_copies_per_iu=5.26"),
    ("apl_timing=within_window", "aps_rr_treatment_order=any_time", "pss_primary=as_coded"),
    ("ge4_4_scope=listed", "course_gap_days=0", "apl_tests_reading=more_than_two"),
)


def renamed(batch: list[Case]) -> list[Case]:
    """Distinct patient ids (a vignette may be drawn twice, with different edits)."""
    return [Case(c.origin, replace(c.patient, id=f"{c.patient.id}-{i}"), c.edits) for i, c in enumerate(batch)]


@runs(fast=8, ci=50, deep=150)
@given(target=cases(), others=st.lists(cases(), min_size=1, max_size=4))
def test_other_patients_rows_change_nothing(target: Case, others: list[Case]) -> None:
    """The set-at-a-time path evaluates a chunk of patients in one join: a patient's statuses
    and verdict are the same screened alone as screened with others (no row of another
    patient is read)."""
    (target, *others) = renamed([target, *others])
    defaults = assumptions()
    (alone,) = evaluate_many([target.patient], knowledge(), defaults, workers=1)
    together = {
        r.patient_id: r for r in evaluate_many([o.patient for o in [*others, target]], knowledge(), defaults, workers=1)
    }
    company = together[target.patient.id]
    check(
        "screened with other patients",
        (target, (alone.verdict, alone.statuses)),
        (target.then("screened with " + ", ".join(str(o) for o in others)), (company.verdict, company.statuses)),
        differ,
    )
    assert alone.verdict == company.verdict


BATCH = {"fast": (8, 0, 1), "ci": (12, 20, 1), "deep": (20, 180, 20)}[PROFILE]  # drawn, synthetic bulk, 1 in n checked


@runs(fast=6, ci=50, deep=100)
@given(
    batch=st.lists(cases(), min_size=1, max_size=BATCH[0]),
    bulk=st.integers(0, 10**6),
    overrides=st.sampled_from(ASSUMPTION_SETS),
    as_of=st.none() | st.integers(-30, 30).map(lambda d: date(2026, 11, 24) + timedelta(d)),
)
def test_sql_path_and_pydatalog_agree(
    batch: list[Case], bulk: int, overrides: tuple[str, ...], as_of: date | None
) -> None:
    """The set-at-a-time path (DuckDB SQL, kb.screening.batch) gives every criterion the status, and the
    patient the verdict, that pyDatalog gives: on the drawn patients and a block of synthetic
    ones screened with them (the deep run screens 200 a chunk, and checks a sample)."""
    assumption_set = assumptions(*overrides)
    block = [synthetic_case(n) for n in range(bulk, bulk + BATCH[1])]
    drawn = renamed(batch)
    screened = list(evaluate_many([c.patient for c in drawn + block], knowledge(), assumption_set, as_of, workers=1))
    checked = (
        list(zip(drawn, screened, strict=False)) + list(zip(block, screened[len(drawn) :], strict=True))[:: BATCH[2]]
    )
    for case, row in checked:
        where = case.then(f"assume {' '.join(overrides) or 'defaults'}; as of {as_of or 'enrolment'}")
        reference = outcome(case, assumption_set, as_of)
        check(
            "SQL path (before) vs pyDatalog (after)", (where, (row.verdict, row.statuses)), (where, reference), differ
        )
        assert row.verdict == reference[0], f"verdict: SQL {row.verdict}, pyDatalog {reference[0]}: {where}"
