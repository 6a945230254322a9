"""Answers: the library's objects behind each chat turn, and a user's mistake as an answer."""

from __future__ import annotations

from datetime import date

import pytest

from kb.answers import answer
from kb.knowledge import KnowledgeBase
from kb.patients import Dataset


@pytest.mark.parametrize(
    ("question", "kind", "headline"),
    [
        ("is P002 eligible", "check", "P002: ineligible"),
        ("why is P059 excluded by GE4.2", "why", "P059: ineligible; GE4.2 fail"),
        ("what would make P061 eligible", "repair", "P061: 1 repair(s); the cheapest (change) from 2026-11-24"),
        ("until when is P004 eligible", "until", "P004 is eligible: eligible until 2026-11-24"),
        ("what if P061's platelets were 50", "whatif", "P061: ineligible → eligible"),
        ("what data are missing for P064", "missing", "P064: needs_data; 3 item(s) to collect"),  # or HBV DNA
        ("explain GE4.2", "criterion", "GE4.2 (exclusion, general)"),
        ("which patients are eligible", "screen", "17 of 78 eligible"),
    ],
)
def test_each_intent_gets_its_library_answer(
    kb: KnowledgeBase, demo: Dataset, question: str, kind: str, headline: str
) -> None:
    reply = answer(question, kb, demo, today=date(2026, 11, 24))
    assert (reply.kind, reply.headline[: len(headline)]) == (kind, headline)


def test_the_evidence_travels_with_the_answer(kb: KnowledgeBase, demo: Dataset) -> None:
    reply = answer("which criteria block P011", kb, demo)
    assert [r.id for r in reply.results] == ["GI6", "GI6.2", "GE4.3", "GI1", "GE1"]  # blocking, then manual
    assert all(r.trace is not None for r in reply.results if r.status == "fail")
    assert reply.assessment is not None and reply.assessment.verdict == "ineligible"


def test_a_mistake_is_an_answer_not_an_exception(kb: KnowledgeBase, demo: Dataset) -> None:
    reply = answer("what if P002's platelets were 5000", kb, demo)
    assert reply.kind == "error" and "outside the plausible range 0-3000" in reply.headline
    unclear = answer("is P3 or P4 eligible", kb, demo)
    assert unclear.kind == "clarify" and unclear.options == ("P003", "P004")
