"""An OMOP CDM database (DuckDB file) to the same facts, read-only.

person → patients (gender concept 8532/8507, birth date); measurement → results, by the
LOINC code of its concept, the UCUM code of its unit concept (else unit_source_value), its
value (number, else the value concept's name) and range_high as the ULN; condition_occurrence
→ diagnoses with the code of their SNOMED concept and, when the source concept is ICD-10 or
ICD-10-CM, that code too (cohorts are matched on codes, never names: "Coronary
arteriosclerosis" is not systemic sclerosis); drug_exposure → medications (vaccinations for
CVX concepts), named by the vocabulary agent their concept name contains;
procedure_occurrence → procedures.

Assumption `diagnoses_complete` (default off): an OMOP extract does not say whether a
patient's condition list is complete, so the absence of a trial diagnosis is not evidence
of none (COHORT stays unknown, the patient needs data). Switched on (`kb screen
--diagnoses-complete`), every person's diagnoses are declared reviewed up to the screening
date, and a person without a trial diagnosis code is ineligible for "no cohort".
"""

from __future__ import annotations

import shutil
import tempfile
from datetime import date
from pathlib import Path
from typing import Any

import duckdb

from kb.errors import KbError, Problem
from kb.importers.common import Imported, Origin
from kb.importers.fhir import agent_name
from kb.vocabulary import Vocabulary

__all__ = ["OMOP_TABLES", "read_omop"]

OMOP_TABLES = ("person", "measurement", "condition_occurrence", "drug_exposure", "procedure_occurrence", "concept")
_SEX = {8532: "female", 8507: "male"}
_ICD = {"ICD10": "icd10", "ICD10CM": "icd10cm"}


def _connect(path: Path) -> tuple[duckdb.DuckDBPyConnection, Path | None]:
    """Open read-only; if DuckDB insists on writing (a file from a newer build), a copy in a
    temporary folder is opened instead, never the original."""
    try:
        return duckdb.connect(str(path), read_only=True), None
    except duckdb.Error:
        folder = Path(tempfile.mkdtemp(prefix="kb-omop-"))
        shutil.copy(path, folder / path.name)
        try:
            return duckdb.connect(str(folder / path.name)), folder
        except duckdb.Error as exc:
            shutil.rmtree(folder, ignore_errors=True)
            raise KbError(f"{path}: DuckDB cannot open it ({exc})") from None


def read_omop(path: Path | str, vocab: Vocabulary, diagnoses_complete: date | None = None) -> Imported:
    """The four files of an OMOP database. `diagnoses_complete`: the date up to which every
    person's diagnosis list is declared complete (the assumption above), or None."""
    path = Path(path)
    con, copy = _connect(path)
    try:
        tables = {str(row[0]).casefold() for row in con.execute("SHOW TABLES").fetchall()}
        missing = [t for t in ("person", "concept") if t not in tables]
        if missing:
            found = ", ".join(sorted(tables)[:8]) or "none"
            raise KbError(f"{path.name}: not an OMOP CDM database (no {' or '.join(missing)} table; tables: {found})")
        return _read(con, path.name, tables, vocab, diagnoses_complete)
    finally:
        con.close()
        if copy is not None:
            shutil.rmtree(copy, ignore_errors=True)


def _rows(con: duckdb.DuckDBPyConnection, name: str, table: str, sql: str) -> list[tuple[Any, ...]]:
    """The rows of one query on `table`; a table DuckDB cannot read as the CDM says (a missing
    column, a value that will not convert) refuses the import, naming the table and DuckDB's
    reason: a table partly read would make its records look absent."""
    try:
        return con.execute(sql).fetchall()
    except duckdb.Error as exc:
        reason = str(exc).splitlines()[0]
        raise KbError(f"{name} {table}: cannot be read as an OMOP CDM table ({reason})") from None


