"""Load a patient data set (the CSV file set of DESIGN.md) into typed, normalised records.

A malformed row is rejected with file, row and column and the reason; the rest of that
patient, and every other patient, still loads, and `Dataset.problems` lists every rejection.
Values are read as text and kept exact (Decimal), units are normalised to each item's
canonical unit, and no patient data is ever written to a log.
"""

from __future__ import annotations

import codecs
import csv
import difflib
import io
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal, InvalidOperation
from operator import itemgetter
from pathlib import Path

from kb.catalogue.derived import DateRangeError, check_date
from kb.catalogue.vocabulary import AttestationItem, Item, Vocabulary, load_vocabulary
from kb.errors import KbError, Problem, UnknownPatientError
from kb.paths import PACKAGE_DIR
from kb.records.units import UnitError, convert, exact, ucum

__all__ = [
    "CELL_LIMIT",
    "DEMO_DATASET",
    "STORIES_ALONE",
    "WEIGHT_RANGE_KG",
    "Attestation",
    "Dataset",
    "Event",
    "Observation",
    "Patient",
    "Source",
    "Unreadable",
    "check_encoding",
    "decode_text",
    "load_dataset",
    "load_uploaded",
]

DEMO_DATASET = PACKAGE_DIR / "facts" / "demo"
#: The body weights patients.csv accepts (kg): the weights a criterion's formula may meet
#: (the protocol review scans them for clearance bounds only a heavy patient can reach).
WEIGHT_RANGE_KG = (1, 400)

#: stories.csv holds only the patients' stories, keyed by patient_id: read without
#: patients.csv (as a wide table) it made one patient without any data per story
STORIES_ALONE = (
    "stories.csv needs patients.csv beside it: it holds only the patients' stories, to go with "
    "patients.csv, observations.csv, events.csv and attestations.csv"
)

PATIENT_COLUMNS = (
    "patient_id",
    "sex",
    "birth_date",
    "weight_kg",
    "height_cm",
    "screening_date",
    "enrolment_date",
    "apheresis_date",
)
OBSERVATION_COLUMNS = ("patient_id", "item", "value", "unit", "date", "uln", "lln", "loinc", "source")
EVENT_COLUMNS = (
    "patient_id",
    "kind",
    "name",
    "code",
    "start_date",
    "end_date",
    "dose",
    "dose_unit",
    "frequency",
    "note",
)
ATTESTATION_COLUMNS = ("patient_id", "item", "value", "date", "by")
#: Columns without which no row of the file can be read.
ESSENTIAL = {
    "patients.csv": ("patient_id",),
    "observations.csv": ("patient_id", "value", "date"),
    "events.csv": ("patient_id", "kind", "start_date"),
    "attestations.csv": ("patient_id", "item", "value"),
}
#: Event kinds whose names must be found in the agent vocabulary to be understood.
AGENT_KINDS = frozenset({"medication", "vaccination", "transfusion", "cell_therapy"})
#: Event kinds named from the condition vocabulary (a diagnosis also by its code). For these
#: strict kinds a record understood neither by name nor by code leaves the criteria that
#: read its history undecided; a malignancy counts whatever its name (GE8), and infections
#: are the investigator's judgement (GE2).
CONDITION_KINDS = frozenset({"diagnosis", "cardiac_event", "thrombosis", "malignancy", "infection", "procedure"})
STRICT_CONDITION_KINDS = frozenset({"diagnosis", "procedure", "cardiac_event", "thrombosis"})
#: The longest cell read (the csv module's own default limit). The parser itself accepts
#: longer ones (a process-wide setting, raised once here), so that one over-long cell
#: rejects its row, located with its column, instead of stopping the whole file.
CELL_LIMIT = 131_072
csv.field_size_limit(max(csv.field_size_limit(), 2**31 - 1))


@dataclass(frozen=True)
class Source:
    """Where a fact came from: shown in every trace that uses it."""

    file: str
    row: int

    def __str__(self) -> str:
        return self.file if self.row == 0 else f"{self.file} row {self.row}"  # row 0: not from a file


