"""Patient page: every criterion as a grid with its status, and each with its evidence."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from kb.errors import KbError
from kb.evaluation import Assessment, assess
from ui.context import context
from ui.evidence import ICONS, criterion_evidence, verdict_box


def show_verdict(assessment: Assessment, story: str) -> None:
    verdict_box(assessment, story)
    st.caption(assessment.scope)
    for cohort in assessment.cohorts:
        blocking = f" · blocking {', '.join(cohort.blocking)}" if cohort.blocking else ""
        unknown = f" · unknown {', '.join(cohort.unknown)}" if cohort.unknown else ""
        st.markdown(f"**cohort {cohort.cohort}**: {cohort.verdict}{blocking}{unknown}")
        if cohort.note:
            st.caption(cohort.note)
    dates = assessment.reference.as_dict()
    st.markdown(" · ".join(f"**{k}** {v}" for k, v in dates.items()))
    for note in assessment.reference.notes:
        st.caption(note)
    if assessment.to_collect:
        st.markdown("**Data to collect:** " + "; ".join(f"`{g.item}` ({g.reason})" for g in assessment.to_collect))
    if assessment.manual_checks:
        st.markdown(
            "**Verify by hand:** "
            + ", ".join(r.id for r in assessment.manual_checks)
            + " (text lost from the registry record)"
        )


def show_criteria(assessment: Assessment) -> None:
    # another cohort's criteria (and the definitions only they use) would bury the answer
    elsewhere = {r.id for r in assessment.elsewhere}
    shown = [r for r in assessment.criteria if r.id not in elsewhere]
    table = pd.DataFrame(
        [
            {
                "": ICONS[r.status],
                "criterion": r.id,
                "kind": r.criterion.kind,
                "status": r.status,
                "message": r.message,
                "missing": ", ".join(g.item for g in r.missing),
            }
            for r in shown
        ]
    )
    st.dataframe(table, hide_index=True, width="stretch")
    if elsewhere:
        st.caption(f"Not applicable (other cohorts' criteria and their definitions): {len(elsewhere)} hidden")
    st.subheader("Evidence")
    order = {"fail": 0, "unknown": 1, "manual": 2, "not_applicable": 3, "pass": 4}
    for result in sorted(shown, key=lambda r: order[r.status]):
        criterion_evidence(result, assessment.patient_id, expanded=result.status == "fail")


def page() -> None:
    ctx = context()
    st.header("Patient")
    try:
        assessment = assess(ctx.dataset.patient(ctx.patient_id), ctx.kb, ctx.assumptions, ctx.as_of, explain="all")
    except KbError as exc:
        st.error(str(exc))
        return
    st.session_state["assessment"] = assessment.as_dict()
    show_verdict(assessment, ctx.dataset.stories.get(ctx.patient_id, ""))
    show_criteria(assessment)
    st.caption("stamp: " + ", ".join(f"{k} {v}" for k, v in assessment.stamp.items()))


page()
