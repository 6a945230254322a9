"""Streamlit front end: a chat that answers eligibility questions with evidence, and pages
for one patient, the cohort, the protocol review and training.

UI only: every answer comes from the `kb` library, as the CLI's do. Run with `make run`.
"""

from __future__ import annotations

import streamlit as st

from kb import KbError
from ui.context import demo_dataset, knowledge, sidebar


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
    st.session_state["context"] = sidebar(kb, dataset)
    pages = [
        st.Page("ui/chat.py", title="Ask", default=True),
        st.Page("ui/patient.py", title="Patient"),
        st.Page("ui/cohort.py", title="Cohort"),
        st.Page("ui/review.py", title="Protocol review"),
        st.Page("ui/training.py", title="Training"),
    ]
    st.navigation(pages).run()


main()
