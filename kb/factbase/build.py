"""One patient's facts as of the reference dates: what the engine is asked about.

Here time becomes explicit: reference dates are fixed (with the defaults of DESIGN.md),
dates become day numbers, the latest result of each item in the look-back window is chosen
(an older one is `stale`), derived values are computed, and every fact keeps its
provenance (file and row, or derivation) for the trace. What could not be found is kept
as a gap with its reason, so that an unknown criterion can say what to collect.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

from kb.catalogue.assumptions import AssumptionSet
from kb.catalogue.derived import (
    Derivation,
    age_in_years,
    check_date,
    ckd_epi_2021,
    cockcroft_gault,
    cockcroft_gault_si,
    doses_per_day,
    months_before,
    per_kg,
    prednisone_equivalent,
    times_uln,
    washout_days,
)
from kb.catalogue.knowledge import KnowledgeBase
from kb.catalogue.vocabulary import CLOSED_CODE_SYSTEMS, Vocabulary
from kb.factbase.exposures import Course, courses, exposure_end, ongoing
from kb.factbase.fact_types import FactBase, Gap, Provenance, ReferenceDates
from kb.factbase.measures import add_measures
from kb.language.engine import Fact
from kb.language.syntax import Atom, Const
from kb.records.patients import (
    AGENT_KINDS,
    STRICT_CONDITION_KINDS,
    Attestation,
    Dataset,
    Event,
    Observation,
    Patient,
    Source,
    Unreadable,
)
from kb.records.units import exact

__all__ = [
    "FactBase",
    "Gap",
    "Profile",
    "Provenance",
    "ReferenceDates",
    "build_facts",
    "cohorts_of",
    "day_number",
    "from_day",
    "profiles",
]

#: Agent classes whose exclusion window is counted in half-lives (GE4.4's ge4_4_agent in
#: kb/rules/general_exclusion.dl): an agent of them without a half-life is a gap to name.
WASHOUT_CLASSES = frozenset({"ge4_4_listed", "calcineurin_inhibitor", "interferon", "interleukin_2"})


def _no_provenance() -> Provenance:
    return Provenance("")


def _note(description: str, source: Source | None = None) -> Callable[[], Provenance]:
    return lambda: Provenance(description, source)


def _attested_note(item: str, att: Attestation) -> Callable[[], Provenance]:
    def note() -> Provenance:
        by = f" by {att.by}" if att.by else ""
        when = f" on {att.date.isoformat()}" if att.date else ""
        return Provenance(f"{item} = {att.value}, attested{by}{when}", att.source)

    return note


def _age_note(at: Derivation, anchor: str, source: Source | None) -> Callable[[], Provenance]:
    return lambda: Provenance(f"age {at.value} years at {anchor}", source, at)


def _vocabulary_note(name: str, cls: str, file: str) -> Callable[[], Provenance]:
    return lambda: Provenance(f"{name} is {cls.replace('_', ' ')}", origin=f"vocabulary/{file}.csv")


def day_number(when: date) -> int:
    return when.toordinal()


def from_day(day: int) -> date:
    return date.fromordinal(day)


def reference_dates(
    patient: Patient, assumptions: AssumptionSet, as_of: date | None, today: date | None = None
) -> ReferenceDates:
    notes = []
    enrolment = as_of or patient.enrolment_date
    if as_of is not None:
        notes.append(f"enrolment set by --as-of {as_of.isoformat()}")
    if enrolment is None:
        enrolment = today or date.today()
        notes.append(f"no enrolment date in the file: today ({enrolment.isoformat()}) was used")
    screening = patient.screening_date
    if screening is None or screening > enrolment:
        if screening is not None:
            notes.append(f"screening date {screening.isoformat()} is after enrolment: enrolment used")
        else:
            notes.append("no screening date: the enrolment date was used")
        screening = enrolment
    # an --as-of date or a hand-built patient is not checked by the loader: a reference date
    # outside the dates read would leave the calendar in a window's arithmetic
    check_date(enrolment, f"{patient.id}: enrolment date")
    check_date(screening, f"{patient.id}: screening date")
    apheresis = patient.apheresis_date
    if apheresis is None:
        offset = assumptions.days("apheresis_offset_days")
        apheresis = enrolment + timedelta(days=offset)
        notes.append(f"no apheresis date: enrolment + {offset} days (assumption apheresis_offset_days)")
    check_date(apheresis, f"{patient.id}: apheresis date")
    return ReferenceDates(screening, enrolment, apheresis, tuple(notes))


def build_facts(
    patient: Patient,
    kb: KnowledgeBase,
    assumptions: AssumptionSet,
    as_of: date | None = None,
    today: date | None = None,
    lean: bool = False,
    wanted: Mapping[str, frozenset[str]] | None = None,
) -> FactBase:
    refs = reference_dates(patient, assumptions, as_of, today)
    base = FactBase(patient.id, refs, lean=lean, wanted=(wanted or {}) if lean else {})
    pid = patient.id
    vocab = kb.vocabulary
    base.add("patient", (pid,), lambda: Provenance(f"patient {pid}", patient.source))
    for anchor in ("screening", "enrolment", "apheresis"):
        when: date = getattr(refs, anchor)
        base.add("ref_day", (pid, anchor, day_number(when)), _note(f"{anchor} date {when.isoformat()}"))
    if patient.sex:
        base.add("sex", (pid, patient.sex), Provenance(f"sex {patient.sex}", patient.source))
    else:
        base.gap("sex", "", Gap("sex", "missing", "sex not recorded in patients.csv"))
    age = None
    if patient.birth_date:
        age = age_in_years(patient.birth_date, refs.enrolment).value  # the age the criteria use
        for anchor in ("screening", "enrolment", "apheresis"):
            at = age_in_years(patient.birth_date, getattr(refs, anchor))
            base.add(
                "age_at",
                (pid, anchor, at.value),
                _age_note(at, anchor, patient.source),
            )
    else:
        base.gap("age", "", Gap("birth_date", "missing", "birth date not recorded in patients.csv"))
    selected = _select_observations(patient, base, vocab, assumptions)
    _ratios(base, selected, vocab)
    _clearance(base, patient, selected, vocab, assumptions, age)
    _egfr(base, patient, selected, vocab, age)
    _events(base, patient, vocab, str(assumptions["default_code_system"]), refs)
    _doses(base, patient, vocab)
    _courses(base, patient, assumptions.days("course_gap_days"))
    _washouts(base, patient, vocab, assumptions)
    _windows(base, kb, refs, str(assumptions["month_length"]))
    _attestations(base, patient, vocab, refs)
    add_measures(base, patient, selected, vocab, assumptions)
    if not lean:  # the same for every patient: a lean caller adds them once (`assumption_facts`)
        for fact in assumption_facts(assumptions):
            key, value = fact[1]
            base.add(*fact, Provenance(f"assumption {key} = {value}", origin="assumptions.toml"))
    return base


def cohorts_of(base: FactBase) -> list[str]:
    """The cohorts the patient's diagnoses place them in (the `cohort_diagnosis` facts), sorted:
    only these cohorts' criteria apply, and a list of patients shows them."""
    return sorted({str(args[1]) for relation, args in base.facts if relation == "cohort_diagnosis"})


