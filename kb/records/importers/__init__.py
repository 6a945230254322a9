"""Read patient data in the formats clinical data come in, into one `Dataset`.

`load_data(path, format)`: the project's CSV file set (a folder), that file set as Parquet
files (a folder), an Excel workbook of that file set, a wide table (CSV or Excel, one row per
patient), FHIR R4 bundles (a JSON file, NDJSON, or a folder of them) or an OMOP CDM database
(a DuckDB file, or a folder of its tables as Parquet). With `auto` the format is
recognised from the content; a file given with the wrong format is refused with what it
looks like ("this looks like a FHIR bundle, expected a wide table").
"""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

from kb.catalogue.vocabulary import Vocabulary, load_vocabulary
from kb.errors import KbError
from kb.records.importers.common import FILES, Imported, Origin
from kb.records.importers.fhir import read_fhir
from kb.records.importers.omop import read_omop, read_omop_folder
from kb.records.importers.parquet import PARQUET_FILES, is_parquet_set, load_parquet_set, parquet_path
from kb.records.importers.wide import read_wide
from kb.records.patients import STORIES_ALONE, Dataset, check_encoding, load_dataset, load_uploaded
from kb.records.workbook import SHEETS, sheet_names, workbook_files

__all__ = ["FORMATS", "describe", "detect_format", "load_data", "load_files"]

FORMATS = {
    "csv": "the CSV file set (a folder with patients.csv, observations.csv, events.csv, attestations.csv)",
    "parquet": "the file set as Parquet (a folder with patients.parquet, observations.parquet, events.parquet, "
    "attestations.parquet)",
    "xlsx": "an Excel workbook with the file set's sheets (patients, observations, events, attestations)",
    "wide": "a wide table (CSV or Excel, one row per patient, one column per item)",
    "fhir": "a FHIR R4 bundle (JSON or NDJSON, or a folder of them)",
    "omop": "an OMOP CDM database (DuckDB, or a folder of its tables as Parquet: person.parquet, concept.parquet …)",
}
_LONG = {"item", "value", "kind", "start_date"}
#: the columns of stories.csv (the vignettes' stories): a table of only these holds no patient data
_STORIES = {"patient_id", "story", "expected_verdict", "exercises", "assume", "targets"}


def describe(fmt: str) -> str:
    return FORMATS.get(fmt, fmt)


def _looks_like(path: Path) -> str:
    """What a file or folder is, from its content: a format name or a short description."""
    if path.is_dir():
        csv_files = [f for f in FILES if (path / f).exists()]
        parquet_files = [f for f in PARQUET_FILES if (path / f).exists()]
        if csv_files and parquet_files:  # one of them would be left out
            return f"a folder mixing the CSV and Parquet file sets ({', '.join([*csv_files, *parquet_files])})"
        if (path / "patients.csv").exists():
            return "csv"
        if is_parquet_set(path):
            return "parquet"
        if parquet_path(path, "person", parts=True) is not None:
            return "omop"
        if any(path.glob("*.json")) or any(path.glob("*.ndjson")):
            return "fhir"
        if (path / "stories.csv").exists():
            return "stories"
        return "a folder without patients.csv (nor patients.parquet, nor an OMOP person.parquet)"
    head = path.read_bytes()[:4096]
    if not head.strip():
        return "empty"
    if head.startswith(b"PAR1"):
        return (
            "one Parquet file (give the folder that holds the file set's patients.parquet, observations.parquet "
            "…, or an OMOP CDM's person.parquet, concept.parquet …)"
        )
    if head[8:12] == b"DUCK":
        return "omop"
    if head.startswith(b"SQLite format 3"):
        return "an SQLite database (only DuckDB OMOP databases are read)"
    if head.startswith(b"PK\x03\x04"):
        try:
            sheets = {s.strip().casefold() for s in sheet_names(path.read_bytes(), path.name)}
        except KbError:
            return "a zip archive"
        return "xlsx" if "patients" in sheets and len(sheets & set(SHEETS)) > 1 else "wide"
    text = head.decode("utf-8-sig", errors="replace").lstrip()
    if text.startswith(("{", "[")):
        try:  # a bad byte, a 100,000-deep nesting or a 5,000-digit number: the importer says where
            whole = path.read_bytes().decode("utf-8-sig")
            first = json.loads(whole.splitlines()[0] if path.suffix == ".ndjson" else whole)
        except (ValueError, RecursionError, IndexError):  # JSONDecodeError and UnicodeDecodeError too
            return "fhir" if '"resourceType"' in text else "JSON that does not parse"
        return "fhir" if isinstance(first, dict) and "resourceType" in first else "JSON without a resourceType"
    header = {h.strip().casefold() for h in text.splitlines()[0].replace(";", ",").replace("\t", ",").split(",")}
    if path.name == "stories.csv" or {"patient_id", "story"} <= header <= _STORIES:
        return "stories"
    if "patient_id" in header and header & _LONG:
        return f"one file of the CSV file set ({path.name}, long format: one row per result or event)"
    return "wide"


