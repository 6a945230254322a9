"""The shared parts of one set-at-a-time build of facts (kb/factbase/set_facts.py,
set_events.py, set_measures.py): the connection and plan, the insert into a rule's input
table with its filter, and the lookup that runs a Python formula once per distinct input.
Apart from set_facts.py so that the modules it calls can use them without a cycle."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal, DecimalException
from typing import Any

import duckdb
import pyarrow as pa

from kb.catalogue.assumptions import AssumptionSet
from kb.catalogue.knowledge import KnowledgeBase
from kb.errors import KbError
from kb.language.sql import SqlPlan, column_type, fits_exactly, table_name
from kb.records.tables import NUMBER

__all__ = ["AGE_MACRO", "ANCHORS", "FAILURES", "SetFacts", "SqlBuild", "number"]

ANCHORS = ("screening", "enrolment", "apheresis")
#: `age_in_years(birth, on)` as a DuckDB macro
AGE_MACRO = (
    "CREATE OR REPLACE MACRO sf_age(b, d) AS year(d) - year(b) - "
    "CASE WHEN month(d) * 100 + day(d) < month(b) * 100 + day(b) THEN 1 ELSE 0 END"
)
#: what a Python formula may raise on a patient's values (build_facts raises it too)
FAILURES = (KbError, DecimalException, ArithmeticError, ValueError, OverflowError)


@dataclass
class SetFacts:
    """`cohorts`: each patient decided → sorted trial diagnoses (as `chunk_facts` gives
    them); `declined`: patient → why the SQL left it to `build_facts`."""

    cohorts: dict[str, tuple[str, ...]]
    declined: dict[str, str] = field(default_factory=dict)


def number(text: str) -> Decimal:
    """A DECIMAL's text as the shortest Decimal of that value (1.5000…0 → 1.5): the formulas
    see the value as a file writes it, so their results have the same digits."""
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return Decimal(text)


def _text(value: object) -> str | None:
    if value is None:
        return None
    return format(value, "f") if isinstance(value, Decimal) else str(value)


@dataclass
class SqlBuild:
    """One build: the connection, what the formulas read, and helpers shared by both modules."""

    con: duckdb.DuckDBPyConnection
    kb: KnowledgeBase
    assumptions: AssumptionSet
    plan: SqlPlan
    _registered: list[str] = field(default_factory=list)

    def insert(self, relation: str, select: str, params: Sequence[object] = ()) -> None:
        """Rows c0, c1 … of `select` into the relation's table, cast to its column types,
        filtered by its second argument as `FactTables.add` does."""
        decl = self.plan.inputs.get(relation)
        if decl is None:
            return  # a relation no criterion needs
        casts = ", ".join(f"CAST(c{i} AS {column_type(t)})" for i, (_, t) in enumerate(decl.params))
        where, args = "", list(params)
        wanted = self.plan.selective.get(relation)
        if wanted is not None:
            where = " WHERE CAST(c1 AS VARCHAR) IN (SELECT unnest(CAST(? AS VARCHAR[])))"
            args.append(sorted(wanted))
        self.con.execute(f"INSERT INTO {table_name(relation)} SELECT {casts} FROM ({select}) AS s{where}", args)

    def lookup(
        self,
        name: str,
        query: str,
        compute: Callable[..., Any],
        outputs: Sequence[str],
        params: Sequence[object] = (),
        many: bool = False,
        numbers: Sequence[str] = (),
    ) -> bool:
        """`compute` once per distinct key row of `query` (columns k0, k1 … as text), the
        results registered as table `name`: keys, then `outputs` as text, then `bad` (why
        the formula failed, or its number does not fit DECIMAL(38, 28)). A key whose
        `compute` returns None has no row (no fact); with `many`, `compute` returns a list
        of output rows, each a row of the table. `numbers`: outputs made DECIMAL(38, 28)
        here, once per key rather than once per patient joined. Returns whether any row is
        `bad` (only then need the caller look for the patients to decline)."""
        result = self.con.execute(f"SELECT DISTINCT * FROM ({query}) AS q", list(params))
        width = len(result.description or ())
        keys = result.fetchall()
        columns: list[list[str | None]] = [[] for _ in range(width + len(outputs) + 1)]
        for key in keys:
            bad = None
            rows: Sequence[Sequence[object]]
            try:
                found = compute(*key)
                rows = (found or []) if many else ([] if found is None else [found])
            except FAILURES as exc:
                rows, bad = [(None,) * len(outputs)], f"{type(exc).__name__}: {exc}"
            for row in rows:
                wrong = next((v for v in row if isinstance(v, Decimal) and not fits_exactly(v)), None)
                why = bad if wrong is None else f"{wrong} does not fit DECIMAL(38, 28)"
                for i, value in enumerate((*key, *row, why)):
                    columns[i].append(_text(value))
        names = [f"k{i}" for i in range(width)] + list(outputs) + ["bad"]
        table = pa.table({n: pa.array(col, pa.string()) for n, col in zip(names, columns, strict=True)})
        if numbers:
            self.con.register("sf_incoming", table)
            casts = ", ".join(f"CAST({n} AS {NUMBER}) AS {n}" for n in numbers)
            self.con.execute(f"CREATE OR REPLACE TEMP TABLE {name} AS SELECT * REPLACE ({casts}) FROM sf_incoming")
            self.con.unregister("sf_incoming")
        else:
            self.con.register(name, table)
            self._registered.append(name)
        return any(why is not None for why in columns[-1])

    def decline(self, select: str, params: Sequence[object] = ()) -> None:
        """Patients (column `patient`, and `why`) the SQL leaves to `build_facts`."""
        self.con.execute(f"INSERT INTO sf_declined SELECT patient, why FROM ({select}) AS d", list(params))

    def close(self) -> None:
        """Unregister the Arrow tables and drop the working tables (sf_*): a chunk's selected
        results are as large as its facts, and the connection goes on to derive the rules."""
        for name in self._registered:
            self.con.unregister(name)
        self._registered.clear()
        found = self.con.execute(
            "SELECT table_name FROM duckdb_tables() WHERE temporary AND starts_with(table_name, 'sf_')"
        ).fetchall()
        for (name,) in found:
            self.con.execute(f'DROP TABLE IF EXISTS "{name}"')
