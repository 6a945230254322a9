"""The question parser: every intent in several wordings (a typo, a loose id), what-if
changes in the forms kb whatif takes, a clarification instead of a guess, and linear time
on hostile questions (benchmarks/chat.py holds them and the absolute figure)."""

from __future__ import annotations

from datetime import date

import pytest

from benchmarks.chat import HOSTILE, hostile_question, parse_seconds, read_as
from kb.catalogue.knowledge import KnowledgeBase
from kb.errors import KbError
from kb.presentation.questions import MAX_QUESTION_CHARS, Clarification, Question, check_length, parse_question
from kb.reasoning.whatif import parse_change
from kb.records.patients import Dataset

AS_OF = date(2026, 11, 24)


def ask(kb: KnowledgeBase, demo: Dataset, text: str, current: str | None = None) -> Question | Clarification:
    return parse_question(text, kb, sorted(demo.patients), current, AS_OF)


@pytest.mark.parametrize(
    ("text", "intent", "patient", "criterion"),
    [
        ("is P003 eligible?", "check", "P003", None),
        ("check p3", "check", "P003", None),
        ("summarise patient 3", "check", "P003", None),
        ("is P-003 elgible", "check", "P003", None),  # typo, loose id
        ("which criteria block P-011?", "blockers", "P011", None),
        ("why is P11 not eligible", "blockers", "P011", None),
        ("what blcoks patient 11", "blockers", "P011", None),  # typo
        ("why is P059 excluded by GE4.2", "why", "P059", "GE4.2"),
        ("why does p59 fail ge 4.2", "why", "P059", "GE4.2"),
        ("why is patient 59 blocked by the live vaccine rule", "why", "P059", "GE4.2"),
        ("what would make P062 eligible?", "repair", "P062", None),
        ("when could P-59 be enrolled", "repair", "P059", None),
        ("what would it take for p0062 to be eligble", "repair", "P062", None),
        ("until when is P004 eligible", "until", "P004", None),
        ("how long does p23 stay eligible", "until", "P023", None),
        ("eligible untill when, patient 4?", "until", "P004", None),  # typo
        ("what data are missing for P010", "missing", "P010", None),
        ("what is still to collect for p10", "missing", "P010", None),
        ("which results are mising for patient 10", "missing", "P010", None),
        ("explain criterion GE4.7", "criterion", None, "GE4.7"),
        ("show the rule for SLE-I2", "criterion", None, "SLE-I2"),
        ("explain the steroid rule", "criterion", None, "GE4.7"),
        ("explain ge 4.7", "criterion", None, "GE4.7"),
        ("which rules contradict each other", "review", None, None),
        ("review the protocol", "review", None, None),
        ("any redundant or dead rules?", "review", None, None),
        ("which patients are eligible", "screen", None, None),
        ("screen the cohort", "screen", None, None),
        ("who is eligible?", "screen", None, None),
        ("help", "help", None, None),
        ("what can you do", "help", None, None),
    ],
)
def test_intents_and_entities(
    kb: KnowledgeBase, demo: Dataset, text: str, intent: str, patient: str | None, criterion: str | None
) -> None:
    question = ask(kb, demo, text)
    assert isinstance(question, Question), question
    assert (question.intent, question.patient, question.criterion) == (intent, patient, criterion)


@pytest.mark.parametrize(
    ("text", "changes"),
    [
        ("what if P002's platelets were 80", ("platelets=80",)),
        ("what if p2 had plt 80", ("platelets=80",)),
        ("what if P002's plateletes were 80", ("platelets=80",)),  # typo
        ("what if P002 had haemoglobin 9.5 g/dL", ("hemoglobin=9.5 g/dL",)),
        ("what if P002 had platelets 80 and an ANC of 1.2", ("platelets=80", "anc=1.2")),
        ("what if we enrol P006 on 2027-01-12", ("enrolment=2027-01-12",)),
        ("suppose patient 6 were enrolled 2027-01-12", ("enrolment=2027-01-12",)),
        ("what if the steroid window were 4 weeks for P017", ("assume:ge4_7_window_days=28",)),
        ("what if P017's 4-day window were 28 days", ("assume:ge4_7_window_days=28",)),
        ("suppose P011 stopped rituximab on 2026-10-01", ("stop:rituximab@2026-10-01",)),
        ("what if P060 stops tacrolimus", ("stop:tacrolimus@2026-11-24",)),  # the as-of date, noted
        # a number is read whole, exponent included: 1e-41 was read as 1
        ("what if P002's creatinine were 1e-41", ("creatinine=1e-41",)),
        ("what if P002's platelets were 1e999999999", ("platelets=1e999999999",)),
    ],
)
def test_what_if_changes_in_kb_whatif_forms(
    kb: KnowledgeBase, demo: Dataset, text: str, changes: tuple[str, ...]
) -> None:
    question = ask(kb, demo, text)
    assert isinstance(question, Question) and question.intent == "whatif"
    assert question.changes == changes
    for change in question.changes:  # each is a change kb whatif understands
        parse_change(change, kb.vocabulary)
    assert question.understood().startswith("understood: what-if · ")