@dataclass(frozen=True)
class Observation:
    item: str
    value: Decimal | str  # Decimal in the item's canonical unit, or a qualitative value
    date: date
    uln: Decimal | None
    lln: Decimal | None
    original: str  # value and unit as written in the file
    source: Source
    #: set when the value is still in an alternate unit whose factor is an assumption
    #: (HBV DNA in IU/mL): the id of that assumption
    factor_assumption: str = ""


@dataclass(frozen=True)
class Event:
    kind: str
    name: str  # as written
    agent: str | None  # the vocabulary agent or condition it names, if recognised
    code: str
    start: date
    end: date | None  # None: ongoing (or a single day for point events)
    source: Source

    dose: Decimal | None = None
    dose_unit: str = ""
    frequency: str = ""


@dataclass(frozen=True)
class Unreadable:
    """A row of a known patient that could not be read. It is not absent: the history (or the
    result, or the attestation) it belongs to can never count as complete because of it."""

    file: str  # observations.csv | events.csv | attestations.csv
    what: str  # the event kind, item or attestation item it concerns ("" if that could not be read)
    when: date | None  # its date, if that could be read
    source: Source
    reason: str


@dataclass(frozen=True)
class Attestation:
    item: str
    value: str
    date: date | None
    by: str
    source: Source


@dataclass
class Patient:
    id: str
    sex: str | None = None
    birth_date: date | None = None
    weight_kg: Decimal | None = None
    height_cm: Decimal | None = None
    screening_date: date | None = None
    enrolment_date: date | None = None
    apheresis_date: date | None = None
    source: Source | None = None
    observations: list[Observation] = field(default_factory=list)
    events: list[Event] = field(default_factory=list)
    attestations: list[Attestation] = field(default_factory=list)
    unreadable: list[Unreadable] = field(default_factory=list)


@dataclass
class Dataset:
    name: str
    path: str
    patients: dict[str, Patient]
    problems: list[Problem]
    stories: dict[str, str] = field(default_factory=dict)

    @property
    def not_loaded(self) -> dict[str, str]:
        """Patients named in the input none of whose rows could be used, with the first reason:
        a screening reports them `not_evaluated`, so that it accounts for every input patient."""
        out: dict[str, str] = {}
        for problem in self.problems:
            pid = problem.patient_id
            if pid and pid not in self.patients and pid not in out:
                out[pid] = str(problem)
        return out

    @property
    def file_problems(self) -> list[Problem]:
        """The problems of no one patient's row (a file set aside, a missing column, a row
        with no patient id): they may concern every patient, so every answer shows them."""
        return [p for p in self.problems if p.patient_id is None]

    def problems_for(self, patient_id: str) -> list[Problem]:
        """What an answer about one patient shows: that patient's rejected rows, then the
        problems that may concern everyone."""
        return [p for p in self.problems if p.patient_id == patient_id] + self.file_problems

    def problem_lists(self, patient_id: str) -> dict[str, list[str]]:
        """The JSON keys of an answer about one patient: `rejected_rows` (that patient's rows)
        and `file_problems` (those of no one patient's row, which may concern them)."""
        own = [str(p) for p in self.problems if p.patient_id == patient_id]
        return {"rejected_rows": own, "file_problems": [str(p) for p in self.file_problems]}

    def patient(self, patient_id: str) -> Patient:
        """The patient with this id, or an error that suggests the nearest ids."""
        found = self.patients.get(patient_id.strip())
        if found is not None:
            return found
        raise UnknownPatientError(f"no patient {patient_id}{_suggestion(patient_id, list(self.patients))}")


def _suggestion(wanted: str, ids: list[str]) -> str:
    digits = re.sub(r"\D", "", wanted)
    if digits:
        same = [i for i in ids if re.sub(r"\D", "", i).lstrip("0") == digits.lstrip("0")]
        if len(same) == 1:
            return f"; did you mean {same[0]}?"
    close = difflib.get_close_matches(wanted.strip().upper(), ids, n=3, cutoff=0.5)
    return f"; did you mean {' or '.join(close)}?" if close else ""


