"""An Excel workbook as the four files of a data set: one sheet per file.

Investigators keep patient data in spreadsheets; a workbook with sheets named patients,
observations, events and attestations (the columns of the CSV files) is read into the same
CSV text the folder loader reads, so the same checks and row numbers apply (the header is
row 1). Cells that Excel turned into dates are written back as YYYY-MM-DD; nothing is
evaluated (formulas are read as their cached values, never computed).
"""

from __future__ import annotations

import io
from datetime import date, datetime

import pandas as pd

from kb.errors import KbError

__all__ = ["SHEETS", "excel_rows", "sheet_names", "workbook_files"]

SHEETS = ("patients", "observations", "events", "attestations")


def _cell(value: object) -> str:
    if isinstance(value, datetime | pd.Timestamp):
        return value.date().isoformat()
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return "" if value is None or (isinstance(value, float) and pd.isna(value)) else str(value)


def workbook_files(content: bytes, name: str = "workbook.xlsx") -> dict[str, bytes]:
    """The CSV files a workbook's sheets hold, by file name (patients.csv …)."""
    try:
        sheets = pd.read_excel(io.BytesIO(content), sheet_name=None, dtype=object, engine="openpyxl")
    except Exception as exc:  # openpyxl raises many kinds for a file that is not a workbook
        raise KbError(f"{name}: not an Excel workbook ({type(exc).__name__})") from None
    wanted = {str(sheet).strip().casefold(): frame for sheet, frame in sheets.items()}
    if "patients" not in wanted:
        found = ", ".join(map(str, sheets)) or "none"
        raise KbError(f"{name}: no sheet named patients (sheets: {found}); name the sheets {', '.join(SHEETS)}")
    files = {}
    for sheet in SHEETS:
        frame = wanted.get(sheet)
        if frame is None:
            continue
        text = frame.map(_cell).to_csv(index=False, lineterminator="\n")
        files[f"{sheet}.csv"] = text.encode("utf-8")
    return files


def _sheets(content: bytes, name: str) -> dict[str, pd.DataFrame]:
    try:
        sheets: dict[str, pd.DataFrame] = pd.read_excel(
            io.BytesIO(content), sheet_name=None, dtype=object, engine="openpyxl", header=None
        )
        return sheets
    except Exception as exc:  # openpyxl raises many kinds for a file that is not a workbook
        raise KbError(f"{name}: not an Excel workbook ({type(exc).__name__})") from None


def sheet_names(content: bytes, name: str) -> list[str]:
    return [str(sheet) for sheet in _sheets(content, name)]


def excel_rows(content: bytes, name: str) -> list[list[str]]:
    """The first sheet's cells as text, row by row (a wide table kept in Excel)."""
    sheets = _sheets(content, name)
    if not sheets:
        return []
    frame = next(iter(sheets.values()))
    return [[_cell(v) for v in row] for row in frame.itertuples(index=False)]
