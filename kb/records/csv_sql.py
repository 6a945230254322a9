"""Read the four-file set set-at-a-time: DuckDB cuts the rows, the loader's own functions
judge each distinct value once, and the record tables of kb/records/tables.py are filled with
exactly what `load_records(con, load_dataset(folder).patients.values())` gives them.

Reading rows one at a time in Python (`load_dataset`) is most of the cost of screening a large
file set (about 1 ms a patient). Here the files are cut into rows and cells in SQL, and every
value that needs the loader's judgement (a date, a number in a unit, an item or a LOINC code,
an agent's or a condition's name, a sex code, a plausible range, a limit of normal) is judged
by the loader's OWN row functions (`_load_patients`, `_load_observations`, `_load_events`,
`_load_attestations`, `_date`) run on made-up rows, one per DISTINCT value or tuple of values,
and joined back as an Arrow table: the same code decides, so the records are the same by
construction, and it is cheap because values repeat across patients. Numbers go in as the
text `load_records` writes and are cast to DECIMAL(38, 28) as it casts them.

The identity rests on a clean-row fast path with a fallback:

- a patient all of whose rows the loader's functions read without any problem is *accepted*:
  their records go in the tables, and the Python loader reports no problem for them;
- a patient with a row that is not clean (any problem, even a field merely "read as empty";
  a number DECIMAL(38, 28) cannot hold; a line over `CELL_LIMIT` or with more cells than the
  header, which are not looked at here) is *declined*: no row of theirs is in the tables, and
  `load_declined` gives the loader's reading of them alone, at their rows of the original files;
- a missing column the loader reads as empty (any but patients.py's `ESSENTIAL`) is read as
  empty here too, and the loader's own problem for it (file-level, row 1) is in
  `SqlRead.problems`, in the loader's order;
- what is not one patient's (a file that cannot be decoded, or read as CSV; a missing
  essential or a repeated column; a row with no or an unknown patient id; a duplicate patient row; a
  patient_id over `CELL_LIMIT`; a NUL character; an unknown encoding; no patients.csv) leaves
  the whole set to the Python loader (`SqlRead.whole`), with the tables left empty.

Rows and cells are cut as the loader's `_Reader.rows` cuts them, which DuckDB's read_csv
cannot promise (it numbers no rows, skips or pads lines by its own rules and quotes by its
own parser). The decoded text (`decode_text`, the loader's) is split at its line ends (\\r\\n,
\\r, \\n: the csv module's) and each line at its commas in SQL: for a line without a quote that
is what the csv module reads. A line with a quote, or with a blank DuckDB's trim() does not
strip (trim() strips Unicode's space separators, `str.strip` also \\t, \\x0b ... \\u2029), is cut by
the csv module itself, alone (its state starts afresh at every row), and stripped by
`str.strip`; if it is not a row by itself (a quoted cell over two lines) the whole file is
read by `_Reader.rows` itself. Rows are numbered as the loader numbers them: the header is
row 1, empty lines are not counted, rows of only blank cells are counted and skipped.

Nothing here is data executed: SQL text is built from the loader's column names and integers;
values reach DuckDB as Arrow tables.
"""

from __future__ import annotations

import csv
import io
import tempfile
import unicodedata
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa

from kb.catalogue.vocabulary import Vocabulary, load_vocabulary
from kb.errors import KbError, Problem
from kb.language.sql import fits_exactly
from kb.records.patients import (
    ATTESTATION_COLUMNS,
    CELL_LIMIT,
    ESSENTIAL,
    EVENT_COLUMNS,
    OBSERVATION_COLUMNS,
    PATIENT_COLUMNS,
    Dataset,
    Patient,
    _date,
    _load_attestations,
    _load_events,
    _load_observations,
    _load_patients,
    _Reader,
    check_encoding,
    decode_text,
    load_dataset,
)
from kb.records.tables import NUMBER, RECORD_TABLES, create_record_tables

__all__ = ["STRIPPED", "UNSURE", "SqlRead", "headers_readable", "load_declined", "read_records_sql"]

