"""Screening a cohort: every patient's verdict and statuses, and the attrition funnel.

A coordinator screening a site's patients wants to see where they drop out: how many have
a trial diagnosis at all, how many of those meet the general inclusions, then the general
exclusions, then their own cohort's criteria. A patient leaves the funnel at the first stage
where a criterion blocks; one with data still missing stays in (not ruled out yet).

`screen_folder` screens a CSV file set on disk without holding it: the files are split by
patient into chunks (written to a temporary folder), each chunk is loaded by the ordinary
loader and screened, and its problems are given back their rows in the original files, so
the rows and problems are those of `screen` over `load_dataset` (the tests prove it), in a
fraction of the memory.
"""

from __future__ import annotations

import codecs
import csv
import re
import tempfile
from array import array
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, replace
from datetime import date
from pathlib import Path
from typing import Any, cast

from kb.catalogue.assumptions import AssumptionSet
from kb.catalogue.criteria import Criterion
from kb.catalogue.knowledge import KnowledgeBase
from kb.errors import Problem
from kb.reasoning.evaluation import CohortVerdict, assess, criteria_with
from kb.reasoning.repairs import find_repairs
from kb.records.csv_sql import headers_readable
from kb.records.patients import CELL_LIMIT, Dataset, Patient, load_dataset
from kb.screening.batch import BatchVerdict, Decided, evaluate_loaded, evaluate_many
from kb.screening.file_chunk import ChunkScreening, screen_file_chunk
from kb.status import Status, Verdict

__all__ = [
    "STAGES",
    "ScreenRow",
    "Screened",
    "Screening",
    "Statuses",
    "earliest_dates",
    "funnel",
    "screen",
    "screen_folder",
    "streamable",
]

#: patients from which screening uses both cores
PARALLEL_FROM = 1000
#: the engines that screen: DuckDB (also called "sql"), Spark, and the per-patient reference
ENGINES = ("duckdb", "sql", "spark", "pydatalog")

STAGES = (
    "all patients",
    "with a trial diagnosis",
    "meeting the general inclusions",
    "clear of the general exclusions",
    "meeting their cohort's criteria",
)


class Statuses(Mapping[str, Status]):
    """One row's statuses of the counted criteria, read like a dict: the ids (and their
    positions) are shared by every row, only the codes are the row's own (100,000 dicts of
    80 entries cost 450 MB of a screening's memory; these cost a tuple each)."""

    __slots__ = ("_codes", "_index")

    def __init__(self, index: Mapping[str, int], codes: tuple[Status, ...]) -> None:
        self._index, self._codes = index, codes

    def __getitem__(self, key: str) -> Status:
        return self._codes[self._index[key]]

    def __iter__(self) -> Iterator[str]:
        return iter(self._index)

    def __len__(self) -> int:
        return len(self._codes)

    def __repr__(self) -> str:
        return repr(dict(self))


_COUNTED: dict[int, tuple[KnowledgeBase, dict[str, int], tuple[int, ...]]] = {}


def _counted(kb: KnowledgeBase) -> tuple[dict[str, int], tuple[int, ...]]:
    """The counted criteria: id → position in a row's codes, and their places in the catalogue."""
    cached = _COUNTED.get(id(kb))
    if cached is None or cached[0] is not kb:
        places = tuple(n for n, c in enumerate(kb.criteria) if c.counted)
        cached = (kb, {kb.criteria[n].id: k for k, n in enumerate(places)}, places)
        _COUNTED[id(kb)] = cached
    return cached[1], cached[2]


@dataclass(frozen=True)
class ScreenRow:
    patient: str
    verdict: Verdict  # not_evaluated when no row of the patient could be read
    cohorts: tuple[str, ...]
    statuses: Mapping[str, Status]  # counted criteria only (a `Statuses` from a screening)
    blocking: tuple[str, ...]
    dropped_at: int  # the stage (index into STAGES) the patient leaves at; len(STAGES) if never
    unknown: tuple[str, ...] = ()
    earliest: date | None = None  # the first enrolment day, when waiting is all it takes
    #: why a patient was not evaluated, or what keeps a cohort open beyond its unknown
    #: criteria (a lost entry criterion that only an assumption can read)
    reason: str = ""

    def as_dict(self) -> dict[str, str]:
        return {
            "patient": self.patient,
            "verdict": self.verdict,
            "cohorts": " ".join(self.cohorts),
            "blocking": " ".join(self.blocking),
            "unknown": " ".join(self.unknown),
            "earliest_date": self.earliest.isoformat() if self.earliest else "",
            "left_at": STAGES[self.dropped_at] if self.dropped_at < len(STAGES) else "",
            "reason": self.reason,
        }


