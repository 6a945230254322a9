"""Answers to questions in free wording: what the chat shows, computed by the library.

A front end (the Streamlit chat, `kb ask`) hands over the text and the context it has (the
selected patient, the assumptions, the as-of date); it gets back one `Answer` holding the
question as understood and the library's own result objects (assessment, repairs, what-if,
review, …), which it renders. Keeping the whole answer lets a chat show earlier turns with
their evidence intact.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import date

from kb.catalogue.assumptions import AssumptionSet, resolve_assumptions
from kb.catalogue.knowledge import KnowledgeBase
from kb.errors import KbError
from kb.presentation.described import DescribedAssessment, assess_description
from kb.presentation.protocol_questions import PROTOCOL_EXAMPLES, answer_protocol
from kb.presentation.questions import Clarification, Question, parse_question
from kb.reasoning.evaluation import Assessment, CriterionResult, assess
from kb.reasoning.repairs import RepairAnswer, find_repairs
from kb.reasoning.whatif import WhatIf, parse_change, what_if
from kb.records.patients import Dataset
from kb.review.reviewer import Review, review
from kb.screening.screen import screen
from kb.status import Verdict

__all__ = ["EXAMPLES", "Answer", "answer"]

#: Example questions, with {p} for the current patient: the help answer offers them.
EXAMPLES = (
    "Is {p} eligible?",
    "Which criteria block {p}?",
    "What would make {p} eligible?",
    "Until when is {p} eligible?",
    "What if {p}'s platelets were 80?",
    "What data are missing for {p}?",
    "Explain criterion GE4.7",
    "Review the protocol",
    "Which patients are eligible?",
)


@dataclass(frozen=True)
class Answer:
    text: str  # the question as asked
    kind: str  # an intent of kb.presentation.questions, or clarify | error
    headline: str  # the answer in one line
    question: Question | None = None
    clarification: Clarification | None = None
    assessment: Assessment | None = None
    results: tuple[CriterionResult, ...] = ()  # the criteria to show with their evidence
    repairs: RepairAnswer | None = None
    whatif: WhatIf | None = None
    review: Review | None = None
    rows: tuple[dict[str, str], ...] = ()  # a table (screening, data to collect)
    details: tuple[str, ...] = ()  # further lines (a criterion's text, notes)
    options: tuple[str, ...] = field(default_factory=tuple)  # questions offered to click
    described: DescribedAssessment | None = None  # a patient described in words (kind "described")

    @property
    def understood(self) -> str:
        return self.question.understood() if self.question else ""


def answer(
    text: str,
    kb: KnowledgeBase,
    dataset: Dataset,
    assumptions: AssumptionSet | None = None,
    current_patient: str | None = None,
    as_of: date | None = None,
    today: date | None = None,
    selected_as: str = "selected in the sidebar",
) -> Answer:
    """The answer to one question; a user's mistake comes back as an error answer, not raised:
    every KbError (a bad value or date in a what-if, an unknown patient, a rule engine failure,
    which is a KbError too), from parsing the question as well as from answering it, and a
    date that arithmetic would take out of the calendar (OverflowError).

    A question answered about the selected patient (named by "she", "this patient", never by
    default) says so first: "About P001, selected in the sidebar (`selected_as`): …"."""
    parsed: Question | Clarification | None = None
    try:
        assumptions = assumptions or resolve_assumptions()
        parsed = parse_question(text, kb, sorted(dataset.patients), current_patient, as_of or today or date.today())
        if isinstance(parsed, Clarification):
            return Answer(text, "clarify", parsed.prompt, clarification=parsed, options=parsed.options)
        if parsed.intent == "described":
            return _described(parsed, kb, assumptions)
        reply = _answer(parsed, kb, dataset, assumptions, as_of)
        if parsed.selected:
            said = reply.headline.removeprefix(f"{parsed.patient}: ")
            reply = replace(reply, headline=f"About {parsed.patient}, {selected_as}: {said}")
        return reply
    except KbError as exc:
        return Answer(text, "error", str(exc), question=parsed if isinstance(parsed, Question) else None)
    except OverflowError as exc:  # date arithmetic past year 9999 that no check caught: still an answer
        head = f"a date out of range ({exc}); dates are read from 1900-01-01 to 2200-12-31"
        return Answer(text, "error", head, question=parsed if isinstance(parsed, Question) else None)


def _answer(q: Question, kb: KnowledgeBase, dataset: Dataset, assumptions: AssumptionSet, as_of: date | None) -> Answer:
    if q.intent == "help":
        examples = tuple(e.format(p=q.patient or "P001") for e in EXAMPLES)
        return Answer(q.text, "help", "I can answer these questions (click one):", q, options=examples)
    if q.intent == "protocol":  # about the trial, not a patient: kb.presentation.protocol_questions
        protocol = answer_protocol(q.text, kb, assumptions)
        if protocol is None:
            prompt = "Which rule do you mean? Name a test, a drug, a disease or a criterion:"
            return Answer(q.text, "clarify", prompt, q, options=PROTOCOL_EXAMPLES)
        return Answer(q.text, "protocol", protocol.headline, q, rows=protocol.rows, details=protocol.details)
    if q.intent == "review":  # kept per rules, assumptions and data set: shared with the review page
        found = review(kb, assumptions, dataset)
        counts = ", ".join(f"{len(found.of_kind(k))} {k}" for k in dict.fromkeys(f.kind for f in found.findings))
        return Answer(q.text, "review", f"Protocol review: {counts}", q, review=found)
    if q.intent == "criterion":
        crit = kb.criterion(str(q.criterion))
        assert crit is not None
        details = (
            f"Protocol: {crit.record_text or '(lost from the registry record)'}",
            f"Reading: {crit.text}",
            f"Deciding predicate: {crit.predicate or '(none: verified by hand)'}",
        )
        return Answer(q.text, "criterion", f"{crit.id} ({crit.kind}, {crit.cohort})", q, details=details)
    if q.intent == "screen":
        screened = tuple(row.as_dict() for row in screen(kb, dataset, assumptions, as_of))
        eligible = [r["patient"] for r in screened if r["verdict"] == Verdict.ELIGIBLE]
        return Answer(q.text, "screen", f"{len(eligible)} of {len(screened)} eligible", q, rows=screened)
    patient = dataset.patient(str(q.patient))
    if q.intent == "whatif":
        changes = [parse_change(c, kb.vocabulary) for c in q.changes]
        result_whatif = what_if(patient, changes, kb, assumptions, as_of)
        head = f"{patient.id}: {result_whatif.before.verdict} → {result_whatif.after.verdict}"
        return Answer(q.text, "whatif", head, q, whatif=result_whatif, details=q.notes)
    if q.intent in ("repair", "until"):
        repairs = find_repairs(patient, kb, assumptions, as_of, 3)
        if repairs.until is not None:
            head = f"{patient.id} is eligible: {repairs.until.describe()}"
        elif repairs.repairs:
            best = repairs.repairs[0]
            head = f"{patient.id}: {len(repairs.repairs)} repair(s); the cheapest ({best.cost}) from {best.enrolment}"
        else:
            head = f"{patient.id}: no repair found" + (
                f"; ruled out by {', '.join(o.criterion for o in repairs.obstacles)}" if repairs.obstacles else ""
            )
        return Answer(q.text, q.intent, head, q, repairs=repairs)
    explain = "all" if q.intent == "why" else "decisive"
    assessment = assess(patient, kb, assumptions, as_of, explain=explain)
    via = f" via {', '.join(assessment.eligible_via)}" if assessment.eligible_via else ""
    head = f"{patient.id}: {assessment.verdict}{via}"
    if q.intent == "missing":
        rows = tuple({"item": g.item, "reason": g.reason, "detail": g.detail} for g in assessment.to_collect)
        return Answer(q.text, "missing", f"{head}; {len(rows)} item(s) to collect", q, assessment=assessment, rows=rows)
    if q.intent == "why":
        result = assessment.result(str(q.criterion))
        return Answer(
            q.text, "why", f"{head}; {result.id} {result.status}", q, assessment=assessment, results=(result,)
        )
    shown = (*assessment.blocking, *assessment.unknown, *assessment.manual_checks)
    return Answer(q.text, q.intent, head, q, assessment=assessment, results=shown)


def _described(q: Question, kb: KnowledgeBase, assumptions: AssumptionSet) -> Answer:
    """A patient described in words: what blocks already, what is still open and to collect,
    and what was read into the words, first. Never a stored patient."""
    assert q.description is not None
    found = assess_description(q.description, kb, assumptions)
    blocking = found.blocking
    verdict = found.assessment.verdict
    if verdict == Verdict.INELIGIBLE:
        head = (
            f"A patient described in words (not stored): not eligible, blocked by {', '.join(r.id for r in blocking)}"
        )
    elif verdict == Verdict.ELIGIBLE:
        head = f"A patient described in words (not stored): eligible via {', '.join(found.assessment.eligible_via)}"
    else:  # a cohort ruled out while another is still open is not "not eligible": any cohort may enter
        head = (
            f"A patient described in words (not stored): not decided, {len(found.open)} criteria still open "
            f"({len(found.assessment.to_collect)} item(s) to collect)"
        )
        closed = [c for c in found.assessment.cohorts if c.verdict == Verdict.INELIGIBLE]
        if closed:
            ruled_out = "; ".join(f"{c.cohort} cohort ruled out by {', '.join(c.blocking)}" for c in closed)
            still = ", ".join(c.cohort for c in found.assessment.cohorts if c.verdict != Verdict.INELIGIBLE)
            head += f"; {ruled_out}, {still} still open"
    if found.ranges:
        ids = ", ".join(d.criterion for d in found.ranges)
        head += f"; {ids} depend on the exact day ({found.ranges[0].words}), decided at {found.ranges[0].deciding_day}"
    by_hand = ", ".join(r.id for r in found.assessment.manual_checks)
    details = (
        *(f"Read into the words: {note}" for note in q.description.assumptions),
        *(f"Depends on the day: {d.describe()}" for d in found.ranges),
        *(f"Not understood: {note}" for note in q.description.unread),
        *([f"To verify by hand (text lost from the record): {by_hand}"] if by_hand else []),
        "Rephrase to correct any of these (e.g. give an exact date: 'rituximab on 2026-11-03').",
    )
    rows = tuple({"item": g.item, "reason": g.reason, "detail": g.detail} for g in found.assessment.to_collect)
    results = (*blocking, *found.open)
    return Answer(q.text, "described", head, q, assessment=found.assessment, results=results, rows=rows,
                  details=details, described=found)  # fmt: skip