#: the characters `str.strip()` removes (those `str.isspace` names; tests/test_csv_sql.py
#: holds this to Python's own Unicode database)
STRIPPED = (
    "\t\n\x0b\x0c\r\x1c\x1d\x1e\x1f \x85\xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006"
    "\u2007\u2008\u2009\u200a\u2028\u2029\u202f\u205f\u3000"
)
#: the characters `str.strip()` removes that DuckDB's trim() does not (trim() removes the
#: space separators, Unicode's Zs, all of them in STRIPPED), line ends aside (no line holds
#: one): a file with one of them is split in Python
_OTHER_SPACE = "".join(c for c in STRIPPED if unicodedata.category(c) != "Zs" and c not in "\r\n")
#: a date that reads (the value columns are judged apart from the date of their row)
_SOME_DATE = "2000-01-01"
_EMPTY = "''"
#: why a row was declined though the loader may read it: not looked at here
UNSURE = ": a cell over the limit or more cells than the header"
_FILES = (
    ("patients.csv", PATIENT_COLUMNS),
    ("observations.csv", OBSERVATION_COLUMNS),
    ("events.csv", EVENT_COLUMNS),
    ("attestations.csv", ATTESTATION_COLUMNS),
)


@dataclass(frozen=True)
class SqlRead:
    """What `read_records_sql` did.

    `accepted`: the patients whose records are in the tables (patients.csv order), exactly
    those `load_records(load_dataset(...))` gives them, none with a problem. `declined`: the
    patients of patients.csv the SQL checks did not pass (read them with the Python loader);
    `why` says, for each, the first row that was not clean. `whole`: nothing was read (the
    tables are empty): read the whole set with the Python loader, because of `reason`.
    `problems`: the file-level problems `load_dataset` reports for this set (a missing
    column read as empty), in its order; none when `whole`. A declined patient's problems
    are not here: `load_declined` gives them (after these same file-level ones)."""

    accepted: tuple[str, ...] = ()
    declined: tuple[str, ...] = ()
    whole: bool = False
    reason: str = ""
    why: Mapping[str, str] = field(default_factory=dict)
    problems: tuple[Problem, ...] = ()


class _Whole(Exception):
    """Something that is not one patient's: the whole set goes to the Python loader."""


def read_records_sql(
    con: duckdb.DuckDBPyConnection,
    folder: Path | str,
    vocabulary: Vocabulary | None = None,
    today: date | None = None,
    encoding: str | None = None,
) -> SqlRead:
    """Fill the five record tables (replaced) from the file set in `folder`, for the patients
    whose rows are all clean; see the module's docstring for what is declined and when the
    whole set is left to the Python loader."""
    create_record_tables(con)
    reader = _SqlReader(con, Path(folder), vocabulary or load_vocabulary(), today or date.today())
    try:
        return reader.read(encoding)
    except _Whole as exc:
        create_record_tables(con)  # nothing half-read stays behind
        return SqlRead(whole=True, reason=str(exc))
    except (duckdb.Error, pa.ArrowException, UnicodeError) as exc:  # never a wrong answer: the loader reads it
        create_record_tables(con)
        return SqlRead(whole=True, reason=f"not read in SQL ({type(exc).__name__}: {exc})")
    finally:
        reader.drop()


def headers_readable(folder: Path | str) -> bool:
    """Whether every file of the set there has its essential columns, each column once: a
    header the SQL reader sends whole to the loader (a missing essential column, a repeated
    column) is seen here first, from the first line of each file, so that a caller can size
    its chunks for the path taken. A missing optional column is read as empty in SQL too."""
    for file, _ in _FILES:
        path = Path(folder) / file
        if not path.exists():
            continue
        try:
            with path.open(encoding="utf-8-sig", newline="") as fh:
                header = [h.strip() for h in next(csv.reader(fh), [])]
        except (OSError, UnicodeDecodeError, csv.Error):
            return False
        if any(c not in header for c in ESSENTIAL[file]) or len(set(header)) < len(header):
            return False
    return True


def load_declined(
    folder: Path | str,
    declined: Iterable[str],
    vocabulary: Vocabulary | None = None,
    today: date | None = None,
    encoding: str | None = None,
) -> Dataset:
    """The Python loader's reading of the `declined` patients alone, for a set SQL read the
    rest of (not `whole`): their records and problems exactly as `load_dataset(folder)`
    gives them, at the rows of the original files, without reading everyone's rows in Python.

    Each file is copied with every other patient's row replaced by a row of one empty cell,
    which the loader counts and skips, so every row keeps its number; rows are cut and
    rewritten by the csv module (the same cells read back), the copy in UTF-8."""
    wanted = set(declined)
    source = Path(folder)
    with tempfile.TemporaryDirectory(prefix="kb-declined-") as tmp:
        try:
            for file, _ in _FILES:
                if (source / file).exists():
                    text = decode_text((source / file).read_bytes(), file, encoding)
                    (Path(tmp) / file).write_text(_rows_of(text, wanted), encoding="utf-8", newline="")
        except (KbError, csv.Error, ValueError):  # not a set SQL read: the loader reads it all
            whole = load_dataset(source, vocabulary, today, encoding)
            whole.patients = {pid: p for pid, p in whole.patients.items() if pid in wanted}
            whole.problems = [p for p in whole.problems if p.patient_id is None or p.patient_id in wanted]
            return whole
        dataset = load_dataset(tmp, vocabulary, today)
    dataset.name, dataset.path = source.name, str(source)
    return dataset


