"""The chat page, driven headless with AppTest: every intent in three wordings (one with a
typo, one with a loose id), the answer's content, and a clarifying choice when unclear."""

from __future__ import annotations

import re

import pytest
from streamlit.testing.v1 import AppTest

from benchmarks.chat import DESCRIBED, DESCRIBED_TODAY
from tests.support import ROOT

APP = str(ROOT / "app.py")


def ask(question: str) -> AppTest:
    app = AppTest.from_file(APP, default_timeout=120).run()
    app.chat_input(key="ask").set_value(question).run()
    assert not app.exception
    return app


def shown(app: AppTest) -> str:
    """Everything the answer shows as text: captions, markdown, tables, expander labels."""
    parts = [c.value for c in app.caption] + [m.value for m in app.markdown] + [e.label for e in app.expander]
    parts += [a.value for a in (*app.success, *app.error, *app.warning)]
    parts += [df.value.to_csv() for df in app.dataframe]
    parts += [b.label for b in app.button]
    return "\n".join(str(p) for p in parts)


@pytest.mark.parametrize(
    ("question", "expected"),
    [
        # is P eligible / check / summarise
        ("is P004 eligible?", ["understood: check · P004", "P004: Eligible via aav"]),
        ("chek patient 4 elgibility", ["understood: check · P004", "P004: Eligible"]),
        ("summarise p-4", ["understood: check · P004"]),
        # which criteria block P / why is P not eligible
        ("which criteria block P011?", ["understood: blockers · P011", "GI6.2", "GE4.3 — fail"]),
        ("why is p11 not eligible", ["understood: blockers · P011", "GE4.3"]),
        ("what blcoks patient 11", ["understood: blockers · P011", "GI6 — fail"]),
        # why is P excluded by a criterion
        ("why is P059 excluded by GE4.2?", ["understood: why · P059 · GE4.2", "P059: Ineligible", "GE4.2 fail"]),
        ("why does p59 fail ge 4.2", ["understood: why · P059 · GE4.2", "MMR"]),
        ("why is patient 59 blocked by the live vaccine rule", ["understood: why · P059 · GE4.2"]),
        # what would make P eligible / when could P be enrolled
        ("what would make P062 eligible?", ["understood: repair · P062", "on or after 2026-12-19", "≥ 50 ×10^9/L"]),
        ("when could p-59 be enrolled", ["understood: repair · P059", "earliest enrolment 2026-12-19"]),
        ("what would it take for p0060 to be eligble", ["understood: repair · P060", "tacrolimus", "2026-12-03"]),
        # until when is P eligible
        ("until when is P004 eligible?", ["understood: until · P004", "eligible until 2026-11-24"]),
        ("how long does p23 stay eligible", ["understood: until · P023", "eligible until 2026-12-15"]),
        ("eligible untill when, patient 4?", ["understood: until · P004", "GI2 pass → fail"]),
        # what if
        ("what if P002's platelets were 80?", ["understood: what-if · P002 · platelets=80", "GI6.3"]),
        ("what if we enrol p6 on 2027-01-12", ["understood: what-if · P006 · enrolment=2027-01-12"]),
        ("what if the steroid window were 4 weeks for P017", ["assume:ge4_7_window_days=28", "GE4.7"]),
        ("what if P002's plateletes were 80", ["understood: what-if · P002 · platelets=80"]),
        # missing data
        ("what data are missing for P010?", ["understood: missing · P010", "hbv_dna", "breastfeeding"]),
        ("what is still to collect for p10", ["understood: missing · P010", "9 item(s) to collect"]),
        ("which results are mising for patient 10", ["understood: missing · P010"]),
        # explain a criterion
        ("explain criterion GE4.7", ["understood: criterion · GE4.7", "within 4 days before enrollment"]),
        ("show the rule for SLE-I2", ["understood: criterion · SLE-I2", "Deciding predicate"]),
        ("explain the steroid rule", ["understood: criterion · GE4.7"]),
        # the protocol review
        ("which rules contradict each other?", ["understood: review", "dead rule", "SSC-E6"]),
        ("review the protocol", ["understood: review", "clotrexate"]),
        ("any redundant or dead rules?", ["understood: review", "redundancy"]),
        # screening
        ("which patients are eligible?", ["understood: screen", "17 of 78 eligible", "P061"]),
        ("screen the cohort", ["understood: screen", "P004"]),
        ("who is eligible?", ["understood: screen"]),
        # help and anything else
        ("help", ["understood: help", "What would make P001 eligible?"]),
        ("what can you do", ["understood: help", "Review the protocol"]),
        ("tell me a joke", ["I did not understand", "Is P001 eligible?"]),
    ],
)
def test_every_intent_answers_with_its_evidence(question: str, expected: list[str]) -> None:
    text = shown(ask(question))
    for part in expected:
        assert part in text, (part, text[:800])


