"""Repairs: the smallest sets of changes that make a patient eligible, and from when.

"What would make him eligible?" is answered per cohort. Every criterion that blocks or is
still open there must be mended, and each offers its fixes, cheapest kind first:

1. *collect* the missing or stale datum, in the range the rule needs (`requirements`);
2. *wait*: the earliest enrolment day from which the criterion passes (a window closes, the
   18th birthday), found by asking the engine about that one criterion at later dates;
3. *stop* an ongoing drug of the failing proof, then its washout;
4. *change* a value treatment can move ("platelets ≥ 50 ×10^9/L, now 42"); for the
   clearance, also the creatinine that gives it (z3, `kb.factbase.clearance`).

One fix per open criterion makes a candidate; all waits merge into one enrolment date, and
moving enrolment brings what it implies (histories re-confirmed up to the new dates, results
that would be stale by then repeated). A candidate counts only once the engine, evaluating
the patient with it applied (the same what-if path `kb whatif` takes), says eligible; it is
then pruned to a minimal set (dropping any one change breaks it). Facts nothing can change
(age over 65, a lifetime history, the disease itself) are never offered: the answer names
them as what rules the patient out.

Each kind of fix has its finder in `kb.reasoning.fixes`; this module combines them. A candidate is
applied as `kb.reasoning.whatif` `Change` objects; their text (`change_text`) is only what the answer
shows the user to check a repair with `kb whatif`.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import date
from typing import Any

from kb.catalogue.assumptions import AssumptionSet, resolve_assumptions
from kb.catalogue.knowledge import KnowledgeBase
from kb.reasoning.evaluation import Assessment, CriterionResult, assess
from kb.reasoning.fixes import Baseline, Fix, GapFixes, RangeFixes, RepairChange, StopFixes, WaitFixes
from kb.reasoning.requirements import requirements
from kb.reasoning.until import Lapse, eligible_until
from kb.reasoning.whatif import Change, change_text, moved_enrolment, setting
from kb.records.patients import Patient
from kb.status import Status, Truth, Verdict

__all__ = ["COST", "Obstacle", "Repair", "RepairAnswer", "RepairChange", "find_repairs"]

#: The order of cost of the kinds of change.
COST = {"collect": 1, "wait": 2, "stop": 3, "change": 4}
_MAX_CANDIDATES = 48
_OPTIONS_PER_CRITERION = 4


@dataclass(frozen=True)
class Repair:
    changes: tuple[RepairChange, ...]
    applied: tuple[Change, ...]  # the what-if changes that apply it
    verdict: Verdict
    eligible_via: tuple[str, ...]
    flips: tuple[tuple[str, Status, Status], ...]  # criterion, status before, status after
    enrolment: date  # the earliest enrolment date with this repair
    until: Lapse | None = None

    @property
    def whatif(self) -> tuple[str, ...]:
        """The changes as `kb whatif` takes them: the "check it" line and the JSON."""
        return tuple(change_text(c) for c in self.applied)

    @property
    def primary(self) -> tuple[RepairChange, ...]:
        return tuple(c for c in self.changes if not c.implied)

    @property
    def cost(self) -> str:
        return max((c.kind for c in self.primary), key=COST.__getitem__, default="collect")

    def rank(self) -> tuple[int, int, date]:
        return (COST[self.cost], len(self.primary), self.enrolment)

    def as_dict(self) -> dict[str, Any]:
        return {
            "cost": self.cost,
            "changes": [c.as_dict() for c in self.changes],
            "whatif": list(self.whatif),
            "earliest_enrolment": self.enrolment.isoformat(),
            "verdict_after": self.verdict,
            "eligible_via": list(self.eligible_via),
            "flips": [{"criterion": c, "before": b, "after": a} for c, b, a in self.flips],
            "eligible_until": self.until.as_dict() if self.until else None,
        }


@dataclass(frozen=True)
class Obstacle:
    """A criterion no change on offer mends: what rules the patient out of a cohort."""

    criterion: str
    cohort: str
    reason: str

    def as_dict(self) -> dict[str, str]:
        return {"criterion": self.criterion, "cohort": self.cohort, "reason": self.reason}


@dataclass(frozen=True)
class RepairAnswer:
    patient_id: str
    verdict: Verdict
    repairs: tuple[Repair, ...]
    obstacles: tuple[Obstacle, ...]
    until: Lapse | None = None  # for a patient eligible already
    notes: tuple[str, ...] = ()

    def as_dict(self) -> dict[str, Any]:
        return {
            "patient": self.patient_id,
            "verdict": self.verdict,
            "repairs": [r.as_dict() for r in self.repairs],
            "ruled_out_by": [o.as_dict() for o in self.obstacles],
            "eligible_until": self.until.as_dict() if self.until else None,
            "notes": list(self.notes),
        }


@dataclass
class _Candidate:
    changes: list[RepairChange]
    applied: list[Change]
    enrolment: date


def find_repairs(
    patient: Patient,
    kb: KnowledgeBase,
    assumptions: AssumptionSet | None = None,
    as_of: date | None = None,
    max_repairs: int = 5,
    today: date | None = None,
) -> RepairAnswer:
    """The minimal confirmed repairs, cheapest first (at most `max_repairs`)."""
    baseline = Baseline.of(patient, kb, assumptions or resolve_assumptions(), as_of, today)
    return _Search(baseline).run(max_repairs)


class _Search:
    """One fix per open criterion, combined cheapest first, each candidate confirmed by the
    engine and pruned to a minimal set."""

    def __init__(self, baseline: Baseline) -> None:
        self.baseline = baseline
        self.ranges, self.gaps, self.waits = RangeFixes(baseline), GapFixes(baseline), WaitFixes(baseline)
        self.stops = StopFixes(baseline, self.waits)
        self._fixes: dict[str, list[Fix]] = {}
        self._confirmed: dict[tuple[Change, ...], Assessment] = {}

    # ---- the search ----------------------------------------------------------------------
    def run(self, max_repairs: int) -> RepairAnswer:
        baseline, before = self.baseline, self.baseline.before
        if before.verdict == Verdict.ELIGIBLE:
            until = eligible_until(baseline.patient, baseline.kb, baseline.assumptions, baseline.as_of)
            return RepairAnswer(baseline.patient.id, before.verdict, (), (), until)
        found: list[Repair] = []
        obstacles: list[Obstacle] = []
        notes: list[str] = []
        for cohort, obligations, note in self._obligations():
            if note:
                notes.append(note)
                continue
            options: list[list[Fix]] = []
            for members in obligations:
                fixes = [f for m in members for f in self._fixes_for(m)]
                if not fixes:
                    obstacles += [Obstacle(m.id, cohort, _why_not(m)) for m in members]
                options.append(sorted(fixes, key=_fix_rank)[:_OPTIONS_PER_CRITERION])
            if any(not o for o in options):
                continue
            found += self._search(options, max_repairs - len(found), found)
            if len(found) >= max_repairs:
                break
        found.sort(key=Repair.rank)
        if found:
            best = found[0]
            hypo = baseline.patient_with(best.applied)
            found[0] = replace(best, until=eligible_until(hypo, baseline.kb, baseline.assumptions, best.enrolment))
        elif not obstacles and not notes:
            notes.append("no combination of the changes on offer was confirmed by the engine")
        return RepairAnswer(baseline.patient.id, before.verdict, tuple(found), tuple(obstacles), None, tuple(notes))

    def _obligations(self) -> list[tuple[str, list[list[CriterionResult]], str]]:
        """Per cohort: the open criteria, an OR-group as one obligation; and a note when the
        cohort cannot be repaired by data (an entry criterion lost from the record)."""
        before = self.baseline.before
        results = {r.id: r for r in before.criteria}
        out = []
        cohorts = before.cohorts
        if not cohorts:
            ids = [r.id for r in before.blocking + before.unknown]
            out.append(("none", [[results[i]] for i in ids], ""))
        for verdict in cohorts:
            if verdict.note:
                out.append((verdict.cohort, [], f"{verdict.cohort}: {verdict.note}"))
                continue
            groups: dict[str, list[CriterionResult]] = {}
            obligations: list[list[CriterionResult]] = []
            for cid in (*verdict.blocking, *verdict.unknown):
                result = results[cid]
                if result.criterion.group:
                    groups.setdefault(result.criterion.group, []).append(result)
                else:
                    obligations.append([result])
            obligations += groups.values()
            out.append((verdict.cohort, obligations, ""))
        return out

    def _search(self, options: list[list[Fix]], wanted: int, found: list[Repair]) -> list[Repair]:
        out: list[Repair] = []
        for combo in _cheapest_first(options, _MAX_CANDIDATES):
            if len(out) >= wanted:
                break
            changes = _merge_changes([c for fix in combo for c in fix])
            primary = frozenset((c.kind, c.item, c.target) for c in changes)
            if any(_primary_set(r) <= primary for r in [*found, *out]):
                continue  # a smaller confirmed repair is inside it
            if not self._eligible(self._candidate(changes)):
                continue
            repair = self._repair(self._minimal(changes))
            if all(_primary_set(r) != _primary_set(repair) for r in [*found, *out]):
                out.append(repair)
        return out

    def _minimal(self, changes: list[RepairChange]) -> list[RepairChange]:
        """Drop any change the rest can do without, until none can be dropped."""
        for n in range(len(changes)):
            rest = changes[:n] + changes[n + 1 :]
            if rest and self._eligible(self._candidate(rest)):
                return self._minimal(rest)
        return changes

    def _repair(self, changes: list[RepairChange]) -> Repair:
        candidate = self._candidate(changes)
        after = self._evaluate(candidate)
        old = {r.id: r.status for r in self.baseline.before.criteria}
        flips = tuple((r.id, old[r.id], r.status) for r in after.criteria if r.status != old[r.id])
        return Repair(
            tuple(candidate.changes),
            tuple(candidate.applied),
            after.verdict,
            tuple(after.eligible_via),
            flips,
            candidate.enrolment,
        )

    # ---- candidates and their confirmation -------------------------------------------------
    def _candidate(self, changes: list[RepairChange]) -> _Candidate:
        """The what-if changes that apply `changes`, with what moving enrolment implies."""
        baseline, vocab, start = self.baseline, self.baseline.vocab, self.baseline.start
        enrolment = max([start, *(c.earliest_date for c in changes if c.earliest_date)])
        apheresis = baseline.reference.apheresis + (enrolment - start)
        reviewed_on = max(enrolment, apheresis)  # a review covers the days before it
        applied = [c.stop for c in changes if c.stop]
        implied: list[RepairChange] = []
        if enrolment > start:
            moved = moved_enrolment(baseline.patient, baseline.reference, enrolment, vocab)
            applied += moved
            reviews = [c.target.removeprefix("reviewed:") for c in moved if c.target.startswith("reviewed:")]
            if reviews:
                confirmed = f"re-confirmed up to {reviewed_on.isoformat()}"
                histories = ", ".join(reviews)
                implied.append(RepairChange("collect", "reviewed histories", histories, confirmed, implied=True))
        witnesses: dict[str, str] = {}
        for change in sorted(changes, key=_precedence):  # a value with a range wins over a repeat
            for item, value in change.witness:
                witnesses.setdefault(item, value)
        if enrolment > start:
            for item, value, when in baseline.stale_by(enrolment):
                if item not in witnesses:
                    witnesses[item] = value
                    implied.append(
                        RepairChange(
                            "collect",
                            item,
                            f"{value} on {when.isoformat()}",
                            f"repeated by {enrolment.isoformat()} (stale by then)",
                            implied=True,
                        )
                    )
        for item, value in witnesses.items():
            applied.append(setting(item, value, vocab, reviewed_on if item.startswith("reviewed:") else enrolment))
        return _Candidate([*changes, *implied], applied, enrolment)

    def _evaluate(self, candidate: _Candidate) -> Assessment:
        key = tuple(candidate.applied)
        if key not in self._confirmed:
            baseline = self.baseline
            when = candidate.enrolment if candidate.enrolment != baseline.start else baseline.as_of
            patient = baseline.patient_with(candidate.applied)
            self._confirmed[key] = assess(patient, baseline.kb, baseline.assumptions, when, explain="status")
        return self._confirmed[key]

    def _eligible(self, candidate: _Candidate) -> bool:
        return self._evaluate(candidate).verdict == Verdict.ELIGIBLE

    # ---- the fixes of one criterion ----------------------------------------------------------
    def _fixes_for(self, result: CriterionResult) -> list[Fix]:
        """Every fix of `result`: what the rule's alternatives ask; for a failure, which adding
        data never retracts, only those that wait, stop or change a value, then the waits and
        the stops; for an open criterion no alternative mends, the data it waits for."""
        if result.id not in self._fixes:
            crit = result.criterion
            fixes: list[Fix] = []
            if crit.predicate is not None:
                truth = Truth.YES if crit.kind in ("inclusion", "definition") else Truth.NO
                for alternative in requirements(self.baseline.kb.program, crit.predicate, truth):
                    fixes += self.ranges.fixes(alternative, result.id)
                if result.status == Status.FAIL:
                    fixes = [f for f in fixes if any(c.kind != "collect" for c in f)]
                    fixes += self.waits.fixes(result) + self.stops.fixes(result)
                elif not fixes:
                    fixes += self.gaps.fixes(result)
            unique = {tuple((c.kind, c.item, c.target) for c in f): f for f in fixes}
            self._fixes[result.id] = list(unique.values())
        return self._fixes[result.id]


def _why_not(result: CriterionResult) -> str:
    crit = result.criterion
    if result.status == Status.UNKNOWN:
        gaps = ", ".join(g.item for g in result.missing) or "no rule decides it"
        return f"open ({gaps}): no datum whose collection can be simulated settles it; verify by hand"
    if crit.cohort != "general":
        return f"the disease itself, not modifiable: {result.message}"
    return f"not modifiable by collecting data, waiting, stopping a drug or a value change: {result.message}"


def _cheapest_first(options: list[list[Fix]], limit: int) -> Iterator[tuple[Fix, ...]]:
    """One fix per obligation, cheapest combinations first, without listing them all (thirty
    open criteria with four fixes each would be 4^30): a best-first walk over index vectors."""

    def key(index: tuple[int, ...]) -> tuple[int, int]:
        return _fix_rank(tuple(c for n, i in enumerate(index) for c in options[n][i]))

    start = tuple(0 for _ in options)
    heap = [(key(start), start)]
    seen = {start}
    while heap and limit > 0:
        _, index = heapq.heappop(heap)
        limit -= 1
        yield tuple(options[n][i] for n, i in enumerate(index))
        for n in range(len(options)):
            if index[n] + 1 < len(options[n]):
                nxt = (*index[:n], index[n] + 1, *index[n + 1 :])
                if nxt not in seen:
                    seen.add(nxt)
                    heapq.heappush(heap, (key(nxt), nxt))


def _fix_rank(fix: Fix) -> tuple[int, int]:
    return (max((COST[c.kind] for c in fix if not c.repeat), default=COST["collect"]), len(fix))


def _precedence(change: RepairChange) -> int:
    return 0 if change.coupled else 2 if change.repeat else 1


def _primary_set(repair: Repair) -> frozenset[tuple[str, str, str]]:
    return frozenset((c.kind, c.item, c.target) for c in repair.primary)


def _merge_changes(changes: list[RepairChange]) -> list[RepairChange]:
    """One change per (kind, item): waits keep the latest date, the rest the first."""
    merged: dict[tuple[str, str], RepairChange] = {}
    for change in changes:
        old = merged.get(change.key)
        if old is None:
            merged[change.key] = change
            continue
        criteria = tuple(dict.fromkeys(old.criteria + change.criteria))
        later = change if (change.earliest_date or date.min) > (old.earliest_date or date.min) else old
        keep = later if change.kind in ("wait", "stop") else min(old, change, key=_precedence)
        merged[change.key] = replace(keep, criteria=criteria)
    return list(merged.values())