def _stage(crit: Criterion) -> int:
    if crit.id == "COHORT":
        return 1
    if crit.cohort == "general":
        return 2 if crit.kind == "inclusion" else 3
    return 4


def _row(
    kb: KnowledgeBase,
    patient_id: str,
    verdict: Verdict,
    cohorts: tuple[CohortVerdict, ...],
    statuses: Mapping[str, Status],
) -> ScreenRow:
    """A screening row from a patient's verdicts and statuses, whichever engine gave them."""
    blocking_ids = criteria_with(cohorts, Status.FAIL, kb.criteria, statuses)
    unknown_ids = criteria_with(cohorts, Status.UNKNOWN, kb.criteria, statuses)
    blocking = [c for c in kb.criteria if c.id in blocking_ids]
    stages = [_stage(c) for c in blocking]
    index, places = _counted(kb)
    return ScreenRow(
        patient_id,
        verdict,
        tuple(c.cohort for c in cohorts),
        Statuses(index, tuple(statuses[kb.criteria[n].id] for n in places)),
        tuple(c.id for c in blocking),
        min(stages) if stages and verdict == Verdict.INELIGIBLE else len(STAGES),
        tuple(c.id for c in kb.criteria if c.id in unknown_ids),
        reason="; ".join(c.note for c in cohorts if c.note) if verdict == Verdict.NEEDS_DATA else "",
    )


def screen(
    kb: KnowledgeBase,
    dataset: Dataset,
    assumptions: AssumptionSet,
    as_of: date | None = None,
    progress: Callable[[int, int], None] | None = None,
    engine: str = "duckdb",
    spark_master: str | None = None,
    spark_scratch: Path | None = None,
) -> list[ScreenRow]:
    """Every input patient, in the data set's order, then those none of whose rows could be
    read (`not_evaluated`, with the reason): as many rows as the input has patients.

    `engine`: "duckdb" (or its old name "sql"), the set-at-a-time path (`kb.screening.batch`,
    identical statuses, both cores); "spark", the same compiled rules on a Spark session
    (`kb.screening.spark`: local[*], or `spark_master`; the facts as Parquet under
    `spark_scratch`); or "pydatalog", one patient at a
    time. `progress(done, total)` as patients are done.
    """
    if engine not in ENGINES:
        raise ValueError(f"unknown engine {engine!r}: one of {', '.join(ENGINES)}")
    patients = list(dataset.patients.values())
    missing = dataset.not_loaded
    total = len(patients) + len(missing)
    rows = []
    if engine == "pydatalog":
        for n, patient in enumerate(patients):
            result = assess(patient, kb, assumptions, as_of, explain="status")
            rows.append(_row(kb, patient.id, result.verdict, result.cohorts, {r.id: r.status for r in result.criteria}))
            if progress is not None:
                progress(n + 1, total)
    elif engine == "spark":
        from kb.screening.spark import evaluate_spark  # pyspark is an optional extra

        tick = (lambda done: progress(done, total)) if progress is not None else None
        for verdict in evaluate_spark(
            patients, kb, assumptions, as_of, master=spark_master, scratch=spark_scratch, progress=tick
        ):
            rows.append(_row(kb, verdict.patient_id, verdict.verdict, verdict.cohorts, verdict.statuses))
    else:
        tick = (lambda done: progress(done, total)) if progress is not None else None
        # below a thousand patients a second process costs more than it saves (and the app
        # should not fork its server for a clinic's worth)
        workers = 1 if len(patients) < PARALLEL_FROM else None
        for verdict in evaluate_many(patients, kb, assumptions, as_of, workers=workers, progress=tick):
            rows.append(_row(kb, verdict.patient_id, verdict.verdict, verdict.cohorts, verdict.statuses))
    for pid, reason in missing.items():
        rows.append(ScreenRow(pid, Verdict.NOT_EVALUATED, (), {}, (), 0, reason=reason))
    if progress is not None:
        progress(total, total)
    return rows