def check_encoding(encoding: str | None) -> str | None:
    """The codec name of a declared encoding (None: UTF-8, with or without BOM), or a clear
    error for a name Python does not know."""
    if not encoding or not encoding.strip():
        return None
    try:
        return codecs.lookup(encoding.strip()).name
    except LookupError:
        raise KbError(f"unknown encoding '{encoding}' (e.g. utf-8, gb18030, cp1252, latin-1)") from None


def decode_text(content: bytes, name: str, encoding: str | None = None) -> str:
    """The whole text of a file, decoded before any row is read, so that a file is read
    entirely or not at all: a bad byte after row 500 must not leave rows 2-499 looking
    complete. UTF-8 unless another encoding is declared; leading byte-order marks (one, or
    the doubled one some tools write) are dropped. A byte the encoding cannot read rejects
    the file with one `Problem` at its line and character position."""
    codec = check_encoding(encoding) or "utf-8"
    try:
        text = content.decode(codec)
    except UnicodeDecodeError as exc:
        before = content[: exc.start].decode(codec, errors="replace").lstrip("\ufeff")
        line = before.count("\n") + 1
        column = len(before) - (before.rfind("\n") + 1) + 1
        byte = content[exc.start : exc.start + 1].hex()
        what = f"{encoding} text" if encoding else "UTF-8 text"
        problem = Problem(
            name,
            line,
            column,
            f"the file is not {what}: byte 0x{byte} cannot be read, so no row of it is read",
            "save it as CSV UTF-8, or declare its encoding: kb --encoding, or the app's Encoding choice",
        )
        raise KbError(f"{name} could not be read", [problem]) from None
    return text.lstrip("\ufeff")


class _Reader:
    """Reads one CSV file, collecting problems instead of raising.

    A file is read whole or set aside whole (`rejected`): the loader then forgets its rows and
    marks every patient's records from it as unread, never as absent."""

    def __init__(
        self,
        folder: Path,
        name: str,
        columns: tuple[str, ...],
        problems: list[Problem],
        uploaded: Mapping[str, bytes] | None = None,
        encoding: str | None = None,
    ):
        self.name, self.path, self.columns, self.problems = name, folder / name, columns, problems
        self.uploaded = uploaded  # files held in memory (an upload): never written to disk
        self.encoding = encoding
        self.missing: set[str] = set()
        self.current_patient: str | None = None
        #: the problem that set the whole file aside (unreadable, no essential column, not CSV)
        self.rejected: Problem | None = None
        #: rows without a patient id (row number, date if readable, what they concern if known):
        #: they may be any patient's
        self.anonymous: list[tuple[int, date | None, str]] = []

    def problem(self, row: int | None, column: int | str | None, message: str, hint: str = "") -> None:
        self.problems.append(Problem(self.name, row, column, message, hint, self.current_patient))

    def reject(self, row: int | None, column: int | str | None, message: str, hint: str) -> None:
        self.current_patient = None  # a problem of the file, not of one patient's row
        self.problem(row, column, message, hint)
        self.rejected = self.problems[-1]

    def _text(self) -> str | None:
        if self.uploaded is not None:
            content = self.uploaded.get(self.name)
        else:
            content = self.path.read_bytes() if self.path.exists() else None
        if content is None:
            return None
        try:
            return decode_text(content, self.name, self.encoding)
        except KbError as exc:
            self.problems.extend(exc.problems)
            self.rejected = exc.problems[-1]
            return None

    def rows(self) -> Iterator[tuple[int, dict[str, str]]]:
        """Each non-blank row (its number as a spreadsheet shows it, blank lines not counted)
        as column → stripped text, the expected columns first ("" where absent), then the
        file's others. Read as `csv.DictReader` reads it (a repeated column keeps its last
        cell; a CSV error is reported at the line DictReader would name), without building
        its dict and then another one for every row: this loop is most of a load's time."""
        text = self._text()
        if text is None:
            return
        # strict: an unbalanced quote raises instead of swallowing every row after it into one cell
        reader = csv.reader(io.StringIO(text, newline=""), strict=True)
        line_num = 0  # as csv.DictReader counts it: set by the first read of each row it returns
        try:
            first = next(reader, None)
            line_num = reader.line_num
            header = [h.strip() for h in (first or [])]
            self.missing = {c for c in self.columns if c not in header}
            for column in sorted(self.missing, key=self.columns.index):
                if column in ESSENTIAL.get(self.name, ()):
                    self.reject(1, column, f"missing column '{column}'", "no row of the file can be read without it")
                else:
                    self.problem(1, column, f"missing column '{column}'", "read as empty")
            if self.rejected is not None:
                return
            last = {name: n + 1 for n, name in enumerate(header)}  # a repeated column: its last cell
            keys = tuple(dict.fromkeys((*self.columns, *header)))
            # cells are read with an empty one in front (position 0): an absent column's value
            pick = itemgetter(*(last.get(k, 0) for k in keys), 0)  # (the 0: a tuple even for one key)
            own = sorted(last.values())  # the file's columns, once each
            width = len(header)
            plain = own == list(range(1, width + 1))  # no repeated column
            pid = last.get("patient_id", 0)
            number, skipping = 1, False
            for record in reader:
                if not skipping:
                    line_num = reader.line_num
                if record == []:  # csv.DictReader skips it without counting it
                    skipping = True
                    continue
                skipping = False
                number += 1
                cells = ["", *map(str.strip, record)]
                if len(cells) <= width:
                    cells += [""] * (width + 1 - len(cells))
                if not (any(cells[1 : width + 1]) if plain else any(cells[n] for n in own)):
                    continue
                self.current_patient = cells[pid] or None
                yield number, dict(zip(keys, pick(cells)[:-1], strict=True))
        except csv.Error as exc:  # e.g. a cell over the csv module's size limit
            self.reject(line_num, None, f"the file cannot be read as CSV: {exc}", "no row of it is read")


