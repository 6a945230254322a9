"""Screening through a real standalone Spark cluster (tests/spark_cluster.py: a master and two
one-core workers on 127.0.0.1) gives every patient what DuckDB and pyDatalog give.

Slow profile: the cluster costs about 10 s to start and a session on it as much again.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Iterable, Iterator
from pathlib import Path

import pytest

from tests.spark_cluster import SparkCluster

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("spark_cluster")]


def _where(rows: Iterable[int]) -> Iterator[tuple[str, str, int]]:
    """Run on an executor: its Python, its working folder (inside the worker's --work-dir), a sum."""
    time.sleep(0.2)  # long enough that the tasks spread over both executors
    yield sys.executable, os.getcwd(), sum(rows)


def test_python_tasks_run_on_both_workers_of_the_cluster(spark_cluster: SparkCluster, spark_on_cluster: object) -> None:
    from pyspark.sql import SparkSession

    assert isinstance(spark_on_cluster, SparkSession)
    context = spark_on_cluster.sparkContext
    assert context.master == spark_cluster.url
    deadline = time.monotonic() + 60
    # the driver plus one executor on each worker, before any task is given out
    while context._jsc.sc().getExecutorMemoryStatus().size() < 3:  # type: ignore[union-attr]
        assert time.monotonic() < deadline, spark_cluster.log_tail()
        time.sleep(0.5)
    ran = context.parallelize(range(1000), 16).mapPartitions(_where).collect()
    assert sum(total for _, _, total in ran) == sum(range(1000))
    assert {python for python, _, _ in ran} == {sys.executable}
    workers = {Path(folder).relative_to(spark_cluster.logs).parts[0] for _, folder, _ in ran}
    assert workers == {"worker-1", "worker-2"}
    assert spark_on_cluster.range(100).count() == 100
    state = spark_cluster.status()
    assert [w["state"] for w in state["workers"]] == ["ALIVE", "ALIVE"]
    (app,) = state["activeapps"]
    assert (app["name"], app["cores"], state["coresused"]) == ("kb-tests", 2, 2)
