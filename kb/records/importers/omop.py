"""An OMOP CDM database to the same facts, read-only: a DuckDB file (`read_omop`), a folder
of Parquet tables (`read_omop_folder`) or Arrow tables, e.g. from a Spark catalog
(`read_omop_tables`); the same queries read all three, so the same tables give the same rows.

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

from collections.abc import Mapping
from datetime import date
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.compute as pc

from kb.catalogue.vocabulary import Vocabulary
from kb.errors import KbError, Problem
from kb.records.importers.common import Imported, Origin
from kb.records.importers.fhir import agent_name
from kb.records.importers.parquet import parquet_path, parquet_schema, read_parquet

__all__ = ["COLUMNS", "OMOP_TABLES", "read_omop", "read_omop_folder", "read_omop_tables"]

OMOP_TABLES = ("person", "measurement", "condition_occurrence", "drug_exposure", "procedure_occurrence", "concept")
_SEX = {8532: "female", 8507: "male"}
_ICD = {"ICD10": "icd10", "ICD10CM": "icd10cm"}


# Opened so that nothing stored in the file can reach outside it: no file system access (a
# view or macro over read_csv, an ATTACH), no extension loaded or installed on demand, and
# the settings locked so a query cannot switch them back.
_SAFE = {
    "enable_external_access": False,
    "autoload_known_extensions": False,
    "autoinstall_known_extensions": False,
    "lock_configuration": True,
}

# The base tables read and the columns each query needs; a view of one of these names is
# refused (a view is stored SQL, not data), any other view, macro or table is never read.
COLUMNS = {
    "person": ("person_id", "gender_concept_id", "year_of_birth", "month_of_birth", "day_of_birth", "birth_datetime"),
    "concept": ("concept_id", "concept_name", "vocabulary_id", "concept_code"),
    "measurement": (
        "measurement_id",
        "person_id",
        "measurement_concept_id",
        "measurement_date",
        "value_as_number",
        "value_as_concept_id",
        "unit_concept_id",
        "unit_source_value",
        "range_high",
        "range_low",
    ),
    "condition_occurrence": (
        "condition_occurrence_id",
        "person_id",
        "condition_concept_id",
        "condition_source_concept_id",
        "condition_source_value",
        "condition_start_date",
        "condition_end_date",
    ),
    "drug_exposure": (
        "drug_exposure_id",
        "person_id",
        "drug_concept_id",
        "drug_exposure_start_date",
        "drug_exposure_end_date",
    ),
    "procedure_occurrence": ("procedure_occurrence_id", "person_id", "procedure_concept_id", "procedure_date"),
}


def _connect(path: Path) -> duckdb.DuckDBPyConnection:
    """The database opened read-only in place, with external access disabled (`_SAFE`).

    Never a copy: a database DuckDB cannot open read-only (locked by a program writing to it,
    written by another DuckDB version) is an error that says so, not a copy in /tmp whose
    content nobody vouches for."""
    try:
        return duckdb.connect(str(path), read_only=True, config=dict(_SAFE))
    except duckdb.Error as exc:
        text = str(exc)
        if "lock" in text.casefold():
            reason = "it is locked by another program writing to it; close that program (or copy the file) and retry"
        elif "version" in text.casefold() or "newer" in text.casefold():
            reason = f"it was written by a DuckDB this version cannot read read-only ({text})"
        elif "different configuration" in text.casefold():
            reason = "this process already has it open with other settings; close it there first"
        else:
            reason = f"DuckDB cannot open it read-only ({text})"
        raise KbError(f"{path}: {reason}") from None


def _memory() -> duckdb.DuckDBPyConnection:
    """An in-memory database for tables handed over as Arrow, sealed as `_connect` seals a
    file: the tables are copied in through the Python API, and no SQL run on it can reach the
    file system, load an extension or change these settings."""
    return duckdb.connect(":memory:", config=dict(_SAFE))


def _tables(con: duckdb.DuckDBPyConnection, name: str, at: Mapping[str, str]) -> set[str]:
    """The OMOP tables present as base tables of the expected columns (names folded to lower
    case). A view (or any non-table) under an expected name, or an expected column missing,
    is a KbError naming each one: such a table is neither read nor taken as absent."""
    rows = con.execute(
        "SELECT table_name, table_type FROM information_schema.tables "
        "WHERE table_catalog = current_database() AND table_schema = current_schema()"
    ).fetchall()
    kinds = {str(table).casefold(): str(kind) for table, kind in rows}
    problems = [
        Problem(
            at[table],
            None,
            None,
            f"{table} is a {kinds[table].lower()}, not a table",
            "not read: only stored tables are read",
        )
        for table in OMOP_TABLES
        if table in kinds and kinds[table] != "BASE TABLE"
    ]
    tables = {table for table in OMOP_TABLES if kinds.get(table) == "BASE TABLE"}
    for table in sorted(tables):
        found = {
            str(c).casefold()
            for (c,) in con.execute(
                "SELECT column_name FROM information_schema.columns WHERE table_catalog = current_database() "
                "AND table_schema = current_schema() AND lower(table_name) = ?",
                [table],
            ).fetchall()
        }
        missing = [c for c in COLUMNS[table] if c not in found]
        if missing:
            problems.append(Problem(at[table], None, ", ".join(missing), "expected column missing"))
    if problems:
        raise KbError(f"{name}: not read (an OMOP table must be a stored table with its columns)", problems)
    absent = [t for t in ("person", "concept") if t not in tables]
    if absent:
        found_names = ", ".join(sorted(kinds)[:8]) or "none"
        raise KbError(f"{name}: not an OMOP CDM database (no {' or '.join(absent)} table; tables: {found_names})")
    return tables


def read_omop(path: Path | str, vocab: Vocabulary, diagnoses_complete: date | None = None) -> Imported:
    """The four files of an OMOP database. `diagnoses_complete`: the date up to which every
    person's diagnosis list is declared complete (the assumption above), or None."""
    path = Path(path)
    con = _connect(path)
    try:
        at = _labels(path.name)
        return _read(con, path.name, at, _tables(con, path.name, at), vocab, diagnoses_complete)
    finally:
        con.close()