@dataclass(frozen=True)
class Profile:
    """Who a patient is at the enrolment date: what a list of patients shows before any
    criterion is decided (`kb patients`)."""

    patient: str
    sex: str | None
    age: int | None  # whole years at the enrolment date; None without a birth date
    cohorts: tuple[str, ...]
    dataset: str
    story: str

    def as_dict(self) -> dict[str, Any]:
        return {
            "patient": self.patient,
            "sex": self.sex,
            "age": self.age,
            "cohorts": list(self.cohorts),
            "dataset": self.dataset,
            "story": self.story,
        }


def profiles(
    dataset: Dataset, kb: KnowledgeBase, assumptions: AssumptionSet, as_of: date | None = None
) -> list[Profile]:
    """Every patient's profile, in the data set's order, read from the facts the engine gets
    (so the age and cohorts are those the criteria use)."""
    found = []
    for patient in dataset.patients.values():
        base = build_facts(patient, kb, assumptions, as_of)
        ages = [args[2] for relation, args in base.facts if relation == "age_at" and args[1] == "enrolment"]
        age = int(ages[0]) if ages else None
        story = dataset.stories.get(patient.id, "")
        found.append(Profile(patient.id, patient.sex, age, tuple(cohorts_of(base)), dataset.name, story))
    return found


