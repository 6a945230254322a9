"""Shared fixtures: the knowledge base, the demo vignettes, and small data sets built on disk."""

from __future__ import annotations

import csv
from collections.abc import Callable
from pathlib import Path

import pytest

from kb.catalogue.knowledge import KnowledgeBase, load_knowledge
from kb.quality.vignettes import VignetteOutcome, check_vignettes, load_vignettes
from kb.reasoning.evaluation import Assessment, assess
from kb.records.patients import DEMO_DATASET, PATIENT_COLUMNS, Dataset, load_dataset
from tests.spark_cluster import _spark_sessions, spark_cluster, spark_local, spark_on_cluster
from tests.support import FILES, Rows

# the shared Spark fixtures (a standalone cluster on loopback, one session per process): tests/spark_cluster.py
__all__ = ["_spark_sessions", "spark_cluster", "spark_local", "spark_on_cluster"]


@pytest.fixture(scope="session")
def kb() -> KnowledgeBase:
    return load_knowledge()


@pytest.fixture(scope="session")
def demo() -> Dataset:
    return load_dataset(DEMO_DATASET)


@pytest.fixture(scope="session")
def vignette_outcomes(kb: KnowledgeBase, demo: Dataset) -> dict[str, VignetteOutcome]:
    """Every vignette evaluated under the assumptions its story names."""
    return {o.vignette.patient_id: o for o in check_vignettes(kb, demo, load_vignettes())}


@pytest.fixture(scope="session")
def demo_assessments(kb: KnowledgeBase, demo: Dataset) -> dict[str, Assessment]:
    """Every demo patient under the default assumptions."""
    return {pid: assess(patient, kb) for pid, patient in demo.patients.items()}


@pytest.fixture(scope="session")
def stories() -> dict[str, dict[str, str]]:
    with (DEMO_DATASET / "stories.csv").open(encoding="utf-8") as fh:
        return {row["patient_id"]: row for row in csv.DictReader(fh)}


@pytest.fixture
def write_dataset(tmp_path: Path) -> Callable[..., Path]:
    """Write a data set folder: each file given as rows (dicts) or as raw text."""
    counter = [0]

    def write(**files: Rows | str) -> Path:
        counter[0] += 1
        folder = tmp_path / f"set{counter[0]}"
        folder.mkdir()
        for file in FILES:
            target = folder / f"{file}.csv"
            content = files.get(file, [])
            if isinstance(content, str):
                target.write_text(content, encoding="utf-8")
                continue
            with (DEMO_DATASET / f"{file}.csv").open(encoding="utf-8") as fh:
                columns = list(csv.DictReader(fh).fieldnames or PATIENT_COLUMNS)
            with target.open("w", encoding="utf-8", newline="") as fh:
                writer = csv.DictWriter(fh, fieldnames=columns, extrasaction="ignore")
                writer.writeheader()
                writer.writerows(content)
        return folder

    return write
