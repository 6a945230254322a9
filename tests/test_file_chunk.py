"""A chunk of files screened set-at-a-time (kb/screening/file_chunk.py): the verdicts and the
problems of the per-patient path, whichever way each patient went."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from kb.catalogue.assumptions import resolve_assumptions
from kb.catalogue.knowledge import KnowledgeBase
from kb.records.patients import DEMO_DATASET, Dataset, load_dataset
from kb.screening.batch import evaluate_many
from kb.screening.file_chunk import screen_file_chunk

TODAY = None  # the loader's own default, as `kb screen` reads files


def _per_patient(kb: KnowledgeBase, dataset: Dataset, reading: dict[str, str] | None = None) -> list[object]:
    assumptions = resolve_assumptions(reading or {})
    return list(evaluate_many(list(dataset.patients.values()), kb, assumptions, workers=1))


def _screened(kb: KnowledgeBase, folder: Path, reading: dict[str, str] | None = None) -> tuple[object, list[str]]:
    loads: list[str] = []

    def load() -> Dataset:
        loads.append(str(folder))
        return load_dataset(folder)

    done = screen_file_chunk(folder, kb, resolve_assumptions(reading or {}), None, TODAY, load)
    return done, loads


@pytest.mark.parametrize(
    "reading",
    [{}, {"crcl_formula": "cockcroft_gault_si", "month_length": "30", "lab_lookback_days": "14"}],
    ids=["defaults", "other readings"],
)
def test_the_demo_files_are_read_and_decided_in_sql_with_the_per_patient_verdicts(
    kb: KnowledgeBase, reading: dict[str, str]
) -> None:
    """All 78 vignettes are read and their facts built by SQL (no patient goes to Python, the
    loader is never called), and every verdict, cohort and status is the per-patient path's."""
    done, loads = _screened(kb, DEMO_DATASET, reading)
    assert loads == [] and done.dataset is None and done.declined == 0
    assert done.verdicts is not None
    assert done.verdicts == _per_patient(kb, load_dataset(DEMO_DATASET), reading)


def test_a_patient_with_a_bad_row_goes_through_python_and_the_loader_reports_it(
    kb: KnowledgeBase, tmp_path: Path
) -> None:
    """One result row the loader rejects (a date that is no date): that patient alone is read
    by the Python loader, whose problem (file, row, column) is the chunk's report, and the
    77 others are still decided in SQL; every verdict is the per-patient path's."""
    folder = tmp_path / "site"
    shutil.copytree(DEMO_DATASET, folder)
    rows = (folder / "observations.csv").read_text(encoding="utf-8").splitlines()
    pid = rows[5].split(",")[0]
    cells = rows[5].split(",")
    cells[4] = "2026-13-45"
    rows[5] = ",".join(cells)
    (folder / "observations.csv").write_text("\n".join(rows) + "\n", encoding="utf-8")
    done, loads = _screened(kb, folder)
    dataset = load_dataset(folder)
    assert loads == [] and done.dataset is not None and list(done.dataset.patients) == [pid]
    assert [(p.path, p.row, p.column, p.patient_id) for p in done.dataset.problems] == [
        ("observations.csv", 6, "date", pid)
    ]
    assert done.dataset.problems == dataset.problems and done.declined == 1
    assert done.verdicts == _per_patient(kb, dataset)


def test_a_file_level_problem_sends_the_whole_chunk_to_the_per_patient_path(kb: KnowledgeBase, tmp_path: Path) -> None:
    """A missing essential column is the whole file's problem: nothing is decided in SQL and
    the chunk comes back as the loader read it (the caller screens it as before)."""
    folder = tmp_path / "site"
    shutil.copytree(DEMO_DATASET, folder)
    text = (folder / "events.csv").read_text(encoding="utf-8").splitlines()
    header = text[0].split(",")
    at = header.index("kind")
    (folder / "events.csv").write_text(
        "\n".join(",".join(c for i, c in enumerate(line.split(",")) if i != at) for line in text) + "\n",
        encoding="utf-8",
    )
    done, loads = _screened(kb, folder)
    assert done.verdicts is None and loads == [str(folder)]
    assert done.dataset is not None and any(p.column == "kind" for p in done.dataset.problems)