def _date(text: str) -> date:
    try:
        when = date.fromisoformat(text)
    except ValueError:
        raise ValueError(f"'{text}' is not a date (use YYYY-MM-DD)") from None
    try:  # a date near year 1 or 9999 would leave the calendar in a window's arithmetic
        return check_date(when)
    except DateRangeError as exc:
        raise ValueError(exc.args[0]) from None


def _number(text: str) -> Decimal:
    shown = text if len(text) <= 40 else f"{text[:20]}…({len(text):,} characters)"
    try:
        value = Decimal(text.replace(",", "."))
    except InvalidOperation:
        raise ValueError(f"'{shown}' is not a number") from None
    if not value.is_finite():
        raise ValueError(f"'{shown}' is not a number")
    if value and not -20 <= value.adjusted() <= 20:  # 1e-999999999 would underflow, 1e999999 overflow
        raise ValueError(f"'{shown}' is too large or too small for a measurement (between 1e-20 and 1e20, or 0)")
    return value


def load_dataset(
    folder: Path | str = DEMO_DATASET,
    vocabulary: Vocabulary | None = None,
    today: date | None = None,
    encoding: str | None = None,
) -> Dataset:
    """Load the file set in `folder` (UTF-8 unless `encoding` is declared). Raises if there
    is no patients.csv at all, or if it cannot be read (no patient could be)."""
    folder = Path(folder)
    if not (folder / "patients.csv").exists():
        raise KbError(
            f"{folder}: no patients.csv here (a data set is a folder with patients.csv, "
            "observations.csv, events.csv and attestations.csv)"
        )
    stories, problems = (
        _stories((folder / "stories.csv").read_bytes(), encoding) if (folder / "stories.csv").exists() else ({}, [])
    )
    dataset = _load(folder, folder.name, None, vocabulary, today, stories, encoding)
    dataset.problems[:0] = problems
    return dataset


def _stories(content: bytes, encoding: str | None) -> tuple[dict[str, str], list[Problem]]:
    """The stories of stories.csv by patient id; shown only, so an unreadable file costs
    the stories alone, with a problem that says so."""
    try:
        text = decode_text(content, "stories.csv", encoding)
        return {r["patient_id"]: r["story"] for r in csv.DictReader(io.StringIO(text)) if r.get("patient_id")}, []
    except (KbError, KeyError, csv.Error):
        return {}, [Problem("stories.csv", None, None, "the stories could not be read", "they are not shown")]