def test_an_ambiguous_question_gets_a_clarifying_choice() -> None:
    app = ask("is P3 or P4 eligible?")
    assert "Which of these patients do you mean?" in shown(app)
    choices = [b.label for b in app.button if b.label in ("P003", "P004")]
    assert choices == ["P003", "P004"]


def test_a_clicked_example_is_asked_and_earlier_turns_keep_their_evidence() -> None:
    app = AppTest.from_file(APP, default_timeout=120).run()
    app.button(key="opt--1-1").click().run()  # "Which criteria block P001?"
    app.chat_input(key="ask").set_value("why is P11 not eligible").run()
    text = shown(app)
    assert "understood: blockers · P001" in text and "understood: blockers · P011" in text
    assert "GE4.3 — fail" in text  # the second answer's evidence
    assert len(app.chat_message) == 4  # two questions, two answers


def test_what_ifs_never_reach_the_stored_patient() -> None:
    app = ask("what if P002's platelets were 80")
    app.chat_input(key="ask").set_value("is P002 eligible?").run()
    assert "P002: Ineligible" in shown(app)
    assert "Platelet count 49" in shown(app)  # the stored count, not the hypothetical 80


def test_a_question_is_read_up_to_the_limit() -> None:
    """The input box takes MAX_QUESTION_CHARS (Streamlit cuts what a client sends beyond it)."""
    from kb.presentation.questions import MAX_QUESTION_CHARS

    app = ask("why is P011 not eligible" + "?" * 2476)  # 2,500 characters
    assert app.chat_input(key="ask").proto.max_chars == MAX_QUESTION_CHARS
    assert len(app.session_state["chat"][0].text) == MAX_QUESTION_CHARS
    assert "understood: blockers · P011" in shown(app)


def test_a_question_and_an_uploaded_id_are_shown_as_text() -> None:
    """Issue 16: the chat echoed the question through Markdown (an image beacon fired), and ids and
    drug names from an upload reached the verdict box, labels and buttons as Markdown."""
    from tests.support import ESCAPED_HOSTILE_TEXT as ESCAPED
    from tests.support import HOSTILE_TEXT, assert_shown_as_text, hostile_upload, rendered

    app = AppTest.from_file(APP, default_timeout=120).run()
    app.sidebar.file_uploader(key="upload").set_value(hostile_upload()).run()
    assert_shown_as_text(rendered(app))  # the greeting: its example buttons name the current patient
    assert f"Is {ESCAPED} eligible?" in [b.label for b in app.button]
    app.chat_input(key="ask").set_value(f"is {HOSTILE_TEXT} eligible?").run()
    assert not app.exception
    texts = rendered(app)
    assert_shown_as_text(texts)
    assert app.chat_message[0].markdown[0].value == f"is {ESCAPED} eligible?"  # the question, as typed
    assert app.session_state["chat"][0].text == f"is {HOSTILE_TEXT} eligible?"  # and kept as typed
    assert any(t.startswith(f"**{ESCAPED}: Needs data**") for t in texts)
    assert any(t.startswith(f"? GE4.7 — unknown: '{ESCAPED}'") for t in texts)


