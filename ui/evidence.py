"""Showing criteria with their evidence: the plain sentence first, the proof one click away.

Each criterion is one expander whose label is its status and the sentence a clinician would
write (`CriterionResult.message`, never cut); inside are the protocol sentence, the reading,
the formal proof (the rule's facts and algebra, `CriterionResult.proof`, and the proof tree
as text) and the proof graph. Patient ids, stories and messages quote the patient's files:
they are escaped for Markdown (verdict boxes and expander labels render it), so a file's text
is shown, never run.
"""

from __future__ import annotations

from collections.abc import Sequence

import streamlit as st

from kb import Assessment, CriterionResult, Verdict, trace_dot, trace_text
from kb.presentation.render import escape_markdown
from kb.status import MARKS

__all__ = ["VERDICTS", "criterion_evidence", "criterion_list", "verdict_box"]

VERDICTS = {
    Verdict.ELIGIBLE: ("Eligible", st.success),
    Verdict.INELIGIBLE: ("Ineligible", st.error),
    Verdict.NEEDS_DATA: ("Needs data", st.warning),
}


def verdict_box(assessment: Assessment, story: str = "") -> None:
    """The verdict, once, with what blocks it and what is still to decide: the first thing read."""
    title, box = VERDICTS[assessment.verdict]
    via = f" via {', '.join(assessment.eligible_via)}" if assessment.eligible_via else ""
    lines = [f"**{escape_markdown(assessment.patient_id)}: {title}{via}**"]
    if assessment.verdict != Verdict.ELIGIBLE:
        blocking = [r.id for r in assessment.blocking]
        unknown = [r.id for r in assessment.unknown]
        if blocking:
            lines.append(f"Blocked by {', '.join(blocking)}")
        if unknown:
            lines.append(f"Still to decide: {', '.join(unknown)}")
    if story:
        lines.append(escape_markdown(story))
    box("  \n".join(lines))


def criterion_list(results: Sequence[CriterionResult], patient_id: str) -> None:
    """The criteria in the order given (blockers first), each with its sentence and evidence."""
    for result in results:
        criterion_evidence(result, patient_id)


def criterion_evidence(result: CriterionResult, patient_id: str, expanded: bool = False) -> None:
    with st.expander(
        f"{MARKS[result.status]} {result.id} — {result.status}: {escape_markdown(result.message)}",
        expanded=expanded,
    ):
        crit = result.criterion
        protocol = escape_markdown(crit.record_text) if crit.record_text else "*lost from the registry record*"
        st.markdown(f"**Protocol** ({crit.provenance}): {protocol}")
        st.markdown(f"**Reading:** {escape_markdown(crit.text)}")
        if result.proof:
            st.markdown("**Formal proof** (the facts with the rule's own bounds and arithmetic):")
            st.code(result.proof, language=None, wrap_lines=True)
        if result.trace is not None:
            st.markdown("**Proof tree**")
            st.graphviz_chart(trace_dot(result.trace, f"{patient_id} {result.id}"))
            st.code(trace_text(result.trace), language=None)
