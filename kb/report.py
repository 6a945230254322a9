"""The eligibility report for the trial file: the answer, its reasons and its stamp.

An investigator files what the tool said and on what basis: the verdict per cohort, every
criterion with its status and one-line reason, the data still to collect, the criteria to
verify by hand, the reference dates, the assumptions in force and the stamp (rules,
assumptions, facts), so the answer can be reproduced. Markdown for the trial file, HTML
(escaped, no scripts) for a browser or a printer. Both show the files' text as text: a
patient id or drug name such as `![b](http://host/x.png)<img src=x>` is escaped (Markdown
backslashes, HTML entities), never an image, a link or markup in the reader's viewer.

Screening tables leave as CSV and Excel files (`kb screen --out`, the Cohort page): every
cell goes through `spreadsheet_cell`, so a patient id or name from a file never becomes a
formula in the investigator's spreadsheet.
"""

from __future__ import annotations

import html
from collections.abc import Iterable, Mapping

from kb.evaluation import Assessment
from kb.render import escape_markdown

__all__ = ["FORMULA_STARTS", "report_html", "report_markdown", "spreadsheet_cell", "spreadsheet_rows"]

#: What makes a spreadsheet read a cell as a formula (OWASP, "CSV Injection"): = + - @, tab, CR.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def spreadsheet_cell(value: object) -> object:
    """A cell that a spreadsheet shows as the text it is: a text starting a formula gets a quote.

    An uploaded patient id `=HYPERLINK("http://x","y")` or `@SUM(1)` written raw turns live
    when the CSV or workbook is opened (a link that sends data away, a command). OWASP's
    remedy: prefix a single quote, which Excel and LibreOffice show as text. Typed numbers
    (a count, -3 as a number) stay numbers; the text "-3" is text and gets its quote too.
    In a workbook, the quoted text is a string cell (openpyxl data type 's'), never 'f'.
    """
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return value


def spreadsheet_rows(rows: Iterable[Mapping[str, object]]) -> list[dict[str, object]]:
    """Rows with every cell made inert by `spreadsheet_cell` (for csv.DictWriter or a DataFrame)."""
    return [{key: spreadsheet_cell(value) for key, value in row.items()} for row in rows]


def _cells(text: str) -> str:
    """One table cell: escaped (| included) and on one line."""
    return escape_markdown(text.replace("\n", " "))


def report_markdown(assessment: Assessment, story: str = "") -> str:
    a = assessment
    e = escape_markdown  # every text that can quote a file or the protocol
    via = f" (via {', '.join(a.eligible_via)})" if a.eligible_via else ""
    lines = [f"# Eligibility report — {e(a.patient_id)}", "", f"**Verdict: {a.verdict}{via}**", ""]
    if story:
        lines += [e(story), ""]
    lines += [f"Scope: {e(a.scope)}.", ""]
    for cohort in a.cohorts:
        lines.append(
            f"- cohort {cohort.cohort}: {cohort.verdict}"
            + (f"; blocking {', '.join(cohort.blocking)}" if cohort.blocking else "")
            + (f"; unknown {', '.join(cohort.unknown)}" if cohort.unknown else "")
            + (f" ({e(cohort.note)})" if cohort.note else "")
        )
    lines += ["", "Reference dates: " + ", ".join(f"{k} {v}" for k, v in a.reference.as_dict().items()), ""]
    elsewhere = {r.id for r in a.elsewhere}
    lines += ["| criterion | kind | status | reason |", "|---|---|---|---|"]
    lines += [
        f"| {r.id} | {r.criterion.kind} | {r.status} | {_cells(r.message)} |"
        for r in a.criteria
        if r.id not in elsewhere
    ]
    if a.to_collect:
        lines += ["", "## Data to collect", ""] + [f"- {e(f'{g.item} ({g.reason}): {g.detail}')}" for g in a.to_collect]
    if a.manual_checks:
        lines += ["", "## Verify by hand", ""] + [f"- {r.id}: {e(r.criterion.text)}" for r in a.manual_checks]
    lines += ["", "## Basis", ""]
    lines += ["Assumptions: " + ", ".join(f"{k} = {v}" for k, v in a.assumptions.items())]
    lines += ["", "Stamp: " + ", ".join(f"{k} {v}" for k, v in a.stamp.items())]
    return "\n".join(lines) + "\n"


def report_html(assessment: Assessment, story: str = "") -> str:
    a = assessment
    e = html.escape
    via = f" (via {', '.join(a.eligible_via)})" if a.eligible_via else ""
    elsewhere = {r.id for r in a.elsewhere}
    rows = "".join(
        f"<tr><td>{e(r.id)}</td><td>{e(r.criterion.kind)}</td><td>{e(r.status)}</td><td>{e(r.message)}</td></tr>"
        for r in a.criteria
        if r.id not in elsewhere
    )
    collect = "".join(f"<li>{e(g.item)} ({e(g.reason)}): {e(g.detail)}</li>" for g in a.to_collect)
    manual = "".join(f"<li>{e(r.id)}: {e(r.criterion.text)}</li>" for r in a.manual_checks)
    return (
        f"<!doctype html><html><head><meta charset='utf-8'><title>Eligibility report {e(a.patient_id)}</title></head>"
        f"<body><h1>Eligibility report — {e(a.patient_id)}</h1><p><strong>Verdict: {e(a.verdict + via)}</strong></p>"
        f"<p>{e(story)}</p><p>Reference dates: {e(', '.join(f'{k} {v}' for k, v in a.reference.as_dict().items()))}</p>"
        f"<table border='1'><tr><th>criterion</th><th>kind</th><th>status</th><th>reason</th></tr>{rows}</table>"
        + (f"<h2>Data to collect</h2><ul>{collect}</ul>" if collect else "")
        + (f"<h2>Verify by hand</h2><ul>{manual}</ul>" if manual else "")
        + f"<h2>Basis</h2><p>Assumptions: {e(', '.join(f'{k} = {v}' for k, v in a.assumptions.items()))}</p>"
        f"<p>Stamp: {e(', '.join(f'{k} {v}' for k, v in a.stamp.items()))}</p></body></html>"
    )
