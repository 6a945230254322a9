"""Showing criteria with their evidence: the protocol sentence beside the proof tree.

Patient ids, stories and messages quote the patient's files: they are escaped for Markdown
(verdict boxes and expander labels render it), so a file's text is shown, never run.
"""

from __future__ import annotations

import streamlit as st

from kb.evaluation import Assessment, CriterionResult
from kb.render import escape_markdown, trace_dot, trace_text

__all__ = ["ICONS", "VERDICTS", "criterion_evidence", "verdict_box"]

# plain marks rather than emoji: they render in every font, including a headless browser's
ICONS = {"pass": "✓", "fail": "✗", "unknown": "?", "not_applicable": "–", "manual": "✎"}
VERDICTS = {
    "eligible": ("Eligible", st.success),
    "ineligible": ("Ineligible", st.error),
    "needs_data": ("Needs data", st.warning),
}


def verdict_box(assessment: Assessment, story: str = "") -> None:
    title, box = VERDICTS[assessment.verdict]
    via = f" via {', '.join(assessment.eligible_via)}" if assessment.eligible_via else ""
    head = f"**{escape_markdown(assessment.patient_id)}: {title}{via}**"
    box(head + (f"  \n{escape_markdown(story)}" if story else ""))


def criterion_evidence(result: CriterionResult, patient_id: str, expanded: bool = False) -> None:
    with st.expander(
        f"{ICONS[result.status]} {result.id} — {result.status}: {escape_markdown(result.message[:120])}",
        expanded=expanded,
    ):
        crit = result.criterion
        protocol = escape_markdown(crit.record_text) if crit.record_text else "*lost from the registry record*"
        st.markdown(f"**Protocol** ({crit.provenance}): {protocol}")
        st.markdown(f"**Reading:** {escape_markdown(crit.text)}")
        if result.trace is not None:
            st.graphviz_chart(trace_dot(result.trace, f"{patient_id} {result.id}"))
            st.code(trace_text(result.trace), language=None)