def assumption_facts(assumptions: AssumptionSet) -> list[Fact]:
    """The assumptions in force as the facts the rules read (`assumption`, `assumption_days`)."""
    return [
        ("assumption", (key, value)) if isinstance(value, str) else ("assumption_days", (key, Decimal(value)))
        for key, value in assumptions.in_force().items()
    ]


def _describe(obs: Observation, vocab: Vocabulary, converted: str = "") -> str:
    item = vocab.items[obs.item]
    unit = f" {item.display_unit}" if item.quantitative and item.display_unit else ""
    value = exact(obs.value) if isinstance(obs.value, Decimal) else obs.value
    how = f" ({converted})" if converted else ""
    return f"{obs.item} {value}{unit}{how} on {obs.date.isoformat()}"


def _select_observations(
    patient: Patient, base: FactBase, vocab: Vocabulary, assumptions: AssumptionSet
) -> dict[str, Observation]:
    """The latest result of each item dated in [enrolment − lookback, enrolment]."""
    lookback = assumptions.days("lab_lookback_days")
    enrolment = base.reference.enrolment
    recent = enrolment - timedelta(days=lookback)
    if base.lean:
        return _latest_results(patient, base, vocab, assumptions, recent)
    by_item: dict[str, list[Observation]] = {}
    for obs in patient.observations:
        by_item.setdefault(obs.item, []).append(obs)
    unreadable = _unreadable_results(patient)
    selected: dict[str, Observation] = {}
    for name in vocab.items:
        results = [o for o in by_item.get(name, []) if o.date <= enrolment]
        blocking = _hiding(
            unreadable.get(name, []) + unreadable.get("", []),
            results,
            enrolment,
            recent if vocab.items[name].window == "lookback" else None,
        )
        if blocking is not None:
            base.gap("item", name, _unreadable_gap(name, blocking))
            continue
        if not results:
            later = len(by_item.get(name, []))
            detail = f"no {name} result" + (f" on or before enrolment ({later} later)" if later else "")
            base.gap("item", name, Gap(name, "missing", detail))
            continue
        latest = max(results, key=lambda o: (o.date, o.source.row))
        if vocab.items[name].window == "lookback" and latest.date < recent:
            if base.lean:
                continue
            base.gap(
                "item",
                name,
                Gap(
                    name,
                    "stale",
                    f"latest {name} result {latest.date.isoformat()} is older than "
                    f"{lookback} days before enrolment {enrolment.isoformat()}",
                ),
            )
            continue
        converted = ""
        if latest.factor_assumption:  # e.g. HBV DNA in IU/mL: the factor is a named assumption
            factor = Decimal(str(assumptions[latest.factor_assumption]))
            converted = f"{latest.original} × {factor} (assumption {latest.factor_assumption})"
            latest = replace(latest, value=Decimal(latest.value) * factor, factor_assumption="")
        selected[name] = latest
        others = len(results) - 1
        relation = "obs_num" if vocab.items[name].quantitative else "obs_cat"

        def provenance(latest: Observation = latest, converted: str = converted, others: int = others) -> Provenance:
            note = f" (latest of {others + 1} results up to enrolment)" if others else ""
            return Provenance(_describe(latest, vocab, converted) + note, latest.source)

        base.add(relation, (patient.id, name, latest.value, day_number(latest.date)), provenance)
    return selected


def _latest_results(
    patient: Patient, base: FactBase, vocab: Vocabulary, assumptions: AssumptionSet, recent: date
) -> dict[str, Observation]:
    """`_select_observations` without gaps or provenance, in one pass (screening): the same
    choice, the latest result up to enrolment by (date, row), dropped when stale."""
    enrolment = base.reference.enrolment
    latest: dict[str, Observation] = {}
    for obs in patient.observations:
        if obs.date > enrolment:
            continue
        current = latest.get(obs.item)
        if current is None or (obs.date, obs.source.row) > (current.date, current.source.row):
            latest[obs.item] = obs
    unreadable = _unreadable_results(patient)
    selected: dict[str, Observation] = {}
    for name, obs in latest.items():
        item = vocab.items.get(name)
        if item is None or (item.window == "lookback" and obs.date < recent):
            continue
        hiding = unreadable.get(name, []) + unreadable.get("", [])
        if hiding and _hiding(hiding, [obs], enrolment, None) is not None:
            continue
        if obs.factor_assumption:
            factor = Decimal(str(assumptions[obs.factor_assumption]))
            obs = replace(obs, value=Decimal(obs.value) * factor, factor_assumption="")
        selected[name] = obs
        relation = "obs_num" if item.kind == "quantitative" else "obs_cat"
        base.facts.append((relation, (patient.id, name, obs.value, obs.date.toordinal())))
    return selected


