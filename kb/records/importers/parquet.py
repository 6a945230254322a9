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
never a stack trace. A file may also be a folder of parts, as Spark writes a table
(`observations.parquet/part-00000….parquet`, or a folder `observations`): the parts are read
in name order, and a row is named by its part and its row there.

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
    "is_parquet_set",
    "load_parquet_set",
    "parquet_path",
    "parquet_schema",
    "read_parquet",
]

#: the Parquet file of each CSV file of the set
PARQUET_FILES = {f"{csv_name.removesuffix('.csv')}.parquet": csv_name for csv_name in FILES}
_CSV_NAME = re.compile(r"^(patients|observations|events|attestations)\.csv$")


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
    """Whether `folder` holds the file set as Parquet (its patients.parquet at least: a
    file, or a folder of parts named patients.parquet or patients)."""
    return parquet_path(folder, "patients", parts=True) is not None


def read_parquet(path: Path, label: str, columns: list[str] | None = None) -> pa.Table:
    """The table in a Parquet file or folder of parts (only `columns`, if given, in that
    case as the file spells them); a file that is not Parquet (or is damaged) is a KbError
    naming `label`, with the reader's reason."""
    try:
        return pq.read_table(path, columns=columns)
    except (pa.ArrowException, OSError) as exc:
        raise _not_parquet(label, exc) from None


def parquet_schema(path: Path, label: str) -> pa.Schema:
    """The columns of a Parquet file or folder of parts, without reading its rows."""
    try:
        return pq.read_schema(path) if path.is_file() else pq.ParquetDataset(path).schema
    except (pa.ArrowException, OSError) as exc:
        raise _not_parquet(label, exc) from None


def _not_parquet(label: str, exc: Exception) -> KbError:
    """The error for a file Arrow cannot read as Parquet: its reason, without the full path
    Arrow puts in front (the label names the file)."""
    reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    reason = re.sub(r"^Could not open Parquet input source '[^']*': ", "", reason)
    problem = Problem(label, None, None, f"not a readable Parquet file ({reason})", "no row of it is read")
    return KbError(f"{label}: cannot be read as Parquet", [problem])


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


def _csv_bytes(table: pa.Table, label: str) -> bytes:
    """The CSV text of `table`, every column as text (`_texts`), under its own header: a
    column missing or misspelt is then reported by the loader exactly as in a CSV file."""
    return _csv(_text_table(table, label))


def _text_table(table: pa.Table, label: str) -> pa.Table:
    """`table` with every column as text (`_texts`), under its own names."""
    names = [str(n) for n in table.column_names]
    twice = sorted(n for n, count in Counter(n.strip() for n in names).items() if count > 1)
    if twice:
        message = f"the column '{twice[0]}' appears more than once, so no row of the file is read"
        raise _Unreadable(Problem(label, None, twice[0], message, "keep one column of each name"))
    columns = [_texts(table.column(i), names[i], label) for i in range(len(names))]
    return pa.Table.from_arrays(columns, names=names) if names else pa.table({})


def _csv(table: pa.Table) -> bytes:
    out = io.BytesIO()
    pa_csv.write_csv(table, out, pa_csv.WriteOptions(quoting_style="needed"))
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
    places = _Places()
    for parquet_name, csv_name in PARQUET_FILES.items():
        path = parquet_path(folder, parquet_name.removesuffix(".parquet"), parts=True)
        if path is None:
            continue
        try:
            files[csv_name], names = _file(path, parquet_name, places)
        except _Unreadable as exc:
            if csv_name == "patients.csv":  # no patient list to answer about
                raise KbError(
                    f"{folder.name}: patients.parquet could not be read, so no patient was", [exc.problem]
                ) from None
            aside.append(exc.problem)
            continue
        hint = f"not read: the columns of {parquet_name} are {', '.join(FILES[csv_name])}"
        label = places.label(parquet_name)
        unknown += [Problem(label, 1, n, f"unknown column '{n}'", hint) for n in names if n not in FILES[csv_name]]
    if (folder / "stories.csv").exists():
        files["stories.csv"] = (folder / "stories.csv").read_bytes()
    try:
        dataset = load_uploaded(files, vocab, today, name=folder.name)
    except KbError as exc:
        raise KbError(places.text(str(exc.args[0])), [places.problem(p) for p in exc.problems]) from None
    dataset.path = str(folder)
    for patient in dataset.patients.values():
        places.move(patient)
        for problem in aside:  # its records are unread, never absent
            where = f"column {problem.column}: " if problem.column else ""
            csv_name = PARQUET_FILES[_file_of(problem.path)]
            patient.unreadable.append(Unreadable(csv_name, "", None, Source(problem.path, 0), where + problem.message))
    order = list(PARQUET_FILES)
    # the file set's order, each file's own problems (a column, the whole file) first
    found = [*aside, *unknown, *(places.problem(p) for p in dataset.problems)]
    dataset.problems = sorted(found, key=lambda p: order.index(_file_of(p.path)) if _file_of(p.path) in order else -1)
    return dataset