def test_the_current_patient_is_used_when_the_question_points_at_it(kb: KnowledgeBase, demo: Dataset) -> None:
    question = ask(kb, demo, "what if her platelets were 80", current="P061")
    assert isinstance(question, Question) and (question.patient, question.changes) == ("P061", ("platelets=80",))
    assert question.selected and question.understood() == "understood: what-if · P061 (selected) · platelets=80"


@pytest.mark.parametrize("text", ["what if platelets were 80", "is eligible?", "which criteria block?"])
def test_the_current_patient_is_never_taken_by_default(kb: KnowledgeBase, demo: Dataset, text: str) -> None:
    """Issue 17: a question that names no patient and does not point at the selected one is
    asked back, the selected patient offered first (it was answered about P001 silently)."""
    question = ask(kb, demo, text, current="P061")
    assert isinstance(question, Clarification) and question.prompt.startswith("Which patient do you mean?")
    assert question.options[0] == f"{text} (P061)"


@pytest.mark.parametrize(
    ("text", "prompt"),
    [
        ("what if platelets were 80", "Which patient"),  # no patient named, none selected
        ("is P999 eligible", "There is no patient P999;"),  # issue 17: the P was dropped
        ("is patient 999 eligible", "There is no patient P999;"),
        ("is P3 or P4 eligible?", "Which of these patients"),
        ("what if P002 were different", "What should change"),
        ("explain the rule", "Which criterion"),
        ("what if the window were 10 days for P002", "Which window"),
    ],
)
def test_an_ambiguous_question_gets_a_clarifying_choice(
    kb: KnowledgeBase, demo: Dataset, text: str, prompt: str
) -> None:
    answer = ask(kb, demo, text)
    assert isinstance(answer, Clarification) and prompt in answer.prompt
    if "patients" in answer.prompt:
        assert answer.options == ("P003", "P004")


def test_nothing_in_a_question_is_executed(kb: KnowledgeBase, demo: Dataset) -> None:
    """Code in a question is text: no change is read from it, and the user is asked what to change."""
    question = ask(kb, demo, "what if P002's platelets were __import__('os').system('echo hi')")
    assert isinstance(question, Clarification) and question.prompt.startswith("What should change?")


@pytest.mark.parametrize(("name", "prefix", "unit", "suffix", "intent"), HOSTILE, ids=[h[0] for h in HOSTILE])
def test_a_hostile_question_is_parsed_in_linear_time(
    kb: KnowledgeBase, demo: Dataset, name: str, prefix: str, unit: str, suffix: str, intent: str
) -> None:
    """Ten times the text takes about ten times as long, not a hundred ("why " x 8000 took 24 s).

    Far beyond the length limit (the parser is called directly), for every intent; the
    question is still read as that intent. CPU time, so other processes do not count; the
    absolute figure (10 KB < 100 ms) is benchmarks/chat.py's.
    """
    ids = sorted(demo.patients)
    short, long = (hostile_question(prefix, unit, suffix, size) for size in (1_000, 10_000))
    parsed = parse_question(long, kb, ids, None, AS_OF)
    assert read_as(parsed) == intent
    assert parse_seconds(long, kb, ids) / parse_seconds(short, kb, ids) < 20


def test_a_what_if_reads_the_words_just_before_each_number(kb: KnowledgeBase, demo: Dataset) -> None:
    """Tokenised once (not re-scanned per number): each value still goes with its own item."""
    question = ask(kb, demo, "what if P002 had platelets 80 and an ANC of 1.2 and hgb 9.5 g/dL on 2026-11-20")
    assert isinstance(question, Question)
    assert question.changes == ("platelets=80", "anc=1.2", "hemoglobin=9.5 g/dL")


def test_the_first_unknown_patient_named_is_the_one_asked_about(kb: KnowledgeBase, demo: Dataset) -> None:
    answer = ask(kb, demo, "is P998 or P999 eligible?")
    assert isinstance(answer, Clarification) and "There is no patient P998;" in answer.prompt


def test_a_question_longer_than_the_limit_is_refused_with_the_limit() -> None:
    check_length("x" * MAX_QUESTION_CHARS)  # at the limit: read
    with pytest.raises(KbError, match=f"is {MAX_QUESTION_CHARS + 1:,} characters long; at most 2,000"):
        check_length("x" * (MAX_QUESTION_CHARS + 1))