def load_uploaded(
    files: Mapping[str, bytes],
    vocabulary: Vocabulary | None = None,
    today: date | None = None,
    name: str = "upload",
    encoding: str | None = None,
) -> Dataset:
    """A data set from files held in memory (an upload, an import), by file name; nothing
    touches the disk."""
    if "patients.csv" not in files:
        if "stories.csv" in files:
            raise KbError(STORIES_ALONE)
        raise KbError(
            f"no patients.csv among {', '.join(sorted(files)) or 'the files'} (upload patients.csv, "
            "observations.csv, events.csv and attestations.csv)"
        )
    stories, problems = _stories(files["stories.csv"], encoding) if "stories.csv" in files else ({}, [])
    dataset = _load(Path(name), name, files, vocabulary, today, stories, encoding)
    dataset.problems[:0] = problems
    return dataset


def _load(
    folder: Path,
    name: str,
    uploaded: Mapping[str, bytes] | None,
    vocabulary: Vocabulary | None,
    today: date | None,
    stories: dict[str, str],
    encoding: str | None = None,
) -> Dataset:
    vocab = vocabulary or load_vocabulary()
    check_encoding(encoding)
    problems: list[Problem] = []

    def reader(file: str, columns: tuple[str, ...]) -> _Reader:
        return _Reader(folder, file, columns, problems, uploaded, encoding)

    first = reader("patients.csv", PATIENT_COLUMNS)
    patients = _load_patients(first, vocab, today or date.today())
    if first.rejected is not None:  # no patient list to answer about: say so, located
        raise KbError(f"{name}: patients.csv could not be read, so no patient was", [first.rejected])
    for file, columns, load in (
        ("observations.csv", OBSERVATION_COLUMNS, _load_observations),
        ("events.csv", EVENT_COLUMNS, _load_events),
        ("attestations.csv", ATTESTATION_COLUMNS, _load_attestations),
    ):
        current = reader(file, columns)
        load(current, patients, vocab)
        _unread(current, patients)
    return Dataset(name, str(folder), patients, problems, stories)


def _unread(reader: _Reader, patients: dict[str, Patient]) -> None:
    """What a file's reader could not read, made every patient's concern: a file set aside
    leaves none of its rows (a truncated file would look complete) and an unreadable record
    for every patient; a row with no patient id may be anyone's."""
    file = reader.name
    if reader.rejected is not None:
        problem = reader.rejected
        where = f"line {problem.row}" if problem.row is not None else ""
        if isinstance(problem.column, int):
            where += f", character {problem.column}"
        elif problem.column:
            where += f", column {problem.column}"
        reason = f"{where}: {problem.message}" if where else problem.message
        for patient in patients.values():
            if file == "observations.csv":
                patient.observations = []
            elif file == "events.csv":
                patient.events = []
            else:
                patient.attestations = []
            kept = [u for u in patient.unreadable if u.file != file]
            patient.unreadable = [*kept, Unreadable(file, "", None, Source(file, 0), reason)]
        return
    for number, when, what in reader.anonymous:
        reason = "column patient_id: empty patient_id (the row may be any patient's)"
        for patient in patients.values():
            patient.unreadable.append(Unreadable(file, what, when, Source(file, number), reason))


class _Rejected(Exception):
    """The row cannot be used; the problem has been reported."""


def _row_date(reader: _Reader, number: int, row: dict[str, str], column: str) -> date | None:
    """An optional date column of a row; a malformed date rejects the whole row."""
    text = row.get(column, "")
    if not text:
        return None
    try:
        return _date(text)
    except ValueError as exc:
        reader.problem(number, column, str(exc), "the row is rejected")
        raise _Rejected from None


def _field(reader: _Reader, number: int, row: dict[str, str], column: str, parse: Callable[[str], object]) -> object:
    """Parse one optional field; a bad value is reported and read as empty."""
    text = row.get(column, "")
    if not text:
        return None
    try:
        return parse(text)
    except ValueError as exc:
        reader.problem(number, column, str(exc), "the field is read as empty")
        return None


