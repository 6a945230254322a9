"""The app in a real browser: pick a patient, read the verdict, open the proof."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import expect

# one streamlit server and one browser serve every test here: keep them on one xdist worker
pytestmark = pytest.mark.xdist_group("browser")


def test_pick_a_patient_and_see_the_blocking_criterion_with_its_proof(app_url: str, browser: Any) -> None:
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    page.goto(f"{app_url}/patient", wait_until="domcontentloaded")  # the app opens on the chat
    expect(page.get_by_test_id("stAlert").first).to_contain_text("P001: Eligible via sle", timeout=60000)
    page.get_by_test_id("stSidebar").get_by_test_id("stSelectbox").first.click()
    page.get_by_role("option").filter(has_text="P002").click()
    expect(page.get_by_test_id("stAlert").first).to_contain_text("P002: Ineligible", timeout=30000)
    blocker = page.get_by_test_id("stExpander").filter(has_text="GI6.3 — fail").first
    expect(blocker).to_contain_text("GI6.3 — fail: Platelet count 49 ×10^9/L on 17 Nov 2026, below 50")
    expect(blocker).to_contain_text("platelets 49 ×10^9/L on 2026-11-17 < 50 required")  # the formal proof, inside
    expect(blocker).to_contain_text("3. Platelets ≥50×10\\^9/L;")
    proof = blocker.get_by_test_id("stGraphVizChart").locator("svg").first  # the proof tree, drawn by Graphviz
    expect(proof).to_contain_text("platelets 49", timeout=30000)
    page.close()


def test_ask_in_the_chat_and_open_the_proof(app_url: str, browser: Any, shots: Path) -> None:
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    page.goto(app_url, wait_until="domcontentloaded")
    box = page.get_by_test_id("stChatInputTextArea")
    box.fill("why is p11 not eligible?")
    box.press("Enter")
    expect(page.get_by_text("understood: blockers · P011")).to_be_visible(timeout=60000)
    blocker = page.get_by_test_id("stExpander").filter(has_text="GE4.3 — fail").first
    blocker.click()
    expect(blocker.get_by_test_id("stGraphVizChart").locator("svg").first).to_contain_text("rituximab", timeout=30000)
    expect(blocker).to_contain_text("Rituximab (recorded as 利妥昔单抗) on 3 Nov 2026")
    # the recorded Chinese name renders in a CJK font, not as empty boxes (.ci/run installs fonts-noto-cjk)
    assert page.evaluate("document.fonts.check('16px \"Noto Sans CJK SC\"')")
    assert any("CJK" in family for family in rendering_fonts(page, "利妥昔单抗")), rendering_fonts(page, "利妥昔单抗")
    blocker.screenshot(path=str(shots / "proof.png"))
    box.fill("what if p2's platelets were 80")
    box.press("Enter")
    expect(page.get_by_text("understood: what-if · P002 · platelets=80")).to_be_visible(timeout=60000)
    expect(page.get_by_text("P002: ineligible → ineligible")).to_be_visible()
    expect(page.get_by_text("Still blocking after the change").first).to_be_visible()  # what the change leaves
    reply = page.get_by_test_id("stChatMessage").last
    expect(reply.get_by_test_id("stDataFrame").first).to_be_visible()
    page.wait_for_timeout(1500)  # the table is drawn on a canvas after it appears: let it paint for the picture
    reply.screenshot(path=str(shots / "chat.png"))
    page.close()


def test_describe_a_patient_then_ask_the_protocol(app_url: str, browser: Any, shots: Path) -> None:
    """Issue 17: a patient described in words is answered about the words, never about the
    patient selected in the sidebar (P001), and a protocol question from the rules."""
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    page.goto(app_url, wait_until="domcontentloaded")
    box = page.get_by_test_id("stChatInputTextArea")
    box.fill("a 45-year-old woman with lupus, rituximab 2 weeks ago")
    box.press("Enter")
    expect(page.get_by_text("understood: a patient described in words (not a stored patient)")).to_be_visible(
        timeout=60000
    )
    reply = page.get_by_test_id("stChatMessage").last
    expect(reply).to_contain_text("blocked by GE4.3", timeout=30000)
    expect(reply).to_contain_text(re.compile(r"rituximab given on \d{4}-\d{2}-\d{2} \(2 weeks ago\)"))  # read as a day
    assert "P001" not in reply.inner_text()
    reply.screenshot(path=str(shots / "described.png"))
    box.fill("what is the platelet threshold?")
    box.press("Enter")
    expect(page.get_by_text("understood: protocol")).to_be_visible(timeout=60000)
    reply = page.get_by_test_id("stChatMessage").last
    expect(reply).to_contain_text("GI6.3: platelet count must be ≥ 50 ×10⁹/L", timeout=30000)
    assert "P001" not in reply.inner_text()
    reply.screenshot(path=str(shots / "protocol.png"))
    page.close()


def test_switch_an_assumption_in_the_sidebar(app_url: str, browser: Any, shots: Path) -> None:
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    page.goto(f"{app_url}/patient", wait_until="domcontentloaded")
    page.get_by_test_id("stSidebar").get_by_test_id("stSelectbox").first.click()
    page.keyboard.type("P017")  # the list is long: filter it by typing
    page.get_by_role("option").filter(has_text="P017").click()
    expect(page.get_by_test_id("stAlert").first).to_contain_text("P017: Eligible", timeout=30000)
    page.get_by_test_id("stSidebar").get_by_text("Medications and washouts").click()  # grouped, collapsed
    window = page.get_by_role("spinbutton", name="Steroids and immunosuppressants: days stopped before enrolment")
    window.fill("28")  # "within 4 days" read as 4 weeks
    window.press("Enter")
    expect(page.get_by_test_id("stAlert").first).to_contain_text("P017: Ineligible", timeout=30000)
    expect(page.get_by_test_id("stExpander").filter(has_text="GE4.7 — fail").first).to_be_visible()
    page.screenshot(path=str(shots / "assumption.png"))
    page.close()


def test_two_sessions_never_see_each_others_what_ifs(app_url: str, browser: Any) -> None:
    first, second = browser.new_context(), browser.new_context()
    a, b = first.new_page(), second.new_page()
    for page in (a, b):
        page.goto(app_url, wait_until="domcontentloaded")
        expect(page.get_by_test_id("stChatInputTextArea")).to_be_visible(timeout=60000)
    ask(a, "what if P002's platelets were 80")
    ask(b, "is P002 eligible?")
    expect(a.get_by_text("understood: what-if · P002 · platelets=80")).to_be_visible(timeout=60000)
    expect(b.get_by_text("understood: check · P002")).to_be_visible(timeout=60000)
    expect(b.get_by_test_id("stExpander").filter(has_text="GI6.3 — fail").first).to_contain_text("platelets 49")
    expect(b.get_by_text("platelets=80")).to_have_count(0)  # the other session's hypothetical
    ask(a, "is P002 eligible?")
    expect(a.get_by_text("understood: check · P002")).to_be_visible(timeout=60000)
    expect(a.get_by_test_id("stExpander").filter(has_text="GI6.3 — fail").first).to_contain_text("platelets 49")
    first.close()
    second.close()


def ask(page: Any, question: str) -> None:
    box = page.get_by_test_id("stChatInputTextArea")
    box.fill(question)
    box.press("Enter")


def rendering_fonts(page: Any, text: str) -> list[str]:
    """The fonts Chromium draws the first element showing `text` with (DevTools' platform fonts):
    a glyph no font has would be drawn as a box, and no CJK family would be listed."""
    cdp = page.context.new_cdp_session(page)
    cdp.send("DOM.enable")
    cdp.send("CSS.enable")
    cdp.send("DOM.getDocument", {"depth": -1})
    search = cdp.send("DOM.performSearch", {"query": text})
    nodes = cdp.send("DOM.getSearchResults", {"searchId": search["searchId"], "fromIndex": 0, "toIndex": 1})
    fonts = cdp.send("CSS.getPlatformFontsForNode", {"nodeId": nodes["nodeIds"][0]})
    cdp.detach()
    return [f["familyName"] for f in fonts["fonts"]]