def test_a_described_patient_is_never_answered_about_the_selected_one() -> None:
    """Issue 17: "can my 45 year old lupus patient on rituximab last month enrol?" was answered
    "P001: Eligible via sle" about the patient selected in the sidebar. With P001 selected and
    enrolment set to the stories' day, every story of the benchmark in its three wordings, then
    the issue's own question: each answer is about the words (the criteria they imply blocking,
    still open, or neither), and none names P001 or any stored patient."""
    app = AppTest.from_file(APP, default_timeout=120).run()
    app.sidebar.checkbox(key="use_as_of").check().run()
    app.sidebar.date_input(key="as_of").set_value(DESCRIBED_TODAY).run()
    questions = [(text, expected) for wordings, expected in DESCRIBED for text in wordings]
    questions.append(("can my 45 year old lupus patient on rituximab last month enrol?", {"GE4.3": "unknown"}))
    for question, expected in questions:
        app.session_state["chat"] = []  # one turn at a time: each answer read on its own
        app.chat_input(key="ask").set_value(question).run()
        assert not app.exception
        reply = app.chat_message[1]
        said = "\n".join(
            [str(c.value) for c in reply.caption] + [str(m.value) for m in reply.markdown]
            + [str(a.value) for a in (*reply.error, *reply.warning, *reply.success)]
            + [e.label for e in reply.expander] + [df.value.to_csv() for df in reply.dataframe]
        )  # fmt: skip
        assert "understood: a patient described in words (not a stored patient)" in said, question
        assert not re.search(r"\bP\d{3}\b", said), (question, said[:600])
        blocking = {e.label.split(" — ")[0][2:] for e in reply.expander if " — fail: " in e.label}
        still_open = {c for df in reply.dataframe if "criterion" in df.value for c in df.value["criterion"]}
        for criterion, status in expected.items():
            if criterion == "COHORT":
                continue  # the cohort is the verdict's, not a row of its own
            got = "fail" if criterion in blocking else "unknown" if criterion in still_open else "pass"
            assert got == status, (question, criterion, got)


@pytest.mark.parametrize("question", ["tell me a joke", "what's the weather in Shanghai", "asdf qwerty"])
def test_an_unclear_question_is_asked_back_with_choices_in_the_chat(question: str) -> None:
    app = ask(question)
    reply = app.chat_message[1]
    said = "\n".join(str(m.value) for m in reply.markdown)
    assert "I did not understand" in said and "P001" not in said.split("pick a question")[0]
    assert "a 45-year-old woman with lupus, rituximab 2 weeks ago" in [b.label for b in reply.button]


@pytest.mark.parametrize("question", ["is she eligible?", "is this patient eligible", "which criteria block her?"])
def test_a_question_pointing_at_the_selected_patient_says_whom_first(question: str) -> None:
    """Issue 17: a question naming no patient is about the selected one only when it points at
    it, and the answer's first line says so; the verdict is shown once."""
    app = ask(question)  # P001 is selected
    reply = app.chat_message[1]
    assert reply.caption[0].value.endswith("P001 (selected)")
    assert reply.markdown[0].value.startswith("**About P001, selected in the sidebar**")
    assert [s.value for s in reply.success] == ["**P001: Eligible via sle**"]
    assert not any("eligible via sle" in str(m.value).casefold() for m in reply.markdown)  # not twice


# How an answer reads: the verdict once and first, what blocks it, each criterion's plain
# sentence with its formal proof and graph behind a click; a what-if says what still blocks.


def test_the_verdict_comes_once_and_first_with_the_blockers_in_words() -> None:
    app = ask("which criteria block P011?")
    answer = app.chat_message[1]
    verdicts = [e.value for e in app.error]
    assert len(verdicts) == 1 and verdicts[0].startswith("**P011: Ineligible**")
    assert "Blocked by" in verdicts[0] and "GE4.3" in verdicts[0]
    markdown = [m.value for m in answer.markdown]
    assert not any("P011: ineligible" in m for m in markdown)  # not printed a second time below the box
    labels = [e.label for e in answer.expander]
    ge43 = next(label for label in labels if label.startswith("✗ GE4.3 — fail: "))
    assert ge43 == (
        "✗ GE4.3 — fail: Rituximab (recorded as 利妥昔单抗) on 3 Nov 2026, within the window from 27 Oct 2026 "
        "(28 days before enrolment) to enrolment (24 Nov 2026)"
    )
    codes = [c.value for c in answer.code]
    assert any("From = Enrolment − 28 = 2026-10-27" in c for c in codes)  # the formal proof, inside the expander
    charts = app.get("graphviz_chart")
    assert charts and any("利妥昔单抗" in c.proto.spec and "fontsize=16" in c.proto.spec for c in charts)


def test_a_what_if_shows_what_still_blocks_after_the_change() -> None:
    app = ask("what if P002's platelets were 80")
    answer = app.chat_message[1]
    table = app.dataframe[0].value.set_index("criterion")
    assert table.loc["GI6.3", "after"] == "pass"
    markdown = "\n".join(m.value for m in answer.markdown)
    assert "**Still blocking after the change** (P002 would be ineligible):" in markdown
    labels = [e.label for e in answer.expander]
    assert any(label.startswith("✗ GI8 — fail: Oxygen saturation") for label in labels)
    assert not any(label.startswith("✗ GI6.3") for label in labels)  # mended by the change
