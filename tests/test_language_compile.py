"""Compilation of the AST into pyDatalog clauses: ordering and semantics preserved."""

from __future__ import annotations

from decimal import Decimal

from kb.language.compile import ordered_body
from kb.language.engine import Engine
from kb.language.parser import parse_text
from kb.language.syntax import Atom, Comparison, Negation

PROGRAM = parse_text(
    ".decl num(P: patient, V: number, D: day) input\n"
    ".decl flag(P: patient) input\n"
    ".decl late(P: patient, W: day)\n"
    ".decl ok(P: patient, T: truth)\n"
    # written with the test and the assignment before the atom that binds them
    "late(P, W) :- W = D + 7, W > 10, num(P, _, D).\n"
    "ok(P, yes) :- not flag(P), V >= 50, num(P, V, _).\n"
    "ok(P, no) :- num(P, V, _), V < 50.\n",
    "c.dl",
)


def test_body_is_ordered_atoms_then_assignments_then_tests() -> None:
    late = PROGRAM.rules[0]
    kinds = [type(lit).__name__ for lit in ordered_body(late.body)]
    assert kinds == ["Atom", "Comparison", "Comparison"]
    first_test = ordered_body(late.body)[1]
    assert isinstance(first_test, Comparison) and first_test.op == "="
    ok = ordered_body(PROGRAM.rules[1].body)
    assert isinstance(ok[0], Atom) and isinstance(ok[1], Comparison) and isinstance(ok[2], Negation)


def test_compiled_rules_answer_as_written_whatever_the_literal_order() -> None:
    facts = [
        ("num", ("A", Decimal(50), 5)),
        ("num", ("B", Decimal("49.99"), 2)),
        ("num", ("C", Decimal(80), 9)),
        ("flag", ("C",)),
    ]
    with Engine(PROGRAM).session(facts) as session:
        assert session.ask("ok", [None, None]) == [("A", "yes"), ("B", "no")]
        assert session.ask("late", [None, None]) == [("A", Decimal(12)), ("C", Decimal(16))]
