"""Facts from several results at once, for many patients (kb/factbase/set_facts.py): renal
function (crcl, egfr), instrument scores, progression (`worsening`) and aPL persistence.

The same choices as kb/factbase/build.py and kb/factbase/measures.py, in SQL over the
selected results (sf_sel) and the reference dates (sf_ref); each formula is the very Python
function those modules call, run once per distinct input.
"""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal

from kb.catalogue.derived import ckd_epi_2021, cockcroft_gault, cockcroft_gault_si
from kb.catalogue.instruments import load_instruments
from kb.factbase.measures import APL_ITEMS, PROGRESSION_ITEMS, _ranges, apl_series, worsening_value
from kb.factbase.set_build import SqlBuild, number

__all__ = ["add_measures", "add_renal"]

_EPOCH = date(2000, 1, 1)  # aPL series depend on the days between tests: counted from here


def add_renal(build: SqlBuild) -> None:
    """`crcl` (measured, else Cockcroft–Gault unless measured_only) and `egfr` (CKD-EPI 2021)."""
    vocab, assumptions = build.kb.vocabulary, build.assumptions
    factor = vocab.items["creatinine"].molar_factor or Decimal("88.4")
    build.insert("crcl", "SELECT patient AS c0, num AS c1 FROM sf_sel WHERE item = 'crcl_measured'")
    inputs = """SELECT r.patient, CAST(a.years AS VARCHAR) AS age, CAST(r.weight_kg AS VARCHAR) AS weight,
            CAST(s.num AS VARCHAR) AS creatinine, CAST(r.sex = 'female' AS VARCHAR) AS female
        FROM sf_ref r JOIN sf_sel s ON s.patient = r.patient AND s.item = 'creatinine'
        JOIN sf_age a ON a.patient = r.patient AND a.anchor = 'enrolment'
        WHERE r.sex IS NOT NULL AND s.num IS NOT NULL"""
    if assumptions["crcl_method"] != "measured_only":
        si = assumptions["crcl_formula"] == "cockcroft_gault_si"

        def clearance(age: str, weight: str, creatinine: str, female: str) -> tuple[Decimal]:
            args = (number(age), number(weight), number(creatinine), female == "true")
            return ((cockcroft_gault_si(*args) if si else cockcroft_gault(*args, factor)).value,)

        cg = f"""SELECT * FROM ({inputs}) AS i WHERE weight IS NOT NULL
            AND patient NOT IN (SELECT patient FROM sf_sel WHERE item = 'crcl_measured')"""
        failed = build.lookup(
            "sf_cg",
            f"SELECT DISTINCT age, weight, creatinine, female FROM ({cg})",
            clearance,
            ["value"],
            numbers=["value"],
        )
        joined = f"""SELECT i.patient, v.value, v.bad FROM ({cg}) AS i JOIN sf_cg v
            ON v.k0 = i.age AND v.k1 = i.weight AND v.k2 = i.creatinine AND v.k3 = i.female"""
        if failed:
            build.decline(f"SELECT patient, bad AS why FROM ({joined}) WHERE bad IS NOT NULL")
        build.insert("crcl", f"SELECT patient AS c0, value AS c1 FROM ({joined}) WHERE bad IS NULL")

    def egfr(age: str, creatinine: str, female: str) -> tuple[Decimal]:
        return (ckd_epi_2021(number(age), number(creatinine), female == "true", factor).value,)

    failed = build.lookup(
        "sf_egfr", f"SELECT DISTINCT age, creatinine, female FROM ({inputs})", egfr, ["value"], numbers=["value"]
    )
    joined = f"""SELECT i.patient, v.value, v.bad FROM ({inputs}) AS i JOIN sf_egfr v
        ON v.k0 = i.age AND v.k1 = i.creatinine AND v.k2 = i.female"""
    if failed:
        build.decline(f"SELECT patient, bad AS why FROM ({joined}) WHERE bad IS NOT NULL")
    build.insert("egfr", f"SELECT patient AS c0, value AS c1 FROM ({joined}) WHERE bad IS NULL")


