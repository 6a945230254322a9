"""Streamlit front end: pick a patient, see the verdict and every criterion with its proof.

UI only: every answer comes from the `kb` library, as the CLI's do. Run with `make run`.
"""

from __future__ import annotations

from datetime import date

import pandas as pd
import streamlit as st

from kb.assumptions import resolve_assumptions
from kb.errors import KbError
from kb.evaluation import Assessment, assess
from kb.knowledge import KnowledgeBase, load_knowledge
from kb.patients import DEMO_DATASET, Dataset, load_dataset
from kb.render import trace_dot, trace_text

# plain marks rather than emoji: they render in every font, including a headless browser's
ICONS = {"pass": "✓", "fail": "✗", "unknown": "?", "not_applicable": "–", "manual": "✎"}
VERDICTS = {
    "eligible": ("Eligible", st.success),
    "ineligible": ("Ineligible", st.error),
    "needs_data": ("Needs data", st.warning),
}


@st.cache_resource
def knowledge() -> KnowledgeBase:
    return load_knowledge()


@st.cache_resource
def demo_dataset() -> Dataset:
    return load_dataset(DEMO_DATASET)


def sidebar(kb: KnowledgeBase, dataset: Dataset) -> tuple[str, date | None, list[str]]:
    st.sidebar.header("Patient")
    ids = list(dataset.patients)
    patient_id = st.sidebar.selectbox(
        "Demo patient", ids, key="patient", format_func=lambda pid: f"{pid} — {dataset.stories.get(pid, '')[:60]}"
    )
    use_date = st.sidebar.checkbox("Evaluate as of another enrolment date", key="use_as_of")
    as_of = st.sidebar.date_input("Enrolment date", value=date(2026, 11, 24), key="as_of") if use_date else None
    st.sidebar.header("Assumptions")
    overrides = []
    for assumption in kb.assumptions.values():
        if assumption.kind == "choice":
            value = st.sidebar.selectbox(
                assumption.id,
                assumption.allowed,
                index=assumption.allowed.index(str(assumption.default)),
                help=f"{assumption.resolves}\n\n{assumption.reason}",
                key=f"a_{assumption.id}",
            )
        else:
            value = st.sidebar.number_input(
                assumption.id,
                min_value=assumption.minimum,
                max_value=assumption.maximum,
                value=int(assumption.default),
                step=1,
                key=f"a_{assumption.id}",
                help=f"{assumption.resolves}\n\n{assumption.reason}",
            )
        if str(value) != str(assumption.default):
            overrides.append(f"{assumption.id}={value}")
    return str(patient_id), as_of if isinstance(as_of, date) else None, overrides


def show_verdict(assessment: Assessment, story: str) -> None:
    title, box = VERDICTS[assessment.verdict]
    via = f" via {', '.join(assessment.eligible_via)}" if assessment.eligible_via else ""
    box(f"**{assessment.patient_id}: {title}{via}**  \n{story}")
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
        with st.expander(
            f"{ICONS[result.status]} {result.id} — {result.status}: {result.message[:120]}",
            expanded=result.status == "fail",
        ):
            crit = result.criterion
            st.markdown(f"**Protocol** ({crit.provenance}): {crit.record_text or '*lost from the registry record*'}")
            st.markdown(f"**Reading:** {crit.text}")
            if result.trace is not None:
                st.graphviz_chart(trace_dot(result.trace, f"{assessment.patient_id} {result.id}"))
                st.code(trace_text(result.trace), language=None)


def main() -> None:
    st.set_page_config(page_title="NCT06420154 eligibility", page_icon="🧬", layout="wide")
    st.title("NCT06420154 eligibility")
    st.caption("Anti-CD19 CAR-T for relapsed/refractory autoimmune disease · every answer with its evidence")
    try:
        kb = knowledge()
        dataset = demo_dataset()
    except KbError as exc:  # a rule file that does not pass the checks never reaches the engine
        st.error(str(exc))
        return
    patient_id, as_of, overrides = sidebar(kb, dataset)
    try:
        assumptions = resolve_assumptions(overrides)
        assessment = assess(dataset.patient(patient_id), kb, assumptions, as_of, explain="all")
    except KbError as exc:
        st.error(str(exc))
        return
    st.session_state["assessment"] = assessment.as_dict()
    show_verdict(assessment, dataset.stories.get(patient_id, ""))
    show_criteria(assessment)
    st.caption("stamp: " + ", ".join(f"{k} {v}" for k, v in assessment.stamp.items()))


main()