def _rows_of(text: str, wanted: set[str]) -> str:
    """The file's text with every row of a patient not `wanted` replaced by one empty cell."""
    records = csv.reader(io.StringIO(text, newline=""), strict=True)
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")  # \r and \n in a cell are quoted
    header = next(records, [])
    writer.writerow(header)
    names = [h.strip() for h in header]
    at = len(names) - 1 - names[::-1].index("patient_id")  # a repeated column: its last cell
    for record in records:
        mine = record == [] or (len(record) > at and record[at].strip() in wanted)
        writer.writerow(record if mine else [""])
    return out.getvalue()


class _Probe(_Reader):
    """A reader whose rows are given: the loader's own row functions run on made-up rows, one
    per distinct value (or tuple of values), and the problems they report say which failed."""

    def __init__(self, name: str, columns: tuple[str, ...], given: list[dict[str, str]]):
        super().__init__(Path(), name, columns, [])
        self.given = given

    def rows(self) -> Iterator[tuple[int, dict[str, str]]]:
        for number, row in enumerate(self.given, start=2):
            self.current_patient = row.get("patient_id") or None
            yield number, row

    def failed(self) -> set[int]:
        return {p.row for p in self.problems if p.row is not None}


def _text(value: Decimal | None) -> str | None:
    return None if value is None else format(value, "f")  # as tables.load_records writes it


def _fits(*values: Decimal | str | None) -> bool:
    return all(not isinstance(v, Decimal) or fits_exactly(v) for v in values)


