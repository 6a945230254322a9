"""A CSV file set screened on Spark (kb/screening/spark_files.py): each chunk read and its facts
built set-at-a-time as DuckDB's path does, Spark deriving the rules; the report is DuckDB's.

One Spark screening (its ~225 jobs cost about half a minute whatever the size), on a file set
with what real files hold, split into chunks that take every way a chunk can go: read in SQL,
read whole by the loader (a quoted note over two lines), patients declined to the loader (a
bad date), and the chunk of rows of no listed patient; by two forked workers.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import pytest

import kb.screening.screen as screen_module
import kb.screening.spark_files as spark_files
from kb.catalogue.assumptions import resolve_assumptions
from kb.catalogue.knowledge import KnowledgeBase
from kb.records.patients import load_dataset
from kb.screening.screen import screen, screen_folder
from tests.test_screening import _copies

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

pytestmark = pytest.mark.xdist_group("spark_cluster")


def test_a_file_set_screened_on_spark_gives_duckdbs_rows_and_problems(
    kb: KnowledgeBase, tmp_path: Path, spark_local: SparkSession, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = _copies(tmp_path / "site", 2, seed=2)
    with (folder / "observations.csv").open("a", encoding="utf-8") as fh:
        fh.write("C1-P010,platelets,lots,10*9/L,2026-11-17,,,,lab\n")  # a value that is no number
    assumptions = resolve_assumptions({"lab_lookback_days": "14"})
    log = tmp_path / "whole-parts.txt"  # written by the forked workers
    real = spark_files.patients_part

    def counted(patients: list[object], part: int, *rest: object) -> object:
        with log.open("a", encoding="utf-8") as fh:
            fh.write(f"{part}\n")
        return real(patients, part, *rest)  # type: ignore[arg-type]

    monkeypatch.setattr(spark_files, "patients_part", counted)
    monkeypatch.setattr(screen_module, "PARALLEL_FROM", 10)  # two forked workers, as on a big set
    done: list[int] = []
    on_spark = screen_folder(kb, folder, assumptions, chunk=40, engine="spark", progress=lambda d, t: done.append(d))
    on_duckdb = screen_folder(kb, folder, assumptions, chunk=40)
    whole = load_dataset(folder)
    assert on_spark.rows == on_duckdb.rows == screen(kb, whole, assumptions)
    assert on_spark.problems == on_duckdb.problems == whole.problems
    # every way a chunk can go was taken: the quoted note's chunk was read whole by the
    # loader, the others in SQL with a bad row's patient declined, and the orphans reported
    assert len(log.read_text(encoding="utf-8").split()) == 1
    said = {(p.path, p.row, p.patient_id) for p in on_spark.problems}
    assert any(path == "observations.csv" and pid == "C1-P010" for path, _, pid in said)
    assert any(pid == "ZZ-P999" for *_, pid in said)
    assert len(on_spark.rows) == 2 * 78 + 1 and {r.verdict for r in on_spark.rows} >= {"ineligible", "needs_data"}
    # the bar is full only once Spark has derived the verdicts, not when the facts are built
    assert done[-1] == len(on_spark.rows) and max(done[:-1]) < done[-1]