def _unreadable_results(patient: Patient) -> dict[str, list[Unreadable]]:
    """Unreadable result rows by item; under "" those that may be of any item (the whole
    file set aside, a row whose item could not be read)."""
    found: dict[str, list[Unreadable]] = {}
    for row in patient.unreadable:
        if row.file == "observations.csv":
            found.setdefault(row.what, []).append(row)
    return found


def _hiding(
    rows: list[Unreadable], results: list[Observation], enrolment: date, since: date | None
) -> Unreadable | None:
    """An unreadable result row that may be the latest result of its item up to enrolment
    (within the look-back window `since`, if any), hiding the one that would be used."""
    latest = max((o.date for o in results), default=None)
    for row in rows:
        if row.when is None:
            return row
        in_window = row.when <= enrolment and (since is None or row.when >= since)
        if in_window and (latest is None or row.when >= latest):
            return row
    return None


def _ratios(base: FactBase, selected: dict[str, Observation], vocab: Vocabulary) -> None:
    if base.lean:
        wanted = base.wanted.get("xuln")
        for name, result in selected.items():
            usable = result.uln is not None and result.uln > 0 and isinstance(result.value, Decimal)
            if usable and (wanted is None or name in wanted) and vocab.items[name].quantitative:
                assert isinstance(result.value, Decimal) and result.uln is not None
                value = times_uln(name, result.value, result.uln, "").value
                base.add("xuln", (base.patient_id, name, value), _no_provenance)
        return
    for name in vocab.items:
        item = vocab.items[name]
        if not item.quantitative:
            continue
        obs = selected.get(name)
        if obs is None:
            base.gaps.setdefault(("xuln", name), []).extend(base.gaps.get(("item", name), []))
        elif obs.uln is None or obs.uln <= 0:
            base.gap("xuln", name, Gap(f"uln:{name}", "missing", f"the {name} result of {obs.date} has no ULN"))
        else:
            assert isinstance(obs.value, Decimal)
            derivation = times_uln(name, obs.value, obs.uln, item.display_unit)

            def provenance(name: str = name, obs: Observation = obs, derivation: Derivation = derivation) -> Provenance:
                return Provenance(
                    f"{name} {derivation.value:.2f} ×ULN on {obs.date.isoformat()}", obs.source, derivation
                )

            base.add("xuln", (base.patient_id, name, derivation.value), provenance)


def _clearance(
    base: FactBase,
    patient: Patient,
    selected: dict[str, Observation],
    vocab: Vocabulary,
    assumptions: AssumptionSet,
    age: Decimal | None,
) -> None:
    measured = selected.get("crcl_measured")
    if measured is not None:
        base.add(
            "crcl",
            (patient.id, measured.value),
            Provenance(f"measured creatinine clearance {measured.value} mL/min on {measured.date}", measured.source),
        )
        return
    if assumptions["crcl_method"] == "measured_only":
        base.gaps.setdefault(("crcl", ""), []).extend(base.gaps.get(("item", "crcl_measured"), []))
        return
    creatinine = selected.get("creatinine")
    missing = []
    if creatinine is None:
        missing.extend(base.gaps.get(("item", "creatinine"), []))
    if patient.weight_kg is None:
        missing.append(Gap("weight_kg", "missing", "weight not recorded in patients.csv"))
    if age is None:
        missing.append(Gap("birth_date", "missing", "birth date not recorded in patients.csv"))
    if patient.sex is None:
        missing.append(Gap("sex", "missing", "sex not recorded in patients.csv"))
    if missing or creatinine is None or patient.weight_kg is None or age is None:
        base.gaps.setdefault(("crcl", ""), []).extend(
            [Gap("crcl_measured", "missing", "no measured clearance, and Cockcroft–Gault lacks inputs"), *missing]
        )
        return
    assert isinstance(creatinine.value, Decimal)
    female = patient.sex == "female"
    if assumptions["crcl_formula"] == "cockcroft_gault_si":
        derivation = cockcroft_gault_si(age, patient.weight_kg, creatinine.value, female)
    else:
        factor = vocab.items["creatinine"].molar_factor or Decimal("88.4")
        derivation = cockcroft_gault(age, patient.weight_kg, creatinine.value, female, factor)
    base.add(
        "crcl",
        (patient.id, derivation.value),
        Provenance(f"creatinine clearance {derivation.value} mL/min (Cockcroft–Gault)", creatinine.source, derivation),
    )


