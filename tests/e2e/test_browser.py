"""The app in a real browser: pick a patient, read the verdict, open the proof."""

from __future__ import annotations

from typing import Any

from playwright.sync_api import expect


def test_pick_a_patient_and_see_the_blocking_criterion_with_its_proof(app_url: str, browser: Any) -> None:
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    page.goto(app_url, wait_until="domcontentloaded")
    expect(page.get_by_test_id("stAlert").first).to_contain_text("P001: Eligible via sle", timeout=60000)
    page.get_by_test_id("stSidebar").get_by_test_id("stSelectbox").first.click()
    page.get_by_role("option").filter(has_text="P002").click()
    expect(page.get_by_test_id("stAlert").first).to_contain_text("P002: Ineligible", timeout=30000)
    blocker = page.get_by_test_id("stExpander").filter(has_text="GI6.3 — fail").first
    expect(blocker).to_contain_text("platelets 49 ×10^9/L on 2026-11-17 < 50 required")
    expect(blocker).to_contain_text("3. Platelets ≥50×10\\^9/L;")
    proof = blocker.get_by_test_id("stGraphVizChart").locator("svg").first  # the proof tree, drawn by Graphviz
    expect(proof).to_contain_text("platelets 49", timeout=30000)
    page.close()
