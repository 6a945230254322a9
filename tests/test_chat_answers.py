"""How a chat answer reads (issue 17): the verdict once and first, what blocks it, each
criterion's plain sentence with its formal proof and graph behind a click; a what-if says what
still blocks after the change."""

from __future__ import annotations

from streamlit.testing.v1 import AppTest

from tests.support import ROOT

APP = str(ROOT / "app.py")


def ask(question: str) -> AppTest:
    app = AppTest.from_file(APP, default_timeout=120).run()
    app.chat_input(key="ask").set_value(question).run()
    assert not app.exception
    return app


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
