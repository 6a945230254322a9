"""Loading patient files: every malformed row is rejected with file, row and column, and
nothing else is lost."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest

from kb.catalogue.knowledge import KnowledgeBase
from kb.errors import KbError, UnknownPatientError
from kb.reasoning.evaluation import assess
from kb.records.patients import load_dataset
from tests.support import Rows, demo_files, set_value


def two_patients() -> dict[str, list[dict[str, str]]]:
    files = demo_files("P001")
    other = demo_files("P004")
    return {k: files[k] + other[k] for k in files}


def test_the_demo_data_set_loads_cleanly(demo: object) -> None:
    dataset = load_dataset()
    assert dataset.problems == []
    assert len(dataset.patients) >= 12
    p001 = dataset.patient("P001")
    assert p001.sex == "female" and p001.weight_kg == Decimal(60)
    platelets = [o for o in p001.observations if o.item == "platelets"]
    assert platelets[0].value == Decimal(50) and platelets[0].source.file == "observations.csv"
    assert all(dataset.stories.get(pid) for pid in dataset.patients)


def test_values_are_normalised_and_kept_exact(write_dataset: Callable[..., Path]) -> None:
    files = demo_files("P001")
    set_value(files["observations"], "hemoglobin", "9.5", unit="g/dL")
    set_value(files["observations"], "creatinine", "0.905", unit="mg/dL", uln="0.95")
    patient = load_dataset(write_dataset(**files)).patient("P001")
    values = {o.item: o for o in patient.observations}
    assert values["hemoglobin"].value == Decimal(95) and values["hemoglobin"].original == "9.5 g/dL"
    assert values["creatinine"].value == Decimal("80.002") and values["creatinine"].uln == Decimal("83.98")


@pytest.mark.parametrize(
    ("file", "change", "row", "column", "message"),
    [
        ("observations", lambda rows: set_value(rows, "platelets", "lots"), None, "value", "'lots' is not a number"),
        (
            "observations",
            lambda rows: set_value(rows, "hbsag", "weakly"),
            None,
            "value",
            "'weakly' is not an allowed value for hbsag",
        ),
        (
            "observations",
            lambda rows: set_value(rows, "platelets", "50", unit="furlongs"),
            None,
            "unit",
            "platelets: 'furlongs' is not a unit we can read",
        ),
        (
            "observations",
            lambda rows: set_value(rows, "platelets", "50", date="20/11/2026"),
            None,
            "date",
            "'20/11/2026' is not a date",
        ),
        (
            "observations",
            lambda rows: set_value(rows, "platelets", "-5"),
            None,
            "value",
            "platelets -5 ×10^9/L is outside the plausible range 0-3000 ×10^9/L",
        ),
        (
            "observations",
            lambda rows: set_value(rows, "platelet_count", "50"),
            None,
            "item",
            "unknown item 'platelet_count'",
        ),
        (
            "patients",
            lambda rows: rows.__setitem__(0, {**rows[0], "birth_date": "1726-01-01"}),
            2,
            "birth_date",
            "date 1726-01-01 is outside the dates accepted (1900-01-01 to 2200-12-31)",
        ),
        (
            "events",
            lambda rows: rows.__setitem__(0, {**rows[0], "start_date": "yesterday"}),
            None,
            "start_date",
            "'yesterday' is not a date",
        ),
        (
            "attestations",
            lambda rows: rows.__setitem__(0, {**rows[0], "item": "concent"}),
            None,
            "item",
            "unknown attestation item 'concent'",
        ),
    ],
)
def test_each_malformed_row_is_located_and_the_rest_still_loads(
    write_dataset: Callable[..., Path],
    file: str,
    change: Callable[[list[dict[str, str]]], object],
    row: int | None,
    column: str,
    message: str,
) -> None:
    files = two_patients()
    p001_rows = [r for r in files[file] if r["patient_id"] == "P001"]
    change(p001_rows)
    files[file] = p001_rows + [r for r in files[file] if r["patient_id"] == "P004"]
    dataset = load_dataset(write_dataset(**files), today=date(2026, 11, 25))
    assert len(dataset.problems) == 1, dataset.problems
    problem = dataset.problems[0]
    assert problem.path == f"{file}.csv" and problem.column == column and problem.patient_id == "P001"
    assert message in problem.message
    if row is not None:
        assert problem.row == row
    assert set(dataset.patients) == {"P001", "P004"}  # both patients still loaded
    p004 = dataset.patient("P004")
    assert len(p004.observations) == len([r for r in files["observations"] if r["patient_id"] == "P004"])
    p001 = dataset.patient("P001")
    kept = {
        "observations": p001.observations,
        "events": p001.events,
        "attestations": p001.attestations,
        "patients": [p001],
    }[file]
    assert len(kept) == len(p001_rows) - (0 if file == "patients" else 1)  # only the bad row is gone


def test_the_row_number_is_the_line_in_the_file(write_dataset: Callable[..., Path]) -> None:
    files = two_patients()
    set_value(files["observations"], "anc", "n/a")
    line = 2 + [r["item"] for r in files["observations"]].index("anc")
    problem = load_dataset(write_dataset(**files)).problems[0]
    assert problem.row == line
    assert str(problem).startswith(f"observations.csv:{line} column value: anc: 'n/a' is not a number")


def test_duplicate_patient_row_keeps_the_first(write_dataset: Callable[..., Path]) -> None:
    files = two_patients()
    files["patients"].append({**files["patients"][0], "weight_kg": "99"})
    dataset = load_dataset(write_dataset(**files))
    (problem,) = dataset.problems
    assert (problem.path, problem.row, problem.column) == ("patients.csv", 4, "patient_id")
    assert "duplicate patient row for P001" in problem.message and "patients.csv row 2" in problem.hint
    assert dataset.patient("P001").weight_kg == Decimal(60)


def test_missing_column_is_reported_and_the_other_files_load(write_dataset: Callable[..., Path]) -> None:
    files = two_patients()
    header = "patient_id,item,value,date,uln,lln,loinc,source\n"  # no unit column
    body = "".join(
        f"{r['patient_id']},{r['item']},{r['value']},{r['date']},{r['uln']},,,\n" for r in files["observations"]
    )
    files["observations"] = header + body  # type: ignore[assignment]
    dataset = load_dataset(write_dataset(**files))
    missing = [p for p in dataset.problems if p.column == "unit" and p.row == 1]
    assert missing and missing[0].message == "missing column 'unit'"
    p001 = dataset.patient("P001")
    assert {o.item for o in p001.observations} >= {"hbsag", "ecg", "ecog"}  # rows that need no unit still load
    assert any(p.patient_id == "P001" and "a unit is required for spo2" in p.message for p in dataset.problems)
    assert len(p001.attestations) > 0 and len(dataset.patient("P004").events) > 0


def test_rows_of_unknown_patients_are_rejected(write_dataset: Callable[..., Path]) -> None:
    files = demo_files("P001")
    files["observations"].append({**files["observations"][0], "patient_id": "P0001"})
    problem = load_dataset(write_dataset(**files)).problems[0]
    assert problem.message == "no patient 'P0001' in patients.csv" and "P001" in problem.hint


@pytest.mark.parametrize(("asked", "suggestion"), [("P3", "P003"), ("p-003", "P003"), ("patient 12", "P012")])
def test_unknown_patient_id_suggests_the_nearest(demo: object, asked: str, suggestion: str) -> None:
    with pytest.raises(UnknownPatientError) as caught:
        load_dataset().patient(asked)
    assert str(caught.value) == f"no patient {asked}; did you mean {suggestion}?"


def test_a_folder_without_patients_csv_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(KbError, match=r"no patients\.csv here"):
        load_dataset(tmp_path)


def test_an_upload_is_read_from_memory_like_a_folder() -> None:
    from kb.records.patients import DEMO_DATASET, load_dataset, load_uploaded

    files = {p.name: p.read_bytes() for p in DEMO_DATASET.glob("*.csv") if p.name != "stories.csv"}
    uploaded = load_uploaded(files)
    demo = load_dataset(DEMO_DATASET)
    assert sorted(uploaded.patients) == sorted(demo.patients)
    assert uploaded.patients["P061"].observations == demo.patients["P061"].observations
    assert uploaded.name == "upload"


def test_a_broken_upload_names_the_file_and_keeps_the_rest() -> None:
    from kb.records.patients import DEMO_DATASET, load_uploaded

    files = {p.name: p.read_bytes() for p in DEMO_DATASET.glob("*.csv") if p.name != "stories.csv"}
    files["events.csv"] = b"\xff\xfe not text"
    dataset = load_uploaded(files)
    assert [(p.path, p.row, p.column, p.patient_id) for p in dataset.problems] == [("events.csv", 1, 1, None)]
    assert dataset.problems[0].message.startswith("the file is not UTF-8 text: byte 0xff cannot be read")
    assert "P061" in dataset.patients and dataset.patients["P061"].observations  # the other files are read
    assert dataset.patients["P061"].events == []
    assert [(u.file, u.what, u.when) for u in dataset.patients["P061"].unreadable] == [("events.csv", "", None)]
    with pytest.raises(KbError, match=r"no patients\.csv among events\.csv"):
        load_uploaded({"events.csv": b""})


def test_a_rejected_row_of_a_known_patient_is_kept_as_unreadable(write_dataset: Callable[..., Path]) -> None:
    files = demo_files("P001")
    files["events"].append({**files["events"][0], "kind": "medication", "name": "tacrolimus", "end_date": "ongoing"})
    files["events"].append({**files["events"][0], "kind": "medicaton", "name": "x"})  # the kind itself unreadable
    patient = load_dataset(write_dataset(**files)).patient("P001")
    assert [(u.file, u.what, u.source.row) for u in patient.unreadable] == [
        ("events.csv", "medication", len(files["events"])),
        ("events.csv", "", len(files["events"]) + 1),
    ]
    assert patient.unreadable[0].reason.startswith("column end_date: ")


def _p001_row(match: Callable[[dict[str, str]], bool], **values: str) -> Callable[[Rows], dict[str, str]]:
    """A change to the first of P001's rows that `match` selects; it returns the row."""

    def change(rows: Rows) -> dict[str, str]:
        row = next(r for r in rows if match(r))
        row.update(values)
        return row

    return change


