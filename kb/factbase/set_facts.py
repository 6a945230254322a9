"""The rules' input facts for many patients at once, in SQL over the record tables.

`build_facts` walks one patient at a time in Python: most of a screening's time. Here the
same facts come from the five long tables of kb/records/tables.py in a handful of statements
over every patient at once: an aggregate chooses the latest result of each item by (date,
row), joins bring the reference dates, a window query joins a drug's records into courses
(kb/factbase/set_events.py), and the results of several items become scores, progression
and aPL counts (kb/factbase/set_measures.py). Where a value needs one of the Python formulas
of kb/catalogue/derived.py or kb/factbase/measures.py (months before, ×ULN, Cockcroft–Gault,
CKD-EPI, instrument scores, prednisone equivalents ...), that very function runs once per
DISTINCT input (a clinic's values repeat) and its results join back as a small table:
identical to `build_facts` by construction. Numbers come out of DuckDB as DECIMAL(38, 28)
and go into the formulas as the same values, written shortest (`number`). Ages alone are
SQL (a macro the tests hold to `age_in_years` day by day): their inputs hardly repeat.

Declined patients (`SetFacts.declined`, with why) are left out of every table; the caller
builds them with `build_facts` in Python, as today. Only what is rare and hard is declined:

- rows that could not be read (`rec_unreadable`): their gaps and "unrecognised" facts;
- a reference date outside the dates read, or a formula that fails on a patient's values
  (a zero creatinine): `build_facts` raises for them, and so must the caller's path;
- a derived number DECIMAL(38, 28) cannot hold (`FactTables.misfits` would drop the patient);
- ties the records' list order decides and their rows do not (hand-built patients): two
  latest results of one item with the same date and row, two latest attestations of one
  item with the same date and row, two different results of a progression item on one
  day, two agents of one drug starting the same day on the same row; an event ending
  before it starts (the loader rejects it; the course query assumes it away);
- a result whose kind (number or category) is not its item's, a review without a date.

The demo vignettes and the synthetic patients have none of these (tests/test_set_facts.py).
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Any

import duckdb
import pyarrow as pa

from kb.catalogue.assumptions import AssumptionSet
from kb.catalogue.derived import (
    EARLIEST_DATE,
    LATEST_DATE,
    months_before,
    times_uln,
)
from kb.catalogue.knowledge import KnowledgeBase
from kb.factbase.build import _windows_asked, assumption_facts
from kb.factbase.set_build import AGE_MACRO, ANCHORS, SetFacts, SqlBuild, _text, number
from kb.factbase.set_events import add_events
from kb.factbase.set_measures import add_measures, add_renal
from kb.language.sql import SqlPlan, table_name

__all__ = ["AGE_MACRO", "ANCHORS", "SetFacts", "SqlBuild", "build_facts_sql", "number"]


def build_facts_sql(
    con: duckdb.DuckDBPyConnection,
    kb: KnowledgeBase,
    assumptions: AssumptionSet,
    plan: SqlPlan,
    as_of: date | None = None,
    today: date | None = None,
) -> SetFacts:
    """Fill `plan`'s input tables from the rec_* tables in `con` with the facts `chunk_facts`
    puts there (every patient of rec_patient but the declined ones), and say who is declined.

    The caller adds the declined patients, and those `load_records` left out as misfits,
    through `build_facts` and `FactTables` as today (their reference facts too), before it
    derives the rules in `con`: tests/test_set_facts.py's `_paths` does exactly that."""

    build = SqlBuild(con, kb, assumptions, plan)
    for relation in plan.inputs:
        con.execute(plan.empty_table(relation))
    con.execute("CREATE OR REPLACE TEMP TABLE sf_declined (patient VARCHAR, why VARCHAR)")
    con.execute("CREATE OR REPLACE MACRO sf_day(d) AS date_diff('day', DATE '0001-01-01', d) + 1")
    con.execute(AGE_MACRO)
    try:
        _assumptions(build)
        _references(build, as_of, today)
        _patients(build)
        _observations(build)
        _attestations(build)
        add_events(build)
        return _finish(build)
    finally:
        build.close()


