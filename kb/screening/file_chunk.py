"""A chunk of a four-file set screened set-at-a-time: its rows, facts and rules in one DuckDB.

`screen_folder` splits a file set into chunks of patients, one worker process per core.
Each worker used to read its chunk with the Python loader, build every patient's facts in
Python and only then hand them to DuckDB: the two Python steps were most of the time. Here
DuckDB reads the chunk's CSV files itself (kb/records/csv_sql.py), builds the facts from the
record tables (kb/factbase/set_facts.py) and derives the rules, all in one connection;
Python runs once per distinct value (a unit, a name, a date), not once per row.

Nothing changes for the user, and nothing is lost, because whatever either step declines
goes the way it always went:

- a file-level matter (a missing essential or a repeated column, a row of no patient, a
  quote the two CSV readers might read differently): the chunk is read by the Python loader
  and screened as before; a missing optional column is read as empty in SQL, as the loader
  reads it, and the loader's own problem for it is the chunk's (`ChunkScreening.problems`);
- a patient with a row the Python loader has a problem with (the SQL reader judges every
  value by the loader's own functions, once per distinct value), or facts the SQL builder
  leaves to Python: that patient's rows alone are read by the Python loader, whose problems
  are the chunk's report (the patients the SQL accepted have none, by construction:
  tests/test_csv_sql.py), and their facts come from `build_facts`, added to the same tables.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import date
from pathlib import Path

import duckdb

from kb.catalogue.assumptions import AssumptionSet
from kb.catalogue.knowledge import KnowledgeBase
from kb.errors import Problem
from kb.factbase.set_facts import build_facts_sql
from kb.records.csv_sql import load_declined, read_records_sql
from kb.records.patients import Dataset, Patient
from kb.screening.batch import BatchVerdict, chunk_facts, connect, decide_chunk, sql_plan

__all__ = ["ChunkScreening", "FileChunkFacts", "file_chunk_facts", "screen_file_chunk"]


@dataclass
class ChunkScreening:
    """`verdicts` in the chunk's order, or None: screen `dataset` the per-patient-facts way.
    `dataset`: the Python loader's reading of the chunk (or of its declined patients) when it
    was needed, else None (the SQL reader certified every row). `problems`: the chunk's
    problems as `load_dataset(chunk)` reports them, in its order: a header's (a missing
    column read as empty) even when no patient went through Python."""

    verdicts: list[BatchVerdict] | None
    dataset: Dataset | None
    declined: int = 0  # patients whose rows or facts went through Python
    problems: list[Problem] = field(default_factory=list)

    @classmethod
    def loaded(cls, dataset: Dataset) -> ChunkScreening:
        """The chunk read whole by the Python loader: to be screened the per-patient way."""
        return cls(None, dataset, 0, dataset.problems)


@dataclass
class FileChunkFacts:
    """A chunk read and its facts built set-at-a-time: the rules' input tables in `con`
    (every patient of `cohorts`, the declined ones' facts from `build_facts` among them),
    `reference` the patients pyDatalog decides, `order` the chunk's patients in file order,
    and `screening` what the chunk reports (its verdicts not yet decided)."""

    con: duckdb.DuckDBPyConnection
    cohorts: dict[str, tuple[str, ...]]
    reference: list[Patient]
    order: list[str]
    screening: ChunkScreening


@contextmanager
def file_chunk_facts(
    folder: Path,
    kb: KnowledgeBase,
    assumptions: AssumptionSet,
    as_of: date | None,
    today: date | None,
    load: Callable[[], Dataset],
) -> Iterator[FileChunkFacts | ChunkScreening]:
    """The file set in `folder` read and its facts built set-at-a-time, in a DuckDB closed on
    leaving; or, when the loader must read the set whole (`load()`, a file-level matter, or
    rules only pyDatalog runs), that reading, to be screened the per-patient way. Declined
    patients alone are read by the loader (`load_declined`: their rows at their original
    numbers, their problems). DuckDB derives the rules from these tables
    (`screen_file_chunk`), Spark from their Parquet (kb/screening/spark.py)."""
    plan = sql_plan(kb)
    if plan is None:  # the rules need the reference engine
        yield ChunkScreening.loaded(load())
        return
    con = connect()
    try:
        read = read_records_sql(con, folder, kb.vocabulary, today)
        if read.whole:
            yield ChunkScreening.loaded(load())
            return
        built = build_facts_sql(con, kb, assumptions, plan, as_of, today)
        rows = dict(con.execute("SELECT patient, row FROM rec_patient").fetchall())
        python = {*read.declined, *built.declined}
        dataset = load_declined(folder, python, kb.vocabulary, today) if python else None
        fallback = [] if dataset is None else list(dataset.patients.values())
        rows.update((p.id, p.source.row if p.source else 0) for p in fallback)
        facts = chunk_facts(fallback, kb, assumptions, as_of, today, reference_facts=False)
        if facts.tables is None:  # an assumption's number no SQL column holds: pyDatalog decides all
            yield ChunkScreening.loaded(load())
            return
        facts.tables.insert(con)
        order = sorted(rows, key=lambda pid: rows[pid])
        cohorts = {**built.cohorts, **facts.cohorts}
        # the declined patients' reading holds the file-level problems too (their copy keeps
        # each header), before their rows' problems, as the whole chunk's load orders them
        problems = list(read.problems) if dataset is None else dataset.problems
        yield FileChunkFacts(
            con, cohorts, facts.reference, order, ChunkScreening(None, dataset, len(fallback), problems)
        )
    finally:
        con.close()


def screen_file_chunk(
    folder: Path,
    kb: KnowledgeBase,
    assumptions: AssumptionSet,
    as_of: date | None,
    today: date | None,
    load: Callable[[], Dataset],
) -> ChunkScreening:
    """Screen the file set in `folder` set-at-a-time (`file_chunk_facts`, then the rules
    derived in the same DuckDB); `load()` reads it whole with the Python loader, called only
    for a file-level matter."""
    with file_chunk_facts(folder, kb, assumptions, as_of, today, load) as built:
        if isinstance(built, ChunkScreening):
            return built
        verdicts = decide_chunk(built.con, built.cohorts, built.reference, built.order, kb, assumptions, as_of, today)
        return replace(built.screening, verdicts=verdicts)