def earliest_dates(
    rows: list[ScreenRow], kb: KnowledgeBase, dataset: Dataset, assumptions: AssumptionSet, as_of: date | None = None
) -> list[ScreenRow]:
    """The rows with, for each ineligible patient whom waiting alone makes eligible (the
    cheapest confirmed repair is a wait, with what moving enrolment implies), that date."""
    out = []
    for row in rows:
        if row.verdict == Verdict.INELIGIBLE:
            answer = find_repairs(dataset.patient(row.patient), kb, assumptions, as_of, max_repairs=1)
            best = answer.repairs[0] if answer.repairs else None
            if best is not None and best.cost == "wait":
                row = replace(row, earliest=best.enrolment)
        out.append(row)
    return out


def funnel(rows: list[ScreenRow]) -> list[tuple[str, int]]:
    """How many patients are still in after each stage."""
    return [(name, sum(1 for r in rows if r.dropped_at > n)) for n, name in enumerate(STAGES)]


#: the file set's files, in the order the loader reads them (and reports their problems)
_FILES = ("patients.csv", "observations.csv", "events.csv", "attestations.csv")
#: patients per chunk of `screen_folder` read by the Python loader (a chunk's patients and
#: facts are held at once: a worker's 10,000 took 700 MB)
FOLDER_CHUNK = 2500
#: patients per chunk read set-at-a-time (kb/screening/file_chunk.py): a chunk costs ~0.8 s
#: of SQL statements whatever its size; a worker peaked at 480 MB with 10,000 and 400 MB with
#: 5,000, as fast on 100,000 (64.7 s against 67.3 s beside other work)
SQL_CHUNK = 5000


@dataclass(frozen=True)
class Screened:
    """A screening of a file set on disk: the rows `screen` gives, and the problems
    `load_dataset` reports, in its order."""

    rows: list[ScreenRow]
    problems: list[Problem]


@dataclass(frozen=True)
class Screening:
    """A screening as a report shows it: the rows, the problems reading the data set named
    `name` (every one, so that no count hides what could not be read), and the funnel."""

    rows: list[ScreenRow]
    problems: list[Problem]
    name: str

    def table(self) -> list[dict[str, str]]:
        """The rows as the report's table: one dict per patient, the same columns for each."""
        return [r.as_dict() for r in self.rows]

    def funnel(self) -> list[tuple[str, int]]:
        return funnel(self.rows)

    def as_dict(self) -> dict[str, Any]:
        """What `kb screen --json` prints."""
        return {
            "patients": self.table(),
            "funnel": [{"stage": s, "patients": n} for s, n in self.funnel()],
            "rejected_rows": [str(p) for p in self.problems],
            "file_problems": [str(p) for p in self.problems if p.patient_id is None],
        }


def streamable(path: Path, input_format: str = "auto", engine: str = "sql", encoding: str | None = None) -> bool:
    """Whether `screen_folder` can screen `path` in chunks, never holding it whole: a CSV file
    set on disk, screened by DuckDB or Spark. A declared encoding is read by the whole-file
    loader, which decodes each file once."""
    plain = input_format in ("auto", "csv") and path.is_dir() and (path / "patients.csv").exists()
    # a folder mixing CSV and Parquet files is refused by the whole-file loader, not streamed as CSV
    plain = plain and not any(path.glob("*.parquet"))
    return plain and engine in ("duckdb", "sql", "spark") and not encoding


class _Unsplittable(Exception):
    """The file set holds what only the whole-file loader reports the same way (text that is
    not UTF-8, a header without patient_id, a malformed CSV): it is read whole."""


#: bytes read at a time by the line-by-line split
_BLOCK = 1 << 22


def _plain(path: Path) -> bool:
    """Whether a file has no quote, carriage return or NUL: each of its lines is a record."""
    with path.open("rb") as fh:
        while block := fh.read(_BLOCK):
            if b'"' in block or b"\r" in block or b"\0" in block:
                return False
    return True


