"""Bad input, generated: the files, changes and questions careless or hostile users send.

Every case starts from something that loads cleanly (1-5 demo patients as the CSV file set,
a wide table, a FHIR bundle; a small OMOP database; a well-formed what-if; a question from
the chat's examples) and is then damaged the way real files are damaged: a byte of another
encoding, a doubled BOM, an unbalanced quote, a dropped column or file, a cell of 200 KB,
NaN, 1e400, a 5,000-digit number, a date at the end of the calendar, a formula, markup. A
case records what it damaged, so the checks in tests/test_input_fuzz.py can tell a row the
loader should have kept from one it may reject.

Cases are seeded (`FUZZ_SEED`, default 0 in fast and ci; deep picks one and prints it), so a
red case is reproduced by its seed and number alone.
"""

from __future__ import annotations

import csv
import io
import json
import os
import random
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from kb.records.patients import DEMO_DATASET
from tests.property_patients import PROFILE

__all__ = [
    "FILES",
    "HOSTILE",
    "SEED",
    "FileSet",
    "counts",
    "csv_file_set",
    "fhir_document",
    "hostile_change",
    "hostile_question",
    "records",
    "rng",
]

FILES = ("patients.csv", "observations.csv", "events.csv", "attestations.csv")
_seed_text = os.environ.get("FUZZ_SEED", "").strip()
SEED = int(_seed_text) if _seed_text else (random.SystemRandom().randrange(10**6) if PROFILE == "deep" else 0)

#: How many cases each suite tries, by profile: fast (make test), ci (make fuzz), deep (by hand).
_COUNTS = {
    "fast": {"csv": 40, "wide": 10, "fhir": 10, "omop": 3, "changes": 300, "whatifs": 6, "parsed": 2000,
             "answered": 24},
    "ci": {"csv": 3000, "wide": 400, "fhir": 400, "omop": 60, "changes": 8000, "whatifs": 200, "parsed": 20000,
           "answered": 600},
    "deep": {"csv": 8000, "wide": 1000, "fhir": 1000, "omop": 200, "changes": 20000, "whatifs": 1000,
             "parsed": 50000, "answered": 5000},
}  # fmt: skip


def counts(suite: str) -> int:
    return _COUNTS[PROFILE][suite]


def rng(suite: str, number: int) -> random.Random:
    """The generator of one case: its suite, number and the run's seed say it all."""
    return random.Random(f"{SEED}:{suite}:{number}")


#: Values a careless export or a hostile user puts in a cell.
HOSTILE = (
    "", " ", "NaN", "sNaN", "-nan", "Infinity", "-inf", "1e400", "1e-41", "-0", "0", "-5", "1e28", "9" * 5000,
    "0.000000000000000000000000000000001", "1,5", " 12 ", "12 mg", "null", "None", "N/A", "?", "<5", ">1000",
    "0001-01-01", "9999-12-31", "2026-02-30", "2026-13-01", "26/11/2026", "2026-11-24T10:00", "yesterday",
    "=HYPERLINK(\"http://x\",\"y\")", "+1+1", "@SUM(1)", "-2+3", "![b](http://127.0.0.1:9/x.png)",
    "<img src=x onerror=alert(1)>", "'; DROP TABLE patients; --", "{{7*7}}", "__import__('os')", "\x00", "\x1b[31m",
    "😀", "利妥昔单抗", "P001", "P001\nP002", "a,b", 'say "hi"', "x" * 200_000, "\u202e", "10*308/L",
)  # fmt: skip


def records(file: str) -> tuple[list[str], dict[str, list[list[str]]]]:
    """One demo file: its header, and its rows by patient."""
    with (DEMO_DATASET / file).open(encoding="utf-8", newline="") as fh:
        reader = csv.reader(fh)
        header = next(reader)
        by_patient: dict[str, list[list[str]]] = {}
        for row in reader:
            if row:
                by_patient.setdefault(row[0], []).append(row)
    return header, by_patient


_DEMO = {file: records(file) for file in FILES}
DEMO_IDS = tuple(_DEMO["patients.csv"][1])