def _labels(name: str, place: str = "{name} {table}") -> dict[str, str]:
    """How problems name each table: `place` filled with the source's name and the table's."""
    return {table: place.format(name=name, table=table) for table in OMOP_TABLES}


def read_omop_tables(
    tables: Mapping[str, pa.Table],
    vocab: Vocabulary,
    diagnoses_complete: date | None = None,
    name: str = "omop",
    place: str = "{name} {table}",
) -> Imported:
    """The four files of OMOP tables held as Arrow tables, by table name (`person`,
    `measurement` …; case folded; other names are not read): the very rows `read_omop` makes
    of the same tables in a DuckDB file, since the same queries run on them. E.g. a Spark
    catalog's tables, `{t: spark.table(f"{schema}.{t}").toArrow() for t in OMOP_TABLES}`.

    Only the columns the queries need (`COLUMNS`) are copied, into an in-memory DuckDB opened
    as `_connect` opens a file (no file system access from SQL, settings locked). `place`
    names a table in problems, e.g. "{name}.{table}" for a Spark schema `name`."""
    return _from_arrow(tables, vocab, diagnoses_complete, name, _labels(name, place))


def _from_arrow(
    tables: Mapping[str, pa.Table], vocab: Vocabulary, reviewed: date | None, name: str, at: Mapping[str, str]
) -> Imported:
    con = _memory()
    try:
        _store(con, tables, name, at)
        return _read(con, name, at, _tables(con, name, at), vocab, reviewed)
    finally:
        con.close()


def _store(con: duckdb.DuckDBPyConnection, tables: Mapping[str, pa.Table], name: str, at: Mapping[str, str]) -> None:
    """Each OMOP table of `tables` stored in `con` as a base table of its expected columns
    (its other columns are left out: measurement has some twenty)."""
    given: dict[str, str] = {}
    for key, table in tables.items():
        folded = str(key).strip().casefold()
        if folded not in OMOP_TABLES:
            continue
        if folded in given:
            raise KbError(f"{name}: two tables named {folded} ({given[folded]} and {key}); give one")
        given[folded] = str(key)
        if not isinstance(table, pa.Table):
            raise KbError(f"{at[folded]}: expected an Arrow table, got {type(table).__name__}")
        first: dict[str, int] = {}
        for i, column in enumerate(table.column_names):
            first.setdefault(str(column).casefold(), i)
        keep = [first[c] for c in COLUMNS[folded] if c in first]
        view = f"_arrow_{folded}"
        try:
            con.register(view, _wall_clock(table.select(keep) if keep else table))
            con.execute(f'CREATE TABLE "{folded}" AS SELECT * FROM "{view}"')
        except duckdb.Error as exc:
            reason = str(exc).splitlines()[0]
            raise KbError(f"{at[folded]}: cannot be read as an OMOP CDM table ({reason})") from None
        finally:
            con.unregister(view)


