"""Compile the rule AST into pyDatalog clauses of the current thread's logic.

The clauses are built from pyDatalog's own term objects; no text is handed to `load()`
(which would `exec` it). The body is reordered so that pyDatalog sees every binding before
the comparison or negation that needs it (its evaluation is left to right).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from decimal import Decimal
from itertools import count
from typing import Any

from pyDatalog import pyParser

from kb.language.checks import variables_of
from kb.language.syntax import Atom, BinOp, Comparison, Const, Literal, Negation, Rule, Term, Var

__all__ = ["compile_rules", "constant", "ordered_body", "query_literal", "to_expression"]

_OPERATORS = {"=": "==", "!=": "!=", "<": "<", "<=": "<=", ">": ">", ">=": ">="}


def constant(value: Decimal | str | int) -> Any:
    """A pyDatalog constant; forced, so that an upper-case string is never read as a variable."""
    return pyParser.Term(value, forced_type="constant")


def to_expression(term: Term, names: dict[int, str] | None = None) -> Any:
    if isinstance(term, Const):
        return constant(term.value)
    if isinstance(term, Var):
        name = term.name
        if term.anonymous:
            name = (names or {}).get(id(term), f"_Anon{next(_anonymous)}")
        return pyParser.Term(name)
    left, right = to_expression(term.left, names), to_expression(term.right, names)
    return pyParser.Operation(left, term.op, right)


_anonymous = count(1)


def ordered_body(body: Sequence[Literal], bound: Iterable[str] = ()) -> list[Literal]:
    """Positive atoms first, then assignments once their inputs are bound, then tests."""
    known = set(bound)
    atoms = [lit for lit in body if isinstance(lit, Atom)]
    for atom in atoms:
        known.update(v.name for a in atom.args for v in variables_of(a))
    ordered: list[Literal] = list(atoms)
    rest = [lit for lit in body if not isinstance(lit, Atom)]
    progress = True
    while progress:
        progress = False
        for lit in list(rest):
            if isinstance(lit, Comparison) and lit.op == "=":
                for target, source in ((lit.left, lit.right), (lit.right, lit.left)):
                    if isinstance(target, Var) and target.name not in known and \
                            all(v.name in known for v in variables_of(source)):
                        ordered.append(Comparison("=", target, source, lit.pos))
                        known.add(target.name)
                        rest.remove(lit)
                        progress = True
                        break
    ordered.extend(lit for lit in rest if isinstance(lit, Comparison))
    ordered.extend(lit for lit in rest if isinstance(lit, Negation))
    return ordered


def query_literal(lit: Literal) -> Any:
    """One body literal as a pyDatalog Query or comparison."""
    if isinstance(lit, Atom):
        return pyParser.Literal.make(lit.predicate, [to_expression(a) for a in lit.args])
    if isinstance(lit, Negation):
        return pyParser.Literal.make("~" + lit.atom.predicate, [to_expression(a) for a in lit.atom.args])
    return pyParser.Literal.make_for_comparison(
        to_expression(lit.left), _OPERATORS[lit.op], to_expression(lit.right)
    )


def compile_rules(rules: Iterable[Rule]) -> int:
    """Add every rule to the current thread's pyDatalog logic; returns how many."""
    n = 0
    for rule in rules:
        head = pyParser.Literal.make(rule.head.predicate, [to_expression(a) for a in rule.head.args])
        if rule.is_fact:
            +head  # noqa: B018 - pyDatalog asserts a fact with unary plus
        else:
            body = [query_literal(lit) for lit in ordered_body(rule.body)]
            conjunction = body[0]
            for lit in body[1:]:
                conjunction = conjunction & lit
            head <= conjunction  # noqa: B015 - pyDatalog adds a clause with <=
        n += 1
    return n
