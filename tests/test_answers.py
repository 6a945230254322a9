"""Answers: the library's objects behind each chat turn, and a user's mistake as an answer."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date

import pytest

from kb.catalogue.knowledge import KnowledgeBase
from kb.language.engine import EngineError
from kb.presentation.answers import answer
from kb.records.patients import Dataset


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


def _raises(error: Exception) -> Callable[..., object]:
    def fail(*args: object, **kwargs: object) -> object:
        raise error

    return fail


@pytest.mark.parametrize(
    ("question", "as_of", "fault", "headline"),
    [
        ("what if P001's creatinine were 0", None, None, "creatinine 0 µmol/L is outside the plausible range"),
        # the exponent was dropped: 1e-41 answered as a creatinine of 1 µmol/L
        ("what if P001's creatinine were 1e-41", None, None, "1e-41"),
        ("what if P001 enrolled on 9999-12-31", None, None, "the date 9999-12-31 is outside the dates accepted"),
        ("is P001 eligible", date(1, 1, 1), None, "P001: enrolment date 0001-01-01 is outside the dates accepted"),
        ("which patients are eligible", date(9999, 12, 31), None, "outside the dates accepted"),
        ("is P001 eligible", None, EngineError("pyDatalog failed: a test double"), "pyDatalog failed: a test double"),
        ("is P001 eligible", None, OverflowError("date value out of range"), "a date out of range"),
    ],
)
def test_every_error_is_an_error_answer_never_raised(
    kb: KnowledgeBase,
    demo: Dataset,
    monkeypatch: pytest.MonkeyPatch,
    question: str,
    as_of: date | None,
    fault: Exception | None,
    headline: str,
) -> None:
    """Issue 16.2: a what-if creatinine of 0 (DivisionByZero), a date near year 1 or 9999
    (OverflowError) and an engine failure (EngineError, then not a KbError) escaped `answer`,
    and the app showed a traceback page; each is now an answer of kind "error"."""
    if fault is not None:
        monkeypatch.setattr("kb.presentation.answers.assess", _raises(fault))
    reply = answer(question, kb, demo, as_of=as_of, today=date(2026, 11, 24))
    assert reply.kind == "error" and headline in reply.headline, reply.headline