def _assumptions(build: SqlBuild) -> None:
    """The assumptions in force, one statement per relation."""
    facts = assumption_facts(build.assumptions)
    for relation in sorted({r for r, _ in facts}):
        rows = [args for r, args in facts if r == relation]
        table = pa.table({f"c{i}": pa.array([_text(a[i]) for a in rows], pa.string()) for i in range(2)})
        build.con.register("sf_assumed", table)
        build.insert(relation, "SELECT c0, c1 FROM sf_assumed")
        build.con.unregister("sf_assumed")


def _references(build: SqlBuild, as_of: date | None, today: date | None) -> None:
    """`reference_dates` for every patient (sf_ref), declining dates outside those read."""
    offset = build.assumptions.days("apheresis_offset_days")
    build.con.execute(
        """CREATE OR REPLACE TEMP TABLE sf_ref AS
        SELECT patient, sex, birth_date, weight_kg, enrolment,
            CASE WHEN screening_date IS NULL OR screening_date > enrolment THEN enrolment
                 ELSE screening_date END AS screening,
            COALESCE(apheresis_date, CAST(enrolment + CAST(? AS INTEGER) AS DATE)) AS apheresis
        FROM (SELECT *, COALESCE(CAST(? AS DATE), enrolment_date, CAST(? AS DATE)) AS enrolment FROM rec_patient)""",
        [offset, as_of, today or date.today()],
    )
    build.decline(
        """SELECT patient, 'a reference date outside the dates read (build_facts raises)' AS why FROM sf_ref
        WHERE NOT (enrolment BETWEEN ? AND ? AND screening BETWEEN ? AND ? AND apheresis BETWEEN ? AND ?)""",
        [EARLIEST_DATE, LATEST_DATE] * 3,
    )
    build.decline("SELECT DISTINCT patient, 'rows that could not be read' AS why FROM rec_unreadable")


def _patients(build: SqlBuild) -> None:
    """patient, ref_day, sex, age_at and months_before."""
    build.insert("patient", "SELECT patient AS c0 FROM sf_ref")
    build.insert(
        "ref_day",
        " UNION ALL ".join(f"SELECT patient AS c0, '{a}' AS c1, sf_day({a}) AS c2 FROM sf_ref" for a in ANCHORS),
    )
    build.insert("sex", "SELECT patient AS c0, sex AS c1 FROM sf_ref WHERE sex IS NOT NULL AND sex <> ''")
    # age_in_years in SQL: completed years, a birthday counting from the day itself (the
    # tests hold it to the Python function over every day of four years, 29 February too)
    build.con.execute(
        "CREATE OR REPLACE TEMP TABLE sf_age AS "
        + " UNION ALL ".join(
            f"SELECT patient, '{a}' AS anchor, sf_age(birth_date, {a}) AS years FROM sf_ref "
            "WHERE birth_date IS NOT NULL"
            for a in ANCHORS
        )
    )
    build.insert("age_at", "SELECT patient AS c0, anchor AS c1, years AS c2 FROM sf_age")
    mode = str(build.assumptions["month_length"])
    windows = _windows_asked(build.kb)
    if not windows:
        return
    anchors = sorted({a for a, _ in windows})
    build.con.register("sf_windows", pa.table({"anchor": [a for a, _ in windows], "months": [m for _, m in windows]}))
    build._registered.append("sf_windows")
    union = " UNION ".join(
        f"SELECT CAST(r.{a} AS VARCHAR), CAST(w.months AS VARCHAR) FROM sf_ref r JOIN sf_windows w ON w.anchor = '{a}'"
        for a in anchors
    )
    failed = build.lookup(
        "sf_months",
        f"SELECT * FROM ({union}) AS u(k0, k1)",
        lambda day, n: (months_before(date.fromisoformat(day), int(n), mode).isoformat(),),
        ["day"],
    )
    for anchor in anchors:
        select = (
            f"SELECT r.patient AS c0, '{anchor}' AS c1, m.k1 AS c2, sf_day(CAST(m.day AS DATE)) AS c3, m.bad "
            f"FROM sf_ref r JOIN sf_windows w ON w.anchor = '{anchor}' "
            f"JOIN sf_months m ON m.k0 = CAST(r.{anchor} AS VARCHAR) AND m.k1 = CAST(w.months AS VARCHAR)"
        )
        if failed:
            build.decline(f"SELECT c0 AS patient, bad AS why FROM ({select}) WHERE bad IS NOT NULL")
        build.insert("months_before", f"SELECT c0, c1, c2, c3 FROM ({select}) WHERE bad IS NULL")


