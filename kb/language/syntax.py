"""The typed AST of the rule language, shared by the checker, the compiler and the explainer.

Numbers are `Decimal`, never float, so that a bound written `1.5` in a rule compares exactly
(DESIGN.md principle 8). Every node keeps its position for `file:line:col` messages.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal

__all__ = [
    "Atom",
    "BinOp",
    "Comparison",
    "Const",
    "Declaration",
    "Literal",
    "Negation",
    "Pos",
    "Program",
    "Rule",
    "Term",
    "Value",
    "Var",
    "evaluate",
    "format_term",
]

Value = Decimal | str


@dataclass(frozen=True)
class Pos:
    path: str
    line: int
    col: int

    def __str__(self) -> str:
        return f"{self.path}:{self.line}:{self.col}"


@dataclass(frozen=True)
class Var:
    name: str
    pos: Pos = field(compare=False)

    @property
    def anonymous(self) -> bool:
        return self.name == "_"


@dataclass(frozen=True)
class Const:
    """A symbol (lower-case name or quoted string) or a number."""

    value: Value
    pos: Pos = field(compare=False)

    @property
    def is_number(self) -> bool:
        return isinstance(self.value, Decimal)


@dataclass(frozen=True)
class BinOp:
    op: str
    left: Term
    right: Term
    pos: Pos = field(compare=False)


Term = Var | Const | BinOp


@dataclass(frozen=True)
class Atom:
    predicate: str
    args: tuple[Term, ...]
    pos: Pos = field(compare=False)

    @property
    def arity(self) -> int:
        return len(self.args)


@dataclass(frozen=True)
class Negation:
    atom: Atom
    pos: Pos = field(compare=False)


@dataclass(frozen=True)
class Comparison:
    op: str  # one of = != < <= > >=
    left: Term
    right: Term
    pos: Pos = field(compare=False)


Literal = Atom | Negation | Comparison


@dataclass(frozen=True)
class Rule:
    head: Atom
    body: tuple[Literal, ...]
    pos: Pos = field(compare=False)
    text: str = field(compare=False, default="")

    @property
    def is_fact(self) -> bool:
        return not self.body


@dataclass(frozen=True)
class Declaration:
    """`.decl name(Arg: type, ...) [input|computed]`.

    `input` relations are asserted from patient and reference facts; `computed` ones by a
    declared derivation function (exact arithmetic, with a trace node); the others by rules.
    """

    name: str
    params: tuple[tuple[str, str], ...]
    role: str  # "input", "computed" or "rule"
    pos: Pos = field(compare=False)

    @property
    def arity(self) -> int:
        return len(self.params)


@dataclass
class Program:
    declarations: dict[str, Declaration] = field(default_factory=dict)
    rules: list[Rule] = field(default_factory=list)
    duplicate_declarations: list[Declaration] = field(default_factory=list)
    _by_head: tuple[int, dict[str, list[Rule]]] = field(default=(-1, {}), repr=False, compare=False)

    def rules_for(self, predicate: str) -> list[Rule]:
        if self._by_head[0] != len(self.rules):  # (re)index after rules were added
            index: dict[str, list[Rule]] = {}
            for rule in self.rules:
                index.setdefault(rule.head.predicate, []).append(rule)
            self._by_head = (len(self.rules), index)
        return self._by_head[1].get(predicate, [])

    def depends_on(self, roots: Iterable[str]) -> list[str]:
        """The predicates whose rules are needed to answer `roots` (themselves first, then
        what they use, breadth first: the order in which a reader meets them)."""
        seen: dict[str, None] = {}
        todo = deque(roots)
        while todo:
            name = todo.popleft()
            if name in seen:
                continue
            seen[name] = None
            for rule in self.rules_for(name):
                for lit in rule.body:
                    atom = lit.atom if isinstance(lit, Negation) else lit
                    if isinstance(atom, Atom):
                        todo.append(atom.predicate)
        return list(seen)

    def extend(self, other: Program) -> None:
        for name, decl in other.declarations.items():
            if name in self.declarations:
                self.duplicate_declarations.append(decl)
            else:
                self.declarations[name] = decl
        self.rules.extend(other.rules)
        self.duplicate_declarations.extend(other.duplicate_declarations)


def evaluate(term: Term, env: Mapping[str, Value | int]) -> Value | int | None:
    """The value of a term given some variables' values; None if it cannot be computed
    (an unbound variable, arithmetic on a symbol, division by zero)."""
    if isinstance(term, Const):
        return term.value
    if isinstance(term, Var):
        return env.get(term.name)
    left, right = evaluate(term.left, env), evaluate(term.right, env)
    if not isinstance(left, int | Decimal) or not isinstance(right, int | Decimal):
        return None
    a, b = Decimal(left), Decimal(right)
    if term.op == "/":
        return a / b if b else None
    return {"+": a + b, "-": a - b, "*": a * b}.get(term.op)


def format_term(term: Term) -> str:
    if isinstance(term, Var):
        return term.name
    if isinstance(term, Const):
        if isinstance(term.value, Decimal):
            return str(term.value)
        return term.value if term.value.isidentifier() and term.value.islower() else f'"{term.value}"'
    return f"{format_term(term.left)} {term.op} {format_term(term.right)}"
