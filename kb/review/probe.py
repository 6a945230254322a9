"""Constructed patients for the tension review, judged in batches through one engine session.

A tension is shown by patients who meet what a criterion requires (its drugs, doses,
courses and events laid out on a timeline counted back from enrolment) with one record
moved nearer to or further from enrolment. `Prober.search` finds, for many such families
at once, the last offset at which each criterion still fails: each round asks every
family's next offsets in a single session, so a search costs a few sessions, not one per
patient.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Mapping
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal
from typing import TypeVar

from kb.catalogue.assumptions import AssumptionSet
from kb.catalogue.criteria import Criterion
from kb.catalogue.knowledge import KnowledgeBase
from kb.records.patients import Event, Patient, Source
from kb.review.findings import REVIEW_DAY, status_from_truths, synthetic_patient
from kb.review.sessions import truths_many
from kb.review.windows import EVER
from kb.status import Status

__all__ = ["WEIGHT", "Prober", "Record"]

K = TypeVar("K", bound=Hashable)
#: The weight of every constructed patient (synthetic_patient's): a dose per kg is per 60 kg.
WEIGHT = Decimal(60)
_LABS = {"anc": Decimal("2.0"), "hemoglobin": Decimal(120), "platelets": Decimal(150), "alc": Decimal("1.0")}
_SOURCE = "review (constructed patient)"
#: Offsets tried per open interval and round of a search.
_SPLIT = 16


@dataclass(frozen=True)
class Record:
    """One record of a constructed patient, its days counted back from enrolment."""

    kind: str
    name: str
    start: int
    end: int | None  # None: ongoing
    dose: Decimal | None = None  # mg/day (glucocorticoids)

    def words(self) -> str:
        what = self.name.replace("_", " ")
        if self.dose is not None:
            what += f" {self.dose.normalize():f} mg/day"
        if self.end is None:
            return f"{what} from {self.start} days before enrolment, ongoing"
        if self.end == self.start:
            return f"{what} {self.start} days before enrolment"
        return f"{what} from {self.start} to {self.end} days before enrolment"


class Prober:
    """Builds constructed patients and asks the engine about many of them at once."""

    def __init__(self, kb: KnowledgeBase, assumptions: AssumptionSet) -> None:
        self.kb = kb
        self.assumptions = assumptions
        self._count = 0

    def patient(self, records: list[Record], attested: Mapping[str, str]) -> Patient:
        self._count += 1
        patient = synthetic_patient(f"T{self._count}", self.kb, dict(_LABS), attested=dict(attested))
        patient.events = [
            Event(
                r.kind,
                r.name,
                r.name,
                "",
                REVIEW_DAY - timedelta(days=r.start),
                None if r.end is None else REVIEW_DAY - timedelta(days=r.end),
                Source(_SOURCE, n + 1),
                *((r.dose, "mg", "daily") if r.dose is not None else ()),
            )
            for n, r in enumerate(records)
        ]
        return patient

    def statuses(self, asked: list[tuple[Patient, list[Criterion]]]) -> dict[str, dict[str, Status]]:
        """Each patient's status for each of its criteria, as `criterion_status` gives it
        alone: the patients are evaluated together (`truths_many`, one session when the rules
        are patient-local)."""
        asks = [(patient, sorted({c.predicate for c in criteria if c.predicate})) for patient, criteria in asked]
        out: dict[str, dict[str, Status]] = {}
        for (patient, criteria), found in zip(asked, truths_many(self.kb, self.assumptions, asks), strict=True):
            row = out.setdefault(patient.id, {})
            for crit in criteria:
                row[crit.id] = status_from_truths(crit, found.get(crit.predicate or "", frozenset()))
        return out

    def search(
        self,
        makers: Mapping[K, Callable[[int], Patient]],
        criteria: Mapping[K, list[Criterion]],
        hints: Mapping[K, Mapping[str, tuple[int, ...]]] | None = None,
        hold: Mapping[K, Criterion] | None = None,
    ) -> dict[K, dict[str, int]]:
        """For each family (a patient for an offset in days before enrolment), the criteria
        it fails at offset 0 and the last offset at which each still fails (EVER: it fails
        at EVER too, at any time). `hints`: per family, offsets likely to be a criterion's last, tried
        (with the next day) in the first session; `hold`: a criterion the family's patient
        at offset 0 must pass, else the family is left out. Windows are taken to be
        contiguous, as in `probe_windows`."""
        hints, hold = hints or {}, hold or {}
        wanted = {(k, 0): {c.id for c in criteria[k]} | ({hold[k].id} if k in hold else set()) for k in makers}
        by_id = {c.id: c for cs in criteria.values() for c in cs} | {c.id: c for c in hold.values()}
        seen: dict[tuple[K, str], dict[int, Status]] = {}
        self._ask(makers, wanted, by_id, seen)
        found: dict[K, dict[str, int]] = {}
        open_: dict[tuple[K, str], tuple[int, int]] = {}
        for k in makers:
            if k in hold and seen[(k, hold[k].id)][0] != Status.PASS:
                continue
            found[k] = {}
            for crit in criteria[k]:
                if seen[(k, crit.id)][0] == Status.FAIL:
                    open_[(k, crit.id)] = (0, EVER + 1)  # EVER itself not tried yet
        hinted: set[tuple[K, str]] = set()
        while open_:
            wanted = {}
            for (k, cid), (low, high) in list(open_.items()):
                tried = seen[(k, cid)]
                low = max([p for p, s in tried.items() if s == Status.FAIL and p < high], default=low)
                high = min([p for p, s in tried.items() if s == Status.PASS and p > low], default=high)
                open_[(k, cid)] = (low, high)
                guesses = {p for h in hints.get(k, {}).get(cid, ()) for p in (h, h + 1) if low < p < min(high, EVER)}
                if high - low <= 1 or low == EVER:
                    points: set[int] = set()
                elif (k, cid) not in hinted and guesses:  # first what agents alike showed
                    points = guesses
                elif high > EVER:  # then: at any time? then doublings, then even splits
                    points = {EVER}
                elif high == EVER:
                    points = {low + 2**i for i in range(12) if low + 2**i < EVER}
                else:
                    step = max(1, (high - low) // _SPLIT)
                    points = set(range(low + step, high, step))
                hinted.add((k, cid))
                points -= set(tried)
                if not points:  # settled, or only unknowns left between: the last failure
                    found[k][cid] = min(low, EVER)
                    del open_[(k, cid)]
                for p in points:
                    wanted.setdefault((k, p), set()).add(cid)
            self._ask(makers, wanted, by_id, seen)
        return found

    def _ask(
        self,
        makers: Mapping[K, Callable[[int], Patient]],
        wanted: dict[tuple[K, int], set[str]],
        by_id: dict[str, Criterion],
        seen: dict[tuple[K, str], dict[int, Status]],
    ) -> None:
        patients = {key: makers[key[0]](key[1]) for key in wanted}
        answers = self.statuses([(patients[key], [by_id[c] for c in sorted(ids)]) for key, ids in wanted.items()])
        for (k, offset), ids in wanted.items():
            for cid in ids:
                seen.setdefault((k, cid), {})[offset] = answers[patients[(k, offset)].id][cid]
