"""Screening: each patient's verdict and the stage where they leave the funnel."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from kb.catalogue.assumptions import resolve_assumptions
from kb.catalogue.knowledge import KnowledgeBase
from kb.records.patients import Dataset, load_dataset
from kb.screening.screen import STAGES, funnel, screen, screen_folder
from tests.support import demo_files


def test_the_funnel_counts_who_is_still_in_after_each_stage(kb: KnowledgeBase, demo: Dataset) -> None:
    rows = {r.patient: r for r in screen(kb, demo, resolve_assumptions())}
    assert rows["P013"].dropped_at == 1  # no trial diagnosis
    assert rows["P061"].dropped_at == 2 and rows["P061"].blocking == ("GI6.3",)  # platelets 42
    assert rows["P059"].dropped_at == 3  # a live vaccine: a general exclusion
    assert rows["P024"].dropped_at == len(STAGES)  # eligible under the default reading
    assert rows["P064"].dropped_at == len(STAGES)  # needs data: not ruled out yet
    counts = dict(funnel(list(rows.values())))
    assert counts["all patients"] == 78
    assert list(counts.values()) == sorted(counts.values(), reverse=True)
    eligible_or_open = sum(1 for r in rows.values() if r.verdict != "ineligible")
    assert counts["meeting their cohort's criteria"] == eligible_or_open


def test_the_fast_path_and_pydatalog_give_the_same_rows(kb: KnowledgeBase, demo: Dataset) -> None:
    assumptions = resolve_assumptions()
    fast = screen(kb, demo, assumptions)
    reference = screen(kb, demo, assumptions, engine="pydatalog")
    assert fast == reference and len(fast) == 78


def test_a_patient_none_of_whose_rows_load_is_not_evaluated(
    kb: KnowledgeBase, write_dataset: Callable[..., Path]
) -> None:
    files = demo_files("P001")
    ghost = [dict(row, patient_id="GHOST") for row in files["observations"][:3]]
    folder = write_dataset(**{**files, "observations": files["observations"] + ghost})
    dataset = load_dataset(folder)
    done: list[tuple[int, int]] = []
    rows = screen(kb, dataset, resolve_assumptions(), progress=lambda n, total: done.append((n, total)))
    assert [r.patient for r in rows] == ["P001", "GHOST"]  # as many rows as input patients
    ghost_row = rows[1]
    assert ghost_row.verdict == "not_evaluated" and ghost_row.cohorts == () and ghost_row.dropped_at == 0
    assert "no patient 'GHOST' in patients.csv" in ghost_row.reason
    assert ghost_row.as_dict()["reason"] == ghost_row.reason
    assert rows[0].verdict == "eligible"
    assert done[-1] == (2, 2)
    assert dict(funnel(rows))["all patients"] == 1  # the funnel counts the evaluated patients


def test_an_open_myositis_cohort_says_why_in_the_screening_row(kb: KnowledgeBase, demo: Dataset) -> None:
    # no criterion is unknown: the lost entry criterion is what keeps the cohort open
    (row,) = [r for r in screen(kb, demo, resolve_assumptions()) if r.patient == "P036"]
    assert (row.verdict, row.unknown) == ("needs_data", ())
    assert row.reason.startswith("IIM-I1, this cohort's entry criterion, was lost from the record")
    assert "iim_entry" in row.as_dict()["reason"]


def _copies(target: Path, copies: int, seed: int) -> Path:
    """The demo file set `copies` times over (ids C<n>-P0xx), its rows shuffled across
    patients, with what real files hold: a duplicate and an id-less patient row, rows of
    unknown patients, bad dates, blank lines and a note over two lines."""
    import random

    from kb.records.patients import DEMO_DATASET

    rng = random.Random(seed)
    target.mkdir()
    for name in ("patients.csv", "observations.csv", "events.csv", "attestations.csv"):
        header, *lines = (DEMO_DATASET / name).read_text(encoding="utf-8").splitlines()
        rows = [f"C{n}-{line}" for n in range(copies) for line in lines]
        if name != "patients.csv":
            rng.shuffle(rows)
        else:
            rows += [rows[5], ",female,1980-01-01"]  # a duplicate patient row, a row without an id
        if name == "observations.csv":
            rows[3:3] = [
                "C0-P061,platelets,120,10*9/L,2026-13-45,,,,lab",
                "ZZ-P999,platelets,120,10*9/L,2026-11-17,,,,lab",
            ]
            rows[40:40] = ["", ""]
        if name == "events.csv":
            rows[7:7] = ['C1-P004,medication,prednisone,,2026-10-01,,5,mg,daily,"taken\nwith food"']
        (target / name).write_text("\n".join([header, *rows]) + "\n", encoding="utf-8")
    return target


@pytest.mark.parametrize(("copies", "chunk"), [(1, 30), (2, 60)])
def test_screening_a_folder_in_chunks_gives_the_rows_and_problems_of_the_whole(
    kb: KnowledgeBase, tmp_path: Path, copies: int, chunk: int
) -> None:
    """The streamed screening of files on disk (a few chunks held at a time) gives every
    patient the same verdict, statuses and reason as the in-memory one, in the same order,
    and the same problems at the same rows of the original files."""
    from kb.records.patients import DEMO_DATASET

    folder = DEMO_DATASET if copies == 1 else _copies(tmp_path / "site", copies, seed=copies)
    assumptions = resolve_assumptions()
    whole = load_dataset(folder)
    streamed = screen_folder(kb, folder, assumptions, chunk=chunk)
    assert streamed.rows == screen(kb, whole, assumptions)
    assert streamed.problems == whole.problems
    if copies > 1:
        assert len(whole.patients) == 78 * copies and len(whole.problems) >= 4
        assert {p.row for p in whole.problems if p.path == "patients.csv"} == {2 * 78 + 2, 2 * 78 + 3}


@pytest.mark.parametrize("second", ["patient_id", "Patient ID"])
def test_a_header_naming_the_patient_twice_is_read_as_the_whole_file_reads_it(
    kb: KnowledgeBase, tmp_path: Path, second: str
) -> None:
    """observations.csv with a second patient-id column (a red-team find): the loader reads
    each row as the last such column's patient's. Split by the first, a row went to another
    patient's chunk, its own patient came out without it, and the report said the patient
    did not exist. Such a file set is read whole, streamed or not."""
    from kb.records.patients import DEMO_DATASET

    folder = tmp_path / "site"
    folder.mkdir()
    for name in ("patients.csv", "events.csv", "attestations.csv"):
        (folder / name).write_text((DEMO_DATASET / name).read_text(encoding="utf-8"), encoding="utf-8")
    header, *lines = (DEMO_DATASET / "observations.csv").read_text(encoding="utf-8").splitlines()
    ids = [line.split(",", 1)[0] for line in (DEMO_DATASET / "patients.csv").read_text().splitlines()[1:]]
    # every row's second id column names the next patient of the list
    moved = [f"{line},{ids[(ids.index(line.split(',', 1)[0]) + 1) % len(ids)]}" for line in lines]
    (folder / "observations.csv").write_text("\n".join([f"{header},{second}", *moved]) + "\n", encoding="utf-8")
    assumptions = resolve_assumptions()
    whole = load_dataset(folder)
    streamed = screen_folder(kb, folder, assumptions, chunk=5)
    assert streamed.rows == screen(kb, whole, assumptions)
    assert streamed.problems == whole.problems


@pytest.mark.parametrize("file", ["observations.csv", "events.csv"])
def test_a_row_that_may_be_anyones_stays_unread_for_every_patient_when_streamed(
    kb: KnowledgeBase, tmp_path: Path, file: str
) -> None:
    """A row without a patient id counts as unread for every patient (issue 16.1); streamed,
    it went to the chunk of unknown ids and the other chunks' patients came out eligible."""
    folder = _copies(tmp_path / "site", 2, seed=2)
    row = ",anc,2.1,10*9/L,2026-11-17,,,,lab" if file == "observations.csv" else ",vaccination,MMR vaccine,,2026-11-20"
    with (folder / file).open("a", encoding="utf-8") as fh:
        fh.write(row + "\n")
    assumptions = resolve_assumptions()
    whole = load_dataset(folder)
    streamed = screen_folder(kb, folder, assumptions, chunk=60)
    assert streamed.rows == screen(kb, whole, assumptions)
    assert [r.patient for r in streamed.rows if r.verdict == "eligible"] == []


