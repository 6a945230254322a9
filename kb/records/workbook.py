"""An Excel workbook as the four files of a data set: one sheet per file.

Investigators keep patient data in spreadsheets; a workbook with sheets named patients,
observations, events and attestations (the columns of the CSV files) is read into the same
CSV text the folder loader reads, so the same checks and row numbers apply (the header is
row 1). Cells that Excel turned into dates are written back as YYYY-MM-DD; nothing is
evaluated (formulas are read as their cached values, never computed).

A workbook is compressed XML: 90 KB can expand to 100,000 wide rows that take a minute to
parse. Before any sheet is parsed, `check_size` streams each sheet's XML and counts rows and
cells, stopping at the limits (`MAX_ROWS` per sheet, `MAX_CELLS` in all); a workbook past
them, or declaring a dimension past them, is refused with the sheet and row named.
"""

from __future__ import annotations

import io
import re
import zipfile
from collections.abc import Iterator
from datetime import date, datetime

import pandas as pd
from openpyxl.reader.excel import ExcelReader  # type: ignore[import-untyped]
from openpyxl.utils.cell import column_index_from_string  # type: ignore[import-untyped]

from kb.errors import KbError, Problem

__all__ = ["MAX_CELLS", "MAX_ROWS", "SHEETS", "check_size", "excel_rows", "sheet_names", "workbook_files"]

SHEETS = ("patients", "observations", "events", "attestations")
#: rows of one sheet, and cells of the whole workbook, read at most (about 200,000 results of
#: ten columns; larger exports are read as CSV files, which stream)
MAX_ROWS = 200_000
MAX_CELLS = 2_000_000
_HINT = "save the sheets as CSV files (kb screen --facts FOLDER streams them) or split the workbook"
_TAG = rb"<(?:[A-Za-z_][\w.-]*:)?"
_ROW = re.compile(_TAG + rb"row[\s>/]")
_CELL = re.compile(_TAG + rb"c[\s>/]")
_ROW_OR_CELL = re.compile(_TAG + rb"(row|c)[\s>/]")
_STRING = re.compile(_TAG + rb"si[\s>/]")
_DIMENSION = re.compile(_TAG + rb'dimension\s+ref="\$?([A-Z]{1,3})\$?(\d{1,7})(?::\$?([A-Z]{1,3})\$?(\d{1,7}))?"')


def _parts(content: bytes, name: str) -> tuple[zipfile.ZipFile, list[tuple[str, str]], str | None]:
    """The archive, its worksheets as (sheet name, part path) in workbook order, and the
    shared-strings part: read from the manifest and workbook.xml, no sheet parsed."""
    try:
        reader = ExcelReader(io.BytesIO(content), read_only=True, data_only=True)
        reader.read_manifest()
        reader.read_workbook()
        sheets = [
            (str(sheet.name), str(rel.target))
            for sheet, rel in reader.parser.find_sheets()
            if rel.target in reader.valid_files and "chartsheet" not in rel.Type
        ]
        strings = next(
            (str(ct.PartName[1:]) for ct in reader.package.Override if ct.PartName.endswith("sharedStrings.xml")), None
        )
    except Exception as exc:  # openpyxl raises many kinds for a file that is not a workbook
        raise KbError(f"{name}: not an Excel workbook ({type(exc).__name__})") from None
    return reader.archive, sheets, strings


def _chunks(archive: zipfile.ZipFile, part: str) -> Iterator[bytes]:
    """The part's XML in pieces that never split a tag's start (each piece ends before the
    last '<' it saw, which begins the next), decompressed as read, never whole."""
    carry = b""
    with archive.open(part) as src:
        while block := src.read(1 << 20):
            data = carry + block
            cut = data.rfind(b"<")
            data, carry = (data[:cut], data[cut:]) if cut > 0 else (data, b"")
            yield data
    if carry:
        yield carry


