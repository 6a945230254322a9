"""Cohort page: screen the loaded patients, the attrition funnel, and a patients × criteria heatmap."""

from __future__ import annotations

import altair as alt
import pandas as pd
import streamlit as st

from kb import ScreenRow, Status, Verdict
from kb.presentation.export import screening_csv, screening_xlsx
from kb.screening.screen import STAGES, funnel, screen
from kb.status import MARKS
from ui.context import Context, context, session_cached

_COLOURS = {
    Status.PASS: "#4c9a2a",
    Status.FAIL: "#c0392b",
    Status.UNKNOWN: "#e69f00",
    Status.MANUAL: "#8e8e8e",
    Status.NOT_APPLICABLE: "#f4f4f4",
}


@st.cache_data(show_spinner=False)
def _screen_demo(overrides: tuple[str, ...], as_of: object) -> list[ScreenRow]:
    """The demo data set is the same for everyone: its screenings are shared."""
    ctx = context()
    return screen(ctx.kb, ctx.dataset, ctx.assumptions, ctx.as_of)


def _screen(ctx: Context) -> list[ScreenRow]:
    """An upload's screenings stay in its session, keyed by its digest and the choices."""
    if ctx.dataset_key == "demo":
        return _screen_demo(ctx.overrides, ctx.as_of)
    key = (ctx.dataset_key, ctx.overrides, ctx.as_of)
    return session_cached("cohort", key, lambda: screen(ctx.kb, ctx.dataset, ctx.assumptions, ctx.as_of))


def funnel_stages(rows: list[ScreenRow]) -> pd.DataFrame:
    """The funnel's stages with how many of those still in are eligible and how many need
    data. A patient who needs data is never ruled out, so stays in to the last stage: that
    stage says so and counts them apart, and a last stage keeps only the eligible (it read
    "meeting their cohort's criteria" for eligible and needs-data patients together)."""
    eligible = sum(1 for r in rows if r.verdict == Verdict.ELIGIBLE)
    open_ = sum(1 for r in rows if r.verdict == Verdict.NEEDS_DATA)
    table = []
    for n, (name, k) in enumerate(funnel(rows)):
        inside = [r for r in rows if r.dropped_at > n]
        label = name
        if n == len(STAGES) - 1:
            label = f"not ruled out by their cohort's criteria ({eligible} eligible, {open_} need data)"
        table.append(
            {
                "stage": f"{n + 1}. {label}",
                "patients": k,
                "eligible": sum(1 for r in inside if r.verdict == Verdict.ELIGIBLE),
                "needs data": sum(1 for r in inside if r.verdict == Verdict.NEEDS_DATA),
            }
        )
    last = f"{len(STAGES) + 1}. eligible (the {open_} needing data left out)"
    table.append({"stage": last, "patients": eligible, "eligible": eligible, "needs data": 0})
    return pd.DataFrame(table)


def page() -> None:
    ctx = context()
    st.header("Cohort")
    with st.spinner(f"Screening {len(ctx.dataset.patients)} patients…"):
        rows = _screen(ctx)
    table = pd.DataFrame(
        [{"patient": r.patient, "verdict": r.verdict, "cohorts": ", ".join(r.cohorts), **r.statuses} for r in rows]
    )
    counts = table["verdict"].value_counts()
    columns = st.columns(3)
    for column, verdict in zip(columns, (Verdict.ELIGIBLE, Verdict.NEEDS_DATA, Verdict.INELIGIBLE), strict=True):
        column.metric(verdict.replace("_", " "), int(counts.get(verdict, 0)))
    st.subheader("Attrition funnel")
    stages = funnel_stages(rows)
    parts = stages.assign(ineligible=stages["patients"] - stages["eligible"] - stages["needs data"]).melt(
        id_vars=["stage"], value_vars=["eligible", "needs data", "ineligible"], var_name="verdict", value_name="n"
    )
    st.altair_chart(
        alt.Chart(parts)
        .mark_bar()
        .encode(
            x=alt.X("n:Q", stack=True, title="patients"),
            y=alt.Y("stage:N", sort=None, title=None),
            color=alt.Color("verdict:N", sort=["eligible", "needs data", "ineligible"]),
            tooltip=["stage", "verdict", "n"],
        ),
        width="stretch",
    )
    st.caption("ineligible: ruled out at a later stage")
    st.dataframe(stages, hide_index=True)
    st.subheader("Patients × criteria")
    criteria = [c for c in table.columns if c not in ("patient", "verdict", "cohorts")]
    cells = table.melt(id_vars=["patient"], value_vars=criteria, var_name="criterion", value_name="status")
    heat = (
        alt.Chart(cells)
        .mark_rect()
        .encode(
            x=alt.X("criterion:N", sort=criteria),
            y=alt.Y("patient:N"),
            color=alt.Color("status:N", scale=alt.Scale(domain=list(_COLOURS), range=list(_COLOURS.values()))),
            tooltip=["patient", "criterion", "status"],
        )
    )
    st.altair_chart(heat, width="stretch")
    shown = table.copy()
    for c in criteria:
        shown[c] = shown[c].map(lambda s: MARKS.get(s, str(s)))
    st.dataframe(shown, hide_index=True, width="stretch")
    # the same columns as `kb screen --out`; an uploaded id such as =HYPERLINK(…) stays text in the files
    left, right = st.columns(2)
    left.download_button("Download (CSV)", screening_csv(rows), "screening.csv", "text/csv", key="csv")
    right.download_button("Download (Excel)", screening_xlsx(rows, funnel(rows)), "screening.xlsx", key="xlsx")


page()
