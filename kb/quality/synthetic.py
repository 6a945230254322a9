"""Seeded synthetic patients over every cohort, for the screening benchmark and the
identity tests of the set-at-a-time path.

Each one is a vignette (the demo data set covers all six cohorts and every kind of
criterion) with its dates moved together by up to a year, its results moved about and, one
time in four, set exactly on a bound a rule compares them with (the values where an
off-by-one or a rounding error shows). About 35% keep the whole record of a vignette whose
data decide every criterion ("complete"); the others lose what real exports lose: some
results, attestations, history reviews, the weight or the sex, or get a result too old.
Patient `n` depends only on (seed, n), so any slice can be regenerated alone.
"""

from __future__ import annotations

import random
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field, replace
from datetime import date, timedelta
from decimal import Decimal
from typing import overload

from kb.catalogue.assumptions import AssumptionSet
from kb.catalogue.knowledge import KnowledgeBase
from kb.language.syntax import Atom, Comparison, Const, Var
from kb.records.patients import Dataset, Observation, Patient
from kb.screening.batch import evaluate_many

__all__ = ["COMPLETE_SHARE", "SyntheticCohort", "boundary_values"]

COMPLETE_SHARE = 0.35


def boundary_values(kb: KnowledgeBase) -> dict[str, list[tuple[Decimal, bool]]]:
    """For each item, the constants the rules compare its result with (`True`: a bound on
    the result × ULN, to be multiplied by the result's ULN)."""
    found: dict[str, set[tuple[Decimal, bool]]] = {}
    for rule in kb.program.rules:
        names: dict[str, tuple[str, bool]] = {}
        for lit in rule.body:
            if isinstance(lit, Atom) and lit.predicate in ("obs_num", "xuln") and isinstance(lit.args[1], Const):
                value = lit.args[2]
                if isinstance(value, Var):
                    names[value.name] = (str(lit.args[1].value), lit.predicate == "xuln")
        for lit in rule.body:
            if isinstance(lit, Comparison):
                for var, const in ((lit.left, lit.right), (lit.right, lit.left)):
                    if isinstance(var, Var) and var.name in names and isinstance(const, Const) and const.is_number:
                        item, ratio = names[var.name]
                        assert isinstance(const.value, Decimal)
                        found.setdefault(item, set()).add((const.value, ratio))
    return {item: sorted(values) for item, values in sorted(found.items())}


