"""Hypothesis strategies for the property suite (tests/test_properties.py): patients made from
the demo vignettes, or from the seeded synthetic cohort built on them, and changed by edits
that are described in words, so that a falsifying example reads as "vignette P001: apheresis
2026-11-26 (enrolment +2 d); medication aldesleukin 1 mg from 2026-11-24 with no end date"
rather than as a dump of dataclasses.

Every strategy shrinks towards the simplest patient: the first vignette, no edit, offsets of
zero. Nothing here evaluates a criterion; the properties do.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

from hypothesis import strategies as st

from kb.catalogue.assumptions import AssumptionSet, load_assumptions, resolve_assumptions
from kb.catalogue.knowledge import KnowledgeBase, load_knowledge
from kb.catalogue.vocabulary import Agent
from kb.factbase.build import reference_dates
from kb.factbase.exposures import POINT_EVENTS
from kb.language.syntax import Atom, BinOp, Const, Negation, Term, Var
from kb.quality.synthetic import SyntheticCohort
from kb.records.patients import (
    DEMO_DATASET,
    PATIENT_COLUMNS,
    Dataset,
    Event,
    Observation,
    Patient,
    Source,
    load_dataset,
    load_uploaded,
)

#: hypothesis settings profile: unset → fast (make test), FUZZ=ci, FUZZ=deep (by hand)
PROFILE = os.environ.get("FUZZ", "").strip().lower() or "fast"
if PROFILE not in ("fast", "ci", "deep"):
    raise ValueError(f"FUZZ={PROFILE!r}: use ci or deep, or leave it unset (fast)")
SEED = 20261124
GENERATED = Source("generated", 0)
#: frequencies of a repeated or continuous exposure (no end date: ongoing)
REPEATED = ("", "daily", "bid", "qod", "weekly", "qw")
#: every unit the loader reads for an item, with what one unit is in the canonical unit
#: (exact factors only: L/h or kPa convert through a rounded float factor by design)
UNITS: dict[str, tuple[tuple[str, Decimal], ...]] = {
    "hemoglobin": (("g/L", Decimal(1)), ("g/l", Decimal(1)), ("g/dL", Decimal(10)), ("mg/dL", Decimal("0.01"))),
    "creatinine": (
        ("umol/L", Decimal(1)),
        ("µmol/L", Decimal(1)),
        ("mg/dL", Decimal("88.4")),
        ("mmol/L", Decimal(1000)),
    ),
    "bilirubin_total": (("umol/L", Decimal(1)), ("μmol/L", Decimal(1)), ("mg/dL", Decimal("17.1"))),
    "ast": (("U/L", Decimal(1)), ("IU/L", Decimal(1)), ("ukat/L", Decimal(60))),
    "alt": (("U/L", Decimal(1)), ("IU/L", Decimal(1)), ("ukat/L", Decimal(60))),
    "crcl_measured": (("mL/min", Decimal(1)), ("ml/min", Decimal(1))),
    "pap_echo": (("mm[Hg]", Decimal(1)), ("mmHg", Decimal(1))),
    "hbv_dna": (
        ("{copies}/mL", Decimal(1)),
        ("copies/mL", Decimal(1)),
        ("IU/mL", Decimal(str(load_assumptions()["hbv_copies_per_iu"].default))),  # the default factor
    ),
    **{
        count: (
            ("10*9/L", Decimal(1)),
            ("×10^9/L", Decimal(1)),
            ("G/L", Decimal(1)),
            ("10*3/uL", Decimal(1)),
            ("K/uL", Decimal(1)),
            ("/uL", Decimal("0.001")),
            ("cells/uL", Decimal("0.001")),
        )
        for count in ("platelets", "anc", "alc")
    },
}


@functools.cache
def knowledge() -> KnowledgeBase:
    return load_knowledge()


@functools.cache
def demo() -> Dataset:
    return load_dataset(DEMO_DATASET)


@functools.cache
def assumptions(*overrides: str) -> AssumptionSet:
    """One object per assumption set, so that the batch path's per-set caches are reused."""
    return resolve_assumptions(overrides)


@functools.cache
def synthetic() -> SyntheticCohort:
    return SyntheticCohort.from_vignettes(demo(), knowledge(), assumptions(), seed=SEED)


@functools.cache
def _template_ids() -> dict[Source | None, str]:
    return {p.source: pid for pid, p in demo().patients.items()}


