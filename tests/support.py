"""Helpers for tests built on the demo vignettes: read a patient's rows, change a value; the
size of an exhaustive check in the run at hand."""

from __future__ import annotations

import csv
import io
import os
import re
from pathlib import Path
from typing import TYPE_CHECKING

from kb.records.patients import DEMO_DATASET

if TYPE_CHECKING:
    from streamlit.testing.v1 import AppTest

ROOT = Path(__file__).resolve().parents[1]

Rows = list[dict[str, str]]
FILES = ("patients", "observations", "events", "attestations")


def demo_files(patient_id: str = "P001") -> dict[str, Rows]:
    """Copies of one demo patient's rows in each file, to change and write back."""
    out: dict[str, Rows] = {}
    for file in FILES:
        with (DEMO_DATASET / f"{file}.csv").open(encoding="utf-8") as fh:
            out[file] = [dict(r) for r in csv.DictReader(fh) if r["patient_id"] == patient_id]
    return out


def set_value(rows: Rows, item: str, value: str, **extra: str) -> Rows:
    """The observation rows with `item` set to `value` (added if absent)."""
    for row in rows:
        if row["item"] == item:
            row.update(value=value, **extra)
            return rows
    template = {k: "" for k in rows[0]} if rows else {}
    rows.append(
        {
            **template,
            "patient_id": rows[0]["patient_id"] if rows else "P001",
            "item": item,
            "value": value,
            "date": "2026-11-17",
            **extra,
        }
    )
    return rows


def deep(ci: int, by_hand: int) -> int:
    """How many cases an exhaustive check tries: `ci` in CI's slow profile, `by_hand` in the
    deep run a developer starts by hand with FUZZ=deep (see the README's Tests section)."""
    return by_hand if os.environ.get("FUZZ", "").strip().lower() == "deep" else ci


#: A patient id and drug name a hostile file may carry: a Markdown image (a beacon) and HTML.
HOSTILE_TEXT = "![b](http://127.0.0.1:9/x.png)<img src=x onerror=alert(1)>"


def hostile_upload() -> list[tuple[str, bytes, str]]:
    """Demo patient P001's files with HOSTILE_TEXT as the patient id, a medication's name and
    a platelet count (a rejected row, so a problem that quotes it), as an upload."""
    upload = []
    for file, rows in demo_files("P001").items():
        rows = [dict(r, patient_id=HOSTILE_TEXT) for r in rows]
        if file == "events":
            rows.append(
                dict(rows[-1], kind="medication", name=HOSTILE_TEXT, code="", start_date="2026-11-01", end_date="")
            )
        if file == "observations":
            rows.append(dict(rows[-1], item="platelets", value=HOSTILE_TEXT))
        text = io.StringIO()
        writer = csv.DictWriter(text, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
        upload.append((f"{file}.csv", text.getvalue().encode(), "text/csv"))
    return upload


#: HOSTILE_TEXT as escape_markdown shows it: every bracket and tag a literal character.
ESCAPED_HOSTILE_TEXT = r"!\[b\](http\://127.0.0.1:9/x.png)\<img src=x onerror=alert(1)>"


def rendered(app: AppTest) -> list[str]:
    """Every text Streamlit renders as Markdown: markdown, captions, alerts, and expander and button labels."""
    texts = [e.value for e in (*app.markdown, *app.caption, *app.success, *app.error, *app.warning, *app.info)]
    return [str(t) for t in texts] + [e.label for e in app.expander] + [b.label for b in app.button]


def assert_shown_as_text(texts: list[str]) -> None:
    """No live image, link or HTML anywhere: each bracket and tag of the hostile text is escaped."""
    for text in texts:
        assert not re.search(r"(?<!\\)(!\[b|\]\(http|<img)", text), text