def _observations(build: SqlBuild) -> None:

    vocab = build.kb.vocabulary
    items = pa.table(
        {
            "item": list(vocab.items),
            "quantitative": [i.kind == "quantitative" for i in vocab.items.values()],
            "lookback": [i.window == "lookback" for i in vocab.items.values()],
        }
    )
    build.con.register("sf_items", items)
    build._registered.append("sf_items")
    # the latest result of each item up to enrolment by (date, row), in one aggregate: the
    # key is the day number above the row
    build.con.execute(
        """CREATE OR REPLACE TEMP TABLE sf_sel AS
        SELECT l.*, i.quantitative FROM (
            SELECT o.patient, o.item, max(o.k) AS k, arg_max(o.num, o.k) AS num, arg_max(o.cat, o.k) AS cat,
                max(o.date) AS date, arg_max(o.uln, o.k) AS uln, arg_max(o.factor_assumption, o.k) AS factor,
                any_value(f.enrolment) AS enrolment
            FROM (SELECT *, sf_day(date) * 4294967296 + "row" AS k FROM rec_observation) AS o
            JOIN sf_ref f USING (patient) WHERE o.date <= f.enrolment GROUP BY o.patient, o.item) AS l
        JOIN sf_items i USING (item)
        WHERE NOT (i.lookback AND l.date < l.enrolment - CAST(? AS INTEGER))""",
        [build.assumptions.days("lab_lookback_days")],
    )
    _ties(
        build,
        "rec_observation",
        """SELECT patient, item, sf_day(date) * 4294967296 + "row" AS k FROM rec_observation""",
        "sf_sel",
        "two results of one item with the same date and row",
    )
    build.decline(
        """SELECT DISTINCT patient, 'a result whose kind is not its item''s' AS why FROM sf_sel
        WHERE (quantitative AND (num IS NULL OR cat IS NOT NULL))
            OR (NOT quantitative AND (cat IS NULL OR num IS NOT NULL))"""
    )

    def factor(value: str, assumption: str) -> tuple[Decimal]:
        return (number(value) * Decimal(str(build.assumptions[assumption])),)

    if build.lookup(
        "sf_factor",
        "SELECT CAST(num AS VARCHAR), factor FROM sf_sel WHERE factor <> '' AND num IS NOT NULL",
        factor,
        ["value"],
    ):
        build.decline(
            """SELECT s.patient, f.bad AS why FROM sf_sel s JOIN sf_factor f
            ON f.k0 = CAST(s.num AS VARCHAR) AND f.k1 = s.factor WHERE f.bad IS NOT NULL"""
        )
    build.con.execute(
        """UPDATE sf_sel SET num = CAST(f.value AS DECIMAL(38, 28)) FROM sf_factor f
        WHERE sf_sel.factor <> '' AND f.k0 = CAST(sf_sel.num AS VARCHAR) AND f.k1 = sf_sel.factor"""
    )
    build.insert(
        "obs_num", "SELECT patient AS c0, item AS c1, num AS c2, sf_day(date) AS c3 FROM sf_sel WHERE quantitative"
    )
    build.insert(
        "obs_cat", "SELECT patient AS c0, item AS c1, cat AS c2, sf_day(date) AS c3 FROM sf_sel WHERE NOT quantitative"
    )
    wanted = build.plan.selective.get("xuln")
    only = "" if wanted is None else " AND item IN (SELECT unnest(CAST(? AS VARCHAR[])))"  # what a rule reads
    params = [] if wanted is None else [sorted(wanted)]
    xuln = f"""SELECT patient, item, CAST(num AS VARCHAR) AS num, CAST(uln AS VARCHAR) AS uln FROM sf_sel
        WHERE quantitative AND uln > 0 AND num IS NOT NULL{only}"""
    failed = build.lookup(
        "sf_xuln",
        f"SELECT item, num, uln FROM ({xuln})",
        lambda item, value, uln: (times_uln(item, number(value), number(uln), "").value,),
        ["ratio"],
        params,
        numbers=["ratio"],
    )
    joined = f"""SELECT s.patient, s.item, x.ratio, x.bad FROM ({xuln}) AS s JOIN sf_xuln x
        ON x.k0 = s.item AND x.k1 = s.num AND x.k2 = s.uln"""
    if failed:
        build.decline(f"SELECT patient, bad AS why FROM ({joined}) WHERE bad IS NOT NULL", params)
    build.insert("xuln", f"SELECT patient AS c0, item AS c1, ratio AS c2 FROM ({joined}) WHERE bad IS NULL", params)
    add_renal(build)
    add_measures(build)