def check_size(content: bytes, name: str) -> None:
    """Refuse a workbook that expands past `MAX_ROWS` rows in a sheet or `MAX_CELLS` cells
    (counted in its XML as it is decompressed, stopping at the limit), or that declares a
    dimension past them; the KbError names the sheet and the row where the limit was passed."""
    archive, sheets, strings = _parts(content, name)

    def refuse(where: str, row: int | None, message: str) -> KbError:
        return KbError(f"{name}: the workbook is too large to read", [Problem(where, row, None, message, _HINT)])

    cells = 0
    try:
        for sheet, part in sheets:
            where = f"{name} sheet {sheet}"
            rows = 0
            for n, data in enumerate(_chunks(archive, part)):
                if n == 0 and (found := _DIMENSION.search(data)):
                    first_col, first_row, last_col, last_row = found.groups()
                    height = int(last_row or first_row) - int(first_row) + 1
                    width = column_index_from_string(last_col.decode()) if last_col else 1
                    width -= column_index_from_string(first_col.decode()) - 1 if last_col else 0
                    if height > MAX_ROWS or cells + height * width > MAX_CELLS:
                        size = f"{height:,} rows × {width:,} columns"
                        raise refuse(
                            where, None, f"it declares {size} (at most {MAX_ROWS:,} rows, {MAX_CELLS:,} cells)"
                        )
                more_rows, more_cells = len(_ROW.findall(data)), len(_CELL.findall(data))
                if rows + more_rows > MAX_ROWS:
                    raise refuse(where, MAX_ROWS + 1, f"more than {MAX_ROWS:,} rows in one sheet")
                if cells + more_cells > MAX_CELLS:  # the row that passes it, found in this piece
                    for tag in _ROW_OR_CELL.finditer(data):
                        rows, cells = (rows + 1, cells) if tag.group(1) == b"row" else (rows, cells + 1)
                        if cells > MAX_CELLS:
                            break
                    raise refuse(where, rows, f"more than {MAX_CELLS:,} cells in the workbook")
                rows, cells = rows + more_rows, cells + more_cells
        if strings is not None and strings in archive.namelist():
            count = 0
            for data in _chunks(archive, strings):
                count += len(_STRING.findall(data))
                if count > MAX_CELLS:
                    raise refuse(f"{name} {strings}", None, f"more than {MAX_CELLS:,} shared strings")
    except (zipfile.BadZipFile, OSError, EOFError, ValueError) as exc:  # a damaged part
        raise KbError(f"{name}: not an Excel workbook ({type(exc).__name__})") from None


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
    check_size(content, name)
    names = sheet_names(content, name)
    # by the name without case or surrounding spaces (of two alike, the later sheet)
    wanted = {sheet.strip().casefold(): sheet for sheet in names}
    if "patients" not in wanted:
        found = ", ".join(names) or "none"
        raise KbError(f"{name}: no sheet named patients (sheets: {found}); name the sheets {', '.join(SHEETS)}")
    read = {sheet: wanted[sheet] for sheet in SHEETS if sheet in wanted}
    frames = _sheets(content, name, list(read.values()), header=0)
    return {
        f"{sheet}.csv": frames[title].map(_cell).to_csv(index=False, lineterminator="\n").encode("utf-8")
        for sheet, title in read.items()
    }


def _sheets(content: bytes, name: str, titles: list[str], header: int | None) -> dict[str, pd.DataFrame]:
    """The named sheets parsed, and no other: a workbook's notes or pivot tables are not read."""
    try:
        sheets: dict[str, pd.DataFrame] = pd.read_excel(
            io.BytesIO(content), sheet_name=titles, dtype=object, engine="openpyxl", header=header
        )
        return sheets
    except Exception as exc:  # openpyxl raises many kinds for a file that is not a workbook
        raise KbError(f"{name}: not an Excel workbook ({type(exc).__name__})") from None


def sheet_names(content: bytes, name: str) -> list[str]:
    """The worksheets' names, from the workbook's manifest (no sheet is parsed)."""
    return [sheet for sheet, _ in _parts(content, name)[1]]


def excel_rows(content: bytes, name: str) -> list[list[str]]:
    """The first sheet's cells as text, row by row (a wide table kept in Excel)."""
    check_size(content, name)
    names = sheet_names(content, name)
    if not names:
        return []
    frame = _sheets(content, name, names[:1], header=None)[names[0]]
    return [[_cell(v) for v in row] for row in frame.itertuples(index=False)]
