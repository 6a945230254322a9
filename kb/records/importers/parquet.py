"""The CSV file set as Parquet: a folder of patients.parquet, observations.parquet,
events.parquet and attestations.parquet with the CSV files' columns, read to the very same
`Dataset`.

Each column is turned into the text the CSV file would hold (dates as YYYY-MM-DD, numbers
in their shortest exact form: a float64 0.1 is "0.1", never 0.1000000000000000055; a
decimal keeps its scale, "2.10"; a null is an empty cell), and the one loader of
`kb.records.patients` reads that text. So every rule about bad input (a missing column, an
empty patient_id, a date that is not a date, an implausible value) applies once, with the
same message, whatever the format; its problems and the facts' sources then name the Parquet
file. Rows are numbered as in the CSV written from the file: the file's n-th row (index
n - 1 in Arrow or pandas) is `row n + 1`, the header being row 1, as a spreadsheet opened
on it shows. A file that is not Parquet, a column of lists or structs, text that is not
UTF-8 or a column the file set does not have is a problem naming the file and the column,
never a stack trace.

Also `read_parquet`: one Parquet file, or a folder of parts (as Spark writes a table), to an
Arrow table with a clear error; the OMOP importer reads its tables with it.
"""

from __future__ import annotations

import io
import re
from collections import Counter
from dataclasses import replace
from datetime import date
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq

from kb.catalogue.vocabulary import Vocabulary, load_vocabulary
from kb.errors import KbError, Problem
from kb.records.importers.common import FILES
from kb.records.patients import Dataset, Patient, Source, Unreadable, load_uploaded

__all__ = [
    "PARQUET_FILES",
    "csv_bytes",
    "is_parquet_set",
    "load_parquet_set",
    "parquet_path",
    "parquet_schema",
    "read_parquet",
]

#: the Parquet file of each CSV file of the set
PARQUET_FILES = {f"{csv_name.removesuffix('.csv')}.parquet": csv_name for csv_name in FILES}
_CSV_NAME = re.compile(r"\b(patients|observations|events|attestations)\.csv\b")


class _Unreadable(Exception):
    """A Parquet file none of whose rows can be read; `problem` says where and why."""

    def __init__(self, problem: Problem) -> None:
        super().__init__(problem.message)
        self.problem = problem


def parquet_path(folder: Path, stem: str, parts: bool = False) -> Path | None:
    """The Parquet file `stem`.parquet in `folder`; with `parts`, also a folder of Parquet
    parts named `stem`.parquet or `stem` (Spark's `df.write.parquet`). None if absent."""
    single = folder / f"{stem}.parquet"
    if single.is_file():
        return single
    if parts:
        for candidate in (single, folder / stem):
            if candidate.is_dir() and any(candidate.rglob("*.parquet")):
                return candidate
    return None


def is_parquet_set(folder: Path) -> bool:
    """Whether `folder` holds the file set as Parquet (its patients.parquet at least)."""
    return parquet_path(folder, "patients") is not None


def read_parquet(path: Path, label: str, columns: list[str] | None = None) -> pa.Table:
    """The table in a Parquet file or folder of parts (only `columns`, if given, in that
    case as the file spells them); a file that is not Parquet (or is damaged) is a KbError
    naming `label`, with the reader's reason."""
    try:
        return pq.read_table(path, columns=columns)
    except (pa.ArrowException, OSError) as exc:
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        problem = Problem(label, None, None, f"not a readable Parquet file ({reason})", "no row of it is read")
        raise KbError(f"{label}: cannot be read as Parquet", [problem]) from None


def parquet_schema(path: Path, label: str) -> pa.Schema:
    """The columns of a Parquet file or folder of parts, without reading its rows."""
    try:
        return pq.read_schema(path) if path.is_file() else pq.ParquetDataset(path).schema
    except (pa.ArrowException, OSError) as exc:
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        problem = Problem(label, None, None, f"not a readable Parquet file ({reason})", "no row of it is read")
        raise KbError(f"{label}: cannot be read as Parquet", [problem]) from None


def _texts(column: pa.ChunkedArray, name: str, label: str) -> pa.ChunkedArray:
    """The column as the CSV file would hold it: text, null for an empty cell."""
    kind = column.type
    if pa.types.is_dictionary(kind):
        column = column.cast(kind.value_type)
        kind = kind.value_type
    if pa.types.is_string(kind) or pa.types.is_large_string(kind) or pa.types.is_string_view(kind):
        return column.cast(pa.string())
    if pa.types.is_binary(kind) or pa.types.is_large_binary(kind) or pa.types.is_fixed_size_binary(kind):
        try:
            return column.cast(pa.string())
        except pa.ArrowInvalid:
            for n, value in enumerate(column.to_pylist(), start=1):
                try:
                    (value or b"").decode("utf-8")
                except UnicodeDecodeError as exc:
                    byte = (value or b"")[exc.start : exc.start + 1].hex()
                    message = f"the column holds bytes that are not UTF-8 text (0x{byte}), so no row of it is read"
                    raise _Unreadable(Problem(label, n + 1, name, message, "write the column as UTF-8 text")) from None
            raise
    if pa.types.is_timestamp(kind):
        local = pc.local_timestamp(column) if kind.tz else column
        days = pc.cast(local, pa.date32(), safe=False)
        midnight = pc.equal(pc.cast(days, local.type), local)
        # a date-time at midnight is the date (pandas and Spark write dates so); any other
        # time stays in the text, and a date column rejects it as the CSV's would
        return pc.if_else(midnight, pc.cast(days, pa.string()), pc.cast(local, pa.string()))
    if pa.types.is_float16(kind):
        column = column.cast(pa.float32())  # cast to text from float32: its shortest form
    try:
        return pc.cast(column, pa.string())  # numbers (shortest exact form), decimals, dates, booleans
    except (pa.ArrowNotImplementedError, pa.ArrowInvalid):
        message = f"the column holds {kind} values, not text, numbers or dates, so no row of the file is read"
        raise _Unreadable(Problem(label, None, name, message, "write one value per cell")) from None