def _egfr(
    base: FactBase, patient: Patient, selected: dict[str, Observation], vocab: Vocabulary, age: Decimal | None
) -> None:
    creatinine = selected.get("creatinine")
    if creatinine is None or age is None or patient.sex is None:
        gaps = list(base.gaps.get(("item", "creatinine"), [])) if creatinine is None else []
        if age is None:
            gaps.append(Gap("birth_date", "missing", "birth date not recorded in patients.csv"))
        if patient.sex is None:
            gaps.append(Gap("sex", "missing", "sex not recorded in patients.csv"))
        base.gaps.setdefault(("egfr", ""), []).extend(gaps)
        return
    assert isinstance(creatinine.value, Decimal)
    factor = vocab.items["creatinine"].molar_factor or Decimal("88.4")
    derivation = ckd_epi_2021(age, creatinine.value, patient.sex == "female", factor)
    base.add(
        "egfr",
        (patient.id, derivation.value),
        Provenance(f"eGFR {derivation.value} mL/min/1.73 m² (CKD-EPI 2021)", creatinine.source, derivation),
    )


def _doses(base: FactBase, patient: Patient, vocab: Vocabulary) -> None:
    """Daily prednisone-equivalent dose of each glucocorticoid record (and per kg)."""
    refs = base.reference
    for event in patient.events:
        agent = vocab.agents.get(event.agent or "")
        if event.kind != "medication" or agent is None or agent.prednisone_factor is None:
            continue
        start = day_number(event.start)
        end = day_number(exposure_end(event, refs.dates))
        per_day = doses_per_day(event.frequency)
        unit = event.dose_unit.strip().casefold()
        scale = {"": Decimal(1), "mg": Decimal(1), "g": Decimal(1000)}.get(unit)
        if event.dose is None or per_day is None or scale is None:
            given = f"{event.dose} {event.dose_unit} {event.frequency}".strip()
            why = "no dose" if event.dose is None else f"dose '{given}' not understood"
            base.add(
                "dose_missing",
                (patient.id, agent.name, start, end),
                Provenance(f"{_event_label(event)}: {why}", event.source),
            )
            base.gap(
                "dose",
                agent.name,
                Gap(
                    f"dose:{event.name} {event.start}",
                    "missing",
                    f"{why} for {event.name} from {event.start} ({event.source})",
                ),
            )
            continue
        daily = prednisone_equivalent(agent.name, event.dose * scale, agent.prednisone_factor, per_day, event.frequency)
        base.add(
            "pred_equivalent",
            (patient.id, agent.name, start, daily.value),
            Provenance(
                f"{event.name} {exact(event.dose * scale)} mg {event.frequency or 'daily'} = "
                f"{exact(daily.value)} mg/day prednisone-equivalent",
                event.source,
                daily,
            ),
        )
        if patient.weight_kg:
            kg = per_kg(daily, patient.weight_kg)
            base.add(
                "pred_mg_per_kg",
                (patient.id, agent.name, start, kg.value),
                Provenance(f"{_event_label(event)}: {kg.value:.3f} mg/kg/day prednisone-equivalent", event.source, kg),
            )


def _courses(base: FactBase, patient: Patient, gap_days: int) -> None:
    """Each agent's courses (records joined across pauses of up to `gap_days`) and their
    length up to enrolment: what "for more than 6 months" measures (kb/factbase/exposures.py)."""
    refs = base.reference
    for course in courses(patient.events, refs.dates, refs.enrolment, gap_days):
        args = (patient.id, course.agent, day_number(course.start), day_number(course.end), Decimal(course.days))
        base.add("course", args, _course_note(course, gap_days))