@dataclass(frozen=True, repr=False)
class Case:
    """A generated patient and how it was made, in words (its repr, for falsifying examples)."""

    origin: str
    patient: Patient
    edits: tuple[str, ...] = ()

    def then(self, words: str, **changes: Any) -> Case:
        return Case(self.origin, replace(self.patient, **changes), (*self.edits, words))

    def __str__(self) -> str:
        return self.origin + (": " + "; ".join(self.edits) if self.edits else " (unchanged)")

    __repr__ = __str__

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:  # hypothesis's falsifying examples
        printer.text(str(self))

    @property
    def enrolment(self) -> date:
        assert self.patient.enrolment_date is not None  # every vignette has one, no edit drops it
        return self.patient.enrolment_date

    def latest_reference(self, assumption_set: AssumptionSet) -> date:
        refs = reference_dates(self.patient, assumption_set, None)
        return max(refs.screening, refs.enrolment, refs.apheresis)


def day(offset: int, anchor: date) -> str:
    return f"{anchor + timedelta(days=offset)} ({'enrolment' if offset == 0 else f'enrolment {offset:+d} d'})"


def event_words(e: Event) -> str:
    dose = f" {e.dose} {e.dose_unit}".rstrip() if e.dose is not None else ""
    freq = f" {e.frequency}" if e.frequency else ""
    if e.kind in POINT_EVENTS or e.end == e.start:
        return f"{e.kind} {e.name}{dose}{freq} on {e.start}" + ("" if e.end is None else f" (ends {e.end})")
    span = "with no end date" if e.end is None else f"to {e.end}"
    return f"{e.kind} {e.name}{dose}{freq} from {e.start} {span}"


def kind_of(agent: Agent) -> str:
    """The event kind an agent is recorded under."""
    if any("vaccine" in c for c in agent.classes):
        return "vaccination"
    if any("transfusion" in c for c in agent.classes):
        return "transfusion"
    if {"car_t", "gm_t_cell"} & set(agent.classes):
        return "cell_therapy"
    return "medication"


def new_event(name: str, start: date, end: date | None, dose: Decimal | None, frequency: str) -> Event:
    """An event as the loader makes it from a row naming the agent `name`."""
    agent = knowledge().vocabulary.agents[name]
    kind = kind_of(agent)
    if kind in POINT_EVENTS:
        end, dose, frequency = None, None, ""
    unit = "mg" if dose is not None else ""
    return Event(kind, agent.name, agent.name, "", start, end, GENERATED, dose, unit, frequency)


def without(items: Iterable[Any], drop: Any) -> list[Any]:
    return [x for x in items if x is not drop]


def swap(items: Iterable[Any], old: Any, new: Any) -> list[Any]:
    return [new if x is old else x for x in items]


# ---- the patients before the property's own edit -------------------------------------------


def synthetic_case(n: int) -> Case:
    patient = synthetic().patient(n)
    template = _template_ids().get(patient.source, "?")
    return Case(f"synthetic patient {n} of seed {SEED} (from vignette {template})", patient)


@st.composite
def base_cases(draw: st.DrawFn) -> Case:
    """A demo vignette, or (less simple, so shrunk away from) a seeded synthetic patient."""
    if draw(st.booleans()):
        return synthetic_case(draw(st.integers(0, 10**6)))
    pid = draw(st.sampled_from(sorted(demo().patients)))
    return Case(f"vignette {pid}", demo().patients[pid])


def agents(kinds: tuple[str, ...] = ("medication",)) -> st.SearchStrategy[str]:
    """The name of a vocabulary agent recorded under one of `kinds`."""
    return st.sampled_from([name for name, a in sorted(knowledge().vocabulary.agents.items()) if kind_of(a) in kinds])


@st.composite
def added_events(draw: st.DrawFn, case: Case, kinds: tuple[str, ...] = ("medication",)) -> Case:
    """The case with one more recognised event of a vocabulary agent, near enrolment."""
    name = draw(agents(kinds))
    start = case.enrolment + timedelta(days=draw(st.integers(-400, 30)))
    length = draw(st.none() | st.integers(0, 400))
    end = None if length is None else start + timedelta(days=length)
    steroid = knowledge().vocabulary.agents[name].prednisone_factor is not None
    dose = draw(st.none() | st.integers(1, 80).map(Decimal)) if steroid else None
    event = new_event(name, start, end, dose, draw(st.sampled_from(REPEATED)))
    return case.then(f"add {event_words(event)}", events=[*case.patient.events, event])