def _file_of(path: str) -> str:
    """The file of the set a problem's path names (`events.parquet/part-1.parquet`: events.parquet)."""
    stem = path.split("/")[0].removesuffix(".parquet")
    return f"{stem}.parquet"


class _Places:
    """Where each row of the set is: the file set's file, or, for a table written in parts
    (Spark's `df.write.parquet`), the part and its row. The loader numbers the rows of the
    parts one after the other; `problem` and `move` name the part and its own row."""

    def __init__(self) -> None:
        self.parts: dict[str, tuple[str, list[tuple[str, int]]]] = {}  # name: (folder label, [(part, rows)])

    def label(self, name: str) -> str:
        return self.parts[name][0] if name in self.parts else name

    def place(self, path: str, row: int | None) -> tuple[str, int | None]:
        name = _CSV_NAME.sub(r"\1.parquet", path)
        if name not in self.parts:
            return name, row
        label, parts = self.parts[name]
        if row is None or row < 2:
            return label, row
        index = row - 2
        for part, count in parts:
            if index < count:
                return part, index + 2
            index -= count
        return label, row

    def text(self, text: str) -> str:
        def at(match: re.Match[str]) -> str:
            path, row = self.place(f"{match[1]}.csv", int(match[2]) if match[2] else None)
            return f"{path} row {row}" if row is not None else path

        return re.sub(r"\b(patients|observations|events|attestations)\.csv(?: row (\d+))?\b", at, text)

    def problem(self, problem: Problem) -> Problem:
        """A loader's problem addressed to the Parquet file (its rows are numbered alike)."""
        path, row = self.place(problem.path, problem.row)
        return replace(problem, path=path, row=row, message=self.text(problem.message), hint=self.text(problem.hint))

    def source(self, source: Source) -> Source:
        path, row = self.place(source.file, source.row)
        return Source(path, row if row is not None else 0)

    def move(self, patient: Patient) -> None:
        """The patient's facts sourced from the Parquet files (an unreadable record keeps its
        `file`, the kind of record it stands for, e.g. events.csv)."""
        if patient.source is not None:
            patient.source = self.source(patient.source)
        patient.observations = [replace(o, source=self.source(o.source)) for o in patient.observations]
        patient.events = [replace(e, source=self.source(e.source)) for e in patient.events]
        patient.attestations = [replace(a, source=self.source(a.source)) for a in patient.attestations]
        patient.unreadable = [
            replace(u, source=self.source(u.source), reason=self.text(u.reason)) for u in patient.unreadable
        ]


def _parts(path: Path) -> list[Path]:
    """The part files of a table written as a folder, in name order; hidden files and those
    starting with _ (Spark's _SUCCESS, its .crc files) are not parts."""
    found = [p for p in path.rglob("*.parquet") if p.is_file()]
    return sorted(p for p in found if not any(n.startswith((".", "_")) for n in p.relative_to(path).parts))


def _file(path: Path, name: str, places: _Places) -> tuple[bytes, list[str]]:
    """The CSV text of one file of the set (a Parquet file, or a folder of parts: each part
    read as its own file, its rows after the previous part's), and its column names."""
    if path.is_file():
        try:
            table = read_parquet(path, name)
        except KbError as exc:
            raise _Unreadable(exc.problems[0]) from None
        return _csv_bytes(table, name), [str(n).strip() for n in table.column_names]
    label = path.name
    texts, counts = [], []
    for part in _parts(path):
        where = f"{label}/{part.relative_to(path).as_posix()}"
        try:
            table = read_parquet(part, where)
        except KbError as exc:
            raise _Unreadable(exc.problems[0]) from None
        texts.append(_text_table(table, where))
        counts.append((where, table.num_rows))
    places.parts[name] = (label, counts)
    try:
        whole = pa.concat_tables(texts, promote_options="default")
    except (pa.ArrowException, ValueError) as exc:
        message = f"its parts cannot be read as one table ({str(exc).splitlines()[0]}), so no row of it is read"
        raise _Unreadable(Problem(label, None, None, message, "write the parts with the same columns")) from None
    return _csv(whole), [str(n).strip() for n in whole.column_names]