def _course_note(course: Course, gap_days: int) -> Callable[[], Provenance]:
    def note() -> Provenance:
        derivation = Derivation(
            f"{course.agent} course",
            f"its records joined across pauses of up to {gap_days} days; days from the first start to the last "
            "end or to enrolment, whichever is first",
            tuple((str(e.source), _event_label(e)) for e in course.records),
            Decimal(course.days),
        )
        return Provenance(course.describe(), course.records[0].source, derivation, origin="assumption course_gap_days")

    return note


def _washouts(base: FactBase, patient: Patient, vocab: Vocabulary, assumptions: AssumptionSet) -> None:
    """Washout days (5 half-lives) of every agent in the patient's records that has a half-life."""
    for name in sorted({e.agent for e in patient.events if e.agent in vocab.agents}):
        agent = vocab.agents[name]
        half_life = agent.half_life_hours
        origin = "vocabulary/agents.csv"
        if name == "tacrolimus":
            half_life = Decimal(str(assumptions["tacrolimus_half_life_hours"]))
            origin = "assumption tacrolimus_half_life_hours"
        if half_life is None:
            if WASHOUT_CLASSES & set(agent.classes):
                base.gap(
                    "washout",
                    name,
                    Gap(
                        f"half_life:{name}",
                        "unknown_term",
                        f"{name}: no half-life in the agent vocabulary, so its washout of 5 half-lives (GE4.4) "
                        "cannot be counted",
                    ),
                )
            continue
        derivation = washout_days(name, half_life, str(assumptions["washout_rounding"]))
        base.add(
            "washout_days",
            (name, derivation.value),
            Provenance(f"{name}: 5 half-lives = {derivation.value} days", derivation=derivation, origin=origin),
        )


_WINDOWS: dict[int, tuple[object, list[tuple[str, int]]]] = {}


def _windows_asked(kb: KnowledgeBase) -> list[tuple[str, int]]:
    """The (anchor, months) pairs the rules ask `months_before` about (read once per program)."""
    cached = _WINDOWS.get(id(kb.program))
    if cached is not None and cached[0] is kb.program:
        return cached[1]
    wanted: set[tuple[str, int]] = set()
    for rule in kb.program.rules:
        for lit in rule.body:
            if isinstance(lit, Atom) and lit.predicate == "months_before":
                anchor_arg, months_arg = lit.args[1], lit.args[2]
                if isinstance(anchor_arg, Const) and isinstance(months_arg, Const):
                    wanted.add((str(anchor_arg.value), int(Decimal(months_arg.value))))
    _WINDOWS[id(kb.program)] = (kb.program, sorted(wanted))
    return sorted(wanted)


def _windows(base: FactBase, kb: KnowledgeBase, refs: ReferenceDates, mode: str) -> None:
    """`months_before(P, Anchor, N, Day)` for each (anchor, N) that a rule asks about."""
    for anchor, months in _windows_asked(kb):
        when = months_before(getattr(refs, anchor), months, mode)
        if base.lean:
            base.add("months_before", (base.patient_id, anchor, Decimal(months), day_number(when)), _no_provenance)
            continue
        unit = "calendar months" if mode == "calendar" else "months of 30 days"
        derivation = Derivation(
            f"{months} months before {anchor}",
            f"{anchor} − {months} {unit}",
            ((anchor, getattr(refs, anchor).isoformat()),),
            Decimal(day_number(when)),
        )
        base.add(
            "months_before",
            (base.patient_id, anchor, Decimal(months), day_number(when)),
            Provenance(
                f"{months} months before {anchor}: {when.isoformat()}",
                derivation=derivation,
                origin="assumption month_length",
            ),
        )