def csv_bytes(table: pa.Table, label: str) -> bytes:
    """The CSV text of `table`, every column as text (`_texts`), under its own header: a
    column missing or misspelt is then reported by the loader exactly as in a CSV file."""
    names = [str(n) for n in table.column_names]
    twice = sorted(n for n, count in Counter(n.strip() for n in names).items() if count > 1)
    if twice:
        message = f"the column '{twice[0]}' appears more than once, so no row of the file is read"
        raise _Unreadable(Problem(label, None, twice[0], message, "keep one column of each name"))
    columns = [_texts(table.column(i), names[i], label) for i in range(len(names))]
    out = io.BytesIO()
    text = pa.Table.from_arrays(columns, names=names) if names else pa.table({})
    pa_csv.write_csv(text, out, pa_csv.WriteOptions(quoting_style="needed"))
    return out.getvalue()


def load_parquet_set(folder: Path | str, vocabulary: Vocabulary | None = None, today: date | None = None) -> Dataset:
    """The data set of the Parquet file set in `folder`, as `load_dataset` reads the CSV
    file set (stories.csv beside it is read too). A folder holding a file of the set both as
    CSV and as Parquet is refused: one of them would be silently left out."""
    folder = Path(folder)
    vocab = vocabulary or load_vocabulary()
    if not is_parquet_set(folder):
        raise KbError(
            f"{folder}: no patients.parquet here (a Parquet data set is a folder with patients.parquet, "
            "observations.parquet, events.parquet and attestations.parquet)"
        )
    both = [name for name in FILES if (folder / name).exists()]
    if both:
        raise KbError(
            f"{folder}: holds {', '.join(both)} beside the Parquet files; keep the file set in one format "
            "(CSV or Parquet), or a file of it would be left out"
        )
    files: dict[str, bytes] = {}
    aside: list[Problem] = []  # files none of whose rows can be read
    unknown: list[Problem] = []  # columns the file set does not have
    for parquet_name, csv_name in PARQUET_FILES.items():
        path = folder / parquet_name
        if not path.exists():
            continue
        try:
            files[csv_name], names = _file(path, parquet_name)
        except _Unreadable as exc:
            if csv_name == "patients.csv":  # no patient list to answer about
                raise KbError(
                    f"{folder.name}: patients.parquet could not be read, so no patient was", [exc.problem]
                ) from None
            aside.append(exc.problem)
            continue
        hint = f"not read: the columns of {parquet_name} are {', '.join(FILES[csv_name])}"
        unknown += [
            Problem(parquet_name, 1, n, f"unknown column '{n}'", hint) for n in names if n not in FILES[csv_name]
        ]
    if (folder / "stories.csv").exists():
        files["stories.csv"] = (folder / "stories.csv").read_bytes()
    try:
        dataset = load_uploaded(files, vocab, today, name=folder.name)
    except KbError as exc:
        raise KbError(_parquet_text(str(exc.args[0])), [_problem(p) for p in exc.problems]) from None
    dataset.path = str(folder)
    for patient in dataset.patients.values():
        _move(patient)
        for problem in aside:  # its records are unread, never absent
            where = f"column {problem.column}: " if problem.column else ""
            unread = Unreadable(PARQUET_FILES[problem.path], "", None, Source(problem.path, 0), where + problem.message)
            patient.unreadable.append(unread)
    order = list(PARQUET_FILES)
    # the file set's order, each file's own problems (a column, the whole file) first
    found = [*aside, *unknown, *(_problem(p) for p in dataset.problems)]
    dataset.problems = sorted(found, key=lambda p: order.index(p.path) if p.path in order else -1)
    return dataset


def _file(path: Path, label: str) -> tuple[bytes, list[str]]:
    """The CSV text of one Parquet file of the set, and its column names."""
    if path.is_dir():
        message = "is a folder: each file of the set is one Parquet file"
        raise _Unreadable(Problem(label, None, None, message, "write each table as one file"))
    try:
        table = read_parquet(path, label)
    except KbError as exc:
        raise _Unreadable(exc.problems[0]) from None
    return csv_bytes(table, label), [str(n).strip() for n in table.column_names]


def _parquet_text(text: str) -> str:
    return _CSV_NAME.sub(r"\1.parquet", text)


def _source(source: Source) -> Source:
    return Source(_parquet_text(source.file), source.row)


def _problem(problem: Problem) -> Problem:
    """A loader's problem addressed to the Parquet file (its rows are numbered alike)."""
    return replace(
        problem,
        path=_parquet_text(problem.path),
        message=_parquet_text(problem.message),
        hint=_parquet_text(problem.hint),
    )


def _move(patient: Patient) -> None:
    """The patient's facts sourced from the Parquet files (an unreadable record keeps its
    `file`, the kind of record it stands for, e.g. events.csv)."""
    if patient.source is not None:
        patient.source = _source(patient.source)
    patient.observations = [replace(o, source=_source(o.source)) for o in patient.observations]
    patient.events = [replace(e, source=_source(e.source)) for e in patient.events]
    patient.attestations = [replace(a, source=_source(a.source)) for a in patient.attestations]
    patient.unreadable = [
        replace(u, source=_source(u.source), reason=_parquet_text(u.reason)) for u in patient.unreadable
    ]
