"""The pyDatalog engine, one private state per request.

pyDatalog keeps its database per thread and `Logic(parent)` is not a snapshot (facts leak
into the parent): so every evaluation builds a fresh logic in its own thread, compiles the
rules from the AST, asserts that patient's facts, asks, and throws the state away. A
query that raises leaves debris in pyDatalog's state; the session is then marked broken
and the next one starts clean. Nothing here sees rule or patient text as code.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from decimal import Decimal
from itertools import count
from typing import Any

from pyDatalog import pyEngine
from pyDatalog.Logic import Logic

from kb.errors import KbError
from kb.language.checks import variables_of
from kb.language.compile import PreparedRule, compile_rules, constant, engine_literal, ordered_body, prepare, variable
from kb.language.syntax import Atom, BinOp, Comparison, Const, Literal, Negation, Program, Rule, Term, Var, evaluate

__all__ = ["Engine", "EngineError", "Fact", "Session"]

# Clinical values are Decimal and never float; this only guards against a float slipping in
# (pyDatalog would round it to 8 significant digits). Process-global, set once.
pyEngine.Float_Precision = None

FactValue = Decimal | str | int
Fact = tuple[str, tuple[FactValue, ...]]
_local = threading.local()
_queries = count(1)


class EngineError(KbError):
    """pyDatalog failed on a query; the rule set, not the user's data, needs fixing. A KbError
    all the same, so that every front end reports it without a stack trace (the CLI says it
    is the rule engine's)."""


class Session:
    """One request's view of the engine: ask questions about the facts it was opened with."""

    def __init__(self) -> None:
        self.broken = False

    def ask(self, predicate: str, args: Sequence[FactValue | None]) -> list[tuple[FactValue, ...]]:
        """Solutions of `predicate(args)`, where None stands for an unknown argument."""
        terms = [variable(f"V{i}") if a is None else constant(a) for i, a in enumerate(args)]
        result = self._run(pyEngine.Literal(predicate, terms))
        if result is True:
            return [tuple(a for a in args if a is not None)]
        # pyDatalog answers with every argument of the literal, constants included
        return sorted({tuple(row) for row in result or []}, key=_sort_key)

    def solve(self, body: Sequence[Literal], bindings: Mapping[str, FactValue]) -> list[dict[str, FactValue]]:
        """All ways to satisfy a rule body given some variables' values (for traces)."""
        grounded = [_substitute(lit, bindings) for lit in body]
        if not grounded:
            return [dict(bindings)]
        free = sorted({v.name for lit in grounded for v in _vars(lit) if not v.anonymous})
        counter = [0]
        literals = [engine_literal(lit, counter) for lit in ordered_body(grounded)]
        # a temporary clause, so that the answer has one column per free variable
        head = pyEngine.Literal(f"_pyD_query_kb{next(_queries)}", [variable(n) for n in free])
        clause = pyEngine.Clause(head, literals)
        pyEngine.assert_(clause)
        try:
            result = self._run(head)
        finally:
            pyEngine.retract(clause)
        if result is True or (not free and result):
            return [dict(bindings)]
        out = []
        for row in sorted(set(result or []), key=_sort_key):
            found = dict(bindings)
            found.update(zip(free, row, strict=True))
            out.append(found)
        return out

    def _run(self, literal: Any) -> Any:
        if self.broken:
            raise EngineError("this engine session failed earlier; open a new one")
        try:
            return literal.ask()
        except Exception as exc:  # pyDatalog raises bare Exceptions and DatalogErrors alike
            self.broken = True
            raise EngineError(f"pyDatalog failed: {exc}") from exc


def _sort_key(row: tuple[Any, ...]) -> tuple[str, ...]:
    return tuple(f"{type(v).__name__}:{v:>20}" if isinstance(v, Decimal | int) else str(v) for v in row)


def _vars(lit: Literal) -> Iterator[Var]:
    if isinstance(lit, Atom):
        for a in lit.args:
            yield from variables_of(a)
    elif isinstance(lit, Negation):
        for a in lit.atom.args:
            yield from variables_of(a)
    else:
        yield from variables_of(lit.left)
        yield from variables_of(lit.right)


def _substitute(lit: Literal, bindings: Mapping[str, FactValue]) -> Literal:
    def term(t: Term) -> Term:
        if isinstance(t, Var) and not t.anonymous and t.name in bindings:
            value = bindings[t.name]
            return Const(Decimal(value) if isinstance(value, int) else value, t.pos)
        if isinstance(t, BinOp):
            # pyDatalog leaves arithmetic on constants unevaluated in a comparison: fold it here
            folded = evaluate(t, bindings)
            if isinstance(folded, Decimal):
                return Const(folded, t.pos)
            return BinOp(t.op, term(t.left), term(t.right), t.pos)
        return t

    if isinstance(lit, Atom):
        return Atom(lit.predicate, tuple(term(a) for a in lit.args), lit.pos)
    if isinstance(lit, Negation):
        return Negation(Atom(lit.atom.predicate, tuple(term(a) for a in lit.atom.args), lit.atom.pos), lit.pos)
    assert isinstance(lit, Comparison)
    return Comparison(lit.op, term(lit.left), term(lit.right), lit.pos)


class Engine:
    """Holds the checked rule program; opens isolated sessions over patient facts."""

    def __init__(self, program: Program) -> None:
        self.program = program
        self._needed: dict[frozenset[str], list[Rule]] = {}
        self._prepared: dict[frozenset[str] | None, list[PreparedRule]] = {}

    def rules_for_roots(self, roots: frozenset[str] | None) -> list[Rule]:
        """The rules needed to answer questions about `roots` (all rules when None)."""
        if roots is None:
            return self.program.rules
        if roots not in self._needed:
            needed = set(self.program.depends_on(roots))
            self._needed[roots] = [r for r in self.program.rules if r.head.predicate in needed]
        return self._needed[roots]

    def _prepared_for(self, roots: frozenset[str] | None) -> list[PreparedRule]:
        """The same rules, prepared once (ordering and terms) for every session to compile."""
        found = self._prepared.get(roots)
        if found is None:
            found = self._prepared[roots] = [prepare(rule) for rule in self.rules_for_roots(roots)]
        return found

    @contextmanager
    def session(self, facts: Iterable[Fact], roots: frozenset[str] | None = None) -> Iterator[Session]:
        """A session over `facts`; with `roots`, only the rules those predicates need are
        compiled (a patient outside a cohort never needs that cohort's block)."""
        if getattr(_local, "busy", False):
            raise EngineError("an engine session is already open in this thread")
        _local.busy = True
        try:
            Logic()  # a fresh, empty logic for this thread: nothing from an earlier request
            compile_rules(self._prepared_for(roots))
            for name, args in facts:
                pyEngine.assert_(pyEngine.Clause(pyEngine.Literal(name, [pyEngine.Term_of(a) for a in args]), []))
            yield Session()
        finally:
            Logic()  # drop this request's facts at once
            _local.busy = False
