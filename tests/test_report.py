"""The eligibility report for the trial file: verdict, reasons, data to collect, stamp."""

from __future__ import annotations

import pytest

from kb.evaluation import assess
from kb.knowledge import KnowledgeBase
from kb.patients import Dataset
from kb.report import report_html, report_markdown, spreadsheet_cell, spreadsheet_rows


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


@pytest.mark.parametrize(
    ("value", "written"),
    [
        ('=HYPERLINK("http://x","y")', '\'=HYPERLINK("http://x","y")'),
        ("@SUM(1)", "'@SUM(1)"),
        ("+1", "'+1"),
        ("-3", "'-3"),  # the text "-3": a quote
        ("\tx", "'\tx"),
        ("\rx", "'\rx"),
        (-3, -3),  # a typed number stays a number
        (78, 78),
        ("P001", "P001"),
        ("needs_data", "needs_data"),
        ("", ""),
    ],
)
def test_a_spreadsheet_cell_never_starts_a_formula(value: object, written: object) -> None:
    assert spreadsheet_cell(value) == written
    assert spreadsheet_rows([{"patient": value}]) == [{"patient": written}]