def _too_long(
    reader: _Reader, number: int, row: dict[str, str], patients: dict[str, Patient], date_column: str, what: str
) -> bool:
    """Whether a cell of the row is longer than CELL_LIMIT: if so the row is rejected, and a
    known patient's record of it kept as unreadable (its history can then never be complete)."""
    if max(map(len, row.values())) <= CELL_LIMIT:  # the common case, without a loop in Python
        return False
    long = [column for column, text in row.items() if len(text) > CELL_LIMIT]
    pid = "" if "patient_id" in long else row.get("patient_id", "")
    size = len(row[long[0]])
    message = f"the cell is {size:,} characters long, more than the {CELL_LIMIT:,} a cell may hold"
    reader.problems.append(Problem(reader.name, number, long[0], message, "the row is rejected", pid or None))
    if "patient_id" in long and reader.name != "patients.csv":  # anyone's row: unread for every patient
        reader.anonymous.append((number, None, what))
    elif pid in patients:
        patients[pid].unreadable.append(_unreadable(reader, number, row, date_column, what))
    return True


def _load_patients(reader: _Reader, vocab: Vocabulary, today: date) -> dict[str, Patient]:
    patients: dict[str, Patient] = {}
    for number, row in reader.rows():
        if _too_long(reader, number, row, patients, "", ""):
            continue
        pid = row["patient_id"]
        if not pid:
            reader.problem(number, "patient_id", "empty patient_id", "the row is rejected")
            continue
        if pid in patients:
            first = patients[pid].source
            reader.problem(
                number,
                "patient_id",
                f"duplicate patient row for {pid}",
                f"the first, {first}, is kept" if first else "",
            )
            continue
        patient = Patient(pid, source=Source(reader.name, number))

        def sex(text: str) -> str:
            code = vocab.sex_codes.get(text.casefold())
            if code is None:
                raise ValueError(f"'{text}' is not a sex code (use female or male)")
            return code

        def birth(text: str) -> date:
            born = _date(text)
            age = (today - born).days / 365.25
            if born > today or age > 120:
                raise ValueError(f"impossible birth date {text} (age {int(age)})")
            return born

        def bounded(low: int, high: int, what: str) -> Callable[[str], Decimal]:
            def parse(text: str) -> Decimal:
                value = _number(text)
                if not low <= value <= high:
                    raise ValueError(f"impossible {what} {text} (expected {low}-{high})")
                return exact(value)

            return parse

        patient.sex = _field(reader, number, row, "sex", sex)  # type: ignore[assignment]
        patient.birth_date = _field(reader, number, row, "birth_date", birth)  # type: ignore[assignment]
        patient.weight_kg = _field(reader, number, row, "weight_kg", bounded(*WEIGHT_RANGE_KG, "weight"))  # type: ignore[assignment]
        patient.height_cm = _field(reader, number, row, "height_cm", bounded(30, 260, "height"))  # type: ignore[assignment]
        for column in ("screening_date", "enrolment_date", "apheresis_date"):
            setattr(patient, column, _field(reader, number, row, column, _date))
        patients[pid] = patient
    return patients


def _owner(
    reader: _Reader,
    number: int,
    row: dict[str, str],
    patients: dict[str, Patient],
    what: str = "",
    date_column: str = "",
) -> Patient | None:
    """The patient a row belongs to, or None (the problem reported). A row with no patient id
    may be any patient's: it is kept as unreadable for all of them (`what` it concerns, if
    known, and its date), never dropped as if it were no one's."""
    pid = row["patient_id"]
    if not pid:
        reader.problem(number, "patient_id", "empty patient_id", "the row may be any patient's: it counts as unread")
        try:
            when = _date(row[date_column]) if date_column and row.get(date_column) else None
        except ValueError:
            when = None
        reader.anonymous.append((number, when, what))
        return None
    patient = patients.get(pid)
    if patient is None:
        hint = _suggestion(pid, list(patients)).lstrip("; ") or "add the patient to patients.csv"
        reader.problem(number, "patient_id", f"no patient '{pid}' in patients.csv", hint)
    return patient