def _wall_clock(table: pa.Table) -> pa.Table:
    """Time zone-aware date-times as the wall-clock time of their own zone, as a CDM's
    TIMESTAMP column holds them (Spark hands its timestamps over as instants in the session's
    zone): DuckDB would show them in the zone of the machine running the import, and a birth
    at midnight could fall on the day before."""
    for i, field in enumerate(table.schema):
        if pa.types.is_timestamp(field.type) and field.type.tz:
            table = table.set_column(i, field.name, pc.local_timestamp(table.column(i)))
    return table


def read_omop_folder(folder: Path | str, vocab: Vocabulary, diagnoses_complete: date | None = None) -> Imported:
    """The four files of OMOP tables written as Parquet in `folder`: `person.parquet`,
    `concept.parquet` … (one file each, or a folder of parts named `person` or
    `person.parquet`, as Spark writes a table). Read as `read_omop_tables` reads them; a
    problem names the table's file (`cdm/measurement.parquet (measurement_id 7)`)."""
    folder = Path(folder)
    tables: dict[str, pa.Table] = {}
    places: dict[str, str] = {}
    for table in OMOP_TABLES:
        path = parquet_path(folder, table, parts=True)
        if path is None:
            continue
        label = f"{folder.name}/{path.name}"
        names = parquet_schema(path, label).names
        first: dict[str, str] = {}
        for column in names:
            first.setdefault(column.casefold(), column)
        wanted = [first[c] for c in COLUMNS[table] if c in first]
        tables[table] = read_parquet(path, label, wanted or None)
        places[table] = label
    return _from_arrow(tables, vocab, diagnoses_complete, folder.name, _labels(folder.name) | places)


def _rows(con: duckdb.DuckDBPyConnection, at: Mapping[str, str], table: str, sql: str) -> list[tuple[Any, ...]]:
    """The rows of one query on `table`; a table DuckDB cannot read as the CDM says (a missing
    column, a value that will not convert) refuses the import, naming the table and DuckDB's
    reason: a table partly read would make its records look absent."""
    try:
        return con.execute(sql).fetchall()
    except duckdb.Error as exc:
        reason = str(exc).splitlines()[0]
        raise KbError(f"{at[table]}: cannot be read as an OMOP CDM table ({reason})") from None


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
    con: duckdb.DuckDBPyConnection,
    name: str,
    at: Mapping[str, str],
    tables: set[str],
    vocab: Vocabulary,
    reviewed: date | None,
) -> Imported:
    out = Imported(name)
    persons = _rows(
        con,
        at,
        "person",
        "SELECT person_id, gender_concept_id, year_of_birth, month_of_birth, day_of_birth, birth_datetime "
        "FROM person ORDER BY person_id",
    )
    for n, (pid, gender, year, month, day, born) in enumerate(persons, start=1):
        where = Origin(at["person"], n, _id("person", pid, n))
        birth = str(born)[:10] if born else _birth(out, where, pid, year, month, day)
        out.add("patients.csv", {"patient_id": pid, "sex": _SEX.get(gender, ""), "birth_date": birth}, where)
        if reviewed is not None:
            row = {"patient_id": pid, "item": "reviewed:diagnoses", "value": "yes", "date": reviewed.isoformat()}
            out.add("attestations.csv", row | {"by": "assumption diagnoses_complete"}, where)
    if "measurement" in tables:
        _measurements(con, out, name, at)
    if "condition_occurrence" in tables:
        _conditions(con, out, name, at)
    if "drug_exposure" in tables:
        _drugs(con, out, name, at, vocab)
    if "procedure_occurrence" in tables:
        rows = _rows(
            con,
            at,
            "procedure_occurrence",
            "SELECT p.procedure_occurrence_id, p.person_id, c.concept_name, p.procedure_date "
            "FROM procedure_occurrence p LEFT JOIN concept c ON c.concept_id = p.procedure_concept_id "
            "ORDER BY p.procedure_occurrence_id",
        )
        for n, (rid, pid, concept, when) in enumerate(rows, start=1):
            where = Origin(at["procedure_occurrence"], None, _id("procedure_occurrence", rid, n))
            event = {"patient_id": pid, "kind": "procedure", "name": concept or "", "start_date": str(when or "")[:10]}
            out.add("events.csv", event, where)
    return out