def _events(base: FactBase, patient: Patient, vocab: Vocabulary, code_system: str, refs: ReferenceDates) -> None:
    # an event row that could not be read is a record of its history (of every history, if
    # its kind could not be read) that nobody understood, at any time: never an absence
    for row in patient.unreadable:
        if row.file != "events.csv":
            continue
        for kind in [row.what] if row.what else sorted(vocab.event_kinds):
            base.add(
                "unrecognised", (patient.id, kind, *ALL_TIME), Provenance(f"{row.source}: {row.reason}", row.source)
            )
            base.gap("term", kind, _unreadable_gap(f"{kind}:{row.source}", row))
    for event in patient.events:
        start = day_number(event.start)
        end = day_number(exposure_end(event, refs.dates))  # ongoing: through every reference date
        system, code = _code(event, code_system)
        condition, understood = _condition(event, vocab, system, code)
        label = "" if base.lean else _event_label(event, condition if condition != event.agent else None)
        name = event.agent or condition or event.name or event.code
        base.add("event", (patient.id, event.kind, name, start, end), _note(label, event.source))
        if condition:
            for cls in vocab.conditions[condition].classes:
                base.add("condition_class", (condition, cls), _vocabulary_note(condition, cls, "conditions"))
        elif event.agent:
            for cls in vocab.agents[event.agent].classes:
                base.add("agent_class", (event.agent, cls), _vocabulary_note(event.agent, cls, "agents"))
        if not understood:
            base.add(
                "unrecognised",
                (patient.id, event.kind, start, end),
                Provenance(f"{label}: name not in the vocabulary", event.source),
            )
            what = f"'{event.name}'" if event.name else f"code {event.code}"
            read = f" (its code {event.code} reads as {(condition or '').replace('_', ' ')}, the words may say more)"
            kind = event.kind.replace("_", " ")
            base.gap(
                "term",
                event.kind,
                Gap(
                    f"{event.kind}:{event.name or event.code}",
                    "unknown_term",
                    f"{what} ({event.source}) is not a known {kind}{read if condition else ''}: "
                    "say what it is (a name or code of the vocabulary)",
                ),
            )
        if event.kind == "diagnosis" and code:
            cohort = vocab.cohort_of(system, code)
            if cohort:
                base.add(
                    "cohort_diagnosis",
                    (patient.id, cohort, event.code, start),
                    Provenance(f"diagnosis {event.code} ({system}) → cohort {cohort}", event.source),
                )


#: An ICD-10 (or ICD-10-CM) code: a letter, two characters, and up to four more after a dot.
_ICD10 = re.compile(r"[A-Z][0-9][0-9A-Z](\.?[0-9A-Z]{1,4})?")


#: The days an unreadable record may cover: any day a window can reach.
ALL_TIME = (day_number(date(1900, 1, 1)), day_number(date(2999, 12, 31)))


def _may_be_later(row: Unreadable, than: date | None) -> bool:
    """Whether a row that could not be read may be newer than the record chosen as latest."""
    return row.when is None or than is None or row.when >= than


def _unreadable_gap(item: str, row: Unreadable) -> Gap:
    if row.source.row == 0:  # the whole file was set aside
        detail = f"{row.file} could not be read ({row.reason}): correct the file, and its records count"
    else:
        detail = f"{row.source} could not be read ({row.reason}): correct that row, and its record counts"
    return Gap(item, "unreadable_source", detail)


def _unread_histories(patient: Patient, vocab: Vocabulary) -> dict[str, Unreadable]:
    """The history categories an event row that could not be read may belong to (every one,
    if its kind could not be read or the whole file was set aside), with that row: such a
    history is not complete, whatever its review says ("no cohort" needs every diagnosis)."""
    found: dict[str, Unreadable] = {}
    for row in patient.unreadable:
        if row.file != "events.csv":
            continue
        for category in [vocab.event_kinds[row.what]] if row.what in vocab.event_kinds else vocab.categories:
            found.setdefault(category, row)
    return found


def _code(event: Event, default_system: str) -> tuple[str, str]:
    """The code system (`icd10`, `snomed` ...; the default when the code names none) and code."""
    if not event.code:
        return "", ""
    system, _, code = event.code.rpartition(":")
    return system.casefold().replace("-", "").replace(" ", "") or default_system, code.strip()