def _load_observations(reader: _Reader, patients: dict[str, Patient], vocab: Vocabulary) -> None:
    for number, row in reader.rows():
        known = row["item"] or vocab.loinc_to_item.get(row["loinc"], "")
        what = known if known in vocab.items else ""
        if _too_long(reader, number, row, patients, "date", what):
            continue
        patient = _owner(reader, number, row, patients, what, "date")
        if patient is None:
            continue
        name = row["item"] or vocab.loinc_to_item.get(row["loinc"], "")
        if not name:
            column = "loinc" if row["loinc"] else "item"
            what = f"LOINC code {row['loinc']} is not mapped to an item" if row["loinc"] else "empty item"
            reader.problem(number, column, what, "give the item name")
            continue
        item = vocab.items.get(name)
        if item is None:
            close = difflib.get_close_matches(name, list(vocab.items), n=1)
            reader.problem(
                number,
                "item",
                f"unknown item '{name}'",
                f"did you mean '{close[0]}'?" if close else "see kb/facts/vocabulary/items.csv",
            )
            continue
        found = _observation(reader, number, row, item, vocab)
        if found is None:
            patient.unreadable.append(_unreadable(reader, number, row, "date", item.name))
        else:
            patient.observations.append(found)


def _observation(
    reader: _Reader, number: int, row: dict[str, str], item: Item, vocab: Vocabulary
) -> Observation | None:
    """One result row of a known item, or None (the problem reported) if it cannot be used."""
    try:
        when = _row_date(reader, number, row, "date")
    except _Rejected:
        return None
    if when is None:
        reader.problem(number, "date", "empty date", "a result without a date cannot be placed in a window")
        return None
    raw = row["value"]
    original = f"{raw} {row['unit']}".strip()
    pending = ""
    if item.alternate_unit and ucum(row["unit"], vocab) == item.alternate_unit[0]:
        pending = item.alternate_unit[1]  # converted when the assumption is known
    if item.quantitative:
        try:
            amount = _number(raw)
            value: Decimal | str = amount if pending else convert(amount, row["unit"], item, vocab)
        except ValueError as exc:
            column = "unit" if isinstance(exc, UnitError) else "value"
            reader.problem(number, column, f"{item.name}: {exc}", "the row is rejected")
            return None
        assert isinstance(value, Decimal)
        if pending:  # in an alternate unit (HBV DNA in IU/mL): its range is checked once converted
            why = f"{item.name} {original} cannot be negative" if amount < 0 else ""
        else:
            why = item.implausible(value, "" if value == amount else original)
        if why:
            reader.problem(number, "value", why, "the row is rejected")
            return None
    else:
        value = raw.casefold().replace(" ", "_")
        if value not in item.allowed_values:
            reader.problem(
                number,
                "value",
                f"'{raw}' is not an allowed value for {item.name}",
                f"use one of {', '.join(item.allowed_values)}",
            )
            return None
    limits: list[Decimal | None] = []
    for column in ("uln", "lln"):
        text = row.get(column, "")
        try:
            limit = convert(_number(text), row["unit"], item, vocab) if text else None
            if limit is not None and not pending:  # a limit no result could be compared with
                result = value if isinstance(value, Decimal) else None
                reason = item.implausible_uln(limit, result) if column == "uln" else item.implausible(limit)
                if reason:
                    raise ValueError(reason)
        except ValueError as exc:
            reader.problem(number, column, f"{item.name} {column}: {exc}", "read as empty")
            limit = None
        limits.append(limit)
    return Observation(item.name, value, when, limits[0], limits[1], original, Source(reader.name, number), pending)


def _load_events(reader: _Reader, patients: dict[str, Patient], vocab: Vocabulary) -> None:
    for number, row in reader.rows():
        what = row["kind"] if row["kind"] in vocab.event_kinds else ""
        if _too_long(reader, number, row, patients, "start_date", what):
            continue
        patient = _owner(reader, number, row, patients, what, "start_date")
        if patient is None:
            continue
        found = _event(reader, number, row, vocab)
        if found is None:
            kind = row["kind"] if row["kind"] in vocab.event_kinds else ""
            patient.unreadable.append(_unreadable(reader, number, row, "start_date", kind))
        else:
            patient.events.append(found)


