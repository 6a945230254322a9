"""The rule parser: Datalog text to a typed AST, and located syntax errors."""

from __future__ import annotations

from decimal import Decimal

import pytest

from kb.language.parser import RuleSyntaxError, parse_text
from kb.language.syntax import Atom, BinOp, Comparison, Const, Negation, Var


def test_rule_with_comparison_negation_and_arithmetic() -> None:
    program = parse_text(
        ".decl p(P: patient, T: truth)\n"
        "p(P, yes) :- obs_num(P, platelets, V, D), V >= 50, not q(P), W = D - 28.  % comment\n",
        "r.dl",
    )
    assert list(program.declarations) == ["p"]
    rule = program.rules[0]
    assert rule.head == Atom("p", (Var("P", rule.pos), Const("yes", rule.pos)), rule.pos)
    atom, comparison, negation, assignment = rule.body
    assert isinstance(atom, Atom) and atom.args[1] == Const("platelets", atom.pos)
    assert isinstance(comparison, Comparison) and comparison.op == ">="
    assert comparison.right == Const(Decimal(50), comparison.pos)
    assert isinstance(negation, Negation) and negation.atom.predicate == "q"
    assert isinstance(assignment, Comparison) and isinstance(assignment.right, BinOp)
    assert rule.text.startswith("p(P, yes) :- obs_num(P, platelets, V, D), V >= 50")
    assert (rule.pos.line, rule.pos.col) == (2, 1)


def test_numbers_are_exact_decimals_never_floats() -> None:
    rule = parse_text("p(X) :- q(X, V), V <= 1.5, V > -0.25.").rules[0]
    bounds = [lit.right for lit in rule.body if isinstance(lit, Comparison)]
    assert bounds == [Const(Decimal("1.5"), bounds[0].pos), Const(Decimal("-0.25"), bounds[1].pos)]
    assert all(isinstance(b, Const) and isinstance(b.value, Decimal) for b in bounds)


def test_keywords_do_not_swallow_longer_names() -> None:
    program = parse_text(".decl nothing(P: patient) input\nnotable(P) :- nothing(P), not nota(P).")
    rule = program.rules[0]
    assert rule.head.predicate == "notable"
    assert isinstance(rule.body[1], Negation) and rule.body[1].atom.predicate == "nota"
    assert program.declarations["nothing"].role == "input"


@pytest.mark.parametrize(
    ("text", "line", "col", "words"),
    [
        ("p(X) :- q(X) r(X).", 1, 14, "unexpected 'r'"),
        ("p(X) :- q(X)", 1, 13, "ends in the middle of a rule"),
        ("p(X) :- q($).", 1, 11, "unexpected character '$'"),
        ("\n\np(X) :- q(X), X >> 3.", 3, 18, "unexpected '>'"),
        ("p(X) :- Q(X).", 1, 10, "unexpected"),
    ],
)
def test_syntax_errors_name_file_line_and_column(text: str, line: int, col: int, words: str) -> None:
    with pytest.raises(RuleSyntaxError) as caught:
        parse_text(text, "kb/rules/bad.dl")
    (problem,) = caught.value.problems
    assert (problem.path, problem.row, problem.column) == ("kb/rules/bad.dl", line, col)
    assert words in problem.message
    assert str(problem).startswith(f"kb/rules/bad.dl:{line}:{col}: ")