class _SqlReader:
    def __init__(self, con: duckdb.DuckDBPyConnection, folder: Path, vocab: Vocabulary, today: date):
        self.con, self.folder, self.vocab, self.today = con, folder, vocab, today
        self.views: list[str] = []
        self.tables: list[str] = []
        #: each file's header problems (a missing column read as empty), the loader's own
        self.header_problems: dict[str, list[Problem]] = {}

    # -- the plumbing -----------------------------------------------------------------

    def register(self, name: str, table: pa.Table) -> str:
        self.con.register(name, table)
        self.views.append(name)
        return name

    def table(self, name: str, sql: str, params: Sequence[object] = ()) -> str:
        self.run(f"CREATE OR REPLACE TEMP TABLE {name} AS {sql}", params)
        self.tables.append(name)
        return name

    def run(self, sql: str, params: Sequence[object] = ()) -> list[tuple[Any, ...]]:
        """Execute and fetch (DuckDB keeps a statement's result open until it is fetched)."""
        return self.con.execute(sql, list(params)).fetchall()

    def drop(self) -> None:
        for name in self.views:
            self.con.unregister(name)
        for name in self.tables:
            self.run(f"DROP TABLE IF EXISTS {name}")

    def distinct(self, sql: str) -> list[tuple[Any, ...]]:
        return self.run(sql)

    # -- rows and cells ---------------------------------------------------------------

    def split(self, file: str, columns: tuple[str, ...], encoding: str | None) -> str | None:
        """The file's non-blank rows as a temp table (number, then each column stripped), or
        None for a file that is not there (no rows, no problem: as the loader reads it).

        Lines are cut in SQL. A line with a quote, or with a blank trim() does not strip, is
        cut by the csv module itself, alone (the module's state starts afresh at each row):
        unless that fails (a quoted cell over two lines), when the whole file is read by the
        loader's `_Reader.rows`."""
        path = self.folder / file
        if not path.exists():
            if file == "patients.csv":
                raise _Whole("no patients.csv")
            return None
        try:
            text = decode_text(path.read_bytes(), file, encoding)
        except KbError as exc:
            raise _Whole(f"{file}: {exc.problems[0].message if exc.problems else exc}") from None
        if "\x00" in text:
            raise _Whole(f"{file}: a NUL character")
        ascii_only = text.isascii()
        others = [c for c in _OTHER_SPACE if (c.isascii() or not ascii_only) and c in text]
        if "\r" in text:  # the breaks of \r\n|\r|\n, leftmost first, as the csv module's lines
            text = text.replace("\r\n", "\n").replace("\r", "\n")
        end = text.find("\n")
        first = text if end < 0 else text[:end]
        try:
            header = [h.strip() for h in next(csv.reader([first], strict=True), [])]
        except csv.Error:
            return self.split_python(file, columns, encoding)
        self.header_problems[file] = self.check_header(file, columns, header)
        stem = f"_csvsql_{file.removesuffix('.csv')}"
        doc = self.register(f"{stem}_doc", pa.table({"t": pa.array([text], pa.large_string())}))
        # a row's number is its line's unless an empty line (not counted) comes before it
        gaps = "\n\n" in text.rstrip("\n")
        lines = f"""SELECT {"row_number() OVER (ORDER BY i) + 1" if gaps else "i"} AS number, i, line
                FROM (SELECT unnest(l) AS line, generate_subscripts(l, 1) AS i
                      FROM (SELECT string_split(t, chr(10)) AS l FROM {doc}))
                WHERE i > 1 AND line <> ''"""
        quotes = '"' in text
        # read twice (the lines for the csv module, then the rest) only if there are such lines
        lines = self.table(f"{stem}_lines", lines) if quotes or others else f"({lines})"
        width = len(header)
        hard = self.hard_lines(file, lines, width, quotes, others)
        if hard is None:
            return self.split_python(file, columns, encoding)
        # no cell begins or ends with a blank (ASCII text, no blank beside a comma or a line
        # end): nothing to strip, and trimming every cell is a third of the split's time
        bare = ascii_only and (
            " " not in text or (not any(p in text for p in (" ,", ", ", " \n", "\n ")) and text.strip(" ") == text)
        )
        strip = "{}" if bare else "trim({})"
        picks = ", ".join(
            f'{strip.format(f"coalesce(s[{header.index(c) + 1}], {_EMPTY})")} AS "{c}"'
            if c in header
            else f'{_EMPTY} AS "{c}"'  # a missing column: read as empty, as the loader reads it
            for c in columns
        )
        # a line is blank when its cells strip to nothing: certainly not when it starts with a
        # printable ASCII character other than a comma (most lines: their patient id)
        plain = f"""SELECT number, s, size, len(s) AS cells FROM (
                        SELECT number, i, string_split(line, ',') AS s, strlen(line) AS size FROM {lines}
                        WHERE CASE WHEN ascii(line) BETWEEN 33 AND 126 AND NOT starts_with(line, ',') THEN true
                                   ELSE trim(replace(line, ',', '')) <> '' END)"""
        if hard:
            plain += f""" WHERE i NOT IN (SELECT i FROM {hard})
                    UNION ALL SELECT l.number, h.s, h.size, h.cells
                    FROM {hard} h JOIN {lines} l USING (i) WHERE h.filled"""
        # a row with a cell that may be over the limit, or more cells than the header, is
        # not read here: its patient is declined (the loader rejects it, or ignores the cells
        # beyond the header's: either way the loader's to say)
        rows = self.table(
            f"{stem}_rows", f"SELECT number, {picks}, size > {CELL_LIMIT} OR cells > {width} AS unsure FROM ({plain})"
        )
        unsure, longest = self.run(
            f"SELECT count(*) FILTER (WHERE unsure), max(length(patient_id)) FILTER (WHERE unsure) FROM {rows}"
        )[0]
        if unsure and file == "patients.csv":  # the loader may not make the patient at all
            raise _Whole(f"{file}: a line longer than {CELL_LIMIT:,} characters or with more cells than the header")
        if longest is not None and longest > CELL_LIMIT:  # its patient_id: the row may be anyone's
            raise _Whole(f"{file}: a patient_id longer than {CELL_LIMIT:,} characters")
        return rows

    def hard_lines(self, file: str, lines: str, width: int, quotes: bool, others: list[str]) -> str | None:
        """The lines with a quote or a blank trim() does not strip, cut by the csv module one
        at a time and stripped by `str.strip`: a view (i, s, size, cells, filled), "" if there
        are none, None if one is not a whole row by itself."""
        if not quotes and not others:
            return ""
        found = []
        if quotes:
            found.append("contains(line, '\"')")
        if others:
            found.append("regexp_matches(line, $1)")
        params = ["[" + "".join(others) + "]"] if others else []
        picked = self.run(f"SELECT i, line FROM {lines} WHERE {' OR '.join(found)}", params)
        index, cut = [], []
        for i, line in picked:
            try:
                (record,) = csv.reader([line], strict=True)
            except (csv.Error, ValueError):  # a quoted cell that goes on in the next line, or not CSV
                return None
            index.append(i)
            cut.append([c.strip() for c in record])
        table = pa.table(
            {
                "i": pa.array(index, pa.int64()),
                "s": pa.array(cut, pa.list_(pa.string())),
                "size": pa.array([max(map(len, c)) for c in cut], pa.int64()),
                "cells": pa.array([len(c) for c in cut], pa.int64()),
                "filled": pa.array([any(c[:width]) for c in cut], pa.bool_()),
            }
        )
        return self.register(f"_csvsql_{file.removesuffix('.csv')}_hard", table)

    def check_header(self, file: str, columns: tuple[str, ...], header: list[str]) -> list[Problem]:
        """The loader's own problems for the header (its `_Reader.rows` run on the header
        alone): a missing column it reads as empty; a missing essential column, or a
        repeated one, leaves the whole set to the loader."""
        if len(set(header)) < len(header):
            raise _Whole(f"{file}: a repeated column")
        if all(c in header for c in columns):
            return []
        problems: list[Problem] = []
        line = io.StringIO()
        csv.writer(line).writerow(header)
        reader = _Reader(Path(), file, columns, problems, uploaded={file: line.getvalue().encode("utf-8")})
        list(reader.rows())  # one line: no row, only the header's problems
        if reader.rejected is not None:
            raise _Whole(f"{file}: {reader.rejected.message}")
        return problems

    def split_python(self, file: str, columns: tuple[str, ...], encoding: str | None) -> str:
        """A file whose rows only the csv module reads whole (a quoted cell over two lines):
        its rows as the loader's own `_Reader.rows` reads them, handed to DuckDB as columns."""
        problems: list[Problem] = []
        reader = _Reader(self.folder, file, columns, problems, encoding=encoding)
        numbers: list[int] = []
        cells: list[list[str]] = [[] for _ in columns]
        for number, row in reader.rows():
            if max(map(len, row.values())) > CELL_LIMIT:
                raise _Whole(f"{file} row {number}: a cell longer than {CELL_LIMIT:,} characters")
            numbers.append(number)
            for k, c in enumerate(columns):
                cells[k].append(row[c])
        if reader.rejected is not None:
            raise _Whole(f"{file}: {reader.rejected}")
        header, problems = problems[: len(reader.missing)], problems[len(reader.missing) :]
        if problems:  # anything else its reader reported: the loader reads the set
            raise _Whole(f"{file}: {problems[0]}")
        self.header_problems[file] = header
        stem = f"_csvsql_{file.removesuffix('.csv')}"
        table = pa.table(
            {
                "number": pa.array(numbers, pa.int64()),
                **{c: pa.array(v, pa.string()) for c, v in zip(columns, cells, strict=True)},
            }
        )
        view = self.register(f"{stem}_read", table)
        return self.table(f"{stem}_rows", f"SELECT *, false AS unsure FROM {view}")

    # -- the four files -----------------------------------------------------------------

    def read(self, encoding: str | None) -> SqlRead:
        try:
            check_encoding(encoding)
        except KbError as exc:
            raise _Whole(str(exc)) from None
        split = {file: self.split(file, columns, encoding) for file, columns in _FILES}
        patients = split["patients.csv"]
        assert patients is not None
        self.check_ids(patients, split)
        self.dates(split)
        bad = [self.patients(patients)]  # SELECTs of (patient, number, file_order, why): rows not clean
        if split["observations.csv"]:
            bad.append(self.observations(split["observations.csv"]))
        if split["events.csv"]:
            bad.append(self.events(split["events.csv"]))
        if split["attestations.csv"]:
            bad.append(self.attestations(split["attestations.csv"]))
        found = [b for b in bad if b]
        why: dict[str, str] = {}
        if found:
            declined = self.table(
                "_csvsql_declined",
                f"SELECT patient, arg_min(why, file_order * 1e12 + number) AS why FROM ({' UNION ALL '.join(found)}) "
                "GROUP BY patient",
            )
            for name in RECORD_TABLES:
                self.run(f"DELETE FROM {name} WHERE patient IN (SELECT patient FROM {declined})")
            why = dict(self.run(f"SELECT patient, why FROM {declined}"))
        order = [pid for (pid,) in self.run(f"SELECT patient_id FROM {patients} ORDER BY number")]
        return SqlRead(
            accepted=tuple(pid for pid in order if pid not in why),
            declined=tuple(pid for pid in order if pid in why),
            why={pid: why[pid] for pid in order if pid in why},
            problems=tuple(p for file, _ in _FILES for p in self.header_problems.get(file, ())),
        )

    def check_ids(self, patients: str, split: Mapping[str, str | None]) -> None:
        """Rows no one patient owns make the whole set the Python loader's."""
        found = self.run(
            f"SELECT min(number) FILTER (WHERE patient_id = ''), "
            f"min(number) FILTER (WHERE n > 1) FROM "
            f"(SELECT number, patient_id, count(*) OVER (PARTITION BY patient_id) AS n FROM {patients})"
        )[0]
        if found[0] is not None:
            raise _Whole(f"patients.csv row {found[0]}: empty patient_id")
        if found[1] is not None:
            raise _Whole(f"patients.csv row {found[1]}: a duplicate patient row")
        for file, rows in split.items():
            if file == "patients.csv" or rows is None:
                continue
            stray = self.run(
                f"SELECT min(number) FROM {rows} r WHERE NOT EXISTS "
                f"(SELECT 1 FROM {patients} p WHERE p.patient_id = r.patient_id)"
            )[0]
            if stray[0] is not None:
                raise _Whole(f"{file} row {stray[0]}: no patient (or an empty patient_id)")

    def dates(self, split: Mapping[str, str | None]) -> None:
        """Every distinct date of the three record files, read by the loader's `_date`."""
        columns = {
            "observations.csv": ("date",),
            "events.csv": ("start_date", "end_date"),
            "attestations.csv": ("date",),
        }
        parts = [
            f'SELECT "{c}" AS text FROM {split[file]} WHERE "{c}" <> \'\''
            for file, cs in columns.items()
            if split[file]
            for c in cs
        ]
        texts = (
            [t for (t,) in self.distinct(f"SELECT DISTINCT text FROM ({' UNION ALL '.join(parts)})")] if parts else []
        )
        read: list[date | None] = []
        for text in texts:
            try:
                read.append(_date(text))
            except ValueError:
                read.append(None)
        table = pa.table({"text": pa.array(texts, pa.string()), "day": pa.array(read, pa.date32())})
        self.register("_csvsql_dates", table)

    def probe(
        self,
        file: str,
        columns: tuple[str, ...],
        keys: tuple[str, ...],
        rows: str,
        fixed: dict[str, str],
        load: Callable[[_Probe, dict[str, Patient]], None],
        extra: str = "",
    ) -> tuple[list[tuple[Any, ...]], dict[str, Patient], set[int]]:
        """Run the loader's row function of `file` once per distinct tuple of `keys` (other
        columns as in `fixed`): the tuples, the made-up patient "#" with what was read (each
        record's source row is 2 + the tuple's index), and the rows that had a problem."""
        select = ", ".join(f'"{k}"' for k in keys) + (f", {extra}" if extra else "")
        tuples = self.distinct(f"SELECT DISTINCT {select} FROM {rows}")
        given = []
        for values in tuples:
            row = dict.fromkeys(columns, "")
            row.update(fixed)
            row.update(zip(keys, values, strict=False))
            row["patient_id"] = "#"
            given.append(row)
        probe = _Probe(file, columns, given)
        patients = {"#": Patient("#")}
        load(probe, patients)
        return tuples, patients, probe.failed()

    def typed_map(self, name: str, out: dict[str, list[Any]], numbers: tuple[str, ...]) -> None:
        """A map of distinct values to what the loader read, as a table whose numbers are cast
        once each (as `load_records` casts their text), not once per row that joins them."""
        table = pa.table({k: pa.array(v, pa.bool_() if k == "ok" else pa.string()) for k, v in out.items()})
        view = self.register(f"{name}_text", table)
        picks = ", ".join(f'CAST("{k}" AS {NUMBER}) AS "{k}"' if k in numbers else f'"{k}"' for k in out)
        self.table(name, f"SELECT {picks} FROM {view}")

    # -- patients.csv -----------------------------------------------------------------

    def patients(self, rows: str) -> str:
        """Each column's distinct values, read by `_load_patients` (many columns' values side
        by side in one made-up row: the loader reads each column apart)."""
        columns = PATIENT_COLUMNS[1:]
        values = {
            c: [t for (t,) in self.distinct(f'SELECT DISTINCT "{c}" FROM {rows} WHERE "{c}" <> \'\'')] for c in columns
        }
        count = max((len(v) for v in values.values()), default=0)
        given = [
            {"patient_id": f"#{n}", **{c: (values[c][n] if n < len(values[c]) else "") for c in columns}}
            for n in range(count)
        ]
        probe = _Probe("patients.csv", PATIENT_COLUMNS, given)
        read = _load_patients(probe, self.vocab, self.today)
        failed = {(p.row, p.column) for p in probe.problems}
        for c in columns:
            out: list[Any] = []
            ok: list[bool] = []
            for n in range(len(values[c])):
                patient = read.get(f"#{n}")
                value = getattr(patient, c) if patient else None
                good = patient is not None and (n + 2, c) not in failed and value is not None and _fits(value)
                if not good:
                    value = None  # not clean: its row declines its patient
                out.append(_text(value) if isinstance(value, Decimal) else value)
                ok.append(good)
            kind = pa.date32() if c.endswith("_date") else pa.string()
            self.register(
                f"_csvsql_p_{c}",
                pa.table({"text": pa.array(values[c], pa.string()), "value": pa.array(out, kind), "ok": pa.array(ok)}),
            )
        joins = " ".join(f'LEFT JOIN _csvsql_p_{c} m_{c} ON m_{c}.text = r."{c}"' for c in columns)
        clean = " AND ".join(f"(r.\"{c}\" = '' OR coalesce(m_{c}.ok, false))" for c in columns)
        picks = ", ".join(
            f"CAST(m_{c}.value AS {NUMBER}) AS {c}" if c in ("weight_kg", "height_cm") else f"m_{c}.value AS {c}"
            for c in columns
        )
        return self.fill(
            "rec_patient",
            "patients.csv",
            0,
            rows,
            f"SELECT r.patient_id AS patient, r.number AS row, r.unsure, {picks}, {clean} AS ok FROM {rows} r {joins}",
        )

    # -- observations.csv ---------------------------------------------------------------

    def observations(self, rows: str) -> str:
        keys = ("item", "loinc", "value", "unit", "uln", "lln")
        tuples, patients, failed = self.probe(
            "observations.csv",
            OBSERVATION_COLUMNS,
            keys,
            rows,
            {"date": _SOME_DATE},
            lambda r, p: _load_observations(r, p, self.vocab),
        )
        found = {o.source.row: o for o in patients["#"].observations}
        out: dict[str, list[Any]] = {
            k: [] for k in (*keys, "o_item", "num", "cat", "uln_v", "lln_v", "assumption", "ok")
        }
        for n, values in enumerate(tuples):
            o = found.get(n + 2)
            if o is not None and (n + 2 in failed or not _fits(o.value, o.uln, o.lln)):
                o = None  # not clean: its row declines its patient
            for k, v in zip(keys, values, strict=True):
                out[k].append(v)
            num = o.value if o is not None and isinstance(o.value, Decimal) else None
            out["o_item"].append(o.item if o else None)
            out["num"].append(_text(num))
            out["cat"].append(o.value if o is not None and isinstance(o.value, str) else None)
            out["uln_v"].append(_text(o.uln) if o else None)
            out["lln_v"].append(_text(o.lln) if o else None)
            out["assumption"].append(o.factor_assumption if o else None)
            out["ok"].append(o is not None)
        self.typed_map("_csvsql_o_map", out, ("num", "uln_v", "lln_v"))
        on = " AND ".join(f'm."{k}" = r."{k}"' for k in keys)
        return self.fill(
            "rec_observation",
            "observations.csv",
            1,
            rows,
            f"""SELECT r.patient_id AS patient, r.number AS row, r.unsure, m.o_item AS item,
                       m.num, m.cat, d.day AS date,
                       m.uln_v AS uln, m.lln_v AS lln,
                       m.assumption AS factor_assumption,
                       coalesce(m.ok, false) AND d.day IS NOT NULL AND NOT r.unsure AS ok
                FROM {rows} r LEFT JOIN _csvsql_o_map m ON {on}
                LEFT JOIN _csvsql_dates d ON d.text = r."date" """,
        )

    # -- events.csv ---------------------------------------------------------------------

    def events(self, rows: str) -> str:
        keys = ("kind", "name", "code", "dose", "dose_unit", "frequency")
        tuples, patients, failed = self.probe(
            "events.csv",
            EVENT_COLUMNS,
            keys,
            rows,
            {"start_date": _SOME_DATE},
            lambda r, p: _load_events(r, p, self.vocab),
        )
        found = {e.source.row: e for e in patients["#"].events}
        names = (*keys, "e_kind", "e_name", "agent", "e_code", "dose_v", "e_dose_unit", "e_frequency", "ok")
        out: dict[str, list[Any]] = {k: [] for k in names}
        for n, values in enumerate(tuples):
            e = found.get(n + 2)
            if e is not None and (n + 2 in failed or not _fits(e.dose)):
                e = None  # not clean: its row declines its patient
            for k, v in zip(keys, values, strict=True):
                out[k].append(v)
            out["e_kind"].append(e.kind if e else None)
            out["e_name"].append(e.name if e else None)
            out["agent"].append(e.agent if e else None)
            out["e_code"].append(e.code if e else None)
            out["dose_v"].append(_text(e.dose) if e else None)
            out["e_dose_unit"].append(e.dose_unit if e else None)
            out["e_frequency"].append(e.frequency if e else None)
            out["ok"].append(e is not None)
        self.typed_map("_csvsql_e_map", out, ("dose_v",))
        on = " AND ".join(f'm."{k}" = r."{k}"' for k in keys)
        return self.fill(
            "rec_event",
            "events.csv",
            2,
            rows,
            f"""SELECT r.patient_id AS patient, r.number AS row, r.unsure, m.e_kind AS kind, m.e_name AS name, m.agent,
                       m.e_code AS code, s.day AS start_date, e.day AS end_date, m.dose_v AS dose,
                       m.e_dose_unit AS dose_unit, m.e_frequency AS frequency,
                       coalesce(m.ok, false) AND s.day IS NOT NULL
                       AND (r.end_date = '' OR (e.day IS NOT NULL AND e.day >= s.day)) AND NOT r.unsure AS ok
                FROM {rows} r LEFT JOIN _csvsql_e_map m ON {on}
                LEFT JOIN _csvsql_dates s ON s.text = r.start_date
                LEFT JOIN _csvsql_dates e ON e.text = r.end_date""",
        )

    # -- attestations.csv ---------------------------------------------------------------

    def attestations(self, rows: str) -> str:
        tuples, patients, failed = self._attestation_probe(rows)
        found = {a.source.row: a for a in patients["#"].attestations}
        out: dict[str, list[Any]] = {k: [] for k in ("item", "value", "dated", "a_item", "a_value", "ok")}
        for n, (item, value, dated) in enumerate(tuples):
            a = found.get(n + 2)
            out["item"].append(item)
            out["value"].append(value)
            out["dated"].append(dated)
            out["a_item"].append(a.item if a else None)
            out["a_value"].append(a.value if a else None)
            out["ok"].append(a is not None and n + 2 not in failed)
        types = {"dated": pa.bool_(), "ok": pa.bool_()}
        self.register("_csvsql_a_map", pa.table({k: pa.array(v, types.get(k, pa.string())) for k, v in out.items()}))
        return self.fill(
            "rec_attestation",
            "attestations.csv",
            3,
            rows,
            f"""SELECT r.patient_id AS patient, r.number AS row, r.unsure, m.a_item AS item, m.a_value AS value,
                       d.day AS date, r."by" AS "by",
                       coalesce(m.ok, false) AND (r.date = '' OR d.day IS NOT NULL) AND NOT r.unsure AS ok
                FROM {rows} r LEFT JOIN _csvsql_a_map m
                  ON m.item = r.item AND m.value = r.value AND m.dated = (r.date <> '')
                LEFT JOIN _csvsql_dates d ON d.text = r.date""",
        )

    def _attestation_probe(self, rows: str) -> tuple[list[tuple[Any, ...]], dict[str, Patient], set[int]]:
        tuples = self.distinct(f"SELECT DISTINCT item, value, date <> '' FROM {rows}")
        given = []
        for item, value, dated in tuples:
            row = dict.fromkeys(ATTESTATION_COLUMNS, "")
            row.update(patient_id="#", item=item, value=value, date=_SOME_DATE if dated else "")
            given.append(row)
        probe = _Probe("attestations.csv", ATTESTATION_COLUMNS, given)
        patients = {"#": Patient("#")}
        _load_attestations(probe, patients, self.vocab)
        return tuples, patients, probe.failed()

    # -- the tables ---------------------------------------------------------------------

    def fill(self, table: str, file: str, order: int, rows: str, joined: str) -> str:
        """Insert the clean rows of `joined` (the record table's columns, `unsure` and `ok`)
        into `table`; return a SELECT of the rows that were not (patient, number, file_order,
        why), or "" if every row was."""
        columns = ", ".join(f'"{c}"' for c, _ in RECORD_TABLES[table])
        (inserted,) = self.run(f"INSERT INTO {table} SELECT {columns} FROM ({joined}) WHERE ok")[0]
        (total,) = self.run(f"SELECT count(*) FROM {rows}")[0]
        if inserted == total:
            return ""
        return (
            f"SELECT r.patient_id AS patient, r.number, {order} AS file_order, "
            f"'{file} row ' || r.number || CASE WHEN r.unsure THEN '{UNSURE}' ELSE '' END AS why "
            f"FROM {rows} r WHERE NOT EXISTS "
            f"(SELECT 1 FROM {table} t WHERE t.patient = r.patient_id AND t.row = r.number)"
        )