def _problem(out: Imported, origin: Origin, column: str, message: str, hint: str, pid: object = None) -> None:
    where = origin.path + (f" ({origin.what})" if origin.what else "")
    out.problems.append(Problem(where, origin.row, column, message, hint, str(pid) if pid is not None else None))


def _birth(out: Imported, where: Origin, pid: object, year: object, month: object, day: object) -> str:
    """The birth date from year, month and day (a month or day missing: the first); a part
    that is not a whole number (a VARCHAR column) is a problem and the date is left empty."""
    parts = []
    for column, part in (("year_of_birth", year), ("month_of_birth", month), ("day_of_birth", day)):
        try:
            parts.append(int(str(part).strip()) if part not in (None, "") else None)
        except ValueError:
            shown = str(part)[:40]
            _problem(out, where, column, f"'{shown}' is not a whole number", "the birth date is read as empty", pid)
            return ""
    if parts[0] is None:
        return ""
    return f"{parts[0]:04d}-{parts[1] or 1:02d}-{parts[2] or 1:02d}"


def _id(table: str, value: object, n: int) -> str:
    """How a row is named in a problem: by its id, or by its place when the id is NULL."""
    column = f"{table}_id"
    return f"{column} {value}" if value is not None else f"{column} NULL (row {n} ordered by {column})"


def _read(
    con: duckdb.DuckDBPyConnection, name: str, tables: set[str], vocab: Vocabulary, reviewed: date | None
) -> Imported:
    out = Imported(name)
    persons = _rows(
        con,
        name,
        "person",
        "SELECT person_id, gender_concept_id, year_of_birth, month_of_birth, day_of_birth, birth_datetime "
        "FROM person ORDER BY person_id",
    )
    for n, (pid, gender, year, month, day, born) in enumerate(persons, start=1):
        where = Origin(f"{name} person", n, _id("person", pid, n))
        birth = str(born)[:10] if born else _birth(out, where, pid, year, month, day)
        out.add("patients.csv", {"patient_id": pid, "sex": _SEX.get(gender, ""), "birth_date": birth}, where)
        if reviewed is not None:
            row = {"patient_id": pid, "item": "reviewed:diagnoses", "value": "yes", "date": reviewed.isoformat()}
            out.add("attestations.csv", row | {"by": "assumption diagnoses_complete"}, where)
    if "measurement" in tables:
        _measurements(con, out, name)
    if "condition_occurrence" in tables:
        _conditions(con, out, name)
    if "drug_exposure" in tables:
        _drugs(con, out, name, vocab)
    if "procedure_occurrence" in tables:
        rows = _rows(
            con,
            name,
            "procedure_occurrence",
            "SELECT p.procedure_occurrence_id, p.person_id, c.concept_name, p.procedure_date "
            "FROM procedure_occurrence p LEFT JOIN concept c ON c.concept_id = p.procedure_concept_id "
            "ORDER BY p.procedure_occurrence_id",
        )
        for n, (rid, pid, concept, when) in enumerate(rows, start=1):
            where = Origin(f"{name} procedure_occurrence", None, _id("procedure_occurrence", rid, n))
            event = {"patient_id": pid, "kind": "procedure", "name": concept or "", "start_date": str(when or "")[:10]}
            out.add("events.csv", event, where)
    return out


