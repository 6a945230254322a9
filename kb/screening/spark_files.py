"""A CSV file set screened on Spark, its facts built set-at-a-time as DuckDB's path builds them.

`kb screen --facts FOLDER --engine spark` used to read the whole set with the Python loader
into the parent, then build every patient's facts in Python: on 100,000 patients that was
most of the time before Spark derived anything, and all of them were held at once. Here the
set is split into chunks as `screen_folder` splits it for DuckDB, and each worker reads its
chunk and builds its facts exactly as the DuckDB path does (kb/screening/file_chunk.py: SQL
over the records, Python once per distinct value, declined patients through the loader and
`build_facts`), then writes the rules' input tables as Parquet for Spark
(`kb.screening.spark.write_tables`). The facts are therefore the same, table for table, as
the ones DuckDB derives from, and so are the problems reported; what differs is only the
engine that derives the rules (tests/test_spark_files.py).

The facts are built by local processes on the machine that submits the screening: Spark
derives the rules on its executors, wherever they are.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import date
from pathlib import Path
from typing import Any

from kb.catalogue.assumptions import AssumptionSet
from kb.catalogue.knowledge import KnowledgeBase
from kb.errors import Problem
from kb.records.patients import Dataset
from kb.screening.batch import BatchVerdict, reference_verdict, sql_plan
from kb.screening.file_chunk import ChunkScreening, file_chunk_facts
from kb.screening.spark import SparkPart, evaluate_spark_parts, patients_part, write_tables

__all__ = ["spark_folder_verdicts"]


def spark_folder_verdicts(
    count: int,
    target: Path,
    load: Callable[[int], Dataset],
    orphans: Callable[[int], bool],
    problems_of: Callable[[int, list[Problem]], list[Any]],
    kb: KnowledgeBase,
    assumptions: AssumptionSet,
    as_of: date | None,
    today: date | None,
    *,
    master: str | None = None,
    scratch: Path | None = None,
    workers: int | None = None,
    on_problems: Callable[[list[Any]], None] | None = None,
    progress: Callable[[int], None] | None = None,
) -> Iterator[BatchVerdict]:
    """The verdicts of the `count` chunks of a split file set (target/chunk<i>/, as
    `screen_folder` writes them), in order, derived by Spark. `load(i)` reads chunk i whole
    with the Python loader (for a file-level matter); `orphans(i)`: the chunk holds only rows
    of no listed patient (the loader reports them); `problems_of(i, problems)` turns a
    chunk's problems into the caller's terms (the original rows), handed to `on_problems`
    as each chunk is built, with `progress(patients done)`."""

    def write(index: int, folder: Path) -> SparkPart:
        if orphans(index):
            return SparkPart([], [], [], {}, problems_of(index, load(index).problems))
        with file_chunk_facts(target / f"chunk{index}", kb, assumptions, as_of, today, lambda: load(index)) as built:
            if isinstance(built, ChunkScreening):  # read whole by the loader: facts by build_facts
                patients = list(built.dataset.patients.values()) if built.dataset is not None else []
                part = patients_part(patients, index, folder, kb, assumptions, as_of, today)
                part.problems = problems_of(index, built.problems)
                return part
            plan = sql_plan(kb)
            assert plan is not None  # file_chunk_facts reads whole when the rules need pyDatalog
            shared = write_tables(built.con, plan, folder, index)
            reference = [reference_verdict(p, kb, assumptions, as_of, today) for p in built.reference]
            problems = problems_of(index, built.screening.problems)
            return SparkPart(built.order, list(built.cohorts.items()), reference, shared, problems)

    done = 0

    def seen(part: SparkPart) -> None:
        nonlocal done
        done += len(part.order)
        if on_problems is not None:
            on_problems(part.problems)
        if progress is not None:
            progress(done)

    yield from evaluate_spark_parts(
        range(count), write, kb, assumptions, master=master, workers=workers, scratch=scratch, on_part=seen
    )