def _item(name: str) -> Callable[[dict[str, str]], bool]:
    return lambda row: row.get("item") == name


def _any(row: dict[str, str]) -> bool:
    return True


@pytest.mark.parametrize(
    ("file", "change", "column", "message"),
    [
        # issue 16.2: a value that divided by zero or overflowed downstream, now out of range
        (
            "observations",
            _p001_row(_item("creatinine"), value="0", unit="umol/L"),
            "value",
            "creatinine 0 µmol/L is outside the plausible range 10-3000 µmol/L",
        ),
        (
            "observations",
            _p001_row(_item("creatinine"), value="1e-41", unit="umol/L"),
            "value",
            "'1e-41' is too large or too small for a measurement",
        ),
        (
            "observations",
            _p001_row(_item("creatinine"), value="0.0001", unit="mg/dL"),
            "value",
            "creatinine 0.0001 mg/dL (0.00884 µmol/L) is outside the plausible range 10-3000 µmol/L",
        ),
        (
            "observations",
            _p001_row(_item("hemoglobin"), value="9e19", unit="g/dL"),
            "value",
            "hemoglobin 9e19 g/dL is outside the plausible range 10-250 g/L",
        ),
        (
            "observations",
            _p001_row(_item("platelets"), value="50", unit="10*308/L"),
            "value",
            "platelets 50 10*308/L is outside the plausible range 0-3000 ×10^9/L",
        ),
        (
            "observations",
            _p001_row(_item("spo2"), value="121", unit="%"),
            "value",
            "spo2 121 % is outside the plausible range 50-100 %",
        ),
        (
            "observations",
            _p001_row(_item("spo2"), value="93", date="0001-01-01"),
            "date",
            "0001-01-01 is outside the dates accepted (1900-01-01 to 2200-12-31)",
        ),
        (
            "events",
            _p001_row(_any, start_date="9999-12-31"),
            "start_date",
            "9999-12-31 is outside the dates accepted (1900-01-01 to 2200-12-31)",
        ),
        (
            "attestations",
            _p001_row(_item("consent"), date="0001-01-02"),
            "date",
            "0001-01-02 is outside the dates accepted",
        ),
        (
            "events",
            _p001_row(_any, note="x" * 140_000),
            "note",
            "the cell is 140,000 characters long, more than the 131,072 a cell may hold",
        ),
        (
            "observations",
            _p001_row(_item("spo2"), source="y" * 200_000),
            "source",
            "the cell is 200,000 characters long",
        ),
    ],
)
def test_an_edge_value_rejects_its_row_located_and_never_stops_the_load(
    write_dataset: Callable[..., Path],
    kb: KnowledgeBase,
    file: str,
    change: Callable[[Rows], dict[str, str]],
    column: str,
    message: str,
) -> None:
    """Issue 16.2: each of these raised (DivisionByZero, InvalidOperation, OverflowError,
    csv.Error) and stopped the whole load; now the row is rejected, located, and kept as
    unreadable, so the patient is never eligible on it; the other patient loads whole."""
    files = two_patients()
    p001_rows = [r for r in files[file] if r["patient_id"] == "P001"]
    changed = change(p001_rows)
    files[file] = p001_rows + [r for r in files[file] if r["patient_id"] == "P004"]
    dataset = load_dataset(write_dataset(**files), today=date(2026, 11, 25))
    assert len(dataset.problems) == 1, dataset.problems
    problem = dataset.problems[0]
    assert (problem.path, problem.column, problem.patient_id) == (f"{file}.csv", column, "P001")
    assert problem.row == 2 + next(n for n, r in enumerate(files[file]) if r is changed)
    assert message in problem.message, problem.message
    assert set(dataset.patients) == {"P001", "P004"}
    p004 = dataset.patient("P004")
    assert len(p004.observations) == len([r for r in files["observations"] if r["patient_id"] == "P004"])
    p001 = dataset.patient("P001")
    assert [u.source.row for u in p001.unreadable] == [problem.row]
    assert assess(p001, kb).verdict != "eligible"  # P001 is eligible with the row; unknown without it


