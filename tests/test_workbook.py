"""A workbook as a data set: its sheets read like the CSV files, dates as dates."""

from __future__ import annotations

import csv
import io
import zipfile

import pandas as pd
import pytest

from kb.errors import KbError
from kb.records.importers import load_files
from kb.records.patients import DEMO_DATASET, load_dataset, load_uploaded
from kb.records.workbook import MAX_ROWS, SHEETS, excel_rows, workbook_files


def demo_workbook(patient_ids: tuple[str, ...]) -> bytes:
    buffer = io.BytesIO()
    with pd.ExcelWriter(buffer, engine="openpyxl") as writer:
        for sheet in SHEETS:
            frame = pd.read_csv(DEMO_DATASET / f"{sheet}.csv", dtype=str, keep_default_na=False)
            frame = frame[frame["patient_id"].isin(patient_ids)]
            if sheet == "patients":  # as Excel keeps them: real dates, not text
                frame["birth_date"] = pd.to_datetime(frame["birth_date"])
            frame.to_excel(writer, sheet_name=sheet, index=False)
    return buffer.getvalue()


def test_a_workbook_loads_like_the_folder() -> None:
    dataset = load_uploaded(workbook_files(demo_workbook(("P061", "P064"))))
    demo = load_dataset(DEMO_DATASET)
    assert sorted(dataset.patients) == ["P061", "P064"] and not dataset.problems
    assert dataset.patients["P061"].birth_date == demo.patients["P061"].birth_date

    def values(pid: str, data: object) -> list[tuple[object, ...]]:
        return [(o.item, o.value, o.date, o.uln) for o in data.patients[pid].observations]  # type: ignore[attr-defined]

    assert values("P061", dataset) == values("P061", demo)  # the rows differ, the values do not


@pytest.mark.parametrize(("content", "message"), [(b"not a workbook", "not an Excel workbook")])
def test_a_file_that_is_not_a_workbook_is_refused(content: bytes, message: str) -> None:
    with pytest.raises(KbError, match=message):
        workbook_files(content, "labs.xlsx")


def test_a_workbook_without_a_patients_sheet_names_its_sheets() -> None:
    buffer = io.BytesIO()
    with pd.ExcelWriter(buffer, engine="openpyxl") as writer:
        pd.DataFrame({"a": [1]}).to_excel(writer, sheet_name="Labs", index=False)
    with pytest.raises(KbError, match="no sheet named patients \\(sheets: Labs\\)"):
        workbook_files(buffer.getvalue())


def _bomb(rows: int, columns: int, dimension: str) -> bytes:
    """A real workbook whose patients sheet is replaced by `rows` identical rows of `columns`
    cells under a `dimension` that may lie: repeated XML compresses about a thousandfold."""
    buffer = io.BytesIO()
    with pd.ExcelWriter(buffer, engine="openpyxl") as writer:
        pd.DataFrame({"patient_id": ["B1"]}).to_excel(writer, sheet_name="patients", index=False)
    source = zipfile.ZipFile(io.BytesIO(buffer.getvalue()))
    row = b"<row>" + b"<c><v>1</v></c>" * columns + b"</row>"
    sheet = (
        b'<?xml version="1.0" encoding="UTF-8"?>'
        b'<worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main">'
        + f'<dimension ref="{dimension}"/><sheetData>'.encode()
        + row * rows
        + b"</sheetData></worksheet>"
    )
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as target:
        for info in source.infolist():
            part = sheet if info.filename == "xl/worksheets/sheet1.xml" else source.read(info)
            target.writestr(info.filename, part)
    return out.getvalue()


@pytest.mark.parametrize(
    ("rows", "columns", "dimension", "row", "message"),
    [
        (100_000, 30, "A1", 66_667, "more than 2,000,000 cells"),  # the 90 KB bomb, its dimension a lie
        (MAX_ROWS + 5, 1, "A1", MAX_ROWS + 1, "more than 200,000 rows"),
        (2, 1, "A1:AD100000", None, "declares 100,000 rows × 30 columns"),
    ],
)
def test_a_workbook_expanding_past_the_limit_is_refused_before_parsing(
    rows: int, columns: int, dimension: str, row: int | None, message: str
) -> None:
    """Before any sheet is parsed, a located error names the sheet and the row where the limit
    was passed; the upload path (format recognition included) refuses it the same way."""
    content = _bomb(rows, columns, dimension)
    assert len(content) < 400_000
    with pytest.raises(KbError) as caught:
        load_files({"bomb.xlsx": content})
    (problem,) = caught.value.problems
    assert (problem.path, problem.row) == ("bomb.xlsx sheet patients", row)
    assert message in problem.message


def _broken(content: bytes, part: str) -> bytes:
    """The workbook with one sheet's XML cut off mid-tag: openpyxl cannot parse that sheet."""
    source = zipfile.ZipFile(io.BytesIO(content))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as target:
        for info in source.infolist():
            data = source.read(info)
            target.writestr(info.filename, data[: len(data) // 2] if info.filename == part else data)
    return out.getvalue()


def test_only_the_sheets_of_the_data_set_are_parsed() -> None:
    """A workbook's other sheets (notes, a pivot table) are never parsed: one that openpyxl
    cannot read does not stop the data set, in the file set's workbook or a wide table's."""
    buffer = io.BytesIO()
    with pd.ExcelWriter(buffer, engine="openpyxl") as writer:
        for sheet in SHEETS:
            frame = pd.read_csv(DEMO_DATASET / f"{sheet}.csv", dtype=str, keep_default_na=False)
            frame[frame["patient_id"] == "P061"].to_excel(writer, sheet_name=sheet, index=False)
        pd.DataFrame({"note": ["checked"]}).to_excel(writer, sheet_name="notes", index=False)
    content = _broken(buffer.getvalue(), "xl/worksheets/sheet5.xml")
    assert sorted(load_uploaded(workbook_files(content)).patients) == ["P061"]
    with (DEMO_DATASET / "patients.csv").open(encoding="utf-8") as fh:
        rows = [row for row in csv.reader(fh) if row[0] in ("patient_id", "P061")]
    assert excel_rows(content, "site.xlsx") == rows  # the first sheet, as a wide table is read
    with pytest.raises(KbError, match="not an Excel workbook"):  # the data set's own sheet is read
        workbook_files(_broken(buffer.getvalue(), "xl/worksheets/sheet2.xml"))