@st.composite
def noise(draw: st.DrawFn, case: Case) -> Case:
    """One of the changes a real record shows: a result moved or changed, a datum lost, an
    event moved or added, an apheresis date after enrolment."""
    p = case.patient
    choice = draw(st.sampled_from(("value", "date", "drop_obs", "drop_att", "move", "drop_event", "add", "apheresis")))
    quantitative = [o for o in p.observations if isinstance(o.value, Decimal)]
    if choice == "value" and quantitative:
        obs = draw(st.sampled_from(quantitative))
        assert isinstance(obs.value, Decimal)
        exponent = obs.value.as_tuple().exponent
        step = Decimal(1).scaleb(exponent) if isinstance(exponent, int) and exponent < 0 else Decimal(1)
        value = max(Decimal(0), (obs.value * draw(st.integers(50, 150)) / 100).quantize(step))
        new = replace(obs, value=value)
        return case.then(f"{obs.item} {obs.date} {obs.value} → {value}", observations=swap(p.observations, obs, new))
    if choice == "date" and p.observations:
        obs = draw(st.sampled_from(p.observations))
        moved = obs.date + timedelta(days=draw(st.integers(-60, 10)))
        new = replace(obs, date=moved)
        return case.then(f"{obs.item} result {obs.date} moved to {moved}", observations=swap(p.observations, obs, new))
    if choice == "drop_obs" and p.observations:
        obs = draw(st.sampled_from(p.observations))
        return case.then(f"drop {obs.item} result {obs.date}", observations=without(p.observations, obs))
    if choice == "drop_att" and p.attestations:
        att = draw(st.sampled_from(p.attestations))
        return case.then(
            f"drop attestation {att.item}={att.value} {att.date}", attestations=without(p.attestations, att)
        )
    if choice == "move" and p.events:
        event = draw(st.sampled_from(p.events))
        shift = timedelta(days=draw(st.integers(-400, 30)))
        later = replace(event, start=event.start + shift, end=event.end + shift if event.end else None)
        return case.then(f"{event_words(event)} moved by {shift.days} d", events=swap(p.events, event, later))
    if choice == "drop_event" and p.events:
        event = draw(st.sampled_from(p.events))
        return case.then(f"drop {event_words(event)}", events=without(p.events, event))
    if choice == "apheresis":
        offset = draw(st.integers(0, 60))
        return case.then(f"apheresis {day(offset, case.enrolment)}", apheresis_date=case.enrolment + timedelta(offset))
    return draw(added_events(case, ("medication", "vaccination", "transfusion", "cell_therapy")))


@st.composite
def cases(draw: st.DrawFn, max_edits: int = 2) -> Case:
    """A base patient with up to `max_edits` changes of `noise`."""
    case = draw(base_cases())
    for _ in range(draw(st.integers(0, max_edits))):
        case = draw(noise(case))
    return case


# ---- the loader, in memory -----------------------------------------------------------------


def loaded_observation(item: str, value: str, unit: str, when: date, uln: str, lln: str) -> Observation | str:
    """The observation the loader makes of one row (kb.records.patients.load_uploaded, nothing on disk),
    or the problem it reports."""
    rows = f"patient_id,item,value,unit,date,uln,lln,loinc,source\nX,{item},{value},{unit},{when},{uln},{lln},,\n"
    files = {
        "patients.csv": (",".join(PATIENT_COLUMNS) + "\nX" + "," * 7 + "\n").encode(),
        "observations.csv": rows.encode(),
    }
    dataset = load_uploaded(files, knowledge().vocabulary, today=date(2026, 12, 1))
    if dataset.problems:
        return "; ".join(str(p) for p in dataset.problems)
    (obs,) = dataset.patients["X"].observations
    return obs


# ---- what the rules read (for the narrow restrictions of some properties) ------------------


def _dependencies(kb: KnowledgeBase) -> dict[str, set[str]]:
    deps: dict[str, set[str]] = {}
    for rule in kb.program.rules:
        body = deps.setdefault(rule.head.predicate, set())
        for lit in rule.body:
            atom = lit.atom if isinstance(lit, Negation) else lit
            if isinstance(atom, Atom):
                body.add(atom.predicate)
    return deps


def criteria_reading(kb: KnowledgeBase, relations: set[str]) -> frozenset[str]:
    """The criteria whose deciding predicate depends, through any rule, on one of `relations`."""
    deps = _dependencies(kb)
    memo: dict[str, bool] = {}

    def reads(predicate: str) -> bool:
        if predicate not in memo:
            memo[predicate] = False  # recursion: assume not, then settle
            memo[predicate] = predicate in relations or any(reads(d) for d in deps.get(predicate, ()))
        return memo[predicate]

    return frozenset(c.id for c in kb.criteria if c.predicate and reads(c.predicate))


def _variables(term: Term) -> set[str]:
    if isinstance(term, Var):
        return {term.name}
    if isinstance(term, BinOp):
        return _variables(term.left) | _variables(term.right)
    return set()


def unread_agent_classes(kb: KnowledgeBase) -> set[str]:
    """Agent classes that no rule or rule fact names (as a constant anywhere in the program)."""
    named = {
        str(term.value)
        for rule in kb.program.rules
        for lit in (*rule.body, rule.head)
        if isinstance(lit, Atom | Negation)
        for term in (lit.atom if isinstance(lit, Negation) else lit).args
        if isinstance(term, Const)
    }
    return {c for a in kb.vocabulary.agents.values() for c in a.classes} - named