@pytest.mark.parametrize(
    ("uln", "message"),
    [
        ("1e-31", "'1e-31' is too large or too small for a measurement"),
        ("1e-999999999", "'1e-999999999' is too large or too small for a measurement"),
        ("0.001", "alt 30 would be more than 1000 × its upper limit of normal 0.001: the limit is implausible"),
        ("0", "an upper limit of normal must be a positive number, not 0"),
        ("50000", "the upper limit of normal 50000 is outside the plausible range 0-20000 U/L"),
    ],
)
def test_an_implausible_uln_is_read_as_empty_with_its_reason(
    write_dataset: Callable[..., Path], kb: KnowledgeBase, uln: str, message: str
) -> None:
    """Issue 16.2: a ULN of 1e-31 made a ×ULN ratio no trace could show (InvalidOperation),
    1e-999999999 overflowed; an implausible limit is now rejected, the result kept."""
    files = demo_files("P001")
    set_value(files["observations"], "alt", "30", unit="U/L", uln=uln)
    dataset = load_dataset(write_dataset(**files))
    (problem,) = dataset.problems
    assert (problem.path, problem.column) == ("observations.csv", "uln")
    assert message in problem.message and problem.hint == "read as empty"
    alt = next(o for o in dataset.patient("P001").observations if o.item == "alt")
    assert alt.value == Decimal(30) and alt.uln is None
    assert assess(dataset.patient("P001"), kb).verdict != "eligible"  # ALT ≤ 2.5 × ULN is not known


