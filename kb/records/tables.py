"""The four files' records as long tables in a SQL database: what facts built set-at-a-time read.

`build_facts` walks one `Patient` at a time in Python; the set-at-a-time builder
(`kb/factbase/set_facts.py`) reads the same records for many patients at once, as five tables
whose columns are the fields of `Patient`, `Observation`, `Event`, `Attestation` and
`Unreadable` (every table keyed by the patient id and the row the record came from, since
"latest" breaks ties by row). Two producers fill them: `load_records` from patients already
read (the Python loader, an importer), and the SQL reader of the CSV files.

Numbers are exact: DECIMAL(38, 28), as in the fact tables the rules read. A patient with a
number that type cannot hold (a result of 1e12) is returned by `load_records` as a misfit,
its rows left out, for the per-patient path to decide, as `FactTables.misfits` does.
"""

from __future__ import annotations

from collections.abc import Iterable
from decimal import Decimal

import duckdb
import pyarrow as pa

from kb.language.sql import NUMBER_SCALE, fits_exactly
from kb.records.patients import Patient

__all__ = ["NUMBER", "RECORD_TABLES", "create_record_tables", "load_records", "records_arrow"]

#: the SQL type of every number of a record (the fact tables' own)
NUMBER = f"DECIMAL(38, {NUMBER_SCALE})"

#: table → (column, SQL type): the fields of the records of kb/records/patients.py
RECORD_TABLES: dict[str, tuple[tuple[str, str], ...]] = {
    "rec_patient": (
        ("patient", "VARCHAR"),
        ("row", "INTEGER"),
        ("sex", "VARCHAR"),
        ("birth_date", "DATE"),
        ("weight_kg", NUMBER),
        ("height_cm", NUMBER),
        ("screening_date", "DATE"),
        ("enrolment_date", "DATE"),
        ("apheresis_date", "DATE"),
    ),
    "rec_observation": (
        ("patient", "VARCHAR"),
        ("row", "INTEGER"),
        ("item", "VARCHAR"),
        ("num", NUMBER),  # a quantitative result in the item's canonical unit
        ("cat", "VARCHAR"),  # a qualitative result (NULL for a quantitative one)
        ("date", "DATE"),
        ("uln", NUMBER),
        ("lln", NUMBER),
        ("factor_assumption", "VARCHAR"),  # "" unless the value waits for an assumed factor
    ),
    "rec_event": (
        ("patient", "VARCHAR"),
        ("row", "INTEGER"),
        ("kind", "VARCHAR"),
        ("name", "VARCHAR"),
        ("agent", "VARCHAR"),  # the vocabulary agent or condition it names, NULL if none
        ("code", "VARCHAR"),
        ("start_date", "DATE"),
        ("end_date", "DATE"),
        ("dose", NUMBER),
        ("dose_unit", "VARCHAR"),
        ("frequency", "VARCHAR"),
    ),
    "rec_attestation": (
        ("patient", "VARCHAR"),
        ("row", "INTEGER"),
        ("item", "VARCHAR"),
        ("value", "VARCHAR"),
        ("date", "DATE"),
        ("by", "VARCHAR"),
    ),
    "rec_unreadable": (
        ("patient", "VARCHAR"),
        ("row", "INTEGER"),
        ("file", "VARCHAR"),
        ("what", "VARCHAR"),
        ("date", "DATE"),
        ("reason", "VARCHAR"),
    ),
}

_NUMBERS = {name: [c for c, t in columns if t == NUMBER] for name, columns in RECORD_TABLES.items()}


def create_record_tables(con: duckdb.DuckDBPyConnection) -> None:
    """The five tables, empty (replacing any of the same name)."""
    for name, columns in RECORD_TABLES.items():
        body = ", ".join(f'"{c}" {t}' for c, t in columns)
        con.execute(f"CREATE OR REPLACE TABLE {name} ({body})")


def _text(value: Decimal | str | None) -> str | None:
    return None if value is None else format(value, "f") if isinstance(value, Decimal) else value


def _rows(patients: Iterable[Patient]) -> tuple[dict[str, list[tuple[object, ...]]], set[str]]:
    rows: dict[str, list[tuple[object, ...]]] = {name: [] for name in RECORD_TABLES}
    misfits: set[str] = set()

    def number(pid: str, value: Decimal | None) -> str | None:
        if value is not None and not fits_exactly(value):
            misfits.add(pid)
        return _text(value)

    for p in patients:
        row = p.source.row if p.source else 0
        rows["rec_patient"].append(
            (
                p.id,
                row,
                p.sex,
                p.birth_date,
                number(p.id, p.weight_kg),
                number(p.id, p.height_cm),
                p.screening_date,
                p.enrolment_date,
                p.apheresis_date,
            )
        )
        for o in p.observations:
            num, cat = (o.value, None) if isinstance(o.value, Decimal) else (None, o.value)
            rows["rec_observation"].append(
                (
                    p.id,
                    o.source.row,
                    o.item,
                    number(p.id, num),
                    cat,
                    o.date,
                    number(p.id, o.uln),
                    number(p.id, o.lln),
                    o.factor_assumption,
                )
            )
        for e in p.events:
            rows["rec_event"].append(
                (
                    p.id,
                    e.source.row,
                    e.kind,
                    e.name,
                    e.agent,
                    e.code,
                    e.start,
                    e.end,
                    number(p.id, e.dose),
                    e.dose_unit,
                    e.frequency,
                )
            )
        for a in p.attestations:
            rows["rec_attestation"].append((p.id, a.source.row, a.item, a.value, a.date, a.by))
        for u in p.unreadable:
            rows["rec_unreadable"].append((p.id, u.source.row, u.file, u.what, u.when, u.reason))
    return rows, misfits


_ARROW = {"VARCHAR": pa.string(), "INTEGER": pa.int32(), "DATE": pa.date32(), NUMBER: pa.string()}


def records_arrow(patients: Iterable[Patient]) -> tuple[dict[str, pa.Table], set[str]]:
    """The records of `patients` as Arrow tables (numbers as exact decimal text), and the
    misfits: patients with a number DECIMAL(38, 28) cannot hold, whose rows are left out."""
    rows, misfits = _rows(patients)
    tables = {}
    for name, columns in RECORD_TABLES.items():
        kept = [r for r in rows[name] if r[0] not in misfits]
        data: list[tuple[object, ...]] = list(zip(*kept, strict=True)) if kept else [() for _ in columns]
        tables[name] = pa.table(
            {c: pa.array(list(values), _ARROW[t]) for (c, t), values in zip(columns, data, strict=True)}
        )
    return tables, misfits


def load_records(con: duckdb.DuckDBPyConnection, patients: Iterable[Patient]) -> set[str]:
    """Fill the five tables with `patients`' records; returns the misfits (left out)."""
    tables, misfits = records_arrow(patients)
    create_record_tables(con)
    for name, table in tables.items():
        if table.num_rows == 0:
            continue
        con.register("incoming", table)
        casts = ", ".join(f'CAST("{c}" AS {t}) AS "{c}"' if t == NUMBER else f'"{c}"' for c, t in RECORD_TABLES[name])
        con.execute(f"INSERT INTO {name} SELECT {casts} FROM incoming")
        con.unregister("incoming")
    return misfits
