"""Event facts for many patients (kb/factbase/set_facts.py): events, unrecognised records,
trial diagnoses, vocabulary classes, glucocorticoid doses, courses and washouts.

What a record means (the condition or agent it names, whether it is understood, its cohort,
whether it is a single dose, its drug) depends on its words and codes alone: it is worked
out by build.py's own functions once per distinct (kind, name, agent, code, frequency). Its
days come from SQL: an ongoing exposure lasts through the latest reference date. Courses
are a gaps-and-islands query: a drug's records in (start, row) order, a new course where a
record starts more than course_gap_days after every earlier one has ended.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from decimal import Decimal

import pyarrow as pa

from kb.catalogue.derived import Derivation, doses_per_day, per_kg, prednisone_equivalent, washout_days
from kb.factbase.build import _code, _condition
from kb.factbase.exposures import single_dose
from kb.factbase.set_build import SqlBuild, number
from kb.records.patients import Event, Source

__all__ = ["add_events"]

_KEY = ("kind", "name", "agent", "code", "frequency")
_SCALES = {"": Decimal(1), "mg": Decimal(1), "g": Decimal(1000)}


def add_events(build: SqlBuild) -> None:
    _meanings(build)
    _events(build)
    _classes(build)
    _doses(build)
    _courses(build)
    _washouts(build)


def _meanings(build: SqlBuild) -> None:
    """sf_meaning: per distinct record words, what `_events` and `courses` make of them."""
    vocab = build.kb.vocabulary
    default_system = str(build.assumptions["default_code_system"])

    def meaning(
        kind: str, name: str | None, agent: str | None, code: str | None, frequency: str | None
    ) -> tuple[object, ...]:
        # text columns a reader may leave NULL are the loader's "" (an Event's fields are str)
        name, code, frequency = name or "", code or "", frequency or ""
        event = Event(kind, name, agent, code, date(2000, 1, 1), None, Source("", 0), frequency=frequency)
        system, bare = _code(event, default_system)
        condition, understood = _condition(event, vocab, system, bare)
        cohort = vocab.cohort_of(system, bare) if kind == "diagnosis" and bare else None
        drug = None
        if kind == "medication" and agent:
            drug = vocab.agents[agent].moiety if agent in vocab.agents else agent
        shown = agent or condition or name or code
        return shown, condition, understood, single_dose(event), cohort, drug

    failed = build.lookup(
        "sf_meaning",
        "SELECT DISTINCT kind, name, agent, code, frequency FROM rec_event",
        meaning,
        ["shown", "condition", "understood", "single", "cohort", "drug"],
    )
    same = " AND ".join(f"m.k{i} IS NOT DISTINCT FROM e.{c}" for i, c in enumerate(_KEY))
    build.con.execute(
        f"""CREATE OR REPLACE TEMP TABLE sf_event AS
        SELECT e.*, m.shown, m.condition, m.understood = 'True' AS understood, m.cohort, m.drug,
            r.enrolment, sf_day(e.start_date) AS s,
            COALESCE(e.end_date, CASE WHEN m.single = 'True' THEN e.start_date
                ELSE greatest(e.start_date, r.screening, r.enrolment, r.apheresis) END) AS last
        FROM rec_event e JOIN sf_ref r USING (patient) JOIN sf_meaning m ON {same}"""
    )
    if failed:
        build.decline(
            """SELECT DISTINCT e.patient, 'a record that could not be interpreted: ' || m.bad AS why
        FROM rec_event e JOIN sf_meaning m ON """
            + same
            + " WHERE m.bad IS NOT NULL"
        )
    build.decline(
        "SELECT DISTINCT patient, 'an event ending before it starts' AS why FROM rec_event WHERE end_date < start_date"
    )


def _events(build: SqlBuild) -> None:
    build.insert("event", "SELECT patient AS c0, kind AS c1, shown AS c2, s AS c3, sf_day(last) AS c4 FROM sf_event")
    build.insert(
        "unrecognised",
        "SELECT patient AS c0, kind AS c1, s AS c2, sf_day(last) AS c3 FROM sf_event WHERE NOT understood",
    )
    build.con.execute(
        """CREATE OR REPLACE TEMP TABLE sf_cohort AS
        SELECT patient, cohort, code, s FROM sf_event WHERE kind = 'diagnosis' AND cohort IS NOT NULL"""
    )
    build.insert("cohort_diagnosis", "SELECT patient AS c0, cohort AS c1, code AS c2, s AS c3 FROM sf_cohort")


def _classes(build: SqlBuild) -> None:
    """condition_class and agent_class of every condition and agent a record names."""
    vocab = build.kb.vocabulary
    conditions = build.con.execute("SELECT DISTINCT condition FROM sf_event WHERE condition IS NOT NULL").fetchall()
    agents = build.con.execute(
        "SELECT DISTINCT agent FROM sf_event WHERE condition IS NULL AND agent IS NOT NULL AND agent <> ''"
    ).fetchall()
    for relation, table in (
        ("condition_class", [(c, cls) for (c,) in conditions for cls in vocab.conditions[c].classes]),
        ("agent_class", [(a, cls) for (a,) in agents for cls in vocab.agents[a].classes]),
    ):
        _rows(build, "sf_classes", table, 2)
        build.insert(relation, "SELECT DISTINCT c0, c1 FROM sf_classes")
        build.con.unregister("sf_classes")


def _rows(build: SqlBuild, name: str, rows: Sequence[tuple[object, ...]], width: int) -> None:
    columns = list(zip(*rows, strict=True)) if rows else [() for _ in range(width)]
    build.con.register(name, pa.table({f"c{i}": pa.array(list(c), pa.string()) for i, c in enumerate(columns)}))


def _doses(build: SqlBuild) -> None:
    """Each glucocorticoid record's daily prednisone-equivalent dose (and per kg), or that
    its dose is missing or not understood."""
    agents = build.kb.vocabulary.agents
    steroids = sorted(name for name, a in agents.items() if a.prednisone_factor is not None)

    def dose(agent: str, amount: str | None, unit: str | None, frequency: str | None) -> tuple[object, ...]:
        per_day = doses_per_day(frequency or "")
        scale = _SCALES.get((unit or "").strip().casefold())
        if amount is None or per_day is None or scale is None:
            return ("missing", None)
        factor = agents[agent].prednisone_factor
        assert factor is not None
        return ("ok", prednisone_equivalent(agent, number(amount) * scale, factor, per_day, frequency or "").value)

    records = """SELECT patient, agent, s, sf_day(last) AS x, CAST(dose AS VARCHAR) AS dose, dose_unit, frequency
        FROM sf_event WHERE kind = 'medication' AND agent IN (SELECT unnest(CAST(? AS VARCHAR[])))"""
    failed = build.lookup(
        "sf_dose",
        f"SELECT DISTINCT agent, dose, dose_unit, frequency FROM ({records})",
        dose,
        ["how", "daily"],
        [steroids],
    )
    joined = f"""SELECT r.patient, r.agent, r.s, r.x, d.how, d.daily, d.bad FROM ({records}) AS r JOIN sf_dose d
        ON d.k0 = r.agent AND d.k1 IS NOT DISTINCT FROM r.dose AND d.k2 IS NOT DISTINCT FROM r.dose_unit
        AND d.k3 IS NOT DISTINCT FROM r.frequency"""
    build.con.execute(f"CREATE OR REPLACE TEMP TABLE sf_doses AS {joined}", [steroids])
    if failed:
        build.decline("SELECT patient, bad AS why FROM sf_doses WHERE bad IS NOT NULL")
    build.insert(
        "dose_missing", "SELECT patient AS c0, agent AS c1, s AS c2, x AS c3 FROM sf_doses WHERE how = 'missing'"
    )
    build.insert(
        "pred_equivalent", "SELECT patient AS c0, agent AS c1, s AS c2, daily AS c3 FROM sf_doses WHERE how = 'ok'"
    )
    weighed = """SELECT d.patient, d.agent, d.s, d.daily, CAST(r.weight_kg AS VARCHAR) AS weight
        FROM sf_doses d JOIN sf_ref r USING (patient) WHERE d.how = 'ok' AND r.weight_kg <> 0"""

    def kg(daily: str, weight: str) -> tuple[Decimal]:
        return (per_kg(Derivation("", "", (), number(daily)), number(weight)).value,)

    failed = build.lookup("sf_kg", f"SELECT DISTINCT daily, weight FROM ({weighed})", kg, ["value"])
    joined = f"""SELECT w.patient, w.agent, w.s, k.value, k.bad FROM ({weighed}) AS w JOIN sf_kg k
        ON k.k0 = w.daily AND k.k1 = w.weight"""
    if failed:
        build.decline(f"SELECT patient, bad AS why FROM ({joined}) WHERE bad IS NOT NULL")
    build.insert(
        "pred_mg_per_kg", f"SELECT patient AS c0, agent AS c1, s AS c2, value AS c3 FROM ({joined}) WHERE bad IS NULL"
    )


def _courses(build: SqlBuild) -> None:
    """`courses` of kb/factbase/exposures.py as gaps and islands. A record's last day is never
    before its start (an event ending earlier is declined), so the latest end of all earlier
    records of the drug is the latest end of the current course's."""
    gap = build.assumptions.days("course_gap_days")
    build.decline(
        """SELECT DISTINCT patient, 'two agents of one drug start the same day on the same row' AS why
        FROM sf_event WHERE drug IS NOT NULL GROUP BY patient, drug, start_date, "row"
        HAVING count(DISTINCT agent) > 1"""
    )
    build.insert(
        "course",
        """WITH g AS (
            SELECT *, max(last) OVER (PARTITION BY patient, drug ORDER BY start_date, "row"
                ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING) AS before FROM sf_event WHERE drug IS NOT NULL),
        h AS (
            SELECT *, sum(CASE WHEN before IS NULL OR start_date - before > CAST(? AS INTEGER) THEN 1 ELSE 0 END)
                OVER (PARTITION BY patient, drug ORDER BY start_date, "row" ROWS UNBOUNDED PRECEDING) AS n FROM g),
        c AS (
            SELECT patient, first(agent ORDER BY start_date, "row") AS agent, min(start_date) AS start,
                max(last) AS finish, any_value(enrolment) AS enrolment FROM h GROUP BY patient, drug, n)
        SELECT patient AS c0, agent AS c1, sf_day(start) AS c2, sf_day(finish) AS c3,
            least(finish, enrolment) - start AS c4 FROM c WHERE start <= enrolment""",
        [gap],
    )


def _washouts(build: SqlBuild) -> None:
    """Washout days (5 half-lives) of every agent recorded that has a half-life."""
    agents = build.kb.vocabulary.agents
    found = build.con.execute("SELECT DISTINCT agent FROM sf_event WHERE agent IS NOT NULL").fetchall()
    rows: list[tuple[object, ...]] = []
    for (name,) in found:
        agent = agents.get(name)
        if agent is None:
            continue
        half_life = agent.half_life_hours
        if name == "tacrolimus":
            half_life = Decimal(str(build.assumptions["tacrolimus_half_life_hours"]))
        if half_life is not None:
            days = washout_days(name, half_life, str(build.assumptions["washout_rounding"])).value
            rows.append((name, format(days, "f")))
    _rows(build, "sf_washout", rows, 2)
    build.insert("washout_days", "SELECT c0, c1 FROM sf_washout")
    build.con.unregister("sf_washout")