def _write_raw(folder: Path, files: dict[str, bytes]) -> Path:
    folder.mkdir()
    for name, content in files.items():
        (folder / name).write_bytes(content)
    return folder


def _demo_bytes(patient_id: str = "P001") -> dict[str, bytes]:
    """One demo patient's four files, as bytes (to corrupt one of them)."""
    from kb.records.patients import DEMO_DATASET

    out = {}
    for name in ("patients.csv", "observations.csv", "events.csv", "attestations.csv"):
        lines = (DEMO_DATASET / name).read_text(encoding="utf-8").splitlines(keepends=True)
        out[name] = "".join([lines[0], *(line for line in lines[1:] if line.startswith(f"{patient_id},"))]).encode()
    return out


@pytest.mark.parametrize("padding", [0, 9000], ids=["first-chunk", "after-8KB"])
def test_a_bad_byte_sets_the_whole_file_aside_located_at_its_line_and_character(tmp_path: Path, padding: int) -> None:
    """Decoded before any row is read: never the rows before the bad chunk kept as if complete."""
    files = _demo_bytes()
    kept = files["events.csv"].count(b"\n")
    files["events.csv"] += f"P001,medication,hydroxychloroquine,,2020-01-01,,,,,{'x' * padding}\n".encode()
    files["events.csv"] += "P001,medication,hydroxychloroquine,,2020-01-01,,,,,café\n".encode("latin-1")
    files["events.csv"] += b"P001,vaccination,MMR,,2026-11-20,,,,,\n"
    dataset = load_dataset(_write_raw(tmp_path / "set", files))
    (problem,) = dataset.problems
    assert (problem.path, problem.row, problem.column, problem.patient_id) == ("events.csv", kept + 2, 55, None)
    assert problem.message.startswith("the file is not UTF-8 text: byte 0xe9 cannot be read")
    assert dataset.file_problems == [problem] and dataset.problems_for("P001") == [problem]
    patient = dataset.patient("P001")
    assert patient.events == [] and patient.observations and patient.attestations
    assert [(u.file, u.what, u.when, u.source.row) for u in patient.unreadable] == [("events.csv", "", None, 0)]
    assert "line 8, character 55: the file is not UTF-8 text" in patient.unreadable[0].reason


