"""The eligibility report: one model (`PatientReport`), rendered as text, Markdown and HTML."""

from __future__ import annotations

import contextlib
import io
import re
from pathlib import Path

import pytest
from markdown_it import MarkdownIt
from markdown_it.token import Token

from kb.catalogue.knowledge import KnowledgeBase
from kb.cli import main
from kb.presentation.report import PatientReport, assessment_text, report_html, report_markdown
from kb.reasoning.evaluation import Assessment, assess
from kb.records.patients import Dataset
from kb.status import MARKS, Status, Verdict

GOLDEN = Path(__file__).parent / "golden"
#: eligible via a cohort, ineligible, a cohort capped by a note, needs data (data to collect,
#: verify by hand), no cohort at all
GOLDEN_TEXT = ("P001", "P002", "P006", "P010", "P013")


def _unstamped(text: str) -> str:
    """The stamp hashes the rule files' text, which a refactor may touch without changing an answer."""
    return re.sub(r"(?m)^  stamp: .*$", "  stamp: …", text)


def _kb(*argv: str) -> str:
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert main(list(argv)) == 0
    return out.getvalue()


@pytest.mark.parametrize("patient_id", GOLDEN_TEXT)
def test_kb_check_prints_the_text_it_printed_before_the_templates(patient_id: str) -> None:
    """`kb check` text, line for line, as before the report became a model and templates."""
    golden = (GOLDEN / f"check_{patient_id}.txt").read_text(encoding="utf-8")
    assert _unstamped(_kb("check", patient_id)) == _unstamped(golden)


def test_text_summary(demo_assessments: dict[str, Assessment]) -> None:
    text = assessment_text(demo_assessments["P010"])
    assert text.splitlines()[0] == "P010: NEEDS_DATA"
    assert "? GE3      unknown (missing): No hepatitis B virus DNA result" in text
    assert "- breastfeeding (not_attested): breastfeeding not attested" in text
    assert "verify by hand: GI1, GE1" in text
    assert "lab_lookback_days=28" in text


def test_the_model_holds_the_answer_once(demo_assessments: dict[str, Assessment]) -> None:
    assessment = demo_assessments["P010"]
    report = PatientReport.of(assessment, "a story")
    assert (report.patient, report.verdict, report.story) == ("P010", Verdict.NEEDS_DATA, "a story")
    assert report.dates == {"screening": "2026-11-17", "enrolment": "2026-11-24", "apheresis": "2026-11-24"}
    ge3 = next(r for r in report.criteria if r.id == "GE3")
    assert (ge3.mark, ge3.status, ge3.reason) == ("?", Status.UNKNOWN, "missing")
    assert ge3.message == "No hepatitis B virus DNA result" and "hbv_dna" in ge3.missing
    assert [r.id for r in report.manual] == ["GI1", "GE1"]
    assert {g.item for g in report.to_collect} >= {"hbv_dna", "breastfeeding"}
    assert all(r.mark == MARKS[r.status] for r in report.criteria)
    # other cohorts' criteria are listed apart, never among this patient's rows
    assert report.elsewhere and not {r.id for r in report.criteria} & set(report.elsewhere)
    assert [r.id for r in report.rows([Status.UNKNOWN])] == [r.id for r in assessment.unknown]


def test_the_text_can_list_only_what_blocks_or_is_open(demo_assessments: dict[str, Assessment]) -> None:
    text = assessment_text(demo_assessments["P002"], show_all=False)
    assert "  ✗ GI6.3    fail: Platelet count 49 ×10^9/L on 17 Nov 2026, below 50" in text
    assert "✓" not in text and "✎" not in text


def test_the_markdown_report_has_the_answer_and_its_basis(kb: KnowledgeBase, demo: Dataset) -> None:
    assessment = assess(demo.patient("P064"), kb)
    text = report_markdown(PatientReport.of(assessment, "story"))
    assert text.startswith("# Eligibility report — P064\n\n**Verdict: needs_data**\n\nstory\n")
    assert "- cohort sle: needs_data; unknown GI6.3, GE3\n" in text
    assert "| ? | GI6.3 | inclusion | unknown (missing) | No platelet count result |" in text
    assert "- platelets (missing): no platelets result" in text
    assert "\n## Verify by hand\n\n- GI1: " in text
    assert f"rules {assessment.stamp['rules']}" in text and "lab_lookback_days = 28" in text


def _tokens(markdown: str) -> list[Token]:
    tokens = MarkdownIt("commonmark").enable("table").parse(markdown)
    return [t for token in tokens for t in (token, *(token.children or ()))]


def test_kb_check_format_md_is_markdown(demo_assessments: dict[str, Assessment]) -> None:
    """Headings, a table with one row per criterion, lists: real Markdown, not text in a code block."""
    text = _kb("check", "P010", "--format", "md")
    tokens = _tokens(text)
    kinds = [t.type for t in tokens]
    assert "fence" not in kinds and "code_block" not in kinds
    headings = [tokens[n + 1].content for n, t in enumerate(tokens) if t.type == "heading_open"]
    assert headings == [
        "Eligibility report — P010",
        "Cohorts",
        "Reference dates",
        "Criteria",
        "Data to collect",
        "Verify by hand",
        "Basis",
    ]
    rows = kinds.count("tr_open")
    shown = len(PatientReport.of(demo_assessments["P010"]).criteria)
    assert kinds.count("table_open") == 1 and rows == shown + 1  # the header and one row per criterion
    assert "bullet_list_open" in kinds
    # the vignette's story follows the verdict, as in the patient page's download
    assert text.split("\n")[4].startswith("Woman with GPA found HBsAg positive at screening; HBV DNA pending")


def test_the_html_report_escapes_what_it_shows(kb: KnowledgeBase, demo: Dataset) -> None:
    page = report_html(PatientReport.of(assess(demo.patient("P061"), kb), "<script>alert(1)</script>"))
    assert "<script>" not in page and "&lt;script&gt;" in page
    assert "<td>✗</td><td>GI6.3</td><td>inclusion</td><td>fail</td>" in page
    assert page.startswith("<!doctype html>") and page.rstrip().endswith("</html>")


def test_the_reports_show_a_files_text_as_text(kb: KnowledgeBase) -> None:
    """A patient id and drug name carrying a Markdown image (a beacon) and HTML: escaped, never live."""
    from kb.records.importers import load_files
    from tests.support import ESCAPED_HOSTILE_TEXT, HOSTILE_TEXT, hostile_upload

    dataset = load_files({name: data for name, data, _ in hostile_upload()})
    report = PatientReport.of(assess(dataset.patient(HOSTILE_TEXT), kb), HOSTILE_TEXT)
    text = report_markdown(report)
    assert text.startswith(f"# Eligibility report — {ESCAPED_HOSTILE_TEXT}\n")
    assert f"\n{ESCAPED_HOSTILE_TEXT}\n" in text  # the story
    row = f"| GE4.7 | exclusion | unknown (unknown_term) | '{ESCAPED_HOSTILE_TEXT}' (events.csv row 7) is not a"
    assert row in text
    assert "![b](" not in text and not re.search(r"(?<!\\)<img", text)
    kinds = {t.type for t in _tokens(text)}
    assert not kinds & {"image", "link_open", "html_inline", "html_block"}
    page = report_html(report)
    assert "<img" not in page and "&lt;img src=x onerror=alert(1)&gt;" in page