@dataclass
class SyntheticCohort:
    """Makes patient `n` of a seeded synthetic cohort from the vignettes of `templates`."""

    templates: Dataset
    complete_ids: tuple[str, ...]  # vignettes whose data decide every criterion they need
    bounds: dict[str, list[tuple[Decimal, bool]]]
    seed: int = 0
    #: each item's plausible range (items.csv min and max): a moved result stays inside it, so
    #: no generated patient has an SpO2 of 121 % that the loader would reject
    ranges: dict[str, tuple[Decimal | None, Decimal | None]] = field(default_factory=dict)

    @classmethod
    def from_vignettes(
        cls, templates: Dataset, kb: KnowledgeBase, assumptions: AssumptionSet, seed: int = 0
    ) -> SyntheticCohort:
        results = evaluate_many(list(templates.patients.values()), kb, assumptions, workers=1)
        complete = tuple(r.patient_id for r in results if not any(c.unknown for c in r.cohorts) and r.cohorts)
        ranges = {name: (item.minimum, item.maximum) for name, item in kb.vocabulary.items.items()}
        return cls(templates, complete, boundary_values(kb), seed, ranges)

    def patients(self, count: int, start: int = 0) -> Iterator[Patient]:
        for n in range(start, start + count):
            yield self.patient(n)

    def sequence(self, count: int) -> Sequence[Patient]:
        """The first `count` patients as a sequence made on demand: 100,000 of them are
        never in memory at once (a screening worker makes the slice it screens)."""
        return _Lazy(self, count)

    def complete(self, n: int) -> bool:
        """Whether patient `n` keeps a complete record (no result, attestation or event lost)."""
        return random.Random(self.seed * 1_000_003 + n).random() < COMPLETE_SHARE

    def patient(self, n: int) -> Patient:
        rng = random.Random(self.seed * 1_000_003 + n)
        complete = rng.random() < COMPLETE_SHARE
        ids = self.complete_ids if complete else tuple(self.templates.patients)
        template = self.templates.patients[rng.choice(ids)]
        shift = timedelta(days=rng.randint(-365, 365))
        observations = []
        for obs in template.observations:
            if not complete and rng.random() < 0.12:
                continue  # a result not in the export
            obs = replace(obs, date=obs.date + shift)
            if isinstance(obs.value, Decimal):
                obs = self._move(obs, rng)
            if not complete and rng.random() < 0.03:
                obs = replace(obs, date=obs.date - timedelta(days=rng.randint(60, 400)))  # too old
            observations.append(obs)
        events = [
            replace(e, start=e.start + shift, end=e.end + shift if e.end else None)
            for e in template.events
            if complete or rng.random() > 0.04
        ]
        attestations = [
            replace(a, date=a.date + shift if a.date else None)
            for a in template.attestations
            if complete or rng.random() > 0.08
        ]
        gaps = not complete
        return Patient(
            id=f"S{n:07d}",
            sex=None if gaps and rng.random() < 0.02 else template.sex,
            birth_date=_moved(template.birth_date, shift),
            weight_kg=None if gaps and rng.random() < 0.05 else template.weight_kg,
            height_cm=template.height_cm,
            screening_date=_moved(template.screening_date, shift),
            enrolment_date=_moved(template.enrolment_date, shift),
            apheresis_date=_moved(template.apheresis_date, shift),
            source=template.source,
            observations=observations,
            events=events,
            attestations=attestations,
        )

    def _move(self, obs: Observation, rng: random.Random) -> Observation:
        moved = self._moved_value(obs, rng)
        low, high = self.ranges.get(obs.item, (None, None))
        assert isinstance(moved.value, Decimal)
        if low is not None and moved.value < low:
            return replace(moved, value=low)
        if high is not None and moved.value > high:
            return replace(moved, value=high)
        return moved

    def _moved_value(self, obs: Observation, rng: random.Random) -> Observation:
        assert isinstance(obs.value, Decimal)
        draw = rng.random()
        bounds = self.bounds.get(obs.item)
        if bounds and draw < 0.25:
            bound, ratio = rng.choice(bounds)
            if ratio:
                if obs.uln is None:
                    return obs
                value = bound * obs.uln
            else:
                value = bound
            step = _resolution(obs.value)
            value += rng.choice((-step, Decimal(0), Decimal(0), step))
            return replace(obs, value=max(value, Decimal(0)))
        if draw < 0.6:
            factor = Decimal(rng.randint(70, 130)) / 100
            return replace(obs, value=(obs.value * factor).quantize(_resolution(obs.value)))
        return obs


class _Lazy(Sequence[Patient]):
    def __init__(self, cohort: SyntheticCohort, count: int) -> None:
        self.cohort, self.size = cohort, count

    def __len__(self) -> int:
        return self.size

    @overload
    def __getitem__(self, index: int) -> Patient: ...

    @overload
    def __getitem__(self, index: slice) -> Sequence[Patient]: ...

    def __getitem__(self, index: int | slice) -> Patient | Sequence[Patient]:
        if isinstance(index, slice):
            return [self.cohort.patient(n) for n in range(*index.indices(self.size))]
        if not -self.size <= index < self.size:
            raise IndexError(index)
        return self.cohort.patient(index % self.size)


def _moved(when: date | None, shift: timedelta) -> date | None:
    return when + shift if when else None


def _resolution(value: Decimal) -> Decimal:
    """The last written digit of a result (0.1 for 11.2): the step a bound is crossed by."""
    exponent = value.as_tuple().exponent
    return Decimal(1).scaleb(exponent) if isinstance(exponent, int) and exponent < 0 else Decimal(1)
