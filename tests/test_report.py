"""The eligibility report for the trial file: verdict, reasons, data to collect, stamp."""

from __future__ import annotations

import re

import pytest

from kb.evaluation import assess
from kb.knowledge import KnowledgeBase
from kb.patients import Dataset
from kb.report import report_html, report_markdown, spreadsheet_cell, spreadsheet_rows


def test_the_markdown_report_has_the_answer_and_its_basis(kb: KnowledgeBase, demo: Dataset) -> None:
    assessment = assess(demo.patient("P064"), kb)
    text = report_markdown(assessment, "story")
    assert text.startswith("# Eligibility report — P064\n\n**Verdict: needs_data**")
    assert "| GI6.3 | inclusion | unknown | No platelet count result |" in text
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


def test_the_reports_show_a_files_text_as_text(kb: KnowledgeBase) -> None:
    """A patient id and drug name carrying a Markdown image (a beacon) and HTML: escaped, never live."""
    from kb.importers import load_files
    from tests.support import HOSTILE_TEXT, hostile_upload

    dataset = load_files({name: data for name, data, _ in hostile_upload()})
    assessment = assess(dataset.patient(HOSTILE_TEXT), kb)
    escaped = r"!\[b\](http\://127.0.0.1:9/x.png)\<img src=x onerror=alert(1)>"
    text = report_markdown(assessment, HOSTILE_TEXT)
    assert text.startswith(f"# Eligibility report — {escaped}\n")
    assert f"\n{escaped}\n" in text  # the story
    assert f"| GE4.7 | exclusion | unknown | '{escaped}' (events.csv row 7) is not a known" in text
    assert "![b](" not in text and not re.search(r"(?<!\\)<img", text)
    page = report_html(assessment, HOSTILE_TEXT)
    assert "<img" not in page and "&lt;img src=x onerror=alert(1)&gt;" in page
