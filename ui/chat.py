"""Chat page: questions in free wording, each answer kept whole with its evidence.

Every turn's `Answer` object (from `kb.presentation.answers`) stays in the session, so earlier turns
keep their proofs when the page reruns; what-ifs live only in their own answers, never in
the stored facts, so nothing hypothetical leaks into another turn or another session.
The question, and every answer text that can quote it or a file (ids, drug and item
names), is shown as text: escaped for Markdown, which Streamlit also applies to labels.
"""

from __future__ import annotations

import pandas as pd
import streamlit as st

from kb import MAX_QUESTION_CHARS, Answer, Verdict
from kb.presentation.answers import answer  # with the patient selected in the sidebar, which `kb.ask` has not
from kb.presentation.render import escape_markdown as text
from ui.context import context
from ui.evidence import criterion_evidence, criterion_list, verdict_box


def render(turn: Answer, n: int) -> None:
    """One answer: the verdict and what blocks it first (once), each criterion's sentence with
    its evidence behind a click, then whatever else the question asked for."""
    if turn.understood:
        st.caption(text(turn.understood))
    if turn.kind == "error":
        st.error(text(turn.headline))
        return
    if turn.described is not None:
        described_answer(turn)
        return
    headline = turn.headline
    if turn.question is not None and turn.question.selected and turn.question.patient:
        # a question that named no patient: first say whom it was answered about, then the rest
        about = f"About {turn.question.patient}, selected in the sidebar"
        st.markdown(f"**{text(about)}** (name another patient in the question to ask about them)")
        headline = headline.removeprefix(about).removeprefix(":").strip()
    if turn.assessment is not None and turn.kind in ("check", "blockers", "why", "missing"):
        verdict_box(turn.assessment)
        # the box says the verdict: the headline adds only what follows it ("GE4.2 fail", "9 item(s) to collect")
        a = turn.assessment
        via = f" via {', '.join(a.eligible_via)}" if a.eligible_via else ""
        for said in (f"{a.patient_id}: {a.verdict}{via}", f"{a.verdict}{via}"):
            if headline.startswith(said):
                headline = headline[len(said) :].removeprefix(";").strip()
                break
    if headline:
        st.markdown(f"**{text(headline)}**")
    for line in turn.details:
        st.markdown(text(line))
    if turn.results:
        criterion_list(turn.results, turn.assessment.patient_id if turn.assessment else "")
    if turn.rows:
        st.dataframe(pd.DataFrame(list(turn.rows)), hide_index=True, width="stretch")
    if turn.whatif is not None:
        whatif_answer(turn)
    if turn.repairs is not None:
        for k, repair in enumerate(turn.repairs.repairs, 1):
            st.markdown(
                f"**Repair {k}** ({text(repair.cost)}; earliest enrolment {repair.enrolment}) → {repair.verdict}"
            )
            st.dataframe(
                pd.DataFrame(
                    [{"change": c.kind, "item": c.item, "from": c.current, "to": c.target,
                      "criteria": ", ".join(c.criteria)} for c in repair.primary]
                ),
                hide_index=True,
                width="stretch",
            )  # fmt: skip
            if repair.until is not None:
                st.caption(text(repair.until.describe()))
        for obstacle in turn.repairs.obstacles:
            st.markdown(f"ruled out by **{text(obstacle.criterion)}**: {text(obstacle.reason)}")
    if turn.review is not None:
        for finding in turn.review.findings:
            st.markdown(f"- **{finding.kind}** ({', '.join(finding.criteria)}): {text(finding.explanation)}")
    for m, option in enumerate(turn.options):  # asked on the click's own rerun (a callback runs first)
        st.button(text(option), key=f"opt-{n}-{m}", on_click=st.session_state.__setitem__, args=("asked", option))


def described_answer(turn: Answer) -> None:
    """A patient described in words: the verdict and what blocks it first, then what was read
    into the words (to correct by rephrasing), each blocker with its evidence, and the open
    criteria and the data to collect folded away (an unrecorded patient leaves dozens open:
    one expander each would bury the answer)."""
    assert turn.described is not None
    found = turn.described
    box = {Verdict.ELIGIBLE: st.success, Verdict.INELIGIBLE: st.error}.get(found.assessment.verdict, st.warning)
    box(text(turn.headline))
    st.markdown("\n".join(f"- {text(line)}" for line in turn.details))
    criterion_list(found.blocking, "described patient")
    if found.open:
        with st.expander(f"Still open: {len(found.open)} criteria"):
            st.dataframe(
                pd.DataFrame([{"criterion": r.id, "why open": r.message} for r in found.open]),
                hide_index=True,
                width="stretch",
            )
    if turn.rows:
        with st.expander(f"Data to collect: {len(turn.rows)} item(s)"):
            st.dataframe(pd.DataFrame(list(turn.rows)), hide_index=True, width="stretch")


def whatif_answer(turn: Answer) -> None:
    """The criteria the change moves, then what still blocks after it (as `kb whatif` prints)."""
    assert turn.whatif is not None
    changed = turn.whatif.differences
    st.dataframe(
        pd.DataFrame(
            [{"criterion": d.criterion, "before": d.before.status, "after": d.after.status,
              "after (why)": d.after.message} for d in changed]
        ) if changed else pd.DataFrame([{"criterion": "—", "before": "", "after": "no criterion changes status"}]),
        hide_index=True,
        width="stretch",
    )  # fmt: skip
    after = turn.whatif.after
    verdict = f"{text(after.patient_id)} would be {after.verdict.replace('_', ' ')}"
    if not after.blocking and not after.unknown:
        st.markdown(f"**Nothing else blocks:** {verdict}.")
    for title, results in (("Still blocking after the change", after.blocking), ("Still to decide", after.unknown)):
        if results:
            st.markdown(f"**{title}** ({verdict}):")
            for result in results:
                criterion_evidence(result, after.patient_id)


def page() -> None:
    ctx = context()
    st.header("Ask")
    st.caption(f"Current patient: {text(ctx.patient_id)} (pick another in the sidebar, or name one in the question)")
    turns: list[Answer] = st.session_state.setdefault("chat", [])
    asked = st.chat_input(
        "Ask about a patient or the protocol, e.g. what would make P062 eligible?",
        key="ask",
        max_chars=MAX_QUESTION_CHARS,  # the box stops there, and Streamlit cuts what any client sends to it
    )
    asked = asked or st.session_state.pop("asked", None)
    if asked:
        with st.spinner("Evaluating…"):
            turns.append(answer(str(asked), ctx.kb, ctx.dataset, ctx.assumptions, ctx.patient_id, ctx.as_of))
    if not turns:  # a greeting with clickable examples for the current patient, not a turn
        with st.chat_message("assistant"):
            render(answer("help", ctx.kb, ctx.dataset, ctx.assumptions, ctx.patient_id, ctx.as_of), -1)
    for n, turn in enumerate(turns):
        with st.chat_message("user"):
            st.markdown(text(turn.text))  # what was typed, as typed: never an image, link or HTML
        with st.chat_message("assistant"):
            render(turn, n)


page()
