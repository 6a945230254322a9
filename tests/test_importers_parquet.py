"""The file set as Parquet: the same Dataset as the CSV files, and bad Parquet named by file,
row and column."""

from __future__ import annotations

import json
import shutil
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path

import pyarrow as pa
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq
import pytest

from kb.cli import main
from kb.errors import KbError
from kb.records.importers import detect_format, load_data
from kb.records.importers.parquet import load_parquet_set
from kb.records.patients import DEMO_DATASET, Dataset, load_dataset, load_uploaded
from tests.input_fuzz import FILES, counts, csv_file_set

TODAY = date(2026, 11, 25)
STEMS = [f.removesuffix(".csv") for f in FILES]


def as_csv(dataset: Dataset) -> tuple[str, list[str]]:
    """The patients and problems, with the Parquet files' names put back to the CSV files':
    equal to a CSV file set's iff everything else is equal (values, dates, rows, columns)."""
    patients = repr(dataset.patients).replace(".parquet", ".csv")
    return patients, [repr(p).replace(".parquet", ".csv") for p in dataset.problems]


def write_text_columns(folder: Path, tables: dict[str, tuple[list[str], list[list[str]]]]) -> Path:
    """Each file as Parquet with every column text (the CSV's cells as they are)."""
    folder.mkdir(parents=True, exist_ok=True)
    for stem, (header, rows) in tables.items():
        columns = [pa.array([row[i] for row in rows], pa.string()) for i in range(len(header))]
        pq.write_table(pa.Table.from_arrays(columns, names=header), folder / f"{stem}.parquet")
    return folder


def write_typed(folder: Path, source: Path = DEMO_DATASET) -> Path:
    """The CSV files as Parquet with the column types Arrow infers: dates as date32, numbers
    as float64 or int64 (as a pandas or Spark export would hold them)."""
    folder.mkdir(parents=True, exist_ok=True)
    for stem in STEMS:
        pq.write_table(pa_csv.read_csv(source / f"{stem}.csv"), folder / f"{stem}.parquet")
    return folder


