"""Population impact: what each criterion does to a cohort of patients.

Before amending a criterion a sponsor asks how many patients it turns away, how many it
alone turns away, and how many more would be eligible without it. The cohort is the
vignette library unless a patient folder is given; an assumption can be switched to see
the same numbers under another reading of the protocol.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from kb.assumptions import AssumptionSet
from kb.evaluation import assess, verdict_without
from kb.knowledge import KnowledgeBase
from kb.patients import Dataset

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
    """One row per criterion that blocks anyone, most blocking first."""
    blocks: dict[str, int] = {}
    alone: dict[str, int] = {}
    gained: dict[str, int] = {}
    for patient in dataset.patients.values():
        assessment = assess(patient, kb, assumptions, explain="status")
        blockers = [r.id for r in assessment.blocking]
        for cid in blockers:
            blocks[cid] = blocks.get(cid, 0) + 1
            if len(blockers) == 1:
                alone[cid] = alone.get(cid, 0) + 1
            if assessment.verdict != "eligible" and verdict_without(assessment, cid, assumptions) == "eligible":
                gained[cid] = gained.get(cid, 0) + 1
    order = {c.id: n for n, c in enumerate(kb.criteria)}
    rows = [Impact(cid, n, alone.get(cid, 0), gained.get(cid, 0)) for cid, n in blocks.items()]
    return sorted(rows, key=lambda r: (-r.blocks, order[r.criterion]))
