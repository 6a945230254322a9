"""Screening through a real standalone Spark cluster (tests/spark_cluster.py: a master and two
one-core workers on 127.0.0.1) gives every patient what DuckDB and pyDatalog give.

Slow profile (the cluster takes about 10 s to start, a session on it as much again, and
each screening seconds of Spark jobs); all on one xdist worker, which starts the cluster once.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import pytest

from kb.catalogue.assumptions import resolve_assumptions
from kb.catalogue.knowledge import KnowledgeBase
from kb.quality.synthetic import SyntheticCohort
from kb.quality.vignettes import load_vignettes
from kb.reasoning.evaluation import assess
from kb.records.patients import DEMO_DATASET, Dataset
from kb.screening.batch import evaluate_many
from tests.spark_cluster import SparkCluster, stop_spark_session
from tests.test_batch import _same

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("spark_cluster")]

ROOT = Path(__file__).resolve().parents[1]


def _where(rows: Iterable[int]) -> Iterator[tuple[str, str, int]]:
    """Run on an executor: its Python, its working folder (inside the worker's --work-dir), a sum."""
    time.sleep(0.2)  # long enough that the tasks spread over both executors
    yield sys.executable, os.getcwd(), sum(rows)


def _on_the_cluster(cluster: SparkCluster) -> None:
    """This process's session is the cluster's application, holding a core of each worker."""
    state = cluster.status()
    assert [w["state"] for w in state["workers"]] == ["ALIVE", "ALIVE"]
    (app,) = state["activeapps"]
    assert (app["cores"], state["coresused"]) == (2, 2)


def test_python_tasks_run_on_both_workers_of_the_cluster(spark_cluster: SparkCluster, spark_on_cluster: Any) -> None:
    context = spark_on_cluster.sparkContext
    assert context.master == spark_cluster.url
    deadline = time.monotonic() + 60
    # the driver plus one executor on each worker, before any task is given out
    while context._jsc.sc().getExecutorMemoryStatus().size() < 3:
        assert time.monotonic() < deadline, spark_cluster.log_tail()
        time.sleep(0.5)
    ran = context.parallelize(range(1000), 16).mapPartitions(_where).collect()
    assert sum(total for _, _, total in ran) == sum(range(1000))
    assert {python for python, _, _ in ran} == {sys.executable}
    workers = {Path(folder).relative_to(spark_cluster.logs).parts[0] for _, folder, _ in ran}
    assert workers == {"worker-1", "worker-2"}
    assert spark_on_cluster.range(100).count() == 100
    _on_the_cluster(spark_cluster)


#: every reading the vignettes' stories name, in as few sets as can hold them (iim_entry has two)
READINGS = [
    (),
    (
        "iim_entry=probable",
        "rr_gc_dose_bound=strict",
        "gi6_growth_factors=all",
        "x_block_owner=itp_separate",
        "ssc_entry=diagnosis_only",
        "apl_tests_reading=more_than_two",
        "obstetric_aps_scope=any_obstetric",
    ),
    ("iim_entry=definite",),
]


def test_the_readings_the_vignettes_name_are_all_here() -> None:
    named = {reading for vignette in load_vignettes() for reading in vignette.assume}
    assert named == {reading for readings in READINGS for reading in readings}


#: the defaults in CI's slow profile (each set is a Spark run of a minute or more on the
#: cluster); every set in the deep run by hand (FUZZ=deep make slow)
CHECKED = READINGS if os.environ.get("FUZZ") == "deep" else READINGS[:1]


@pytest.mark.parametrize("assume", CHECKED, ids=lambda a: "+".join(a) or "defaults")
def test_every_vignette(
    spark_cluster: SparkCluster, spark_on_cluster: Any, kb: KnowledgeBase, demo: Dataset, assume: tuple[str, ...]
) -> None:
    """All 78 under each set (one Spark run a set, each costing seconds of jobs on the
    cluster, rather than one per vignette's own setting)."""
    from kb.screening.spark import evaluate_spark

    assumptions = resolve_assumptions(assume)
    patients = list(demo.patients.values())
    rows = list(evaluate_spark(patients, kb, assumptions, session=spark_on_cluster))
    _on_the_cluster(spark_cluster)
    assert len(rows) == len(demo.patients) == 78
    assert rows == list(evaluate_many(patients, kb, assumptions, workers=1))
    for patient, row in zip(patients, rows, strict=True):
        assert _same(row, assess(patient, kb, assumptions, explain="status")) == [], patient.id


def test_2000_synthetic_patients_get_the_same_answers(
    spark_cluster: SparkCluster, spark_on_cluster: Any, kb: KnowledgeBase, demo: Dataset
) -> None:
    from kb.screening.spark import evaluate_spark

    assumptions = resolve_assumptions()
    patients = SyntheticCohort.from_vignettes(demo, kb, assumptions, seed=3).sequence(2000)
    rows = list(evaluate_spark(patients, kb, assumptions, session=spark_on_cluster))
    _on_the_cluster(spark_cluster)
    assert [r.patient_id for r in rows] == [p.id for p in patients]
    assert {r.verdict for r in rows} == {"eligible", "needs_data", "ineligible"}
    duckdb = list(evaluate_many(patients, kb, assumptions))
    assert [r for r, d in zip(rows, duckdb, strict=True) if r != d] == []
    # and so pyDatalog's: tests/test_batch.py's slow test holds DuckDB to pyDatalog on these very
    # 2,000 patients (seed 3), so the 2,000 per-patient runs (two minutes) are not made twice


def _screen(out: Path, *args: str) -> str:
    """`kb screen` on the demo's file set in a process of its own: the CSV report (a status per criterion)."""
    done = subprocess.run(
        [sys.executable, "-m", "kb", "--facts", str(DEMO_DATASET), "screen", "--out", str(out), *args],
        capture_output=True,
        text=True,
        timeout=900,
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT), "PYSPARK_PYTHON": sys.executable},
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return out.read_text(encoding="utf-8")


def test_kb_screen_on_the_cluster_gives_duckdbs_report(spark_cluster: SparkCluster, tmp_path: Path) -> None:
    # the CLI's driver is an application of its own: this process's one would hold every core
    stop_spark_session()
    before = len(spark_cluster.status()["completedapps"])
    spark = _screen(tmp_path / "spark.csv", "--engine", "spark", "--spark-master", spark_cluster.url)
    duckdb = _screen(tmp_path / "duckdb.csv", "--engine", "sql")
    assert spark == duckdb
    assert len(spark.splitlines()) == 1 + 78
    # the CLI's own application came and went on the cluster
    assert len(spark_cluster.status()["completedapps"]) == before + 1
