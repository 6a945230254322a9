"""The population impact from the set-at-a-time path: the counts `assess` gives patient by patient."""

from __future__ import annotations

from kb.catalogue.assumptions import resolve_assumptions
from kb.catalogue.knowledge import KnowledgeBase
from kb.reasoning.evaluation import Assessment, verdict_without
from kb.records.patients import Dataset
from kb.review.impact import Impact, population_impact


def one_by_one(kb: KnowledgeBase, assessments: dict[str, Assessment]) -> list[Impact]:
    """The impact counted from per-patient assessments (how the review counted it before)."""
    assumptions = resolve_assumptions()
    blocks: dict[str, int] = {}
    alone: dict[str, int] = {}
    gained: dict[str, int] = {}
    for assessment in assessments.values():
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


def test_the_impact_on_the_vignettes_is_that_of_assessing_each(
    kb: KnowledgeBase, demo: Dataset, demo_assessments: dict[str, Assessment]
) -> None:
    found = population_impact(kb, demo, resolve_assumptions())
    assert found == one_by_one(kb, demo_assessments)
    rows = {r.criterion: r for r in found}
    assert rows["GI6.3"].blocks_alone >= 1 and rows["GI6.3"].gained >= 1  # P061: platelets 42 alone