@dataclass
class FileSet:
    """A CSV file set of a few demo patients, damaged; what was damaged, and how."""

    number: int
    patients: tuple[str, ...]
    headers: dict[str, list[str]]
    rows: dict[str, list[list[str]]]  # as written (row i is line i + 2 of the file)
    original: dict[str, list[list[str]]]  # before the cell changes, same positions
    steps: list[str] = field(default_factory=list)  # the damage, in words
    changed: set[tuple[str, int]] = field(default_factory=set)  # (file, row number) whose content changed
    lost: set[str] = field(default_factory=set)  # files whose rows may all be lost (a file-level damage)
    byte_edits: dict[str, list[tuple[str, Any]]] = field(default_factory=dict)  # after writing
    delimiter: dict[str, str] = field(default_factory=dict)
    line_end: dict[str, str] = field(default_factory=dict)

    def describe(self) -> str:
        return f"file set {self.number} (FUZZ_SEED={SEED}) of {', '.join(self.patients)}: " + "; ".join(self.steps)

    def files(
        self, without: dict[str, set[int]] | None = None, restore: dict[str, set[int]] | None = None
    ) -> dict[str, bytes]:
        """The files as bytes; `without` leaves out rows, `restore` puts rows back as they were
        (the two completions of a rejected row)."""
        out: dict[str, bytes] = {}
        for file, header in self.headers.items():
            buffer = io.StringIO()
            writer = csv.writer(
                buffer, delimiter=self.delimiter.get(file, ","), lineterminator=self.line_end.get(file, "\n")
            )
            writer.writerow(header)
            for i, row in enumerate(self.rows[file]):
                number = i + 2
                if without and number in without.get(file, set()):
                    continue
                if restore and number in restore.get(file, set()):
                    row = self.original[file][i]
                writer.writerow(row)
            data = buffer.getvalue().encode("utf-8")
            for kind, arg in self.byte_edits.get(file, []):
                if kind == "bom":
                    data = b"\xef\xbb\xbf\xef\xbb\xbf" + data
                elif kind == "byte":
                    line, byte = arg
                    lines = data.split(b"\n")
                    target = min(line, len(lines) - 1)
                    cut = len(lines[target]) // 2
                    lines[target] = lines[target][:cut] + byte + lines[target][cut:]
                    data = b"\n".join(lines)
                elif kind == "quote":  # a quote opening the second cell of the line
                    lines = data.split(b"\n")
                    target = min(arg, len(lines) - 1)
                    head, comma, tail = lines[target].partition(b",")
                    lines[target] = head + comma + b'"' + tail
                    data = b"\n".join(lines)
            out[file] = data
        return out

    def row_patient(self, file: str, number: int) -> str:
        return self.original[file][number - 2][0]


def csv_file_set(number: int) -> FileSet:
    r = rng("csv", number)
    chosen = tuple(r.sample(DEMO_IDS, r.randint(1, 5)))
    headers = {file: list(_DEMO[file][0]) for file in FILES}
    rows = {file: [list(row) for pid in chosen for row in _DEMO[file][1].get(pid, [])] for file in FILES}
    case = FileSet(number, chosen, headers, rows, {f: [list(row) for row in rs] for f, rs in rows.items()})
    for _ in range(r.choice((1, 1, 1, 2, 2, 3))):
        _damage(case, r)
    return case