def _condition(event: Event, vocab: Vocabulary, system: str, code: str) -> tuple[str | None, bool]:
    """The vocabulary condition an event of a condition kind names (by name, else by code), and
    whether the record is understood. A diagnosis, procedure, cardiac event or thrombosis that
    is not understood leaves every criterion reading its history undecided.

    The words decide when the vocabulary knows them. Words it does not know may say more
    than the code ("secondary Sjögren's" under M35.0, "HBV cirrhosis" under B18.1): the
    condition a code names still counts (it can block), but the record is not understood,
    so it can never make a history count as complete. A code alone is understood when the
    code system is closed (ICD-10) or the code is listed."""
    if event.kind in AGENT_KINDS:
        return None, event.agent is not None
    if event.agent:
        return event.agent, True
    strict = event.kind in STRICT_CONDITION_KINDS
    if code and (system not in CLOSED_CODE_SYSTEMS or _ICD10.fullmatch(code.upper())):
        condition, understood = vocab.condition_of_code(system, code)
        return condition, (understood and not event.name) or not strict
    return None, not strict


def _event_label(event: Event, by_code: str | None = None) -> str:
    """How a record reads in a proof: what the vocabulary took it for, then its own words (by
    name; or `by_code`: the condition its code names, after the words), and its days."""
    what = event.name or event.code
    if by_code:
        what = f"{what} ({event.code}: {by_code.replace('_', ' ')})"
    elif event.agent and event.agent.replace("_", " ").casefold() != what.casefold():
        what = f"{event.agent} (recorded as {what})"  # the canonical name first, as a clinician looks it up
    span = event.start.isoformat()
    if event.end and event.end != event.start:
        span += f" to {event.end.isoformat()}"
    elif ongoing(event):
        span += ", ongoing"
    return f"{event.kind} {what} {span}"


def _attestations(base: FactBase, patient: Patient, vocab: Vocabulary, refs: ReferenceDates) -> None:
    latest: dict[str, tuple[date, int]] = {}
    chosen = {}
    unread = _unread_histories(patient, vocab)
    for att in patient.attestations:
        key = (att.date or date.min, att.source.row)
        if att.item.startswith("reviewed:"):
            category = att.item.split(":", 1)[1]
            assert att.date is not None
            if category in unread:
                continue  # a review cannot vouch for records that could not be read
            base.add(
                "reviewed",
                (patient.id, category, day_number(att.date)),
                _note(f"{category} history reviewed {att.date.isoformat()}", att.source)
                if not base.lean
                else _no_provenance,
            )
            continue
        if att.item not in latest or key > latest[att.item]:
            latest[att.item] = key
            chosen[att.item] = att
    for row in patient.unreadable:  # a row that could not be read may be the latest word
        if row.file != "attestations.csv":
            continue
        for item in [row.what] if row.what else [i for i in vocab.attestation_items if not i.startswith("reviewed:")]:
            current = chosen.get(item)
            if current is None or _may_be_later(row, current.date):
                chosen.pop(item, None)
                base.gap("attested", item, _unreadable_gap(item, row))
    for item, att in chosen.items():
        base.add("attested", (patient.id, item, att.value), _no_provenance if base.lean else _attested_note(item, att))
    if base.lean:
        return  # what follows only records gaps
    for item in vocab.attestation_items:
        if item.startswith("reviewed:"):
            category = item.split(":", 1)[1]
            days = [day_number(a.date) for a in patient.attestations if a.item == item and a.date]
            lost = unread.get(category) or next(
                (u for u in patient.unreadable if u.file == "attestations.csv" and u.what in ("", item)), None
            )
            if category in unread or (lost is not None and not days):
                assert lost is not None
                base.gap("reviewed", category, _unreadable_gap(item, lost))
            elif not days:
                base.gap(
                    "reviewed", category, Gap(item, "history_not_reviewed", f"{category} history not declared reviewed")
                )
            else:
                # a window ends at enrolment or, for GE4.4/GE4.6, at apheresis (never earlier)
                for anchor_name, deadline in (("enrolment", refs.enrolment), ("apheresis", refs.apheresis)):
                    if max(days) < day_number(deadline):
                        detail = f"{category} history reviewed {from_day(max(days))}, before {anchor_name} {deadline}"
                        base.gap("reviewed", category, Gap(item, "history_not_reviewed", detail))
                        break
        elif item not in chosen and not base.gaps_for("attested", item):
            base.gap("attested", item, Gap(item, "not_attested", f"{item} not attested"))
