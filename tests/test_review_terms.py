"""Vocabulary findings: a drug name the reference lists do not know, planted and clean."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.review_rules import PLATELETS_100, criterion, findings_of, rule_set


@pytest.mark.parametrize(("word", "unknown"), [("zorbalimab", True), ("cyclophosphamide", False)])
def test_vocabulary_a_drug_the_lists_do_not_know(tmp_path: Path, word: str, unknown: bool) -> None:
    kb = rule_set(tmp_path, PLATELETS_100, [criterion("A1", "inclusion", "plt_high", f"No {word} within 4 weeks")])
    found = findings_of(kb, "vocabulary")
    assert [f.witness.detail["term"] for f in found] == ([word] if unknown else [])