def _measurements(con: duckdb.DuckDBPyConnection, out: Imported, name: str) -> None:
    rows = _rows(
        con,
        name,
        "measurement",
        "SELECT m.measurement_id, m.person_id, c.concept_code, c.vocabulary_id, c.concept_name, "
        "CAST(m.value_as_number AS VARCHAR), v.concept_name, u.concept_code, m.unit_source_value, "
        "CAST(m.range_high AS VARCHAR), CAST(m.range_low AS VARCHAR), m.measurement_date "
        "FROM measurement m "
        "LEFT JOIN concept c ON c.concept_id = m.measurement_concept_id "
        "LEFT JOIN concept v ON v.concept_id = m.value_as_concept_id AND m.value_as_concept_id <> 0 "
        "LEFT JOIN concept u ON u.concept_id = m.unit_concept_id AND m.unit_concept_id <> 0 "
        "ORDER BY m.measurement_id",
    )
    without_value = 0
    for n, (rid, pid, code, system, label, number, coded, unit, unit_text, high, low, when) in enumerate(rows, 1):
        value = (number or "").strip() or (coded or "")
        if not value:
            without_value += 1  # a measurement done but not resulted says nothing a criterion reads
            continue
        where = Origin(f"{name} measurement", None, _id("measurement", rid, n))
        row = {"patient_id": pid, "value": value, "unit": unit or unit_text or "", "date": str(when or "")[:10]}
        if system == "LOINC":
            row["loinc"] = code
        else:
            row["item"] = label or ""
        out.add("observations.csv", row | {"uln": high or "", "lln": low or "", "source": name}, where)
    if without_value:
        out.problem(
            Origin(f"{name} measurement"),
            f"{without_value:,} measurements have no value (neither value_as_number nor value_as_concept_id)",
            "not read: a result without a value decides no criterion",
        )


def _conditions(con: duckdb.DuckDBPyConnection, out: Imported, name: str) -> None:
    rows = _rows(
        con,
        name,
        "condition_occurrence",
        "SELECT o.condition_occurrence_id, o.person_id, c.concept_code, c.vocabulary_id, c.concept_name, "
        "s.concept_code, s.vocabulary_id, o.condition_source_value, o.condition_start_date, o.condition_end_date "
        "FROM condition_occurrence o "
        "LEFT JOIN concept c ON c.concept_id = o.condition_concept_id "
        "LEFT JOIN concept s ON s.concept_id = o.condition_source_concept_id AND o.condition_source_concept_id <> 0 "
        "ORDER BY o.condition_occurrence_id",
    )
    for n, (rid, pid, code, system, label, source_code, source_system, source_value, start, end) in enumerate(rows, 1):
        where = Origin(f"{name} condition_occurrence", None, _id("condition_occurrence", rid, n))
        source_value = str(source_value) if source_value is not None else None
        codes = []
        if system == "SNOMED" and code:
            codes.append(f"snomed:{code}")
        if source_system in _ICD and source_code:
            codes.append(f"{_ICD[source_system]}:{source_code}")
        elif source_value and source_value[:1].isalpha() and source_value[1:3].isdigit():
            codes.append(f"icd10cm:{source_value}")  # an ICD-10-shaped source value without its concept
        for full in codes or [""]:
            event = {"patient_id": pid, "kind": "diagnosis", "name": label or "", "code": full}
            out.add("events.csv", event | {"start_date": str(start or "")[:10], "end_date": str(end or "")[:10]}, where)


def _drugs(con: duckdb.DuckDBPyConnection, out: Imported, name: str, vocab: Vocabulary) -> None:
    rows = _rows(
        con,
        name,
        "drug_exposure",
        "SELECT d.drug_exposure_id, d.person_id, c.concept_name, c.vocabulary_id, "
        "d.drug_exposure_start_date, d.drug_exposure_end_date "
        "FROM drug_exposure d LEFT JOIN concept c ON c.concept_id = d.drug_concept_id "
        "ORDER BY d.drug_exposure_id",
    )
    names: dict[str, str] = {}
    for n, (rid, pid, concept, system, start, end) in enumerate(rows, 1):
        where = Origin(f"{name} drug_exposure", None, _id("drug_exposure", rid, n))
        text = str(concept or "")
        if text not in names:
            names[text] = agent_name(text, vocab)
        kind = "vaccination" if system == "CVX" else "medication"
        event = {"patient_id": pid, "kind": kind, "name": names[text], "start_date": str(start or "")[:10]}
        out.add("events.csv", event | {"end_date": str(end or "")[:10], "note": text}, where)
