"""Compile the rule AST into clauses of the current thread's pyDatalog logic.

Clauses are built directly from pyDatalog's engine objects (`pyEngine.Literal`, `Var`,
`Operation`, `Clause`); no text is handed to `load()`, which would `exec` it, and the slow
operator-overloading layer of pyDatalog is skipped. The body is reordered so that the
engine sees every binding before the comparison or negation that needs it (it evaluates
left to right).

Building the engine's terms and ordering the bodies depends on the rule alone, so it is done
once per rule (`prepare`); only the predicates belong to a thread's logic, and they are
looked up each time a session compiles its rules.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from pyDatalog import pyEngine

from kb.language.checks import variables_of
from kb.language.syntax import Atom, Comparison, Const, Literal, Negation, Rule, Term, Var

__all__ = ["PreparedRule", "compile_rules", "constant", "engine_literal", "ordered_body", "prepare", "variable"]

_OPERATORS = {"=": "==", "!=": "!=", "<": "<", "<=": "<=", ">": ">", ">=": ">="}


def constant(value: Decimal | str | int) -> Any:
    return pyEngine.Term_of(value)


def variable(name: str) -> Any:
    return pyEngine.Var(name)


def _term(term: Term, anonymous: list[int]) -> Any:
    if isinstance(term, Const):
        return constant(term.value)
    if isinstance(term, Var):
        if term.anonymous:
            anonymous[0] += 1
            return variable(f"_Anon{anonymous[0]}")
        return variable(term.name)
    return pyEngine.Operation(_term(term.left, anonymous), term.op, _term(term.right, anonymous))


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
                    if (
                        isinstance(target, Var)
                        and target.name not in known
                        and all(v.name in known for v in variables_of(source))
                    ):
                        ordered.append(Comparison("=", target, source, lit.pos))
                        known.add(target.name)
                        rest.remove(lit)
                        progress = True
                        break
    ordered.extend(lit for lit in rest if isinstance(lit, Comparison))
    ordered.extend(lit for lit in rest if isinstance(lit, Negation))
    return ordered


#: A literal as the engine takes it: the predicate's name (`~name` for a negation) and its
#: terms. Terms (variables, constants, operations) are values that belong to no logic.
EngineLiteral = tuple[str, tuple[Any, ...]]


def _engine_terms(lit: Literal | Atom, counter: list[int]) -> EngineLiteral:
    if isinstance(lit, Atom):
        return lit.predicate, tuple(_term(a, counter) for a in lit.args)
    if isinstance(lit, Negation):
        return "~" + lit.atom.predicate, tuple(_term(a, counter) for a in lit.atom.args)
    return _OPERATORS[lit.op], (_term(lit.left, counter), _term(lit.right, counter))


def engine_literal(lit: Literal | Atom, anonymous: list[int] | None = None) -> Any:
    """One literal as a pyDatalog engine literal (negation is the `~` predicate)."""
    name, terms = _engine_terms(lit, anonymous if anonymous is not None else [0])
    return pyEngine.Literal(name, list(terms))


@dataclass(frozen=True)
class PreparedRule:
    """A rule with its body ordered and its engine terms built, ready to compile into any logic."""

    head: EngineLiteral
    body: tuple[EngineLiteral, ...]


def prepare(rule: Rule) -> PreparedRule:
    counter = [0]
    head = _engine_terms(rule.head, counter)
    return PreparedRule(head, tuple(_engine_terms(lit, counter) for lit in ordered_body(rule.body)))


def compile_rules(rules: Iterable[Rule | PreparedRule]) -> int:
    """Add every rule to the current thread's pyDatalog logic; returns how many."""
    n = 0
    for rule in rules:
        ready = rule if isinstance(rule, PreparedRule) else prepare(rule)
        # a fresh list per literal: the engine rewrites a literal's terms in place on some paths
        head = pyEngine.Literal(ready.head[0], list(ready.head[1]))
        body = [pyEngine.Literal(name, list(terms)) for name, terms in ready.body]
        pyEngine.assert_(pyEngine.Clause(head, body))
        n += 1
    return n
