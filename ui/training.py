"""Training page: a criterion's passing and failing vignettes side by side, and a quiz."""

from __future__ import annotations

import random

import streamlit as st

from kb import Status, Verdict, assess, assume
from kb.presentation.render import escape_markdown as text
from kb.quality.vignettes import load_vignettes
from ui.context import context, demo_dataset


@st.cache_data(show_spinner=False)
def _statuses() -> dict[str, tuple[Verdict, dict[str, Status], str, tuple[str, ...]]]:
    """Each vignette under its own assumptions: verdict, statuses, story, and the criteria
    the assessment itself reports as blocking. A failed alternative that another route
    rescues (P042's IIM-RR) is not a blocker, so the quiz must not ask for it."""
    ctx = context()
    out = {}
    for vignette in load_vignettes():
        result = assess(
            demo_dataset().patient(vignette.patient_id),
            ctx.kb,
            assume(list(vignette.assume)),
            explain="status",
        )
        statuses = {r.id: r.status for r in result.criteria}
        blocking = () if result.verdict == Verdict.ELIGIBLE else tuple(sorted(r.id for r in result.blocking))
        out[vignette.patient_id] = (result.verdict, statuses, vignette.story, blocking)
    return out


def page() -> None:
    ctx = context()
    st.header("Training")
    statuses = _statuses()
    ids = [c.id for c in ctx.kb.criteria if c.predicate]
    chosen = st.selectbox("Criterion", ids, index=ids.index("GE4.2"), key="train_criterion")
    crit = ctx.kb.criterion(chosen)
    assert crit is not None
    st.markdown(f"**{crit.id}** — {text(crit.record_text or crit.text)}")
    passing, failing = st.columns(2)
    passing.subheader("Passes")
    failing.subheader("Fails")
    for pid, (_, by_id, story, _) in statuses.items():
        if by_id.get(chosen) == Status.PASS:
            passing.markdown(f"- **{text(pid)}** {text(story)}")
        elif by_id.get(chosen) == Status.FAIL:
            failing.markdown(f"- **{text(pid)}** {text(story)}")
    st.subheader("Quiz")
    state = st.session_state.setdefault("quiz", {"asked": 0, "right": 0, "seed": 7})
    pid = random.Random(state["seed"] + state["asked"]).choice(sorted(statuses))
    verdict, _, story, blocking = statuses[pid]
    st.markdown(f"**{text(pid)}**: {text(story)}")
    guess = st.radio(
        "Is this patient eligible?",
        [Verdict.ELIGIBLE, Verdict.INELIGIBLE, Verdict.NEEDS_DATA],
        key=f"q{state['asked']}",
    )
    counted = [c.id for c in ctx.kb.criteria if c.counted]
    blocker = st.selectbox("Which criterion blocks? (if any)", ["none", *counted], key=f"b{state['asked']}")
    if st.button("Answer", key="quiz_answer"):
        right = guess == verdict and (blocker in blocking if blocking else blocker == "none")
        state["asked"] += 1
        state["right"] += int(right)
        (st.success if right else st.error)(
            f"{'Right' if right else 'Not quite'}: {text(pid)} is {verdict}"
            + (f"; blocking: {', '.join(blocking)}" if blocking else "")
        )
    st.caption(f"score: {state['right']} of {state['asked']}")


page()