def _damage(case: FileSet, r: random.Random) -> None:
    kind = r.choice(
        ("cell", "cell", "cell", "cell", "byte", "bom", "drop_column", "drop_file", "quote", "stranger", "long_cell",
         "delimiter", "crlf", "duplicate", "column_order")
    )  # fmt: skip
    files_with_rows = [f for f in FILES if case.rows.get(f)] or ["patients.csv"]
    file = r.choice(files_with_rows)
    if file not in case.headers:
        return
    rows = case.rows[file]
    if kind in ("cell", "long_cell", "quote") and rows:
        i = r.randrange(len(rows))
        column = r.randrange(len(case.headers[file]))
        value = "x" * 200_000 if kind == "long_cell" else r.choice(HOSTILE)
        if kind == "quote":  # an opening quote never closed swallows the lines after it
            case.byte_edits.setdefault(file, []).append(("quote", i + 1))
            case.lost.add(file)
            case.steps.append(f"{file} row {i + 2}: an unbalanced quote")
            return
        case.steps.append(f"{file} row {i + 2} column {case.headers[file][column]}: {value[:40]!r}")
        rows[i][column] = value
        case.changed.add((file, i + 2))
    elif kind == "byte" and rows:
        i = r.randrange(len(rows))
        byte = r.choice((b"\xe9", b"\xff", b"\x80", b"\xc3", b"\xed\xa0\x80"))
        case.byte_edits.setdefault(file, []).append(("byte", (i + 1, byte)))
        case.lost.add(file)
        case.steps.append(f"{file} row {i + 2}: the byte {byte!r} (not UTF-8)")
    elif kind == "bom":
        case.byte_edits.setdefault(file, []).append(("bom", None))
        case.steps.append(f"{file}: a doubled BOM")
    elif kind == "drop_column":
        column = r.randrange(len(case.headers[file]))
        name = case.headers[file].pop(column)
        for row in rows:
            row.pop(column)
        for row in case.original[file]:
            row.pop(column)
        case.steps.append(f"{file}: column {name} dropped")
        case.lost.add(file)  # an essential column: no row can be read; another: every row changed
        case.changed.update((file, i + 2) for i in range(len(rows)))
    elif kind == "drop_file" and file != "patients.csv":
        del case.headers[file]
        case.steps.append(f"{file}: the file is missing")
        case.lost.add(file)
    elif kind == "stranger":
        template = rows[0] if rows else [""] * len(case.headers[file])
        stranger = ["P9X9", *template[1:]]
        rows.append(stranger)
        case.original[file].append(list(stranger))
        case.changed.add((file, len(rows) + 1))
        case.steps.append(f"{file}: a row of a patient not in patients.csv")
    elif kind == "delimiter":
        case.delimiter[file] = ";"
        case.lost.add(file)
        case.steps.append(f"{file}: written with ';' as the separator")
    elif kind == "crlf":
        case.line_end[file] = "\r\n"
        case.steps.append(f"{file}: CRLF line ends")
    elif kind == "duplicate" and rows:
        i = r.randrange(len(rows))
        rows.append(list(rows[i]))
        case.original[file].append(list(case.original[file][i]))
        case.changed.add((file, len(rows) + 1))
        case.steps.append(f"{file}: row {i + 2} repeated at the end")
    elif kind == "column_order":
        order = list(range(len(case.headers[file])))
        r.shuffle(order)
        case.headers[file] = [case.headers[file][k] for k in order]
        case.rows[file] = [[row[k] for k in order] for row in rows]
        case.original[file] = [[row[k] for k in order] for row in case.original[file]]
        case.steps.append(f"{file}: columns in another order")


# -- FHIR ---------------------------------------------------------------------------------

_JSON_HOSTILE: tuple[Any, ...] = (
    5, -1, 0, 1e308, "x", "", None, True, [], {}, [1, 2], {"a": {"b": None}}, "9" * 5000, "NaN", "1e400",
    "0001-01-01", "9999-12-31T23:59:59Z", "=HYPERLINK(\"http://x\",\"y\")", "![b](http://127.0.0.1:9/x.png)",
    {"resourceType": "Patient"}, {"reference": 5}, {"reference": "Patient/"}, [{"system": None, "code": {}}],
)  # fmt: skip


