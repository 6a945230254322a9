"""The eligibility report for the trial file: verdict, reasons, data to collect, stamp."""

from __future__ import annotations

from kb.evaluation import assess
from kb.knowledge import KnowledgeBase
from kb.patients import Dataset
from kb.report import report_html, report_markdown


def test_the_markdown_report_has_the_answer_and_its_basis(kb: KnowledgeBase, demo: Dataset) -> None:
    assessment = assess(demo.patient("P064"), kb)
    text = report_markdown(assessment, "story")
    assert text.startswith("# Eligibility report — P064\n\n**Verdict: needs_data**")
    assert "| GI6.3 | inclusion | unknown | unknown: no platelets result |" in text
    assert "- platelets (missing): no platelets result" in text
    assert f"rules {assessment.stamp['rules']}" in text and "lab_lookback_days = 28" in text


def test_the_html_report_escapes_what_it_shows(kb: KnowledgeBase, demo: Dataset) -> None:
    page = report_html(assess(demo.patient("P061"), kb), "<script>alert(1)</script>")
    assert "<script>" not in page and "&lt;script&gt;" in page
    assert "<td>GI6.3</td><td>inclusion</td><td>fail</td>" in page
