"""The rule AST as SQL: joins, negation, assignments, recursion, exact numbers."""

from __future__ import annotations

from decimal import Decimal

import duckdb
import pytest

from kb.language.parser import parse_text
from kb.language.sql import SqlUnsupported, compile_sql, fits_exactly, table_name
from kb.screening.batch import _run as run_plan


def _run(source: str, facts: dict[str, list[tuple[object, ...]]], ask: str) -> set[tuple[object, ...]]:
    program = parse_text(source, "test.dl")
    plan = compile_sql(program)
    con = duckdb.connect()
    for relation in plan.inputs:
        con.execute(plan.empty_table(relation))
        for row in facts.get(relation, []):
            con.execute(f"INSERT INTO {table_name(relation)} VALUES ({', '.join('?' for _ in row)})", list(row))
    run_plan(con, plan)  # the batch path's own runner, fixpoints included
    return set(con.execute(f"SELECT * FROM {table_name(ask)}").fetchall())


DECLS = """
.decl obs_num(P: patient, Item: item, Value: number, Day: day) input
.decl ref_day(P: patient, Anchor: anchor, Day: day) input
.decl reviewed(P: patient, Category: category, Day: day) input
"""


def test_a_criterion_with_a_bound_and_negation() -> None:
    source = (
        DECLS
        + """
.decl low(P: patient)
.decl ok(P: patient, T: truth)
low(P) :- obs_num(P, platelets, V, _), V < 50.
ok(P, yes) :- obs_num(P, platelets, _, _), not low(P).
ok(P, no) :- low(P).
"""
    )
    facts = {"obs_num": [("A", "platelets", Decimal("50"), 1), ("B", "platelets", Decimal("49.9"), 1)]}
    assert _run(source, facts, "ok") == {("A", "yes"), ("B", "no")}


def test_day_arithmetic_and_an_assignment() -> None:
    source = (
        DECLS
        + """
.decl window_from(P: patient, From: day)
.decl recent(P: patient, Day: day)
window_from(P, From) :- ref_day(P, enrolment, E), From = E - 28.
recent(P, D) :- window_from(P, From), reviewed(P, medications, D), D >= From.
"""
    )
    facts = {"ref_day": [("A", "enrolment", 100)], "reviewed": [("A", "medications", 72), ("A", "medications", 71)]}
    assert _run(source, facts, "window_from") == {("A", 72)}
    assert _run(source, facts, "recent") == {("A", 72)}


def test_recursion_reaches_a_fixpoint() -> None:
    source = """
.decl edge(A: symbol, B: symbol) input
.decl path(A: symbol, B: symbol)
path(A, B) :- edge(A, B).
path(A, C) :- path(A, B), edge(B, C).
"""
    facts = {"edge": [("a", "b"), ("b", "c"), ("c", "d")]}
    assert _run(source, facts, "path") == {("a", "b"), ("b", "c"), ("c", "d"), ("a", "c"), ("b", "d"), ("a", "d")}


def test_constants_are_quoted_not_spliced() -> None:
    source = """
.decl attested(P: patient, Item: attestation, Value: symbol) input
.decl odd(P: patient)
odd(P) :- attested(P, note, "it's; DROP TABLE x").
"""
    facts = {"attested": [("A", "note", "it's; DROP TABLE x"), ("B", "note", "other")]}
    assert _run(source, facts, "odd") == {("A",)}


def test_exact_decimals_compare_like_the_rules() -> None:
    source = (
        DECLS
        + """
.decl over(P: patient)
over(P) :- obs_num(P, ratio, V, _), V > 1.5.
"""
    )
    facts = {
        "obs_num": [("A", "ratio", Decimal("1.5"), 1), ("B", "ratio", Decimal("1.5000000000000000000000000001"), 1)]
    }
    assert _run(source, facts, "over") == {("B",)}
    assert fits_exactly(Decimal("1.5000000000000000000000000001"))


@pytest.mark.parametrize(
    ("value", "fits"),
    [
        (Decimal("9999999999.9"), True),
        (Decimal("10000000000"), False),
        (Decimal("0.0000000000000000000000000001"), True),
        (Decimal("0.00000000000000000000000000001"), False),
        (Decimal("NaN"), False),
        (740000, True),
    ],
)
def test_which_numbers_fit(value: Decimal | int, fits: bool) -> None:
    assert fits_exactly(value) is fits


def test_products_are_refused() -> None:
    source = (
        DECLS
        + """
.decl doubled(P: patient, V: number)
doubled(P, W) :- obs_num(P, x, V, _), W = V * 2.
"""
    )
    with pytest.raises(SqlUnsupported, match="not evaluated exactly"):
        compile_sql(parse_text(source, "test.dl"))