def _paths(node: Any, here: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    yield here
    if isinstance(node, dict):
        for key, value in node.items():
            yield from _paths(value, (*here, key))
    elif isinstance(node, list):
        for k, value in enumerate(node):
            yield from _paths(value, (*here, k))


def _set(node: Any, path: tuple[Any, ...], value: Any) -> None:
    for step in path[:-1]:
        node = node[step]
    if isinstance(node, dict) and value is _DELETE:
        node.pop(path[-1], None)
    elif value is not _DELETE:
        node[path[-1]] = value


_DELETE = object()


def fhir_document(number: int, bundle: dict[str, Any]) -> tuple[bytes, list[str], set[int]]:
    """A bundle (already built from demo patients), damaged: its bytes, the damage in words,
    and the entries touched (-1: the whole document)."""
    r = rng("fhir", number)
    doc = json.loads(json.dumps(bundle))
    steps: list[str] = []
    touched: set[int] = set()
    raw: bytes | None = None
    for _ in range(r.choice((1, 1, 2, 3))):
        kind = r.choice(("replace", "replace", "replace", "delete", "deep", "huge", "bytes", "type", "truncate"))
        paths = [p for p in _paths(doc) if p]
        if kind in ("replace", "delete", "type") and paths:
            path = r.choice(paths)
            value = _DELETE if kind == "delete" else ("Basic" if kind == "type" else r.choice(_JSON_HOSTILE))
            if kind == "type":
                path = (
                    (*path[:2], "resource", "resourceType")
                    if len(path) >= 2 and path[0] == "entry"
                    else ("resourceType",)
                )
                if path[0] == "entry" and not isinstance(doc["entry"][path[1]], dict):
                    continue
            try:
                _set(doc, path, value)
            except (KeyError, IndexError, TypeError):
                continue
            touched.add(path[1] if len(path) > 1 and path[0] == "entry" and isinstance(path[1], int) else -1)
            steps.append(f"{'/'.join(map(str, path))} := {'(deleted)' if value is _DELETE else repr(value)[:40]}")
        elif kind == "deep":
            raw = b'{"resourceType": "Bundle", "entry": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"
            steps.append("nested 100,000 deep")
            touched.add(-1)
        elif kind == "huge":
            raw = (
                json.dumps(doc)
                .replace('"valueQuantity": {"value": ', '"valueQuantity": {"value": ' + "9" * 5000, 1)
                .encode()
            )
            steps.append("a 5,000-digit number")
            touched.add(-1)
        elif kind == "bytes":
            text = raw or json.dumps(doc, ensure_ascii=False).encode()
            cut = r.randrange(len(text))
            raw = text[:cut] + b"\xff\xfe" + text[cut:]
            steps.append(f"invalid UTF-8 at byte {cut}")
            touched.add(-1)
        elif kind == "truncate":
            text = raw or json.dumps(doc).encode()
            raw = text[: r.randrange(1, len(text))]
            steps.append("cut short")
            touched.add(-1)
    data = raw if raw is not None else json.dumps(doc).encode()
    return data, steps, touched


# -- what-if changes and questions -----------------------------------------------------------

_ITEMS = ("platelets", "hemoglobin", "creatinine", "weight_kg", "sex", "birth_date", "alt", "spo2", "egfr", "hbsag")
_CHANGE_FORMS = (
    "{item}={value}", "{item}={value}@{date}", "stop:{drug}@{date}", "stop:{drug}", "remove:{item}",
    "enrolment={date}", "apheresis={date}", "assume:{assumption}={value}", "{value}", "={value}", "{item}=",
)  # fmt: skip
_DRUGS = ("rituximab", "prednisone", "利妥昔单抗", "aspirin", "nothing", "")
_ASSUMPTIONS = ("month_length", "course_gap_days", "apl_timing", "ge4_4_scope", "nonsense")
_DATES = ("2026-11-24", "2026-10-01", "0001-01-01", "9999-12-31", "2026-02-30", "tomorrow", "")


def hostile_change(r: random.Random) -> str:
    form = r.choice(_CHANGE_FORMS)
    value = r.choice((*HOSTILE[:45], "80", "female", "2027-01-12", "30"))
    return form.format(
        item=r.choice(_ITEMS), value=value, date=r.choice(_DATES), drug=r.choice(_DRUGS),
        assumption=r.choice(_ASSUMPTIONS),
    )  # fmt: skip


_QUESTIONS = (
    "Is {p} eligible?", "Which criteria block {p}?", "What would make {p} eligible?", "Until when is {p} eligible?",
    "What if {p}'s platelets were {v}?", "what if {p} enrolled on {d}", "What data are missing for {p}?",
    "Explain criterion {c}", "why does {c} fail for {p}", "Review the protocol", "Which patients are eligible?",
    "what if {p} stopped {drug} on {d}", "is she eligible?", "{v}", "{p} {p} {p}", "why " * 3 + "{p}",
)  # fmt: skip
_CRITERIA = ("GE4.7", "GE4.3", "SLE-I4", "APS-I2", "GI6.3", "XX9.9", "ge4.7", "the steroid rule")


def hostile_question(r: random.Random, ids: tuple[str, ...]) -> tuple[str, str]:
    """A question, and the patient id it names ("" when it names none from the data set)."""
    named = r.choice((*ids[:40], "P999", "p001", "", "P001;DROP"))
    template = r.choice(_QUESTIONS)
    text = template.format(
        p=named, v=r.choice((*HOSTILE[:50], "80", "40")), d=r.choice(_DATES), c=r.choice(_CRITERIA),
        drug=r.choice(_DRUGS),
    )  # fmt: skip
    noise = r.random()
    if noise < 0.15:
        text = text + " " + r.choice(HOSTILE[:60])
    elif noise < 0.25:
        text = "".join(ch.upper() if r.random() < 0.3 else ch for ch in text)
    elif noise < 0.3:
        text = text * r.randint(2, 20)
    return text, named if "{p}" in template and named in ids else ""
