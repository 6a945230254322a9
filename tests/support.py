"""Helpers for tests built on the demo vignettes: read a patient's rows, change a value; the
size of an exhaustive check in the run at hand."""

from __future__ import annotations

import csv
import os
from pathlib import Path

from kb.patients import DEMO_DATASET

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