def _event(reader: _Reader, number: int, row: dict[str, str], vocab: Vocabulary) -> Event | None:
    """One event row, or None (the problem reported) if it cannot be used."""
    kind = row["kind"]
    if kind not in vocab.event_kinds:
        close = difflib.get_close_matches(kind, list(vocab.event_kinds), n=1)
        reader.problem(
            number,
            "kind",
            f"unknown event kind '{kind}'",
            f"did you mean '{close[0]}'?" if close else ", ".join(vocab.event_kinds),
        )
        return None
    if not row["name"] and not row["code"]:
        reader.problem(number, "name", "neither name nor code given", "the row is rejected")
        return None
    try:
        start = _row_date(reader, number, row, "start_date")
        end = _row_date(reader, number, row, "end_date")
    except _Rejected:
        return None
    if start is None:
        reader.problem(number, "start_date", "empty start_date", "the row is rejected")
        return None
    if end is not None and end < start:
        reader.problem(number, "end_date", f"end_date {end} is before start_date {start}", "the row is rejected")
        return None
    known: str | None = None
    if row["name"] and kind in AGENT_KINDS:
        agent = vocab.agent(row["name"])
        known = agent.name if agent else None
    elif row["name"] and kind in CONDITION_KINDS:
        condition = vocab.condition(row["name"])
        known = condition.name if condition else None
    try:
        dose = _number(row["dose"]) if row.get("dose") else None
    except ValueError as exc:
        reader.problem(number, "dose", str(exc), "the row is rejected")
        return None
    if dose is not None and dose < 0:
        reader.problem(number, "dose", f"impossible dose {row['dose']}", "the row is rejected")
        return None
    return Event(
        kind,
        row["name"],
        known,
        row["code"],
        start,
        end,
        Source(reader.name, number),
        dose,
        row.get("dose_unit", ""),
        row.get("frequency", ""),
    )


def _unreadable(reader: _Reader, number: int, row: dict[str, str], date_column: str, what: str) -> Unreadable:
    """The record of a row just rejected (its problem is the reader's last): what it was about
    and its date, as far as they could be read."""
    try:
        when = _date(row.get(date_column, "")) if row.get(date_column) else None
    except ValueError:
        when = None
    problem = reader.problems[-1]
    where = f"column {problem.column}: " if problem.column else ""
    return Unreadable(reader.name, what, when, Source(reader.name, number), where + problem.message)


def _load_attestations(reader: _Reader, patients: dict[str, Patient], vocab: Vocabulary) -> None:
    for number, row in reader.rows():
        what = row["item"] if row["item"] in vocab.attestation_items else ""
        if _too_long(reader, number, row, patients, "date", what):
            continue
        patient = _owner(reader, number, row, patients, what, "date")
        if patient is None:
            continue
        spec = vocab.attestation_items.get(row["item"])
        if spec is None:
            close = difflib.get_close_matches(row["item"], list(vocab.attestation_items), n=1)
            reader.problem(
                number,
                "item",
                f"unknown attestation item '{row['item']}'",
                f"did you mean '{close[0]}'?" if close else "see attestation_items.csv",
            )
            continue
        found = _attestation(reader, number, row, spec)
        if found is None:
            patient.unreadable.append(_unreadable(reader, number, row, "date", spec.name))
        else:
            patient.attestations.append(found)


def _attestation(reader: _Reader, number: int, row: dict[str, str], spec: AttestationItem) -> Attestation | None:
    """One attestation row of a known item, or None (the problem reported) if it cannot be used."""
    value = row["value"].casefold()
    if value not in spec.values:
        reader.problem(
            number,
            "value",
            f"'{row['value']}' is not an allowed value for {spec.name}",
            f"use one of {', '.join(spec.values)}",
        )
        return None
    try:
        when = _row_date(reader, number, row, "date")
    except _Rejected:
        return None
    if when is None and spec.name.startswith("reviewed:"):
        reader.problem(
            number,
            "date",
            "a reviewed-history declaration needs its date",
            "a review covers records up to its date",
        )
        return None
    return Attestation(spec.name, value, when, row.get("by", ""), Source(reader.name, number))