@pytest.mark.parametrize("bom", [b"\xef\xbb\xbf", b"\xef\xbb\xbf\xef\xbb\xbf"], ids=["BOM", "doubled-BOM"])
def test_utf8_with_a_bom_or_a_doubled_bom_is_read(tmp_path: Path, bom: bytes) -> None:
    files = {name: bom + content for name, content in _demo_bytes().items()}
    dataset = load_dataset(_write_raw(tmp_path / "set", files))
    assert dataset.problems == []
    assert len(dataset.patient("P001").events) == files["events.csv"].count(b"\n") - 1


def test_a_declared_encoding_reads_a_gb18030_file_and_utf8_rejects_it_located(tmp_path: Path) -> None:
    files = _demo_bytes()
    files["events.csv"] = (files["events.csv"].decode() + "P001,vaccination,麻腮风疫苗,,2026-11-20,,,,,\n").encode(
        "gb18030"
    )
    folder = _write_raw(tmp_path / "set", files)
    read = load_dataset(folder, encoding="gb18030").patient("P001")
    assert [(e.name, e.agent) for e in read.events if e.kind == "vaccination"][-1] == ("麻腮风疫苗", "mmr_vaccine")
    rejected = load_dataset(folder)
    (problem,) = rejected.problems
    assert (problem.path, problem.row, problem.column) == ("events.csv", 7, 18)
    assert rejected.patient("P001").events == []
    with pytest.raises(KbError, match="unknown encoding 'klingon'"):
        load_dataset(folder, encoding="klingon")


def test_a_cell_over_the_csv_limit_rejects_its_row_not_the_file(tmp_path: Path) -> None:
    """Over csv's 128 KB field limit the reader stopped (file aside, or a traceback before
    issue 16); now that row alone is rejected, located, kept as unreadable, and the rest reads."""
    files = _demo_bytes()
    files["observations.csv"] += b"P001,platelets,1" + b"0" * 200_000 + b",10^9/L,2026-11-17,,,,\n"
    rows = files["observations.csv"].count(b"\n")  # the header is row 1: the new row is the last
    dataset = load_dataset(_write_raw(tmp_path / "set", files))
    (problem,) = dataset.problems
    assert (problem.path, problem.row, problem.column, problem.patient_id) == (
        "observations.csv",
        rows,
        "value",
        "P001",
    )
    assert "more than the 131,072 a cell may hold" in problem.message
    patient = dataset.patient("P001")
    assert len(patient.observations) == rows - 2  # every other row read
    assert [(u.file, u.what, u.source.row) for u in patient.unreadable] == [("observations.csv", "platelets", rows)]


@pytest.mark.parametrize(
    ("content", "where"),
    [(b"patient_id,sex\nP001,f\xe9male\n", (2, 7)), (b"id,sex\nP001,female\n", (1, "patient_id"))],
    ids=["not-utf8", "no-patient_id"],
)
def test_a_patients_file_that_cannot_be_read_is_an_error_located(
    tmp_path: Path, content: bytes, where: tuple[int, int | str]
) -> None:
    files = _demo_bytes() | {"patients.csv": content}
    with pytest.raises(KbError) as caught:
        load_dataset(_write_raw(tmp_path / "set", files))
    (problem,) = caught.value.problems
    assert (problem.path, problem.row, problem.column) == ("patients.csv", *where)