def test_a_folder_mixing_csv_and_parquet_is_not_streamed_as_csv(tmp_path: Path) -> None:
    """Streamed, the CSV files alone would be read and events.parquet silently left out: such
    a folder goes to the whole-file loader, which refuses the mixture."""
    from kb.screening.screen import streamable

    for name in ("patients.csv", "observations.csv"):
        (tmp_path / name).write_text("patient_id\nP1\n", encoding="utf-8")
    assert streamable(tmp_path)
    (tmp_path / "events.parquet").write_bytes(b"PAR1")
    assert not streamable(tmp_path)
    assert not streamable(tmp_path.parent / "absent")


def _split_files(split_folder: Path, fast: bool, monkeypatch: pytest.MonkeyPatch) -> tuple[object, ...]:
    """A split of `split_folder` (chunks of 40) by lines (`fast`) or by csv records: its
    patients, row numbers and chunk files, each file read back as csv records."""
    import csv
    import tempfile

    import kb.screening.screen as screening

    if not fast:
        monkeypatch.setattr(screening, "_plain", lambda path: False)
    with tempfile.TemporaryDirectory() as scratch:
        split = screening._Split(split_folder, Path(scratch), 40)
        files = {
            (chunk.name, file.name): list(csv.reader(file.open(encoding="utf-8", newline="")))
            for chunk in sorted(Path(scratch).iterdir())
            for file in sorted(chunk.iterdir())
        }
    monkeypatch.undo()
    return split.order, split.chunk_of, [{k: list(v) for k, v in r.items()} for r in split.rows], files