def add_measures(build: SqlBuild) -> None:
    _scores(build)
    _worsening(build)
    _apl(build)


def _scores(build: SqlBuild) -> None:
    """Each instrument's measures from its recorded items (per distinct set of item values),
    and the recorded total where there is one (it replaces the computed total)."""
    instruments = load_instruments()
    major_set = str(build.assumptions["bvas_major_items"])
    rows = [(i.id, i.total_item) for i in instruments.values()]
    build.con.execute("CREATE OR REPLACE TEMP TABLE sf_instruments (inst VARCHAR, total_item VARCHAR)")
    build.con.executemany("INSERT INTO sf_instruments VALUES (?, ?)", rows)
    # an item's value as measures.py reads it, str(obs.value): a number's digits never
    # equal a grade or "present", so its DECIMAL text reads the same
    build.con.execute(
        """CREATE OR REPLACE TEMP TABLE sf_inst AS
        SELECT patient, split_part(item, '.', 1) AS inst,
            array_to_string(list_sort(list(item || chr(31) || COALESCE(cat, CAST(num AS VARCHAR)))), chr(30)) AS k
        FROM sf_sel WHERE contains(item, '.') AND split_part(item, '.', 1) IN (SELECT inst FROM sf_instruments)
        GROUP BY ALL"""
    )

    def measures(inst: str, key: str) -> list[tuple[str, Decimal, Decimal]]:
        values = [pair.split("\x1f", 1) for pair in key.split("\x1e")]
        found = _ranges(inst, tuple(sorted((item, value) for item, value in values)), major_set)
        return [(m.measure, m.low, m.high) for m in found]

    failed = build.lookup(
        "sf_scores",
        "SELECT DISTINCT inst, k FROM sf_inst",
        measures,
        ["measure", "lo", "hi"],
        many=True,
        numbers=["lo", "hi"],
    )
    build.con.execute(
        """CREATE OR REPLACE TEMP TABLE sf_totals AS
        SELECT t.patient, i.inst, t.num FROM sf_sel t JOIN sf_instruments i ON t.item = i.total_item"""
    )
    scored = """SELECT g.patient, g.inst, m.measure, m.lo, m.hi, m.bad FROM sf_inst g
        JOIN sf_scores m ON m.k0 = g.inst AND m.k1 = g.k
        WHERE NOT (m.measure = 'total' AND (g.patient, g.inst) IN (SELECT (patient, inst) FROM sf_totals))"""
    if failed:
        build.decline(f"SELECT patient, bad AS why FROM ({scored}) WHERE bad IS NOT NULL")
    build.insert(
        "score",
        f"SELECT patient AS c0, inst AS c1, measure AS c2, lo AS c3, hi AS c4 FROM ({scored}) WHERE bad IS NULL",
    )
    build.insert(
        "score",
        "SELECT patient AS c0, inst AS c1, 'total' AS c2, num AS c3, num AS c4 FROM sf_totals",
    )


