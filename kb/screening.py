"""Screening a cohort: every patient's verdict and statuses, and the attrition funnel.

A coordinator screening a site's patients wants to see where they drop out: how many have
a trial diagnosis at all, how many of those meet the general inclusions, then the general
exclusions, then their own cohort's criteria. A patient leaves the funnel at the first stage
where a criterion blocks; one with data still missing stays in (not ruled out yet).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import date

from kb.assumptions import AssumptionSet
from kb.criteria import Criterion
from kb.evaluation import assess
from kb.knowledge import KnowledgeBase
from kb.patients import Dataset
from kb.repairs import find_repairs

__all__ = ["STAGES", "ScreenRow", "earliest_dates", "funnel", "screen"]

STAGES = (
    "all patients",
    "with a trial diagnosis",
    "meeting the general inclusions",
    "clear of the general exclusions",
    "meeting their cohort's criteria",
)


@dataclass(frozen=True)
class ScreenRow:
    patient: str
    verdict: str
    cohorts: tuple[str, ...]
    statuses: dict[str, str]  # counted criteria only
    blocking: tuple[str, ...]
    dropped_at: int  # the stage (index into STAGES) the patient leaves at; len(STAGES) if never
    unknown: tuple[str, ...] = ()
    earliest: date | None = None  # the first enrolment day, when waiting is all it takes

    def as_dict(self) -> dict[str, str]:
        return {
            "patient": self.patient,
            "verdict": self.verdict,
            "cohorts": " ".join(self.cohorts),
            "blocking": " ".join(self.blocking),
            "unknown": " ".join(self.unknown),
            "earliest_date": self.earliest.isoformat() if self.earliest else "",
            "left_at": STAGES[self.dropped_at] if self.dropped_at < len(STAGES) else "",
        }


def _stage(crit: Criterion) -> int:
    if crit.id == "COHORT":
        return 1
    if crit.cohort == "general":
        return 2 if crit.kind == "inclusion" else 3
    return 4


def screen(
    kb: KnowledgeBase,
    dataset: Dataset,
    assumptions: AssumptionSet,
    as_of: date | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> list[ScreenRow]:
    """Every patient of the data set, in its order; `progress(done, total)` after each."""
    rows = []
    total = len(dataset.patients)
    for n, patient in enumerate(dataset.patients.values()):
        if progress is not None:
            progress(n, total)
        result = assess(patient, kb, assumptions, as_of, explain="status")
        blocking = tuple(r.id for r in result.blocking)
        stages = [_stage(r.criterion) for r in result.blocking]
        rows.append(
            ScreenRow(
                patient.id,
                result.verdict,
                tuple(c.cohort for c in result.cohorts),
                {r.id: r.status for r in result.criteria if r.criterion.counted},
                blocking,
                min(stages) if stages and result.verdict == "ineligible" else len(STAGES),
                tuple(r.id for r in result.unknown),
            )
        )
    return rows


def earliest_dates(
    rows: list[ScreenRow], kb: KnowledgeBase, dataset: Dataset, assumptions: AssumptionSet, as_of: date | None = None
) -> list[ScreenRow]:
    """The rows with, for each ineligible patient whom waiting alone makes eligible (the
    cheapest confirmed repair is a wait, with what moving enrolment implies), that date."""
    out = []
    for row in rows:
        if row.verdict == "ineligible":
            answer = find_repairs(dataset.patient(row.patient), kb, assumptions, as_of, max_repairs=1)
            best = answer.repairs[0] if answer.repairs else None
            if best is not None and best.cost == "wait":
                row = replace(row, earliest=best.enrolment)
        out.append(row)
    return out


def funnel(rows: list[ScreenRow]) -> list[tuple[str, int]]:
    """How many patients are still in after each stage."""
    return [(name, sum(1 for r in rows if r.dropped_at > n)) for n, name in enumerate(STAGES)]