def test_a_row_without_a_patient_id_counts_as_unread_for_every_patient(write_dataset: Callable[..., Path]) -> None:
    files = two_patients()
    files["events"].append({**files["events"][0], "patient_id": "", "kind": "vaccination", "name": "MMR"})
    dataset = load_dataset(write_dataset(**files))
    (problem,) = dataset.problems
    assert (problem.path, problem.column, problem.patient_id, problem.message) == (
        "events.csv",
        "patient_id",
        None,
        "empty patient_id",
    )
    for pid in ("P001", "P004"):
        assert [(u.file, u.what, u.source.row) for u in dataset.patient(pid).unreadable] == [
            ("events.csv", "vaccination", problem.row)
        ]


@pytest.mark.parametrize(
    ("column", "limit", "message"),
    [
        ("uln", "0", "an upper limit of normal must be a positive number, not 0"),
        ("uln", "-1.2", "an upper limit of normal must be a positive number, not -1.2"),
        ("lln", "-3", "creatinine -3 µmol/L is outside the plausible range 10-3000 µmol/L"),
    ],
)
def test_an_impossible_normal_limit_is_a_located_problem_and_the_value_still_loads(
    write_dataset: Callable[..., Path], column: str, limit: str, message: str
) -> None:
    files = demo_files("P001")
    set_value(files["observations"], "creatinine", "80", unit="umol/L", **{column: limit})
    dataset = load_dataset(write_dataset(**files))
    (problem,) = dataset.problems
    row = next(n for n, r in enumerate(files["observations"], start=2) if r["item"] == "creatinine")
    assert (problem.path, problem.row, problem.column, problem.patient_id) == ("observations.csv", row, column, "P001")
    assert problem.message == f"creatinine {column}: {message}"
    (creatinine,) = [o for o in dataset.patient("P001").observations if o.item == "creatinine"]
    assert creatinine.value == Decimal(80) and getattr(creatinine, column) is None


def _unbalanced(content: bytes, line: int) -> bytes:
    """The content with a quote opening the second cell of `line` (1 = the header) and never
    closed: a careless edit that made csv read every following line into that one cell."""
    lines = content.split(b"\n")
    head, comma, tail = lines[line - 1].partition(b",")
    lines[line - 1] = head + comma + b'"' + tail
    return b"\n".join(lines)


def test_an_unbalanced_quote_sets_the_file_aside_instead_of_swallowing_the_rows_after_it(tmp_path: Path) -> None:
    """Found by the input fuzz suite: the rows after the quote vanished into one cell and the
    row itself loaded; now the file is set aside whole, located, and every patient's records
    from it count as unread."""
    files = _demo_bytes()
    files["events.csv"] = _unbalanced(files["events.csv"], 3)
    dataset = load_dataset(_write_raw(tmp_path / "set", files))
    (problem,) = dataset.file_problems
    assert problem.path == "events.csv" and "cannot be read as CSV" in problem.message and problem.row is not None
    patient = dataset.patient("P001")
    assert patient.events == [] and [u.file for u in patient.unreadable] == ["events.csv"]


def test_an_unbalanced_quote_in_patients_csv_is_an_error_located(tmp_path: Path) -> None:
    files = _demo_bytes() | {"patients.csv": b"patient_id,sex\nP001,female\nP002,male\n"}
    files["patients.csv"] = _unbalanced(files["patients.csv"], 2)
    with pytest.raises(KbError) as caught:
        load_dataset(_write_raw(tmp_path / "set", files))
    (problem,) = caught.value.problems
    assert problem.path == "patients.csv" and "cannot be read as CSV" in problem.message