def _worsening(build: SqlBuild) -> None:
    """The relative (or absolute) change from the earliest result in the progression window
    before the current one to the current one, per progression item."""
    items = sorted(PROGRESSION_ITEMS)
    lookback = build.assumptions.days("lab_lookback_days")
    span = build.assumptions.days("progression_window_days")
    mode = build.assumptions["fvc_decline_mode"]
    build.decline(
        """SELECT DISTINCT patient, 'two different results of a progression item on one day, or one not a number'
            AS why FROM rec_observation WHERE item IN (SELECT unnest(CAST(? AS VARCHAR[])))
        GROUP BY patient, item, date HAVING count(DISTINCT num) > 1 OR count(*) FILTER (WHERE num IS NULL) > 0""",
        [items],
    )
    pairs = """WITH r AS (
            SELECT o.patient, o.item, o.num, o.date, f.enrolment FROM rec_observation o JOIN sf_ref f USING (patient)
            WHERE o.item IN (SELECT unnest(CAST(? AS VARCHAR[]))) AND o.date <= f.enrolment),
        cur AS (SELECT patient, item, max(date) AS d, arg_max(num, date) AS latest, any_value(enrolment) AS enrolment
            FROM r GROUP BY patient, item),
        ref AS (SELECT r.patient, r.item, arg_min(r.num, r.date) AS earlier FROM r JOIN cur USING (patient, item)
            WHERE r.date >= cur.d - CAST(? AS INTEGER) AND r.date < cur.d GROUP BY r.patient, r.item)
        SELECT cur.patient, cur.item, CAST(cur.latest AS VARCHAR) AS latest, CAST(ref.earlier AS VARCHAR) AS earlier
        FROM cur JOIN ref USING (patient, item) WHERE cur.d >= cur.enrolment - CAST(? AS INTEGER)"""
    params = [items, span, lookback]

    def change(item: str, now: str, then: str) -> tuple[Decimal] | None:
        absolute = item != "mrss" and mode == "absolute"
        value = worsening_value(PROGRESSION_ITEMS[item], number(now), number(then), absolute)
        return None if value is None else (value,)

    failed = build.lookup(
        "sf_worse",
        f"SELECT DISTINCT item, latest, earlier FROM ({pairs})",
        change,
        ["value"],
        params,
        numbers=["value"],
    )
    joined = f"""SELECT p.patient, p.item, w.value, w.bad FROM ({pairs}) AS p JOIN sf_worse w
        ON w.k0 = p.item AND w.k1 = p.latest AND w.k2 = p.earlier"""
    if failed:
        build.decline(f"SELECT patient, bad AS why FROM ({joined}) WHERE bad IS NOT NULL", params)
    build.insert(
        "worsening", f"SELECT patient AS c0, item AS c1, value AS c2 FROM ({joined}) WHERE bad IS NULL", params
    )


def _apl(build: SqlBuild) -> None:
    """The count of positive aPL test dates that persist (assumption apl_timing), for every
    patient with an aPL result up to enrolment; each test's dates as offsets from its first."""
    window = build.assumptions.days("apl_window_days")
    apart = build.assumptions["apl_timing"] == "sydney_apart"
    positive = [(item, value) for item, values in APL_ITEMS.items() for value in values]
    build.con.execute("CREATE OR REPLACE TEMP TABLE sf_apl_positive (item VARCHAR, value VARCHAR)")
    build.con.executemany("INSERT INTO sf_apl_positive VALUES (?, ?)", positive)
    build.con.execute(
        """CREATE OR REPLACE TEMP TABLE sf_apl AS
        WITH tested AS (
            SELECT o.patient, o.item, o.cat, o.date FROM rec_observation o JOIN sf_ref f USING (patient)
            WHERE o.item IN (SELECT item FROM sf_apl_positive) AND o.date <= f.enrolment),
        days AS (SELECT t.patient, t.item, list_sort(list(DISTINCT sf_day(t.date))) AS d FROM tested t
            JOIN sf_apl_positive p ON p.item = t.item AND p.value = t.cat GROUP BY t.patient, t.item)
        SELECT t.patient, array_to_string(list_transform(d.d, lambda x: x - d.d[1]), ',') AS k
        FROM (SELECT DISTINCT patient FROM tested) AS t LEFT JOIN days d USING (patient)"""
    )

    def count(key: str) -> tuple[int]:
        dates = [_EPOCH + timedelta(days=int(x)) for x in key.split(",")]
        return (len(apl_series(dates, window, apart)),)

    build.lookup("sf_apl_count", "SELECT DISTINCT k FROM sf_apl WHERE k IS NOT NULL", count, ["n"])
    build.insert(
        "apl_positive_tests",
        """SELECT a.patient AS c0, COALESCE(max(CAST(c.n AS INTEGER)), 0) AS c1
        FROM sf_apl a LEFT JOIN sf_apl_count c ON c.k0 = a.k GROUP BY a.patient""",
    )