def _measurements(con: duckdb.DuckDBPyConnection, out: Imported, name: str, at: Mapping[str, str]) -> None:
    rows = _rows(
        con,
        at,
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
    without_value: list[str] = []
    for n, (rid, pid, code, system, label, number, coded, unit, unit_text, high, low, when) in enumerate(rows, 1):
        value = (number or "").strip() or (coded or "")
        if not value:  # a measurement done but not resulted says nothing a criterion reads
            without_value.append(_id("measurement", rid, n))
            continue
        where = Origin(at["measurement"], None, _id("measurement", rid, n))
        row = {"patient_id": pid, "value": value, "unit": unit or unit_text or "", "date": str(when or "")[:10]}
        if system == "LOINC":
            row["loinc"] = code
        else:
            row["item"] = label or ""
        out.add("observations.csv", row | {"uln": high or "", "lln": low or "", "source": name}, where)
    if without_value:  # one problem for them all, naming the first rows (Eunomia has thousands)
        more = f" and {len(without_value) - 3:,} more" if len(without_value) > 3 else ""
        out.problem(
            Origin(at["measurement"], None, ", ".join(without_value[:3]) + more),
            f"{len(without_value):,} measurements have no value (neither value_as_number nor value_as_concept_id)",
            "not read: a result without a value decides no criterion",
            column="value_as_number",
        )


def _conditions(con: duckdb.DuckDBPyConnection, out: Imported, name: str, at: Mapping[str, str]) -> None:
    rows = _rows(
        con,
        at,
        "condition_occurrence",
        "SELECT o.condition_occurrence_id, o.person_id, c.concept_code, c.vocabulary_id, c.concept_name, "
        "s.concept_code, s.vocabulary_id, o.condition_source_value, o.condition_start_date, o.condition_end_date "
        "FROM condition_occurrence o "
        "LEFT JOIN concept c ON c.concept_id = o.condition_concept_id "
        "LEFT JOIN concept s ON s.concept_id = o.condition_source_concept_id AND o.condition_source_concept_id <> 0 "
        "ORDER BY o.condition_occurrence_id",
    )
    for n, (rid, pid, code, system, label, source_code, source_system, source_value, start, end) in enumerate(rows, 1):
        where = Origin(at["condition_occurrence"], None, _id("condition_occurrence", rid, n))
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


def _drugs(con: duckdb.DuckDBPyConnection, out: Imported, name: str, at: Mapping[str, str], vocab: Vocabulary) -> None:
    rows = _rows(
        con,
        at,
        "drug_exposure",
        "SELECT d.drug_exposure_id, d.person_id, c.concept_name, c.vocabulary_id, "
        "d.drug_exposure_start_date, d.drug_exposure_end_date "
        "FROM drug_exposure d LEFT JOIN concept c ON c.concept_id = d.drug_concept_id "
        "ORDER BY d.drug_exposure_id",
    )
    names: dict[str, str] = {}
    for n, (rid, pid, concept, system, start, end) in enumerate(rows, 1):
        where = Origin(at["drug_exposure"], None, _id("drug_exposure", rid, n))
        text = str(concept or "")
        if text not in names:
            names[text] = agent_name(text, vocab)
        kind = "vaccination" if system == "CVX" else "medication"
        event = {"patient_id": pid, "kind": kind, "name": names[text], "start_date": str(start or "")[:10]}
        out.add("events.csv", event | {"end_date": str(end or "")[:10], "note": text}, where)
