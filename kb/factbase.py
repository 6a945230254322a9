"""One patient's facts as of the reference dates: what the engine is asked about.

Here time becomes explicit: reference dates are fixed (with the defaults of DESIGN.md),
dates become day numbers, the latest result of each item in the look-back window is chosen
(an older one is `stale`), derived values are computed, and every fact keeps its
provenance (file and row, or derivation) for the trace. What could not be found is kept
as a gap with its reason, so that an unknown criterion can say what to collect.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import Decimal

from kb.assumptions import AssumptionSet
from kb.derived import Derivation, age_in_years, cockcroft_gault, times_uln
from kb.engine import Fact, FactValue
from kb.knowledge import KnowledgeBase
from kb.patients import Event, Observation, Patient, Source
from kb.vocabulary import Vocabulary

__all__ = ["FactBase", "Gap", "Provenance", "ReferenceDates", "build_facts", "day_number", "from_day"]

#: Which gaps explain the absence of a fact of each input or computed relation.
RELATION_GAPS = {
    "obs_num": "item",
    "obs_cat": "item",
    "xuln": "xuln",
    "crcl": "crcl",
    "age_years": "age",
    "sex": "sex",
    "attested": "attested",
    "reviewed": "reviewed",
    "unrecognised": "term",
}
#: Kinds of event that happen on one day unless an end date is given.
POINT_EVENTS = frozenset(
    {
        "vaccination",
        "transfusion",
        "cell_therapy",
        "diagnosis",
        "procedure",
        "cardiac_event",
        "thrombosis",
        "malignancy",
    }
)


def day_number(when: date) -> int:
    return when.toordinal()


def from_day(day: int) -> date:
    return date.fromordinal(day)


@dataclass(frozen=True)
class ReferenceDates:
    screening: date
    enrolment: date
    apheresis: date
    notes: tuple[str, ...]  # how each date was obtained when it was not in the file

    def as_dict(self) -> dict[str, str]:
        return {
            "screening": self.screening.isoformat(),
            "enrolment": self.enrolment.isoformat(),
            "apheresis": self.apheresis.isoformat(),
        }


@dataclass(frozen=True)
class Provenance:
    description: str
    source: Source | None = None
    derivation: Derivation | None = None
    origin: str = ""  # for reference facts: the vocabulary file or the assumption


@dataclass(frozen=True)
class Gap:
    item: str  # the data item to collect (an item, `uln:<item>`, an attestation, `reviewed:<category>`)
    reason: str  # missing | stale | not_attested | history_not_reviewed | unknown_term
    detail: str


@dataclass
class FactBase:
    patient_id: str
    reference: ReferenceDates
    facts: list[Fact] = field(default_factory=list)
    provenance: dict[Fact, Provenance] = field(default_factory=dict)
    gaps: dict[tuple[str, str], list[Gap]] = field(default_factory=dict)

    def add(self, relation: str, args: tuple[FactValue, ...], provenance: Provenance) -> None:
        fact = (relation, args)
        if fact not in self.provenance:
            self.facts.append(fact)
            self.provenance[fact] = provenance

    def gap(self, group: str, key: str, gap: Gap) -> None:
        self.gaps.setdefault((group, key), []).append(gap)

    def gaps_for(self, relation: str, key: str | None) -> list[Gap]:
        """The gaps that can explain why `relation(P, key, ...)` has no fact."""
        group = RELATION_GAPS.get(relation)
        if group is None:
            return []
        if key is None:
            return [g for (grp, _), gaps in sorted(self.gaps.items()) if grp == group for g in gaps]
        return list(self.gaps.get((group, key), []))


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
    apheresis = patient.apheresis_date
    if apheresis is None:
        offset = assumptions.days("apheresis_offset_days")
        apheresis = enrolment + timedelta(days=offset)
        notes.append(f"no apheresis date: enrolment + {offset} days (assumption apheresis_offset_days)")
    return ReferenceDates(screening, enrolment, apheresis, tuple(notes))


def build_facts(
    patient: Patient,
    kb: KnowledgeBase,
    assumptions: AssumptionSet,
    as_of: date | None = None,
    today: date | None = None,
) -> FactBase:
    refs = reference_dates(patient, assumptions, as_of, today)
    base = FactBase(patient.id, refs)
    pid = patient.id
    vocab = kb.vocabulary
    base.add("patient", (pid,), Provenance(f"patient {pid}", patient.source))
    for anchor in ("screening", "enrolment", "apheresis"):
        when: date = getattr(refs, anchor)
        base.add("ref_day", (pid, anchor, day_number(when)), Provenance(f"{anchor} date {when.isoformat()}"))
    if patient.sex:
        base.add("sex", (pid, patient.sex), Provenance(f"sex {patient.sex}", patient.source))
    else:
        base.gap("sex", "", Gap("sex", "missing", "sex not recorded in patients.csv"))
    age = None
    if patient.birth_date:
        derivation = age_in_years(patient.birth_date, refs.enrolment)
        age = derivation.value
        base.add("age_years", (pid, age), Provenance(f"age {age} years at enrolment", patient.source, derivation))
    else:
        base.gap("age", "", Gap("birth_date", "missing", "birth date not recorded in patients.csv"))
    selected = _select_observations(patient, base, vocab, assumptions.days("lab_lookback_days"))
    _ratios(base, selected, vocab)
    _clearance(base, patient, selected, vocab, assumptions, age)
    _events(base, patient, vocab, str(assumptions["default_code_system"]), refs)
    _attestations(base, patient, vocab, refs)
    for key, value in assumptions.in_force().items():
        if isinstance(value, str):
            base.add("assumption", (key, value), Provenance(f"assumption {key} = {value}", origin="assumptions.toml"))
    return base


def _describe(obs: Observation, vocab: Vocabulary) -> str:
    item = vocab.items[obs.item]
    unit = f" {item.display_unit}" if item.quantitative and item.display_unit else ""
    return f"{obs.item} {obs.value}{unit} on {obs.date.isoformat()}"


def _select_observations(patient: Patient, base: FactBase, vocab: Vocabulary, lookback: int) -> dict[str, Observation]:
    """The latest result of each item dated in [enrolment − lookback, enrolment]."""
    enrolment = base.reference.enrolment
    earliest = enrolment - timedelta(days=lookback)
    by_item: dict[str, list[Observation]] = {}
    for obs in patient.observations:
        by_item.setdefault(obs.item, []).append(obs)
    selected: dict[str, Observation] = {}
    for name in vocab.items:
        results = [o for o in by_item.get(name, []) if o.date <= enrolment]
        if not results:
            later = len(by_item.get(name, []))
            detail = f"no {name} result" + (f" on or before enrolment ({later} later)" if later else "")
            base.gap("item", name, Gap(name, "missing", detail))
            continue
        latest = max(results, key=lambda o: (o.date, o.source.row))
        if latest.date < earliest:
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
        selected[name] = latest
        others = len(results) - 1
        note = f" (latest of {others + 1} results up to enrolment)" if others else ""
        relation = "obs_num" if vocab.items[name].quantitative else "obs_cat"
        base.add(
            relation,
            (patient.id, name, latest.value, day_number(latest.date)),
            Provenance(_describe(latest, vocab) + note, latest.source),
        )
    return selected


def _ratios(base: FactBase, selected: dict[str, Observation], vocab: Vocabulary) -> None:
    for name, item in vocab.items.items():
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
            base.add(
                "xuln",
                (base.patient_id, name, derivation.value),
                Provenance(f"{name} {derivation.value:.2f} ×ULN on {obs.date.isoformat()}", obs.source, derivation),
            )


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
    factor = vocab.items["creatinine"].molar_factor or Decimal("88.4")
    derivation = cockcroft_gault(age, patient.weight_kg, creatinine.value, patient.sex == "female", factor)
    base.add(
        "crcl",
        (patient.id, derivation.value),
        Provenance(f"creatinine clearance {derivation.value} mL/min (Cockcroft–Gault)", creatinine.source, derivation),
    )


def _events(base: FactBase, patient: Patient, vocab: Vocabulary, code_system: str, refs: ReferenceDates) -> None:
    enrolment_day = day_number(refs.enrolment)
    for event in patient.events:
        start = day_number(event.start)
        if event.end is not None:
            end = day_number(event.end)
        elif event.kind in POINT_EVENTS:
            end = start
        else:  # ongoing: up to the as-of date
            end = max(start, enrolment_day)
        label = _event_label(event)
        name = event.agent or event.name or event.code
        base.add("event", (patient.id, event.kind, name, start, end), Provenance(label, event.source))
        if event.agent:
            for cls in vocab.agents[event.agent].classes:
                base.add(
                    "agent_class",
                    (event.agent, cls),
                    Provenance(f"{event.agent} is {cls.replace('_', ' ')}", origin="vocabulary/agents.csv"),
                )
        elif not event.recognised:
            base.add(
                "unrecognised",
                (patient.id, event.kind, start, end),
                Provenance(f"{label}: name not in the vocabulary", event.source),
            )
            base.gap(
                "term",
                event.kind,
                Gap(
                    f"{event.kind}:{event.name}",
                    "unknown_term",
                    f"'{event.name}' ({event.source}) is not a known {event.kind} name",
                ),
            )
        if event.kind == "diagnosis" and event.code:
            system, _, code = event.code.rpartition(":")
            system = system.casefold().replace("-", "").replace(" ", "") or code_system
            cohort = vocab.cohort_of(system, code)
            if cohort:
                base.add(
                    "cohort_diagnosis",
                    (patient.id, cohort, event.code),
                    Provenance(f"diagnosis {event.code} ({system}) → cohort {cohort}", event.source),
                )


def _event_label(event: Event) -> str:
    what = event.name or event.code
    if event.agent and event.agent.casefold() != what.casefold():
        what = f"{what} ({event.agent})"
    span = event.start.isoformat()
    if event.end and event.end != event.start:
        span += f" to {event.end.isoformat()}"
    elif event.end is None and event.kind not in POINT_EVENTS:
        span += ", ongoing"
    return f"{event.kind} {what} {span}"


def _attestations(base: FactBase, patient: Patient, vocab: Vocabulary, refs: ReferenceDates) -> None:
    latest: dict[str, tuple[date, int]] = {}
    chosen = {}
    for att in patient.attestations:
        key = (att.date or date.min, att.source.row)
        if att.item.startswith("reviewed:"):
            category = att.item.split(":", 1)[1]
            assert att.date is not None
            base.add(
                "reviewed",
                (patient.id, category, day_number(att.date)),
                Provenance(f"{category} history reviewed {att.date.isoformat()}", att.source),
            )
            continue
        if att.item not in latest or key > latest[att.item]:
            latest[att.item] = key
            chosen[att.item] = att
    for item, att in chosen.items():
        by = f" by {att.by}" if att.by else ""
        when = f" on {att.date.isoformat()}" if att.date else ""
        base.add(
            "attested",
            (patient.id, item, att.value),
            Provenance(f"{item} = {att.value}, attested{by}{when}", att.source),
        )
    for item in vocab.attestation_items:
        if item.startswith("reviewed:"):
            category = item.split(":", 1)[1]
            days = [day_number(a.date) for a in patient.attestations if a.item == item and a.date]
            if not days:
                base.gap(
                    "reviewed", category, Gap(item, "history_not_reviewed", f"{category} history not declared reviewed")
                )
            elif max(days) < day_number(refs.enrolment):
                base.gap(
                    "reviewed",
                    category,
                    Gap(
                        item,
                        "history_not_reviewed",
                        f"{category} history reviewed {from_day(max(days))}, before enrolment {refs.enrolment}",
                    ),
                )
        elif item not in chosen:
            base.gap("attested", item, Gap(item, "not_attested", f"{item} not attested"))
