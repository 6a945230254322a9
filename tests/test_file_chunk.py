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
from kb.screening.file_chunk import ChunkScreening, screen_file_chunk
from kb.screening.screen import screen, screen_folder
from tests.test_csv_sql import _drop

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


#: optional columns a site's files often lack, none of which the demo's rows need
LACKING = {
    "patients.csv": ("height_cm",),
    "observations.csv": ("lln", "loinc", "source"),
    "events.csv": ("dose", "dose_unit", "frequency", "note"),
    "attestations.csv": ("by",),
}


def _lacking(tmp_path: Path, columns: dict[str, tuple[str, ...]]) -> Path:
    folder = tmp_path / "site"
    shutil.copytree(DEMO_DATASET, folder)
    for file, dropped in columns.items():
        _drop(folder, file, dropped)
    return folder


def test_missing_optional_columns_are_read_in_sql_and_their_problems_are_the_chunks(
    kb: KnowledgeBase, tmp_path: Path
) -> None:
    """Files without optional columns: every patient still decided in SQL (no loader call,
    no patient through Python), with the per-patient verdicts, and the chunk's problems are
    the loader's file-level ones, in its order."""
    folder = _lacking(tmp_path, LACKING)
    done, loads = _screened(kb, folder)
    dataset = load_dataset(folder)
    assert loads == [] and done.dataset is None and done.declined == 0
    assert [(p.path, p.column) for p in done.problems] == [(f, c) for f, cs in LACKING.items() for c in cs]
    assert done.problems == dataset.problems
    assert done.verdicts == _per_patient(kb, dataset)


def test_a_missing_column_some_rows_need_declines_those_patients_after_its_own_problem(
    kb: KnowledgeBase, tmp_path: Path
) -> None:
    """Without attestations.csv's date the reviewed-history declarations cannot be read: those
    patients go through Python, and the chunk's problems are the whole load's: the missing
    columns first (each file's header before its rows), then the rows'."""
    folder = _lacking(tmp_path, {**LACKING, "attestations.csv": ("by", "date")})
    done, loads = _screened(kb, folder)
    dataset = load_dataset(folder)
    assert loads == [] and done.dataset is not None and done.declined > 0
    assert done.problems == dataset.problems and done.problems[-1].patient_id is not None
    assert [p.column for p in done.problems if p.patient_id is None][-2:] == ["date", "by"]
    assert done.verdicts == _per_patient(kb, dataset)


@pytest.mark.parametrize(
    "columns",
    [LACKING, {**LACKING, "attestations.csv": ("by", "date")}],
    ids=["optional columns", "a column some rows need"],
)
def test_a_folder_without_optional_columns_is_streamed_in_sql_with_the_rows_and_problems_of_the_whole(
    kb: KnowledgeBase, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, columns: dict[str, tuple[str, ...]]
) -> None:
    """`screen_folder` in chunks of 30: every chunk decided in SQL (none left to the loader),
    and the report is the whole-file path's: the same rows, the same problems, the missing
    columns' reported once though every chunk reports them."""
    import kb.screening.screen as screening

    folder = _lacking(tmp_path, columns)
    results = []

    def counted(*args: object) -> ChunkScreening:
        done = screen_file_chunk(*args)  # type: ignore[arg-type]
        results.append(done)
        return done

    monkeypatch.setattr(screening, "screen_file_chunk", counted)
    assumptions = resolve_assumptions()
    whole = load_dataset(folder)
    streamed = screen_folder(kb, folder, assumptions, chunk=30)
    assert len(results) == 3 and all(r.verdicts is not None for r in results)
    assert all(r.problems[: len(whole.file_problems)] == whole.file_problems for r in results)
    assert streamed.rows == screen(kb, whole, assumptions)
    assert streamed.problems == whole.problems
    assert len(whole.file_problems) == sum(map(len, columns.values()))
