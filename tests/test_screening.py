"""Screening: each patient's verdict and the stage where they leave the funnel."""

from __future__ import annotations

from kb.assumptions import resolve_assumptions
from kb.knowledge import KnowledgeBase
from kb.patients import Dataset
from kb.screening import STAGES, funnel, screen


def test_the_funnel_counts_who_is_still_in_after_each_stage(kb: KnowledgeBase, demo: Dataset) -> None:
    rows = {r.patient: r for r in screen(kb, demo, resolve_assumptions())}
    assert rows["P013"].dropped_at == 1  # no trial diagnosis
    assert rows["P061"].dropped_at == 2 and rows["P061"].blocking == ("GI6.3",)  # platelets 42
    assert rows["P059"].dropped_at == 3  # a live vaccine: a general exclusion
    assert rows["P024"].dropped_at == len(STAGES)  # eligible under the default reading
    assert rows["P064"].dropped_at == len(STAGES)  # needs data: not ruled out yet
    counts = dict(funnel(list(rows.values())))
    assert counts["all patients"] == 64
    assert list(counts.values()) == sorted(counts.values(), reverse=True)
    eligible_or_open = sum(1 for r in rows.values() if r.verdict != "ineligible")
    assert counts["meeting their cohort's criteria"] == eligible_or_open
