"""A patient described in words, evaluated three-valued like any other, vague times included.

The ad-hoc patient of kb/presentation/description.py goes through kb.reasoning.evaluation.assess unchanged. A vague
time ("rituximab last month") is a range of days: the patient is assessed with every range
at its first day and at its last; a criterion whose status differs between the two depends
on the day the words did not give, so it is `unknown`, and the day that decides is found by
bisection over the range (a window's edge: the status changes once). The verdict is then
decided again from the statuses, so a range can never make a patient look better than
either end of it.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from kb.catalogue.assumptions import AssumptionSet
from kb.catalogue.knowledge import KnowledgeBase
from kb.factbase.build import Gap
from kb.presentation.description import Description
from kb.reasoning.evaluation import Assessment, CriterionResult, assess, decide
from kb.status import Status

__all__ = ["DescribedAssessment", "RangeDecision", "assess_description"]


@dataclass(frozen=True)
class RangeDecision:
    """A criterion decided differently at the two ends of a vague time, and the day between."""

    criterion: str
    early: Status  # the status with the range at its first day
    late: Status  # … at its last day
    deciding_day: str  # the first day of the range at which the status is `late`
    words: str  # the vague time ("last month")

    def describe(self) -> str:
        return (
            f"{self.criterion} depends on the exact day ({self.words}): {self.late} if on or after "
            f"{self.deciding_day}, {self.early} if before; give the date to decide"
        )

    def as_dict(self) -> dict[str, str]:
        return {"criterion": self.criterion, "early": self.early, "late": self.late,
                "deciding_day": self.deciding_day, "words": self.words}  # fmt: skip


@dataclass(frozen=True)
class DescribedAssessment:
    description: Description
    assessment: Assessment  # the combined one: a criterion a range leaves open is unknown
    ranges: tuple[RangeDecision, ...] = ()

    @property
    def blocking(self) -> list[CriterionResult]:
        return self.assessment.blocking

    @property
    def open(self) -> list[CriterionResult]:
        return self.assessment.unknown

    def as_dict(self) -> dict[str, Any]:
        def result(r: CriterionResult) -> dict[str, Any]:
            return {"id": r.id, "status": r.status, "message": r.message, "missing": [g.item for g in r.missing]}

        return {
            "patient": "described in words (not stored)",
            "read": list(self.description.summary()),
            "assumptions": list(self.description.assumptions),
            "not_understood": list(self.description.unread),
            "verdict": self.assessment.verdict,
            "cohorts": [c.as_dict() for c in self.assessment.cohorts],
            "blocking": [result(r) for r in self.blocking],
            "open": [result(r) for r in self.open],
            "ranges": [d.as_dict() for d in self.ranges],
            "to_collect": [
                {"item": g.item, "reason": g.reason, "detail": g.detail} for g in self.assessment.to_collect
            ],
        }


def assess_description(
    description: Description, kb: KnowledgeBase, assumptions: AssumptionSet, explain: str = "decisive"
) -> DescribedAssessment:
    """The described patient's assessment, enrolled on the description's enrolment day."""
    today = description.enrolment
    first = assess(description.patient(0), kb, assumptions, today, explain=explain, today=today)
    width = description.range_days
    if not width:
        return DescribedAssessment(description, first)
    last = assess(description.patient(width), kb, assumptions, today, explain="status", today=today)
    late = {r.id: r.status for r in last.criteria}
    cache: dict[int, dict[str, Status]] = {0: {r.id: r.status for r in first.criteria}, width: late}

    def statuses(k: int) -> dict[str, Status]:
        if k not in cache:
            found = assess(description.patient(k), kb, assumptions, today, explain="status", today=today)
            cache[k] = {r.id: r.status for r in found.criteria}
        return cache[k]

    span = max(description.spans, key=lambda s: s.days)
    decisions: list[RangeDecision] = []
    results: list[CriterionResult] = []
    for result in first.criteria:
        if result.status == late[result.id]:
            results.append(result)
            continue
        low, high = 0, width  # the status at `high` is the late one; find the first such day
        while high - low > 1:
            middle = (low + high) // 2
            low, high = (low, middle) if statuses(middle)[result.id] == late[result.id] else (middle, high)
        decision = RangeDecision(result.id, result.status, late[result.id], span.at(high).isoformat(), span.words)
        decisions.append(decision)
        gap = Gap(f"date:{span.words}", "missing", f"the exact day of what happened {span.words}")
        results.append(
            replace(result, status=Status.UNKNOWN, reason="missing", message=decision.describe(), missing=(gap,))
        )
    cohorts = [c.cohort for c in first.cohorts]
    verdict, verdicts = decide(cohorts, results, assumptions)
    combined = replace(first, verdict=verdict, cohorts=verdicts, criteria=tuple(results))
    return DescribedAssessment(description, combined, tuple(decisions))
