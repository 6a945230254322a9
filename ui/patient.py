"""Patient page: every criterion as a grid with its status, and each with its evidence."""

from __future__ import annotations

from datetime import timedelta

import altair as alt
import pandas as pd
import streamlit as st

from kb import Assessment, KbError, Patient, Status, assess
from kb.factbase.exposures import exposure_end, ongoing
from kb.presentation.render import escape_markdown as text
from kb.presentation.report import PatientReport, report_html, report_markdown
from ui.context import context
from ui.evidence import criterion_evidence, verdict_box


def show_verdict(assessment: Assessment, report: PatientReport) -> None:
    verdict_box(assessment, report.story)
    st.caption(report.scope)
    for cohort in report.cohorts:
        blocking = f" · blocking {', '.join(cohort.blocking)}" if cohort.blocking else ""
        unknown = f" · unknown {', '.join(cohort.unknown)}" if cohort.unknown else ""
        st.markdown(f"**cohort {cohort.cohort}**: {cohort.verdict}{blocking}{unknown}")
        if cohort.note:
            st.caption(text(cohort.note))
    st.markdown(" · ".join(f"**{k}** {v}" for k, v in report.dates.items()))
    for note in report.date_notes:
        st.caption(text(note))
    if report.to_collect:  # item names can come from the files: escaped text, not code spans
        st.markdown("**Data to collect:** " + "; ".join(text(f"{g.item} ({g.reason})") for g in report.to_collect))
    if report.manual:
        st.markdown(
            "**Verify by hand:** " + ", ".join(r.id for r in report.manual) + " (text lost from the registry record)"
        )


def show_criteria(assessment: Assessment, report: PatientReport) -> None:
    # another cohort's criteria (and the definitions only they use) would bury the answer:
    # the report leaves them out
    # the order a reader wants them: what blocks, what is open, what to check by hand, the rest
    statuses = [Status.FAIL, Status.UNKNOWN, Status.MANUAL, Status.PASS, Status.NOT_APPLICABLE]
    wanted = st.multiselect("Show", statuses, default=statuses, key="status_filter")
    rows = report.rows(wanted)
    table = pd.DataFrame(
        [
            {
                "": r.mark,
                "criterion": r.id,
                "kind": r.kind,
                "status": r.status,
                "message": r.message,
                "missing": ", ".join(r.missing),
            }
            for r in rows
        ]
    )
    st.dataframe(table, hide_index=True, width="stretch")
    if report.elsewhere:
        st.caption(f"Not applicable (other cohorts' criteria and their definitions): {len(report.elsewhere)} hidden")
    st.subheader("Evidence")
    order = {Status.FAIL: 0, Status.UNKNOWN: 1, Status.MANUAL: 2, Status.NOT_APPLICABLE: 3, Status.PASS: 4}
    shown = {r.id for r in rows}
    results = [r for r in assessment.criteria if r.id in shown]
    for result in sorted(results, key=lambda r: order[r.status]):
        criterion_evidence(result, assessment.patient_id, expanded=result.status == Status.FAIL)


def timeline_rows(patient: Patient, assessment: Assessment) -> list[dict[str, object]]:
    """The timeline's bars: each from its first day to the day after its last, so a single
    dose or a result is one day wide (a bar from a day to the same day has no width and
    was invisible); an exposure with no end date is still going on (kb.factbase.exposures.ongoing)
    and runs to the end of the plotted range, marked "ongoing", not to enrolment."""
    enrolment = assessment.reference.enrolment
    start = enrolment - timedelta(days=120)
    horizon = max(assessment.reference.dates) + timedelta(days=30)
    day = timedelta(days=1)
    rows: list[dict[str, object]] = []
    for e in patient.events:
        if e.kind not in ("medication", "vaccination", "transfusion", "cell_therapy"):
            continue
        still = ongoing(e)
        last = horizon if still else exposure_end(e, assessment.reference.dates)
        if last < start:
            continue
        rows.append(
            {
                "what": f"{e.kind}: {e.agent or e.name}" + (" (ongoing)" if still else ""),
                "from": max(e.start, start),
                "to": horizon if still else min(last + day, horizon),
                "until": "ongoing" if still else last.isoformat(),
                "single day": not still and last == e.start,
            }
        )
    rows += [
        {"what": f"result: {o.item}", "from": o.date, "to": o.date + day, "until": str(o.date), "single day": True}
        for o in patient.observations
        if start <= o.date <= horizon and "." not in o.item
    ]
    return rows


def show_timeline(patient: Patient, assessment: Assessment) -> None:
    """Medications, vaccinations, transfusions and results against the reference dates."""
    enrolment = assessment.reference.enrolment
    rows = timeline_rows(patient, assessment)
    if not rows:
        st.caption("nothing recorded in the 120 days before enrolment")
        return
    marks = pd.DataFrame(
        [{"date": d, "reference": k} for k, d in assessment.reference.as_dict().items()]
        + [
            {"date": (enrolment - timedelta(days=n)).isoformat(), "reference": f"enrolment − {n} d"}
            for n in (4, 14, 28)
        ]
    )
    frame = pd.DataFrame(rows)
    what = alt.Y("what:N", title=None, axis=alt.Axis(labelLimit=320))  # "… (ongoing)" must not be cut off
    tooltip = ["what", alt.Tooltip("from:T", title="from"), alt.Tooltip("until:N", title="until")]
    bars = alt.Chart(frame).mark_bar(size=8).encode(x=alt.X("from:T", title=None), x2="to:T", y=what, tooltip=tooltip)
    # a single day is also a tick, visible however far the chart is zoomed out
    ticks = (
        alt.Chart(frame[frame["single day"]])
        .mark_tick(thickness=2, size=12)
        .encode(x="from:T", y=what, tooltip=tooltip)
    )
    rules = alt.Chart(marks).mark_rule(strokeDash=[4, 2]).encode(x="date:T", color="reference:N", tooltip=["reference"])
    st.altair_chart(bars + ticks + rules, width="stretch")


def page() -> None:
    ctx = context()
    st.header("Patient")
    try:
        assessment = assess(ctx.dataset.patient(ctx.patient_id), ctx.kb, ctx.assumptions, ctx.as_of, explain="all")
    except KbError as exc:
        st.error(text(str(exc)))
        return
    st.session_state["assessment"] = assessment.as_dict()
    report = PatientReport.of(assessment, ctx.dataset.stories.get(ctx.patient_id, ""))
    show_verdict(assessment, report)
    left, right = st.columns(2)
    left.download_button(
        "Eligibility report (Markdown)", report_markdown(report), f"{ctx.patient_id}.md", key="report_md"
    )
    right.download_button("Eligibility report (HTML)", report_html(report), f"{ctx.patient_id}.html", key="report_html")
    st.subheader("Timeline")
    show_timeline(ctx.dataset.patient(ctx.patient_id), assessment)
    st.subheader("Criteria")
    show_criteria(assessment, report)
    st.caption("stamp: " + ", ".join(f"{k} {v}" for k, v in report.stamp.items()))


page()
