"""Findings from engine-probed windows, each planted in a small rule set, and its clean
counterpart."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.review_rules import criterion, drug_window, findings_of, rule_set


@pytest.mark.parametrize(("other", "nested"), [("cyclophosphamide", True), ("bendamustine", False)])
def test_redundancy_in_two_windows_for_one_drug(tmp_path: Path, other: str, nested: bool) -> None:
    """Cyclophosphamide within 10 days, and `other` within 20 days: for one drug, the shorter
    window never blocks alone; for two different drugs nothing is redundant."""
    rules = drug_window("cyc_short", "cyclophosphamide", 10) + drug_window("cyc_long", other, 20)
    kb = rule_set(
        tmp_path, rules, [criterion("E1", "exclusion", "cyc_short"), criterion("E2", "exclusion", "cyc_long")]
    )
    found = findings_of(kb, "redundancy")
    assert [f.criteria for f in found] == ([("E1", "E2")] if nested else [])
    if nested:
        assert "within 10 days vs within 20 days" in found[0].explanation
        assert found[0].witness.cases[0].expected == {"E1": "fail", "E2": "fail"}


@pytest.mark.parametrize(("anchor", "apart"), [("apheresis", True), ("enrolment", False)])
def test_window_one_drug_two_reference_dates(tmp_path: Path, anchor: str, apart: bool) -> None:
    rules = drug_window("gcsf_a", "filgrastim", 5) + drug_window("gcsf_b", "filgrastim", 5, anchor)
    kb = rule_set(tmp_path, rules, [criterion("E1", "exclusion", "gcsf_a"), criterion("E2", "exclusion", "gcsf_b")])
    found = findings_of(kb, "boundary/window")
    assert bool(found) is apart
    if apart:
        assert set(found[0].witness.cases[0].expected.values()) == {"fail", "pass"}  # one dose, two answers
