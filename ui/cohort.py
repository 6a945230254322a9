"""Cohort page: screen the loaded patients, the attrition by criterion, and a heatmap."""

from __future__ import annotations

import io

import pandas as pd
import streamlit as st

from kb.evaluation import Assessment, assess
from ui.context import context

_MARK = {"pass": "✓", "fail": "✗", "unknown": "?", "manual": "✎", "not_applicable": ""}


@st.cache_data(show_spinner=False)
def _screen(dataset_key: str, overrides: tuple[str, ...], as_of: object) -> list[dict[str, str]]:
    ctx = context()
    rows = []
    for patient in ctx.dataset.patients.values():
        result: Assessment = assess(patient, ctx.kb, ctx.assumptions, ctx.as_of, explain="status")
        row = {"patient": patient.id, "verdict": result.verdict, "cohorts": ", ".join(c.cohort for c in result.cohorts)}
        row.update({r.id: r.status for r in result.criteria if r.criterion.counted})
        rows.append(row)
    return rows


def page() -> None:
    ctx = context()
    st.header("Cohort")
    with st.spinner(f"Screening {len(ctx.dataset.patients)} patients…"):
        table = pd.DataFrame(_screen(ctx.dataset_key, ctx.overrides, ctx.as_of))
    counts = table["verdict"].value_counts()
    columns = st.columns(3)
    for column, verdict in zip(columns, ("eligible", "needs_data", "ineligible"), strict=True):
        column.metric(verdict.replace("_", " "), int(counts.get(verdict, 0)))
    criteria = [c for c in table.columns if c not in ("patient", "verdict", "cohorts")]
    attrition = (
        pd.DataFrame({"criterion": criteria, "fail": [int((table[c] == "fail").sum()) for c in criteria]})
        .query("fail > 0")
        .sort_values("fail", ascending=False)
    )
    st.subheader("Attrition: patients each criterion fails")
    st.bar_chart(attrition, x="criterion", y="fail")
    st.subheader("Patients × criteria")
    shown = table[["patient", "verdict", "cohorts", *criteria]].copy()
    for c in criteria:
        shown[c] = shown[c].map(lambda s: _MARK.get(str(s), str(s)))
    st.dataframe(shown, hide_index=True, width="stretch")
    left, right = st.columns(2)
    left.download_button("Download (CSV)", table.to_csv(index=False), "screening.csv", "text/csv", key="csv")
    workbook = io.BytesIO()
    table.to_excel(workbook, index=False, sheet_name="screening", engine="openpyxl")
    right.download_button("Download (Excel)", workbook.getvalue(), "screening.xlsx", key="xlsx")


page()
