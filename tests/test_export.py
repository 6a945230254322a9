"""The screening export: one set of columns for `kb screen --out` and the Cohort page's downloads."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import openpyxl
import pytest

from kb.catalogue.assumptions import resolve_assumptions
from kb.catalogue.knowledge import KnowledgeBase
from kb.errors import KbError
from kb.presentation.export import (
    COLUMNS,
    screening_csv,
    screening_table,
    screening_xlsx,
    spreadsheet_cell,
    write_screening,
)
from kb.records.patients import Dataset
from kb.screening.screen import ScreenRow, funnel, screen
from kb.status import Status, Verdict


@pytest.fixture(scope="module")
def screened(kb: KnowledgeBase, demo: Dataset) -> list[ScreenRow]:
    return screen(kb, demo, resolve_assumptions())


def _csv(text: str) -> list[list[str]]:
    return list(csv.reader(io.StringIO(text, newline="")))


def _sheet(data: bytes, name: str) -> list[list[object]]:
    book = openpyxl.load_workbook(io.BytesIO(data))
    return [[cell.value for cell in row] for row in book[name].iter_rows()]


def test_one_row_per_patient_with_the_screenings_columns_then_each_criterion(
    screened: list[ScreenRow], demo: Dataset
) -> None:
    table = screening_table(screened)
    assert [row["patient"] for row in table] == [r.patient for r in screened]
    assert len({row["patient"] for row in table}) == len(demo.patients)
    criteria = list(screened[0].statuses)
    assert list(table[0]) == [*COLUMNS, *criteria]
    assert "GI6.3" in criteria and "COHORT" in criteria
    p002 = next(row for row in table if row["patient"] == "P002")
    assert (p002["verdict"], p002["cohorts"], p002["GI6.3"], p002["GI8"]) == ("ineligible", "pss", "fail", "fail")
    assert p002["blocking"] == "GI6.3 GI8 PSS-I1 X-E1 X-E2 X-E3"
    # the screening's own columns are exactly its JSON (`kb screen --json`)
    assert all({k: row[k] for k in COLUMNS} == r.as_dict() for row, r in zip(table, screened, strict=True))


def test_csv_and_workbook_read_back_with_the_same_columns_and_cells(screened: list[ScreenRow]) -> None:
    rows = _csv(screening_csv(screened))
    sheet = _sheet(screening_xlsx(screened, funnel(screened)), "patients")
    assert rows[0] == sheet[0] == [*COLUMNS, *screened[0].statuses]
    assert len(rows) == len(sheet) == len(screened) + 1
    assert [[v or "" for v in row] for row in sheet] == rows  # openpyxl reads an empty text cell as None
    assert _sheet(screening_xlsx(screened, funnel(screened)), "funnel") == [
        ["stage", "patients"],
        *[[stage, n] for stage, n in funnel(screened)],
    ]


def _row(patient: str, reason: str = "") -> ScreenRow:
    return ScreenRow(patient, Verdict.NEEDS_DATA, ("sle",), {"GI6.3": Status.UNKNOWN}, (), 5, ("GI6.3",), None, reason)


@pytest.mark.parametrize(
    ("patient", "written"),
    [
        ("P,1", "P,1"),  # a comma: quoted by the csv module, read back whole
        ('P"1"', 'P"1"'),
        ("Ærø-Ünïcødé 患者", "Ærø-Ünïcødé 患者"),
        ("line\nbreak", "line\nbreak"),
        ('=HYPERLINK("http://x","y")', '\'=HYPERLINK("http://x","y")'),  # a formula: quoted, inert text
        ("@SUM(1)", "'@SUM(1)"),
        ("-2+3", "'-2+3"),
        ("+1", "'+1"),
    ],
)
def test_cells_are_safe_and_read_back_as_written(patient: str, written: str) -> None:
    rows = [_row(patient, reason=patient), _row("P2")]
    back = list(csv.DictReader(io.StringIO(screening_csv(rows), newline="")))
    assert [r["patient"] for r in back] == [written, "P2"]
    assert back[0]["reason"] == written and back[0]["GI6.3"] == "unknown"
    book = openpyxl.load_workbook(io.BytesIO(screening_xlsx(rows, [("everyone", 2)])))
    cell = book["patients"]["A2"]
    assert (cell.value, cell.data_type) == (written, "s")  # text, never a formula ('f')


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


def test_an_empty_screening_still_has_its_header() -> None:
    assert _csv(screening_csv([])) == [list(COLUMNS)]
    assert _sheet(screening_xlsx([], []), "patients") == [list(COLUMNS)]


@pytest.mark.parametrize("suffix", [".csv", ".xlsx", ".json", ".parquet"])
def test_write_screening_by_suffix(suffix: str, screened: list[ScreenRow], tmp_path: Path) -> None:
    path = tmp_path / f"screen{suffix}"
    stages = funnel(screened)
    write_screening(path, screened, stages)
    if suffix == ".csv":
        assert path.read_bytes().decode("utf-8") == screening_csv(screened)
    elif suffix == ".xlsx":
        assert _sheet(path.read_bytes(), "patients") == _sheet(screening_xlsx(screened, stages), "patients")
    elif suffix == ".parquet":  # the CSV's table, its values as they are (no spreadsheet reads them)
        import pyarrow.parquet as pq

        table = pq.read_table(path)
        assert table.column_names == _csv(screening_csv(screened))[0]
        assert table.to_pylist() == screening_table(screened)
        assert table.num_rows == len(screened) > 0
    else:  # the JSON contract of `kb screen --json`: the screening's columns and the funnel
        answer = json.loads(path.read_text(encoding="utf-8"))
        assert answer["patients"] == [r.as_dict() for r in screened]
        assert answer["funnel"] == [{"stage": s, "patients": n} for s, n in stages]


def test_write_screening_names_the_suffixes_it_writes(tmp_path: Path) -> None:
    with pytest.raises(KbError, match=r"written as \.csv, \.xlsx, \.json or \.parquet"):
        write_screening(tmp_path / "screen.txt", [], [])