class _Split:
    """The file set split by patient into chunk folders. Each record keeps its relative order
    and goes to the chunk of its patient; a record of no listed patient goes to the last
    chunk, whose patients.csv lists every id (so the loader reports it, with its suggestion,
    as it would). `rows[chunk][file][n]` is the original row of the chunk file's row n + 2."""

    def __init__(self, folder: Path, target: Path, size: int) -> None:
        self.target = target
        self.order: list[str] = []  # first rows of patients.csv, in its order
        self.chunk_of: dict[str, int] = {}
        self.rows: list[dict[str, array[int]]] = []
        self.size = 1
        self._header_line = ""
        for file in _FILES:
            if (folder / file).exists():
                self._split(folder / file, size)
        self.count = len(self.rows)

    def _split(self, path: Path, size: int) -> None:
        if _plain(path):
            self._split_lines(path, size)
        else:
            self._split_records(path, size)

    def _header(self, path: Path, header: list[str]) -> int:
        """The position of patient_id in a file's header (else the file is read whole). A
        header naming it twice (or once more in other letters or spacing) is read whole:
        the loader reads a row as the last such column's patient's, and a split by the first
        sent the row to another patient's chunk, leaving the row's own patient without it."""
        names = [h.strip() for h in header]
        alike = [n for n in names if n.casefold().replace(" ", "_").replace("-", "_") == "patient_id"]
        if names.count("patient_id") != 1 or len(alike) != 1 or (path.name != "patients.csv" and not self.order):
            raise _Unsplittable(path.name)
        return names.index("patient_id")

    def _chunk(self, path: Path, pid: str) -> int:
        """The chunk of a record of `pid` (-1: the orphans'), listing a new patient."""
        if path.name == "patients.csv" and pid and pid not in self.chunk_of:
            self.chunk_of[pid] = len(self.order) // self.size
            self.order.append(pid)
        # a patients.csv row without an id is reported in any chunk; another file's
        # row of no listed patient goes to the orphans' chunk (-1)
        chunk = self.chunk_of.get(pid, 0 if path.name == "patients.csv" else -1)
        if chunk == -1 and (not pid or len(pid) > CELL_LIMIT):
            raise _Unsplittable(path.name)  # a row that may be anyone's: unread for every patient
        return chunk

    def _open(self, path: Path, chunk: int, handles: list[Any]) -> tuple[Any, array[int]]:
        """The chunk's file of this name, opened for writing, and its row numbers."""
        index = chunk if chunk >= 0 else (len(self.order) - 1) // self.size + 1
        while len(self.rows) <= index:
            self.rows.append({})
        folder = self.target / f"chunk{index}"
        folder.mkdir(exist_ok=True)
        handle = (folder / path.name).open("w", encoding="utf-8", newline="")
        handles.append(handle)
        self.rows[index][path.name] = array("L")
        return handle, self.rows[index][path.name]

    def _split_records(self, path: Path, size: int) -> None:
        self.size = size
        writers: dict[int, tuple[Any, array[int]]] = {}
        handles: list[Any] = []
        try:
            with path.open(encoding="utf-8-sig", newline="") as fh:
                reader = csv.reader(fh, strict=True)  # as the loader reads it
                header = next(reader, None) or []
                at = self._header(path, header)
                number = 1
                for record in reader:
                    if record == []:  # csv.DictReader skips it without counting it
                        continue
                    number += 1
                    pid = record[at].strip() if at < len(record) else ""
                    chunk = self._chunk(path, pid)
                    if chunk not in writers:
                        handle, numbers = self._open(path, chunk, handles)
                        writer = csv.writer(handle)
                        writer.writerow(header)
                        writers[chunk] = (writer, numbers)
                    writer, rows = writers[chunk]
                    writer.writerow(record)
                    rows.append(number)
        except (UnicodeDecodeError, csv.Error) as exc:
            raise _Unsplittable(path.name) from exc
        finally:
            for handle in handles:
                handle.close()

    def _split_lines(self, path: Path, size: int) -> None:
        """`_split_records` for a file without quotes, carriage returns or NULs, where each
        line is a record and its cells are the text between commas: the lines are copied as
        they are, the patient id cut from each, six times faster than reading and writing
        every record through the csv module (the split is done before any worker starts)."""
        self.size = size
        out: dict[int, tuple[Any, list[str], array[int]]] = {}
        handles: list[Any] = []
        try:
            with path.open("rb") as fh:
                decoder = codecs.getincrementaldecoder("utf-8-sig")()  # as `_split_records` decodes
                number, at, rest = 1, -1, ""
                while block := fh.read(_BLOCK):
                    lines = (rest + decoder.decode(block)).split("\n")
                    rest = lines.pop()  # the text after the last newline
                    number, at = self._lines(path, lines, number, at, out, handles)
                rest += decoder.decode(b"", final=True)
                if rest or at < 0:
                    number, at = self._lines(path, [rest], number, at, out, handles)
            for handle, pending, _ in out.values():
                handle.writelines(pending)
        except UnicodeDecodeError as exc:
            raise _Unsplittable(path.name) from exc
        finally:
            for handle in handles:
                handle.close()

    def _lines(
        self,
        path: Path,
        lines: list[str],
        number: int,
        at: int,
        out: dict[int, tuple[Any, list[str], array[int]]],
        handles: list[Any],
    ) -> tuple[int, int]:
        known = self.chunk_of if path.name != "patients.csv" else {}  # patients.csv lists new ids
        for line in lines:
            if at < 0:  # the header
                at = self._header(path, line.split(","))
                header = line
                self._header_line = header
                continue
            if not line:  # a blank line: no record (and no row number)
                continue
            number += 1
            if at == 0:  # the usual layout: the id first, cut without splitting the line
                pid = line.partition(",")[0].strip()
            else:
                cells = line.split(",", at + 1)
                pid = cells[at].strip() if at < len(cells) else ""
            chunk = known.get(pid)
            if chunk is None:
                chunk = self._chunk(path, pid)
            target = out.get(chunk)
            if target is None:
                handle, numbers = self._open(path, chunk, handles)
                target = out[chunk] = (handle, [self._header_line + "\n"], numbers)
            target[1].append(line + "\n")
            target[2].append(number)
            if len(target[1]) >= 4096:
                target[0].writelines(target[1])
                target[1].clear()
        return number, at

    def load(self, index: int, today: date | None) -> Dataset:
        folder = self.target / f"chunk{index}"
        if not (folder / "patients.csv").exists():  # the orphans' chunk: every id, nothing else
            folder.mkdir(exist_ok=True)
            with (folder / "patients.csv").open("w", encoding="utf-8", newline="") as fh:
                writer = csv.writer(fh)
                writer.writerow(["patient_id"])
                writer.writerows([pid] for pid in self.order)
        return load_dataset(folder, today=today)

    def original(self, index: int, problem: Problem) -> Problem:
        """The problem as the whole file set reports it: its row, and any row its text names."""
        rows = self.rows[index].get(problem.path)
        if rows is None or problem.row is None or problem.row < 2:
            return problem

        def row(local: int) -> int:
            return rows[local - 2] if 2 <= local < len(rows) + 2 else local

        def text(value: str) -> str:
            return re.sub(
                rf"\b{re.escape(problem.path)} row (\d+)", lambda m: f"{problem.path} row {row(int(m[1]))}", value
            )

        return replace(problem, row=row(problem.row), message=text(problem.message), hint=text(problem.hint))


