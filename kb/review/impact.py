"""Population impact: what each criterion does to a cohort of patients.

Before amending a criterion a sponsor asks how many patients it turns away, how many it
alone turns away, and how many more would be eligible without it. The cohort is the
vignette library unless a patient folder is given; an assumption can be switched to see
the same numbers under another reading of the protocol.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from kb.catalogue.assumptions import AssumptionSet
from kb.catalogue.criteria import Criterion
from kb.catalogue.knowledge import KnowledgeBase
from kb.reasoning.evaluation import criteria_with, decide_statuses
from kb.records.patients import Dataset
from kb.screening.batch import evaluate_many
from kb.status import Status, Verdict

__all__ = ["Impact", "population_impact"]


@dataclass(frozen=True)
class Impact:
    criterion: str
    blocks: int  # patients it blocks (in some cohort of theirs)
    blocks_alone: int  # patients it is the only blocker of
    gained: int  # patients who would be eligible without it

    def as_dict(self) -> dict[str, Any]:
        return {
            "criterion": self.criterion,
            "blocks": self.blocks,
            "blocks_alone": self.blocks_alone,
            "eligible_without_it": self.gained,
        }


def population_impact(kb: KnowledgeBase, dataset: Dataset, assumptions: AssumptionSet) -> list[Impact]:
    """One row per criterion that blocks anyone, most blocking first.

    The cohort's statuses come from the set-at-a-time path that screening uses (one DuckDB
    pass for all of them, the same statuses and verdicts as `assess`, which decides any
    patient the SQL cannot hold exactly); in this process, never forked: the app's sessions
    are threads."""
    blocks: dict[str, int] = {}
    alone: dict[str, int] = {}
    gained: dict[str, int] = {}
    criteria = kb.criteria
    for row in evaluate_many(list(dataset.patients.values()), kb, assumptions, workers=1):
        statuses = row.statuses
        failing = criteria_with(row.cohorts, Status.FAIL, criteria, statuses)
        blockers = [c.id for c in criteria if c.id in failing]  # in catalogue order, as `Assessment.blocking`
        cohorts = sorted(v.cohort for v in row.cohorts)
        for cid in blockers:
            blocks[cid] = blocks.get(cid, 0) + 1
            if len(blockers) == 1:
                alone[cid] = alone.get(cid, 0) + 1
            if (
                row.verdict != Verdict.ELIGIBLE
                and _without(cohorts, criteria, statuses, cid, assumptions) == Verdict.ELIGIBLE
            ):
                gained[cid] = gained.get(cid, 0) + 1
    order = {c.id: n for n, c in enumerate(criteria)}
    rows = [Impact(cid, n, alone.get(cid, 0), gained.get(cid, 0)) for cid, n in blocks.items()]
    return sorted(rows, key=lambda r: (-r.blocks, order[r.criterion]))


def _without(
    cohorts: list[str],
    criteria: Sequence[Criterion],
    statuses: Mapping[str, Status],
    criterion_id: str,
    assumptions: AssumptionSet,
) -> Verdict:
    """The verdict with `criterion_id` read as pass (`verdict_without`, from bare statuses)."""
    codes = [Status.PASS if c.id == criterion_id else statuses[c.id] for c in criteria]
    return decide_statuses(cohorts, criteria, codes, assumptions)[0]
