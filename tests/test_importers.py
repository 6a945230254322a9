"""Recognising a data set's format, and refusing one given as another."""

from __future__ import annotations

import io
import shutil
from pathlib import Path

import openpyxl
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq
import pytest

from kb.catalogue.vocabulary import load_vocabulary
from kb.errors import KbError
from kb.records.importers import detect_format, load_data
from kb.records.patients import DEMO_DATASET, Dataset
from tests.fhir_bundles import bundle_bytes
from tests.test_importers_omop import build_omop, export

WIDE = b"patient_id,platelets [10*9/L],result_date\nA1,120,2026-11-17\n"


@pytest.fixture
def files(tmp_path: Path, demo: Dataset) -> dict[str, Path]:
    out = {"csv": tmp_path / "set"}
    shutil.copytree(DEMO_DATASET, out["csv"])
    out["wide"] = tmp_path / "wide.csv"
    out["wide"].write_bytes(WIDE)
    out["fhir"] = tmp_path / "bundle.json"
    out["fhir"].write_bytes(bundle_bytes([demo.patients["P001"]], load_vocabulary()))
    out["omop"] = build_omop(tmp_path / "cdm.duckdb")
    out["parquet"] = tmp_path / "parquet_set"
    out["parquet"].mkdir()
    for name in ("patients", "observations", "events", "attestations"):
        pq.write_table(pa_csv.read_csv(DEMO_DATASET / f"{name}.csv"), out["parquet"] / f"{name}.parquet")
    out["omop_parquet"] = export(out["omop"], tmp_path / "cdm")
    book = openpyxl.Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.title = "patients"
    sheet.append(["patient_id", "sex"])
    sheet.append(["B1", "female"])
    book.create_sheet("observations").append(["patient_id", "item", "value", "unit", "date"])
    buffer = io.BytesIO()
    book.save(buffer)
    out["xlsx"] = tmp_path / "set.xlsx"
    out["xlsx"].write_bytes(buffer.getvalue())
    return out


@pytest.mark.parametrize("given", ["csv", "parquet", "wide", "fhir", "omop", "omop_parquet", "xlsx"])
def test_each_format_is_recognised_and_read(files: dict[str, Path], given: str) -> None:
    fmt = given.removeprefix("omop_").replace("parquet", "omop") if given.startswith("omop") else given
    assert detect_format(files[given]) == fmt
    expected = {"csv": "P001", "parquet": "P001", "wide": "A1", "fhir": "P001", "omop": "1", "xlsx": "B1"}[fmt]
    assert expected in load_data(files[given]).patients
    assert expected in load_data(files[given], fmt).patients


@pytest.mark.parametrize(
    ("given", "wanted", "looks"),
    [
        ("fhir", "wide", "this looks like a FHIR R4 bundle"),
        ("wide", "fhir", "this looks like a wide table"),
        ("omop", "csv", "this looks like an OMOP CDM database"),
        ("csv", "omop", "this looks like the CSV file set"),
        ("parquet", "csv", "this looks like the file set as Parquet"),
        ("csv", "parquet", "this looks like the CSV file set"),
        ("omop_parquet", "parquet", "this looks like an OMOP CDM database"),
    ],
)
def test_the_wrong_format_says_what_it_looks_like(files: dict[str, Path], given: str, wanted: str, looks: str) -> None:
    with pytest.raises(KbError, match=f"{looks}.*, expected"):
        load_data(files[given], wanted)


def test_one_file_of_the_file_set_is_not_a_wide_table(tmp_path: Path) -> None:
    single = tmp_path / "observations.csv"
    shutil.copy(DEMO_DATASET / "observations.csv", single)
    with pytest.raises(KbError, match=r"looks like one file of the CSV file set \(observations.csv"):
        load_data(single)


@pytest.mark.parametrize("fmt", ["auto", "wide", "fhir"])
def test_an_empty_file(tmp_path: Path, fmt: str) -> None:
    empty = tmp_path / "export.csv"
    empty.write_bytes(b"")
    with pytest.raises(KbError, match="the file is empty"):
        load_data(empty, fmt)


def test_a_missing_path(tmp_path: Path) -> None:
    with pytest.raises(KbError, match="no such file or folder"):
        load_data(tmp_path / "nowhere.csv")


def test_uploaded_files_are_read_by_their_names(files: dict[str, Path]) -> None:
    from kb.records.importers import load_files

    fileset = {f"{name}.csv": (files["csv"] / f"{name}.csv").read_bytes() for name in ("patients", "observations")}
    assert "P001" in load_files(fileset).patients
    assert "A1" in load_files({"wide.csv": files["wide"].read_bytes()}).patients
    assert "P001" in load_files({"b.json": files["fhir"].read_bytes()}).patients
    assert "B1" in load_files({"set.xlsx": files["xlsx"].read_bytes()}).patients
    with pytest.raises(KbError, match="one file of the CSV file set"):
        load_files({"observations.csv": fileset["observations.csv"]})
    with pytest.raises(KbError, match="the file is empty"):
        load_files({"export.csv": b"  "})
