"""Wide tables: one row per patient, units in the header or a units row, CSV or Excel."""

from __future__ import annotations

import io
from datetime import date
from decimal import Decimal

import openpyxl
import pytest

from kb.catalogue.vocabulary import load_vocabulary
from kb.errors import KbError
from kb.records.importers.wide import read_wide

HEADER_UNITS = (
    "MRN,Sex,DOB,Weight,enrolment_date,result_date,Platelets [10^9/L],Hb (g/dL),creatinine [mg/dL],"
    "creatinine_uln,HBsAg,consent,reviewed:medications,diagnosis_code,diagnosis_date,favourite colour\n"
    "W1,F,1985-03-03,60,2026-11-24,2026-11-17,120,11.2,0.9,1.1,negative,yes,2026-11-24,M32.1,2019-03-01,blue\n"
    "W2,M,1970-01-01,80,2026-11-24,2026-11-17,lots,13,1.0,,positive,no,,M34.1;I25.1,2015-01-01,green\n"
    ",F,1990-01-01,55,,,,,,,,,,,,\n"
)


@pytest.fixture(scope="module")
def vocab():  # type: ignore[no-untyped-def]
    return load_vocabulary()


def test_units_in_the_header(vocab) -> None:  # type: ignore[no-untyped-def]
    dataset = read_wide(HEADER_UNITS.encode(), "clinic.csv", vocab).dataset(vocab)
    assert sorted(dataset.patients) == ["W1", "W2"]
    w1 = dataset.patients["W1"]
    assert (w1.sex, w1.birth_date, w1.weight_kg, w1.enrolment_date) == (
        "female",
        date(1985, 3, 3),
        60,
        date(2026, 11, 24),
    )
    values = {o.item: o for o in w1.observations}
    assert values["platelets"].value == Decimal(120)
    assert values["hemoglobin"].value == Decimal(112)  # 11.2 g/dL in g/L
    assert values["creatinine"].value == Decimal("79.56") and values["creatinine"].uln == Decimal("97.24")
    assert values["hbsag"].value == "negative" and values["hbsag"].date == date(2026, 11, 17)
    attested = {(a.item, a.value, a.date) for a in w1.attestations}
    assert ("consent", "yes", date(2026, 11, 17)) in attested
    assert ("reviewed:medications", "yes", date(2026, 11, 24)) in attested
    assert [e.code for e in w1.events] == ["M32.1"]
    assert [e.code for e in dataset.patients["W2"].events] == ["M34.1", "I25.1"]


def test_bad_cells_are_named_and_the_rest_kept(vocab) -> None:  # type: ignore[no-untyped-def]
    dataset = read_wide(HEADER_UNITS.encode(), "clinic.csv", vocab).dataset(vocab)
    messages = [str(p) for p in dataset.problems]
    assert any(m.startswith("clinic.csv (column favourite colour):1") and "not known" in m for m in messages)
    assert any(m.startswith("clinic.csv:4") and "empty patient id" in m for m in messages)
    (lots,) = [m for m in messages if "'lots'" in m]
    assert lots.startswith("clinic.csv (column Platelets [10^9/L]):3 column value")
    w2 = {o.item for o in dataset.patients["W2"].observations}
    assert "platelets" not in w2 and {"hemoglobin", "creatinine", "hbsag"} <= w2


def test_a_units_row_and_excel(vocab) -> None:  # type: ignore[no-untyped-def]
    book = openpyxl.Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.append(["patient_id", "sex", "birth_date", "lab_date", "plt", "hemoglobin", "crcl_measured"])
    sheet.append(["units", "", "", "", "x10^9/L", "g/L", "mL/min"])
    sheet.append(["X1", "female", date(1980, 5, 1), date(2026, 11, 20), 49, 95, 62.5])
    buffer = io.BytesIO()
    book.save(buffer)
    dataset = read_wide(buffer.getvalue(), "site.xlsx", vocab).dataset(vocab)
    x1 = dataset.patients["X1"]
    values = {o.item: o.value for o in x1.observations}
    assert values == {"platelets": Decimal(49), "hemoglobin": Decimal(95), "crcl_measured": Decimal("62.5")}
    assert x1.birth_date == date(1980, 5, 1) and dataset.problems == []


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "the file is empty"),
        (b"\n\n", "the file is empty"),
        (b"name,platelets\nAnn,120\n", "no patient id column"),
    ],
)
def test_files_that_cannot_be_a_patient_table(vocab, content: bytes, message: str) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(KbError, match=message):
        read_wide(content, "export.csv", vocab)


def test_a_wide_table_is_decoded_whole_in_its_declared_encoding(vocab) -> None:  # type: ignore[no-untyped-def]
    content = (
        "patient_id,sex,diagnosis,diagnosis_date,result_date,hb [g/L]\n"
        "W1,F,lupus érythémateux,2019-03-01,2026-11-17,110\n"
    )
    latin = content.encode("latin-1")
    with pytest.raises(KbError, match=r"export\.csv could not be read") as caught:
        read_wide(latin, "export.csv", vocab)
    (problem,) = caught.value.problems
    assert (problem.path, problem.row, problem.column) == ("export.csv", 2, 12)
    assert problem.message.startswith("the file is not UTF-8 text: byte 0xe9 cannot be read")
    dataset = read_wide(latin, "export.csv", vocab, encoding="latin-1").dataset(vocab)
    assert [e.name for e in dataset.patient("W1").events] == ["lupus érythémateux"]
    doubled = read_wide(b"\xef\xbb\xbf\xef\xbb\xbf" + content.encode(), "export.csv", vocab).dataset(vocab)
    assert list(doubled.patients) == ["W1"] and doubled.patient("W1").observations


def test_an_unbalanced_quote_refuses_the_table_located(vocab) -> None:  # type: ignore[no-untyped-def]
    """Found by the input fuzz suite: W2's row vanished into W1's cell without a word."""
    content = b'patient_id,sex,platelets [10^9/L]\nW1,"female,120\nW2,male,80\n'
    with pytest.raises(KbError) as caught:
        read_wide(content, "clinic.csv", vocab)
    (problem,) = caught.value.problems
    assert problem.path == "clinic.csv" and problem.row == 3 and "cannot be read as CSV" in problem.message