def test_stories_alone_are_refused_naming_the_file_not_read_as_empty_patients(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Issue 17: stories.csv uploaded alone was read as a wide table: 78 patients with no
    data at all (the story column ignored). Alone, in an upload, a folder or as a file, it
    is refused with a message naming it; beside patients.csv, its stories are shown."""
    from kb.cli import main
    from kb.records.importers import load_data, load_files
    from kb.records.patients import DEMO_DATASET

    stories = (DEMO_DATASET / "stories.csv").read_bytes()
    for files in ({"stories.csv": stories}, {"stories.csv": stories, "events.csv": b"patient_id,kind\n"}):
        with pytest.raises(KbError, match=r"stories\.csv needs patients\.csv beside it"):
            load_files(files)
    (tmp_path / "stories.csv").write_bytes(stories)
    for path in (tmp_path, tmp_path / "stories.csv"):
        with pytest.raises(KbError, match=r"stories\.csv needs patients\.csv beside it"):
            load_data(path)
    code = main(["--facts", str(tmp_path), "check", "P001"])  # the CLI says so too
    assert code == 2 and "stories.csv needs patients.csv beside it" in capsys.readouterr().err
    files = {name: (DEMO_DATASET / name).read_bytes() for name in ("patients.csv", "stories.csv")}
    loaded = load_files(files)
    assert len(loaded.patients) == 78 and loaded.stories["P061"].startswith("Woman with SLE, otherwise eligible")


def _rows_as_dictreader_reads_them(
    text: str, columns: tuple[str, ...]
) -> tuple[list[tuple[int, dict[str, str]]], int | None]:
    """The rows `_Reader.rows` gave when it read through csv.DictReader (its code before
    issue 20), and the line a CSV error was reported at: the reference for the faster reader."""
    import csv
    import io

    reader = csv.DictReader(io.StringIO(text, newline=""), strict=True)
    out = []
    try:
        header = [h.strip() for h in (reader.fieldnames or [])]
        reader.fieldnames = header
        for number, raw in enumerate(reader, start=2):
            row = {k: (v or "").strip() for k, v in raw.items() if k is not None}
            if not any(row.values()):
                continue
            out.append((number, {c: row.get(c, "") for c in (*columns, *row)}))
    except csv.Error:
        return out, reader.line_num
    return out, None


@pytest.mark.parametrize(
    "text",
    [
        "patient_id,item,value,date\nP1,anc,2,2026-01-01\n",
        "patient_id,item,value,date\r\nP1,anc,2,2026-01-01\r\n\r\n\r\nP2,anc,3,2026-01-02",  # blank lines
        " patient_id , item ,value,date,extra\n P1 , anc ,2,2026-01-01,x\n,,,,\n  ,\t,,,\nP2,anc\n",  # short, blank
        "patient_id,item,value,date\nP1,anc,2,2026-01-01,surplus,cells\n",  # more cells than columns
        "patient_id,value,value,date\nP1,,3,2026-01-01\nP2,4,,2026-01-01\nP3,5,,\n",  # a repeated column
        'patient_id,item,value,date,note\nP1,anc,2,2026-01-01,"two\nlines, quoted"\nP2,anc,"3",x,\n',
        "\npatient_id,item\nP1,anc\n",  # a blank first line: no header
        "",
        'patient_id,item,value,date\nP1,anc,2,2026-01-01\n\n\nP2,"unbalanced,3,x\nP3,anc,1,y\n',  # a CSV error
        'patient_id,item,value,date\nP1,anc,2,2026-01-01\nP2,"a"b,3,x\n',  # a CSV error right after a row
    ],
)
def test_rows_are_read_as_csv_dictreader_read_them(tmp_path: Path, text: str) -> None:
    """The loader's row reading (issue 20: csv.reader and one dict per row, not DictReader
    and two) gives the same rows, numbers, values and column order, and reports a CSV error
    at the line it did."""
    from kb.records.patients import OBSERVATION_COLUMNS, _Reader

    (tmp_path / "observations.csv").write_text(text, encoding="utf-8", newline="")
    problems: list[object] = []
    reader = _Reader(tmp_path, "observations.csv", OBSERVATION_COLUMNS, problems)  # type: ignore[arg-type]
    rows = [(n, row, list(row)) for n, row in reader.rows()]
    expected, error_line = _rows_as_dictreader_reads_them(text, OBSERVATION_COLUMNS)
    assert rows == [(n, row, list(row)) for n, row in expected]
    if error_line is None:
        assert reader.rejected is None or "missing column" in reader.rejected.message
    else:
        assert reader.rejected is not None and reader.rejected.row == error_line
        assert "cannot be read as CSV" in reader.rejected.message
