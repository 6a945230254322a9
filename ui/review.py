"""Protocol review page: the findings with their witnesses, and the population impact."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from kb.presentation.render import escape_markdown as text
from kb.review.findings import KINDS
from kb.review.reviewer import review
from ui.context import context


def page() -> None:
    ctx = context()
    st.header("Protocol review")
    # kept by the library per rule set, assumptions and data set, shared with the chat's
    # "which rules contradict each other?": only the first visit waits
    with st.spinner("Reviewing the rules (z3, windows probed by the engine, every witness checked)…"):
        result = review(ctx.kb, ctx.assumptions, ctx.dataset)
    st.markdown(" · ".join(f"**{len(result.of_kind(kind))}** {kind}" for kind in KINDS))
    for n, finding in enumerate(result.findings):
        confirmed = "" if n not in result.unconfirmed else " — witness NOT confirmed"
        with st.expander(f"{finding.kind}: {', '.join(finding.criteria)}{confirmed}"):
            st.markdown(text(finding.explanation))
            for cid in dict.fromkeys(finding.criteria):
                crit = ctx.kb.criterion(cid)
                if crit is not None and crit.record_text:
                    st.caption(f"{cid}: {text(crit.record_text)}")
            st.markdown(f"*Witness ({finding.witness.kind}):* {text(finding.witness.summary)}")
            for case in finding.witness.cases:
                st.markdown(f"- {text(case.note)}: " + ", ".join(f"{c} {s}" for c, s in case.expected.items()))
    st.subheader("Population impact (the loaded patients)")
    st.dataframe(pd.DataFrame([i.as_dict() for i in result.impact]), hide_index=True, width="stretch")


page()