def screen_folder(
    kb: KnowledgeBase,
    folder: Path | str,
    assumptions: AssumptionSet,
    as_of: date | None = None,
    progress: Callable[[int, int], None] | None = None,
    chunk: int | None = None,
    today: date | None = None,
    engine: str = "duckdb",
    spark_master: str | None = None,
    spark_scratch: Path | None = None,
) -> Screened:
    """`screen` over `load_dataset(folder)`, streamed: at most a few chunks of `chunk`
    patients are held at once (here and in each worker; default SQL_CHUNK when every file's
    header lets the chunks be read set-at-a-time, else FOLDER_CHUNK). A file set only the
    whole-file loader can report the same way is read whole. `engine` "spark": each chunk's
    facts are built the same way and written as Parquet, and Spark derives the rules for
    every patient at once (kb/screening/spark.py)."""
    folder = Path(folder)
    if chunk is None:
        chunk = SQL_CHUNK if headers_readable(folder) else FOLDER_CHUNK
    with tempfile.TemporaryDirectory(prefix="kb-screen-") as scratch:
        try:
            split = _Split(folder, Path(scratch), chunk)
        except _Unsplittable:
            dataset = load_dataset(folder, today=today)
            whole = screen(
                kb,
                dataset,
                assumptions,
                as_of,
                progress,
                engine if engine == "spark" else "duckdb",
                spark_master,
                spark_scratch,
            )
            return Screened(whole, dataset.problems)
        problems: list[tuple[int, int, int, Problem]] = []  # file, row, arrival, problem
        loaded: list[str] = []

        def found(index: int, reported: list[Problem], orphans: bool) -> list[tuple[int, int, Problem]]:
            """A chunk's problems as the whole file set reports them, with their sort keys."""
            out: list[tuple[int, int, Problem]] = []
            for problem in reported:
                if orphans and problem.path == "patients.csv":
                    continue  # the id list written for them, not the user's file
                where = split.original(index, problem)
                rank = _FILES.index(where.path) if where.path in _FILES else len(_FILES)
                out.append((rank, where.row if where.row is not None else 1 << 62, where))
            return out

        def read(index: int) -> ChunkScreening:
            """Orphans' chunk: the loader reports its rows of no listed patient."""
            return ChunkScreening.loaded(split.load(index, today))

        def orphans(index: int) -> bool:
            return index * chunk >= len(split.order)

        def load(index: int) -> tuple[list[Patient] | Decided, list[tuple[int, int, Problem]]]:
            """A chunk's verdicts (read and decided set-at-a-time) or its patients, and its
            problems as the whole file set reports them (run by a worker: the parent never
            holds a chunk's patients)."""
            if orphans(index):  # only rows of no listed patient: the loader reports them
                return [], found(index, read(index).problems, True)
            done = screen_file_chunk(
                split.target / f"chunk{index}", kb, assumptions, as_of, today, lambda: split.load(index, today)
            )
            # a header's problems too when no patient was loaded
            if done.verdicts is not None:
                return Decided(done.verdicts), found(index, done.problems, False)
            dataset = done.dataset or Dataset("", "", {}, [])
            return list(dataset.patients.values()), found(index, done.problems, False)

        total = len(split.order)
        workers = 1 if total < PARALLEL_FROM else None
        rows: list[ScreenRow] = []

        def add(found: list[tuple[int, int, Problem]], verdicts: Iterable[BatchVerdict]) -> None:
            problems.extend((rank, row, len(problems) + n, p) for n, (rank, row, p) in enumerate(found))
            for v in verdicts:
                loaded.append(v.patient_id)
                rows.append(_row(kb, v.patient_id, v.verdict, v.cohorts, v.statuses))

        if engine == "spark":
            from kb.screening.spark_files import spark_folder_verdicts  # pyspark is an optional extra

            def part_problems(index: int, reported: list[Problem]) -> list[tuple[int, int, Problem]]:
                return found(index, reported, orphans(index))

            derived = spark_folder_verdicts(
                split.count,
                split.target,
                lambda index: split.load(index, today),
                orphans,
                part_problems,
                kb,
                assumptions,
                as_of,
                today,
                master=spark_master,
                scratch=spark_scratch,
                workers=workers,
                on_problems=lambda found: add(found, ()),
                # Spark derives after the last chunk: one short of the end until the verdicts come
                progress=(lambda done: progress(min(done, total - 1), total)) if progress else None,
            )
            add([], derived)
        else:
            for found_here, verdicts in evaluate_loaded(
                range(split.count), load, kb, assumptions, as_of, today, workers
            ):
                add(found_here, verdicts)
                if progress is not None and verdicts:
                    progress(len(rows), total)
    ordered = [p for *_, p in sorted(problems, key=lambda t: t[:3])]
    unique = list(dict.fromkeys(ordered))  # a header problem is reported by every chunk
    known = cast(dict[str, Patient], dict.fromkeys(loaded))  # only the ids are read
    for pid, reason in Dataset(folder.name, str(folder), known, unique).not_loaded.items():
        rows.append(ScreenRow(pid, Verdict.NOT_EVALUATED, (), {}, (), 0, reason=reason))
    if progress is not None:
        progress(len(rows), len(rows))
    return Screened(rows, unique)