def detect_format(path: Path) -> str:
    found = _looks_like(path)
    if found == "empty":
        raise KbError(f"{path}: the file is empty")
    if found == "stories":
        raise KbError(f"{path}: {STORIES_ALONE}")
    if found not in FORMATS:
        raise KbError(f"{path}: this looks like {found}; expected one of: " + "; ".join(FORMATS.values()))
    return found


def load_data(
    path: Path | str,
    input_format: str = "auto",
    vocabulary: Vocabulary | None = None,
    today: date | None = None,
    diagnoses_complete: date | None = None,
    encoding: str | None = None,
) -> Dataset:
    """The data set at `path` in `input_format` ("auto": recognised from the content).

    `diagnoses_complete` (OMOP and FHIR, where an extract cannot say so itself): declare
    every patient's diagnosis list complete up to that date. `encoding`: that of CSV files
    that are not UTF-8 (the file set, a wide table); JSON is UTF-8 by definition."""
    path = Path(path)
    check_encoding(encoding)
    if not path.exists():
        raise KbError(f"{path}: no such file or folder")
    vocab = vocabulary or load_vocabulary()
    found = detect_format(path) if input_format == "auto" else input_format
    if input_format != "auto":
        seen = _looks_like(path)
        if seen == "empty":
            raise KbError(f"{path}: the file is empty (expected {describe(input_format)})")
        if seen == "stories":
            raise KbError(f"{path}: {STORIES_ALONE}")
        compatible = seen == input_format or (input_format == "wide" and seen == "xlsx")
        if not compatible:
            raise KbError(f"{path}: this looks like {describe(seen)}, expected {describe(input_format)}")
    if found == "csv":
        return load_dataset(path, vocab, today, encoding)
    if found == "xlsx":
        return load_uploaded(workbook_files(path.read_bytes(), path.name), vocab, today, name=path.name)
    if found == "wide":
        return read_wide(path.read_bytes(), path.name, vocab, encoding).dataset(vocab, today)
    if found == "fhir":
        files = sorted([*path.glob("*.json"), *path.glob("*.ndjson")]) if path.is_dir() else [path]
        imported = read_fhir([(f.name, f.read_bytes()) for f in files], vocab)
        if diagnoses_complete is not None:
            _declare_diagnoses(imported, diagnoses_complete)
        return imported.dataset(vocab, today)
    if found == "parquet":
        return load_parquet_set(path, vocab, today)
    if found == "omop":
        read = read_omop_folder if path.is_dir() else read_omop
        return read(path, vocab, diagnoses_complete).dataset(vocab, today)
    raise KbError(f"--input-format {input_format}: unknown (use auto, {', '.join(FORMATS)})")


def _declare_diagnoses(imported: Imported, when: date) -> None:
    for row in list(imported.rows["patients.csv"]):
        pid = row["patient_id"]
        attestation = {"patient_id": pid, "item": "reviewed:diagnoses", "value": "yes", "date": when.isoformat()}
        imported.add("attestations.csv", attestation | {"by": "assumption diagnoses_complete"}, Origin(imported.name))


def load_files(
    files: dict[str, bytes],
    vocabulary: Vocabulary | None = None,
    today: date | None = None,
    encoding: str | None = None,
) -> Dataset:
    """A data set from uploaded files held in memory (never written to disk), by their names:
    FHIR bundles (.json, .ndjson), the CSV file set (patients.csv …), a workbook of that file
    set, or one wide table (CSV or Excel). `encoding`: that of CSV files that are not UTF-8."""
    vocab = vocabulary or load_vocabulary()
    check_encoding(encoding)
    if not files:
        raise KbError("no file was uploaded")
    bundles = [(n, c) for n, c in files.items() if n.casefold().endswith((".json", ".ndjson"))]
    if bundles:
        return read_fhir(bundles, vocab).dataset(vocab, today)
    if "patients.csv" in files:
        return load_uploaded(files, vocab, today, encoding=encoding)
    if "stories.csv" in files:
        raise KbError(STORIES_ALONE)
    if len(files) > 1:
        raise KbError(
            f"{', '.join(sorted(files))}: upload the file set (patients.csv, observations.csv, events.csv, "
            "attestations.csv), one workbook, one wide table, or FHIR bundles"
        )
    ((name, content),) = files.items()
    if not content.strip():
        raise KbError(f"{name}: the file is empty")
    if name.casefold().endswith((".xlsx", ".xlsm")):
        sheets = {s.strip().casefold() for s in sheet_names(content, name)}
        if "patients" in sheets and len(sheets & set(SHEETS)) > 1:
            return load_uploaded(workbook_files(content, name), vocab, today, name=name)
    elif name in {f"{sheet}.csv" for sheet in SHEETS}:
        raise KbError(f"{name}: this looks like one file of the CSV file set; upload patients.csv with it")
    return read_wide(content, name, vocab, encoding).dataset(vocab, today)
