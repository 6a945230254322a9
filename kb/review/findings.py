"""Findings of a protocol review, and the witnesses that prove them.

A reviewer should not have to take a finding on trust. Each carries a witness: constructed
patients with the statuses the engine must give them (checked by `check_witness`, the same
evaluation any patient gets), an interval computation, an unsatisfiable core (re-solved by
the check), or a vocabulary lookup.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

import z3

from kb.catalogue.assumptions import AssumptionSet
from kb.catalogue.criteria import Criterion
from kb.catalogue.knowledge import KnowledgeBase
from kb.language.engine import EngineError, FactValue
from kb.reasoning.evaluation import status_from_truth
from kb.records.patients import Attestation, Event, Observation, Patient, Source
from kb.review.sessions import Truths, truths_many
from kb.status import Status

__all__ = [
    "KINDS",
    "REVIEW_DAY",
    "Case",
    "Finding",
    "Witness",
    "check_witness",
    "check_witnesses",
    "core_is_unsat",
    "status_from_truths",
    "synthetic_patient",
]

#: The kinds of finding, in the order a reviewer reads them. "dead rule" covers both forms (an
#: exclusion the inclusions make impossible, an inclusion the others always imply); "duplicate"
#: is one condition decided in two places; "citation" a criterion at odds with the
#: classification criteria it cites; "qualifier" a word of the record text no rule encodes.
KINDS = (
    "contradiction",
    "dead rule",
    "duplicate",
    "redundancy",
    "tension",
    "citation",
    "boundary/window",
    "qualifier",
    "vocabulary",
)
#: The enrolment date of every constructed patient (any fixed day does: only offsets matter).
REVIEW_DAY = date(2026, 6, 1)
_SOURCE = Source("review (constructed patient)", 0)


@dataclass(frozen=True)
class Case:
    """A constructed patient and the status each named criterion must have for it."""

    patient: Patient
    expected: dict[str, Status]
    note: str = ""
    #: assumption values (id, value) the statuses hold under, over the review's own: a finding
    #: about the readings of a clause shows each reading on its own patients
    assume: tuple[tuple[str, str], ...] = ()

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"patient": self.note, "expected": dict(self.expected)}
        if self.assume:
            out["assume"] = dict(self.assume)
        return out


@dataclass(frozen=True)
class Witness:
    kind: str  # patient | interval | unsat_core | lookup
    summary: str
    cases: tuple[Case, ...] = ()
    core: tuple[str, ...] = ()  # for unsat_core: the constraints, as z3 text
    detail: dict[str, str] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"kind": self.kind, "summary": self.summary}
        if self.cases:
            out["cases"] = [c.as_dict() for c in self.cases]
        if self.core:
            out["core"] = list(self.core)
        if self.detail:
            out["detail"] = dict(self.detail)
        return out


@dataclass(frozen=True)
class Finding:
    kind: str
    criteria: tuple[str, ...]
    explanation: str
    witness: Witness
    rules: tuple[str, ...] = ()  # file:line of the rules involved

    def as_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "criteria": list(self.criteria),
            "explanation": self.explanation,
            "witness": self.witness.as_dict(),
            "rules": list(self.rules),
        }


def synthetic_patient(
    patient_id: str,
    kb: KnowledgeBase,
    values: dict[str, Decimal | str] | None = None,
    events: list[tuple[str, str, int, int | None]] | None = None,
    apheresis_offset: int | None = None,
    attested: dict[str, str] | None = None,
    uln: dict[str, Decimal] | None = None,
    birth_date: date = date(1980, 1, 1),
    weight_kg: Decimal = Decimal(60),
    sex: str = "female",
    sample_offset: int = 0,
) -> Patient:
    """A patient enrolled on REVIEW_DAY with every history reviewed that day. `events` are
    (kind, agent, start offset, end offset) in days before enrolment (end None: ongoing; a
    glucocorticoid gets 60 mg/day so that its dose counts); results are dated `sample_offset`
    days before enrolment; apheresis is `apheresis_offset` days after it (None: the default)."""
    sample = REVIEW_DAY - timedelta(days=sample_offset)
    observations = [
        Observation(item, value, sample, (uln or {}).get(item), None, str(value), _SOURCE)
        for item, value in (values or {}).items()
    ]
    event_rows = [
        Event(
            kind,
            agent,
            agent,
            "",
            REVIEW_DAY - timedelta(days=start),
            None if end is None else REVIEW_DAY - timedelta(days=end),
            Source("review (constructed patient)", n + 1),
            *((Decimal(60), "mg", "daily") if "glucocorticoid" in _classes(kb, agent) else ()),
        )
        for n, (kind, agent, start, end) in enumerate(events or [])
    ]
    reviews = [Attestation(f"reviewed:{c}", "yes", REVIEW_DAY, "review", _SOURCE) for c in kb.vocabulary.categories]
    notes = [Attestation(item, value, REVIEW_DAY, "review", _SOURCE) for item, value in (attested or {}).items()]
    return Patient(
        patient_id,
        sex=sex,
        birth_date=birth_date,
        weight_kg=weight_kg,
        enrolment_date=REVIEW_DAY,
        apheresis_date=None if apheresis_offset is None else REVIEW_DAY + timedelta(days=apheresis_offset),
        observations=observations,
        events=event_rows,
        attestations=reviews + notes,
    )


def _classes(kb: KnowledgeBase, agent: str) -> tuple[str, ...]:
    found = kb.vocabulary.agents.get(agent)
    return found.classes if found else ()


def _under(assumptions: AssumptionSet, assume: tuple[tuple[str, str], ...]) -> AssumptionSet:
    """The review's assumptions with a case's own values over them."""
    if not assume:
        return assumptions
    values = dict(assumptions.values)
    values.update({key: assumptions.registry[key].parse(value) for key, value in assume})
    return AssumptionSet(assumptions.registry, values)


def check_witness(witness: Witness, kb: KnowledgeBase, assumptions: AssumptionSet) -> list[str]:
    """What in the witness does not hold (empty: it proves the finding)."""
    return check_witnesses([witness], kb, assumptions)[0]


def check_witnesses(witnesses: Sequence[Witness], kb: KnowledgeBase, assumptions: AssumptionSet) -> list[list[str]]:
    """`check_witness` of each, with every constructed patient of them all evaluated in one
    batch (`truths_many`): each patient's statuses are those `criterion_status` gives it alone."""
    cases = [case for witness in witnesses for case in witness.cases]
    readings: dict[tuple[tuple[str, str], ...], list[int]] = {}  # one batch per assumption set
    for n, case in enumerate(cases):
        readings.setdefault(case.assume, []).append(n)
    found_by_case: dict[int, Truths] = {}
    for assume, numbers in readings.items():
        asks = [
            (
                cases[n].patient,
                sorted({c.predicate for cid in cases[n].expected if (c := kb.criterion(cid)) and c.predicate}),
            )
            for n in numbers
        ]
        found_by_case.update(zip(numbers, truths_many(kb, _under(assumptions, assume), asks), strict=True))
    truths = iter(found_by_case[n] for n in range(len(cases)))
    out = []
    for witness in witnesses:
        problems = []
        for case in witness.cases:
            found = next(truths)
            for criterion_id, expected in case.expected.items():
                criterion = kb.criterion(criterion_id)
                if criterion is None:
                    problems.append(f"{case.note}: no criterion {criterion_id}")
                    continue
                actual = status_from_truths(criterion, found.get(criterion.predicate or "", frozenset()))
                if actual != expected:
                    problems.append(f"{case.note}: {criterion_id} is {actual}, not {expected}")
        if witness.kind == "unsat_core" and not core_is_unsat(witness.core):
            problems.append("the core is satisfiable")
        out.append(problems)
    return out


def core_is_unsat(core: tuple[str, ...]) -> bool:
    """Re-solve an unsatisfiable core stored as SMT-LIB text (the check of an `unsat_core` witness)."""
    solver = z3.Solver()
    solver.from_string("\n".join(core))
    return bool(solver.check() == z3.unsat)


def status_from_truths(criterion: Criterion, truths: frozenset[FactValue]) -> Status:
    """The status `criterion_status` gives from the truths the criterion's predicate derived."""
    if criterion.predicate is None:
        return Status.MANUAL
    if len(truths) > 1:
        raise EngineError(
            f"{criterion.id}: the rules derive {sorted(truths, key=str)} for {criterion.predicate}; "
            "a criterion's rules must be mutually exclusive"
        )
    if not truths:
        return Status.UNKNOWN
    return status_from_truth(criterion, str(next(iter(truths))))