def _attestations(build: SqlBuild) -> None:
    """`reviewed` for each review, `attested` for the latest word on each other item, by
    (date, row), a word without a date before any dated one."""
    build.decline(
        """SELECT DISTINCT patient, 'a history review without a date' AS why FROM rec_attestation
        WHERE starts_with(item, 'reviewed:') AND date IS NULL"""
    )
    build.insert(
        "reviewed",
        """SELECT patient AS c0, substr(item, length('reviewed:') + 1) AS c1, sf_day(date) AS c2
        FROM rec_attestation WHERE starts_with(item, 'reviewed:') AND date IS NOT NULL""",
    )
    build.con.execute(
        """CREATE OR REPLACE TEMP TABLE sf_attested AS
        SELECT patient, item, arg_max(value, k) AS value, max(k) AS k FROM (
            SELECT *, COALESCE(sf_day(date), 0) * 4294967296 + "row" AS k FROM rec_attestation
            WHERE NOT starts_with(item, 'reviewed:')) AS a
        GROUP BY patient, item"""
    )
    _ties(
        build,
        "rec_attestation",
        """SELECT patient, item, COALESCE(sf_day(date), 0) * 4294967296 + "row" AS k FROM rec_attestation""",
        "sf_attested",
        "two attestations of one item with the same date and row",
    )
    build.insert("attested", "SELECT patient AS c0, item AS c1, value AS c2 FROM sf_attested")


def _ties(build: SqlBuild, records: str, keyed: str, chosen: str, why: str) -> None:
    """Decline the patients whose latest record of an item (in `chosen`, by key `k`) ties
    with another by (date, row): `build_facts` keeps the first in its list, an order the
    tables do not hold. Rows of one file are numbered apart, so only a patient with one row
    number twice (built by hand) can tie: looked for only then."""
    found = build.con.execute(
        f'SELECT EXISTS (SELECT 1 FROM {records} GROUP BY patient, "row" HAVING count(*) > 1)'
    ).fetchone()
    if not found or not found[0]:
        return
    build.decline(
        f"""SELECT DISTINCT r.patient, '{why}' AS why FROM ({keyed}) AS r
        JOIN {chosen} c ON c.patient = r.patient AND c.item = r.item AND c.k = r.k
        GROUP BY r.patient, r.item HAVING count(*) > 1"""
    )


def _finish(build: SqlBuild) -> SetFacts:
    con = build.con
    declined: dict[str, str] = {}
    for pid, why in con.execute("SELECT patient, why FROM sf_declined ORDER BY patient, why").fetchall():
        declined.setdefault(pid, why)
    for relation, decl in build.plan.inputs.items():
        if decl.params and decl.params[0][1] == "patient":
            if not declined:
                continue
            con.execute(f"DELETE FROM {table_name(relation)} WHERE c0 IN (SELECT patient FROM sf_declined)")
        else:  # reference facts: every patient repeats them
            con.execute(
                f"CREATE OR REPLACE TABLE {table_name(relation)} AS SELECT DISTINCT * FROM {table_name(relation)}"
            )
    cohorts: dict[str, tuple[str, ...]] = {}
    rows: list[Any] = con.execute(
        """SELECT r.patient, list(DISTINCT c.cohort) FILTER (WHERE c.cohort IS NOT NULL)
        FROM sf_ref r LEFT JOIN sf_cohort c USING (patient)
        WHERE r.patient NOT IN (SELECT patient FROM sf_declined) GROUP BY r.patient"""
    ).fetchall()
    for pid, found in rows:
        cohorts[pid] = tuple(sorted(found or ()))
    return SetFacts(cohorts, declined)
