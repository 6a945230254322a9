"""A workbook as a data set: its sheets read like the CSV files, dates as dates."""

from __future__ import annotations

import io

import pandas as pd
import pytest

from kb.errors import KbError
from kb.patients import DEMO_DATASET, load_dataset, load_uploaded
from kb.workbook import SHEETS, workbook_files


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