def test_the_split_by_lines_gives_the_chunks_of_the_split_by_records(
    kb: KnowledgeBase, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A file without quotes is split line by line (issue 20: six times faster than through
    the csv module): the same chunks, records and original row numbers, with what real files
    hold (a byte-order mark, blank and whitespace lines, short rows, unknown patients, no
    final newline), and the screening is that of the whole."""
    folder = _copies(tmp_path / "site", 2, seed=3)
    for name in ("patients.csv", "observations.csv", "events.csv", "attestations.csv"):
        text = (folder / name).read_text(encoding="utf-8").replace('"taken\nwith food"', "taken with food")
        text = text.replace('"Systemic lupus erythematosus, unspecified"', "Systemic lupus erythematosus")
        header, first, *rest = text.split("\n")
        rest[10:10] = ["", "", f"{first.split(',')[0]} ", "ZZ-P998,x"] if name != "patients.csv" else ["", "  "]
        (folder / name).write_text("\ufeff" + "\n".join([header, first, *rest]).rstrip("\n"), encoding="utf-8")
    import kb.screening.screen as screening

    assert all(screening._plain(folder / name) for name in ("patients.csv", "observations.csv", "events.csv"))
    assert _split_files(folder, True, monkeypatch) == _split_files(folder, False, monkeypatch)
    assumptions = resolve_assumptions()
    whole = load_dataset(folder)
    streamed = screen_folder(kb, folder, assumptions, chunk=40)
    assert streamed.rows == screen(kb, whole, assumptions)
    assert streamed.problems == whole.problems and len(whole.problems) >= 6


def test_workers_reading_their_own_chunks_give_the_rows_of_one_process(
    kb: KnowledgeBase, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With both cores each worker loads its own chunks from disk (issue 20): the rows and
    problems are those of the whole file set screened in one process, in the same order."""
    import kb.screening.screen as screening

    folder = _copies(tmp_path / "site", 2, seed=4)
    assumptions = resolve_assumptions()
    whole = load_dataset(folder)
    monkeypatch.setattr(screening, "PARALLEL_FROM", 0)  # two workers for 156 patients
    done: list[tuple[int, int]] = []
    streamed = screen_folder(kb, folder, assumptions, chunk=30, progress=lambda n, total: done.append((n, total)))
    assert streamed.rows == screen(kb, whole, assumptions)
    assert streamed.problems == whole.problems
    assert done[0] == (30, 156) and done[-1] == (len(streamed.rows), len(streamed.rows))