@pytest.fixture(scope="module")
def demo_parquet(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = write_typed(tmp_path_factory.mktemp("pq") / "demo")
    shutil.copy(DEMO_DATASET / "stories.csv", folder)
    return folder


def test_the_demo_as_typed_parquet_is_the_same_dataset(demo_parquet: Path) -> None:
    types = {str(t) for stem in STEMS for t in pq.read_schema(demo_parquet / f"{stem}.parquet").types}
    assert {"date32[day]", "double", "int64"} <= types  # typed, not text: the conversion is exercised
    csv_set = load_dataset(DEMO_DATASET, today=TODAY)
    parquet_set = load_data(demo_parquet, today=TODAY)
    assert detect_format(demo_parquet) == "parquet"
    assert len(parquet_set.patients) == len(csv_set.patients) == 78
    assert as_csv(parquet_set) == as_csv(csv_set)
    assert parquet_set.stories == csv_set.stories and parquet_set.path == str(demo_parquet)
    first = parquet_set.patients["P001"]
    assert str(first.observations[0].source) == "observations.parquet row 2"  # as the CSV numbers it
    assert str(first.source) == "patients.parquet row 2"


def test_kb_screen_and_check_read_the_parquet_folder(demo_parquet: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`kb screen --facts FOLDER` and `kb check`, with no other flag: the CSV file set's answers."""
    answers = []
    for facts in (DEMO_DATASET, demo_parquet):
        assert main(["--facts", str(facts), "--as-of", "2026-11-25", "screen", "--json"]) == 0
        screened = json.loads(capsys.readouterr().out)
        assert main(["--facts", str(facts), "--as-of", "2026-11-25", "check", "P002", "--json"]) == 0
        checked = json.loads(capsys.readouterr().out.replace(".parquet", ".csv"))
        answers.append((screened, checked))
    assert answers[0] == answers[1]
    assert len(answers[1][0]["patients"]) == 78


def test_bad_files_give_the_same_problems_as_the_csv(tmp_path: Path) -> None:
    """Issue 16's damaged CSV file sets (hostile cells, a dropped column or file, a stranger's
    row, a repeated row, columns reordered), written as Parquet with text columns: the same
    patients and problems, at the same rows and columns. Damage only a CSV can have (a byte
    that is not UTF-8, an unbalanced quote, another separator) is left out."""
    tried = 0
    for number in range(counts("csv")):
        case = csv_file_set(number)
        if case.byte_edits or case.delimiter:
            continue
        expected = load_uploaded(case.files(), today=TODAY, name=f"set{number}")
        folder = write_text_columns(
            tmp_path / f"set{number}",
            {f.removesuffix(".csv"): (case.headers[f], case.rows[f]) for f in case.headers},
        )
        assert as_csv(load_parquet_set(folder, today=TODAY)) == as_csv(expected), case.describe()
        tried += 1
    assert tried >= counts("csv") // 2


@pytest.mark.parametrize(
    ("values", "kind", "written"),
    [
        ([0.1, 2.675, 120.0], pa.float64(), ["0.1", "2.675", "120"]),
        ([0.1, 2.675, 120.0], pa.float32(), ["0.1", "2.675", "120"]),
        ([Decimal("0.10"), Decimal("2.675"), Decimal("120")], pa.decimal128(6, 3), ["0.100", "2.675", "120.000"]),
        ([1, 2, 120], pa.int32(), ["1", "2", "120"]),
    ],
)
def test_numbers_are_read_as_their_shortest_exact_text(
    tmp_path: Path, values: list[object], kind: pa.DataType, written: list[str]
) -> None:
    """A float64 0.1 is 0.1, not 0.1000000000000000055511151231257827; a float32 0.1 is 0.1,
    not 0.10000000149011612; a decimal keeps its scale; an integral float is written as the
    integer a CSV would hold."""
    folder = tmp_path / "set"
    write_text_columns(folder, {"patients": (["patient_id"], [["A1"]])})
    table = pa.table(
        {
            "patient_id": ["A1"] * 3,
            "item": ["alc"] * 3,
            "value": pa.array(values, kind),
            "unit": ["10*9/L"] * 3,
            "date": pa.array([date(2026, 11, 17), date(2026, 11, 18), date(2026, 11, 19)], pa.date32()),
        }
    )
    pq.write_table(table, folder / "observations.parquet")
    dataset = load_parquet_set(folder, today=TODAY)
    found = dataset.patients["A1"].observations
    assert [o.original for o in found] == [f"{w} 10*9/L" for w in written]
    assert [o.value for o in found] == [Decimal(w) for w in written]


def test_nulls_are_empty_cells(tmp_path: Path) -> None:
    """A null is read as the CSV's empty cell, and the same rules reject it: an empty
    patient_id (row 3: the file's second row, the header being row 1), an empty date."""
    folder = write_text_columns(tmp_path / "set", {"patients": (["patient_id", "sex"], [["A1", "female"]])})
    table = pa.table(
        {
            "patient_id": ["A1", None, "A1"],
            "item": ["alc", "alc", "anc"],
            "value": pa.array([1.1, 1.2, None], pa.float64()),
            "unit": ["10*9/L", "10*9/L", None],
            "date": pa.array([date(2026, 11, 17), date(2026, 11, 17), None], pa.date32()),
        }
    )
    pq.write_table(table, folder / "observations.parquet")
    dataset = load_parquet_set(folder, today=TODAY)
    located = [(p.path, p.row, p.column, p.message) for p in dataset.problems if p.row != 1]  # not the header's
    assert located == [
        ("observations.parquet", 3, "patient_id", "empty patient_id"),
        ("observations.parquet", 4, "date", "empty date"),
    ]
    assert [o.item for o in dataset.patients["A1"].observations] == ["alc"]


def test_date_times_at_midnight_are_dates_and_others_are_refused(tmp_path: Path) -> None:
    folder = write_text_columns(tmp_path / "set", {"patients": (["patient_id"], [["A1"]])})
    stamps = [datetime(2026, 11, 17), datetime(2026, 11, 18, 10, 30)]
    table = pa.table(
        {
            "patient_id": ["A1", "A1"],
            "item": ["alc", "anc"],
            "value": ["1.1", "2.0"],
            "unit": ["10*9/L", "10*9/L"],
            "date": pa.array(stamps, pa.timestamp("us")),
        }
    )
    pq.write_table(table, folder / "observations.parquet")
    dataset = load_parquet_set(folder, today=TODAY)
    (kept,) = dataset.patients["A1"].observations
    assert (kept.item, kept.date) == ("alc", date(2026, 11, 17))
    (refused,) = [p for p in dataset.problems if p.column == "date"]
    assert (refused.path, refused.row) == ("observations.parquet", 3)
    assert "2026-11-18 10:30:00" in refused.message and "is not a date" in refused.message


def test_a_file_that_is_not_parquet(tmp_path: Path, demo_parquet: Path) -> None:
    """patients.parquet unreadable: no patient can be, an error naming the file; another
    file unreadable: reported, and its records unread for every patient (never absent)."""
    folder = tmp_path / "set"
    shutil.copytree(demo_parquet, folder)
    (folder / "events.parquet").write_bytes((DEMO_DATASET / "events.csv").read_bytes())
    dataset = load_data(folder, today=TODAY)
    (problem,) = dataset.problems
    assert problem.path == "events.parquet" and "not a readable Parquet file" in problem.message
    assert str(tmp_path) not in str(problem)  # the file is named once, by the data set's own name
    assert all(not p.events for p in dataset.patients.values())
    assert all(any(u.file == "events.csv" for u in p.unreadable) for p in dataset.patients.values())
    (folder / "patients.parquet").write_bytes(b"")
    with pytest.raises(KbError, match=r"patients.parquet could not be read, so no patient was") as raised:
        load_data(folder)
    assert raised.value.problems[0].path == "patients.parquet"
    assert "Traceback" not in str(raised.value)


def test_an_unknown_or_missing_column(tmp_path: Path) -> None:
    """A column the file set does not have is reported (not read); a missing column the
    loader's rule: without patient_id no row of the file is read, another is read as empty."""
    folder = write_text_columns(
        tmp_path / "set",
        {
            "patients": (["patient_id", "sex", "blood_group"], [["A1", "female", "O+"]]),
            "events": (["kind", "name", "start_date"], [["diagnosis", "Systemic lupus erythematosus", "2020-01-01"]]),
        },
    )
    dataset = load_parquet_set(folder, today=TODAY)
    unknown = [p for p in dataset.problems if "unknown column" in p.message]
    assert [(p.path, p.row, p.column) for p in unknown] == [("patients.parquet", 1, "blood_group")]
    (missing,) = [p for p in dataset.problems if p.column == "patient_id"]
    assert (missing.path, missing.message) == ("events.parquet", "missing column 'patient_id'")
    assert dataset.patients["A1"].sex == "female" and not dataset.patients["A1"].events
    assert any(u.file == "events.csv" for u in dataset.patients["A1"].unreadable)


@pytest.mark.parametrize(
    ("column", "message"),
    [
        (pa.array([[1], [2]], pa.list_(pa.int64())), "holds list<element: int64> values"),
        (pa.array([b"ok", b"caf\xe9"], pa.binary()), "bytes that are not UTF-8 text (0xe9)"),
    ],
)
def test_a_column_that_is_not_values_sets_the_file_aside(tmp_path: Path, column: pa.Array, message: str) -> None:
    folder = write_text_columns(tmp_path / "set", {"patients": (["patient_id"], [["A1"], ["A2"]])})
    pq.write_table(
        pa.table({"patient_id": ["A1", "A2"], "kind": ["surgery"] * 2, "name": column}), folder / "events.parquet"
    )
    dataset = load_parquet_set(folder, today=TODAY)
    (problem,) = [p for p in dataset.problems if p.path == "events.parquet"]
    assert problem.column == "name" and message in problem.message
    assert problem.row == (3 if "UTF-8" in message else None)  # the binary's bad cell: the file's second row
    assert all(any(u.file == "events.csv" for u in p.unreadable) for p in dataset.patients.values())


def test_a_folder_mixing_csv_and_parquet_is_refused(tmp_path: Path, demo_parquet: Path) -> None:
    folder = tmp_path / "set"
    shutil.copytree(demo_parquet, folder)
    shutil.copy(DEMO_DATASET / "events.csv", folder)
    with pytest.raises(KbError, match=r"mixing the CSV and Parquet file sets \(events.csv"):
        load_data(folder)
    with pytest.raises(KbError, match=r"holds events\.csv beside the Parquet files"):
        load_parquet_set(folder)


def test_one_parquet_file_is_not_a_data_set(demo_parquet: Path) -> None:
    with pytest.raises(KbError, match="looks like one Parquet file"):
        load_data(demo_parquet / "patients.parquet")


def test_a_file_written_in_parts_as_spark_writes_it(tmp_path: Path, demo_parquet: Path) -> None:
    """`df.write.parquet("set/observations.parquet")`: a folder of parts (and Spark's _SUCCESS
    and .crc files). Its rows are read in the parts' order, and a fact or a problem names
    the part and its own row."""
    folder = tmp_path / "set"
    shutil.copytree(demo_parquet, folder)
    whole = pq.read_table(folder / "observations.parquet")
    (folder / "observations.parquet").unlink()
    parts = folder / "observations.parquet"
    parts.mkdir()
    cut = 100
    second = whole.slice(cut)
    values = second.column("value").to_pylist()
    values[4] = "abc"  # the second part's fifth row: row 6 of that part
    second = second.set_column(second.schema.get_field_index("value"), "value", pa.array(values, pa.string()))
    pq.write_table(whole.slice(0, cut), parts / "part-00000.parquet")
    pq.write_table(second, parts / "part-00001.parquet")
    (parts / "_SUCCESS").write_bytes(b"")
    (parts / ".part-00000.parquet.crc").write_bytes(b"\x00")
    csv_set = load_dataset(DEMO_DATASET, today=TODAY)
    dataset = load_data(folder, today=TODAY)
    (problem,) = dataset.problems
    assert (problem.path, problem.row, problem.column) == ("observations.parquet/part-00001.parquet", 6, "value")
    for pid, patient in csv_set.patients.items():
        expected = [o for o in patient.observations if o.source.row != cut + 6]
        got = dataset.patients[pid].observations
        assert [o.original for o in got] == [o.original for o in expected]
        for mine, theirs in zip(got, expected, strict=True):
            first = theirs.source.row - 2 < cut
            part = "part-00000.parquet" if first else "part-00001.parquet"
            assert str(mine.source) == f"observations.parquet/{part} row {theirs.source.row - (0 if first else cut)}"


@pytest.mark.parametrize("value", [float("nan"), float("inf")])
def test_a_float_that_is_not_a_number_is_rejected_by_the_csv_rule(tmp_path: Path, value: float) -> None:
    folder = write_text_columns(tmp_path / "set", {"patients": (["patient_id"], [["A1"]])})
    table = pa.table(
        {
            "patient_id": ["A1", "A1"],
            "item": ["alc", "anc"],
            "value": pa.array([1.5, value], pa.float64()),
            "unit": ["10*9/L"] * 2,
            "date": pa.array([date(2026, 11, 17)] * 2, pa.date32()),
        }
    )
    pq.write_table(table, folder / "observations.parquet")
    dataset = load_parquet_set(folder, today=TODAY)
    (problem,) = [p for p in dataset.problems if p.column == "value"]
    assert (problem.path, problem.row) == ("observations.parquet", 3)
    assert problem.message == f"anc: '{value}' is not a number"
    assert [o.item for o in dataset.patients["A1"].observations] == ["alc"]
