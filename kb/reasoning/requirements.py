"""What a criterion needs in order to pass, read from its rules: interval reasoning on the AST.

A repair must say "platelets ≥ 50 ×10^9/L, now 42", and the bound must be the rule's own,
not a copy that drifts from it. For a deciding predicate and the truth value that passes,
the rules are unfolded into alternatives (one per way of deriving that truth: sub-conditions
with a truth constant are unfolded in turn, and their alternatives multiplied out); each
alternative keeps the literals that speak about one patient datum: a comparison of a result,
a ×ULN ratio, the clearance or the age with a constant; a category or attestation constant;
a history review dated on or after a reference date. Everything else in a rule body (the
absence of a drug in a window, a helper condition) is left to the engine, which confirms
every repair by evaluating it.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from itertools import product

from kb.factbase.build import FactBase
from kb.language.syntax import Atom, Comparison, Const, Program, Var
from kb.status import Truth

__all__ = ["Alternative", "Requirement", "Snapshot", "alternatives", "inside", "requirements"]

#: Relations whose third (or second) argument is a value a requirement can bound.
_VALUE_ARGS = {"obs_num": 2, "xuln": 2, "crcl": 1, "egfr": 1, "age_at": 2, "reviewed": 2, "ref_day": 2}
_FLIP = {">=": "<=", "<=": ">=", ">": "<", "<": ">", "=": "=", "!=": "!="}
_MAX_ALTERNATIVES = 64
_MAX_DEPTH = 8


@dataclass(frozen=True)
class Requirement:
    """One patient datum an alternative needs: `relation item op value`.

    relation: obs_num | xuln | crcl | age_at | obs_cat | attested | reviewed. For `reviewed`
    the value is the reference date (enrolment or apheresis) the review must reach.
    """

    relation: str
    item: str
    op: str
    value: Decimal | str

    def holds(self, actual: Decimal | str) -> bool:
        if self.op == "=":
            return actual == self.value
        if self.op == "!=":
            return actual != self.value
        assert isinstance(actual, Decimal) and isinstance(self.value, Decimal)
        return {">=": actual >= self.value, ">": actual > self.value, "<=": actual <= self.value}.get(
            self.op, actual < self.value
        )

    def describe(self, unit: str = "") -> str:
        symbol = {">=": "≥", "<=": "≤", "!=": "≠"}.get(self.op, self.op)
        if self.relation == "xuln":
            return f"{self.item} {symbol} {self.value} × ULN"
        if self.relation == "reviewed":
            return f"{self.item} history reviewed on or after the {self.value} date"
        if self.relation == "age_at":
            return f"age at {self.item} {symbol} {self.value}"
        return f"{self.item} {symbol} {self.value}{(' ' + unit) if unit else ''}"


@dataclass(frozen=True)
class Alternative:
    """One way of deriving a truth: the datum requirements it needs, whether they are all it
    needs (`exact`: every literal of the rules was read; otherwise they are only necessary),
    and the rules it goes through (file:line, outermost first)."""

    requirements: tuple[Requirement, ...]
    exact: bool
    rules: tuple[str, ...]


def requirements(program: Program, predicate: str, truth: Truth) -> list[tuple[Requirement, ...]]:
    """The alternatives (each a conjunction of requirements) under which `predicate(P, truth)`
    can be derived; an alternative with no datum requirement is left out."""
    unique: dict[tuple[Requirement, ...], None] = {}
    for alt in alternatives(program, predicate, truth):
        if alt.requirements:
            unique.setdefault(alt.requirements, None)
    return list(unique)


def alternatives(program: Program, predicate: str, truth: Truth) -> list[Alternative]:
    """Every alternative, those with no datum requirement included (a protocol review must
    know that such a rule exists: it makes the truth reachable without any datum)."""
    return [
        Alternative(tuple(dict.fromkeys(reqs)), exact, rules)
        for reqs, exact, rules in _unfold(program, predicate, truth, 0)
    ]


_Unfolded = tuple[tuple[Requirement, ...], bool, tuple[str, ...]]
#: Input relations whose atoms only bind a value a requirement then bounds.
_READ = frozenset(
    {"obs_num", "obs_cat", "xuln", "crcl", "egfr", "age_at", "attested", "reviewed", "ref_day", "patient"}
)


def _unfold(program: Program, predicate: str, truth: str, depth: int) -> list[_Unfolded]:
    if depth > _MAX_DEPTH:
        return [((), False, ())]
    found: list[_Unfolded] = []
    for rule in program.rules_for(predicate):
        head_truth = rule.head.args[1] if len(rule.head.args) > 1 else None
        if not (isinstance(head_truth, Const) and head_truth.value == truth):
            continue
        own: list[Requirement] = []
        exact = True
        parts: list[list[_Unfolded]] = []
        values: dict[str, tuple[str, str]] = {}  # variable -> (relation, item)
        for lit in rule.body:
            if not isinstance(lit, Atom):
                exact = exact and isinstance(lit, Comparison)
                continue
            decl = program.declarations.get(lit.predicate)
            if decl is None:
                exact = False
                continue
            if decl.role == "rule":
                sub_truth = lit.args[1] if len(lit.args) > 1 else None
                if [t for _, t in decl.params] == ["patient", "truth"] and isinstance(sub_truth, Const):
                    parts.append(_unfold(program, lit.predicate, str(sub_truth.value), depth + 1))
                else:
                    exact = False
                continue
            exact = exact and lit.predicate in _READ
            own += _atom_requirements(lit, values)
        for lit in rule.body:
            if isinstance(lit, Comparison):
                translated = _comparison_requirements(lit, values)
                exact = exact and bool(translated)
                own += translated
        combined: list[_Unfolded] = [(tuple(own), exact, (str(rule.pos),))]
        for options in parts:
            combined = [(a[0] + b[0], a[1] and b[1], a[2] + b[2]) for a, b in product(combined, options)][
                :_MAX_ALTERNATIVES
            ]
        found += combined
    return found[:_MAX_ALTERNATIVES]


def _atom_requirements(atom: Atom, values: dict[str, tuple[str, str]]) -> list[Requirement]:
    args = atom.args
    if atom.predicate in ("obs_cat", "attested") and len(args) >= 3:
        item, value = args[1], args[2]
        if isinstance(item, Const) and isinstance(value, Const):
            return [Requirement(atom.predicate, str(item.value), "=", value.value)]
        return []
    position = _VALUE_ARGS.get(atom.predicate)
    if position is None or len(args) <= position:
        return []
    var = args[position]
    if not isinstance(var, Var) or var.anonymous:
        return []
    if atom.predicate in ("crcl", "egfr"):
        values[var.name] = (atom.predicate, atom.predicate)
    elif isinstance(args[1], Const):
        values[var.name] = (atom.predicate, str(args[1].value))
    return []


def _comparison_requirements(lit: Comparison, values: dict[str, tuple[str, str]]) -> list[Requirement]:
    left, right, op = lit.left, lit.right, lit.op
    if isinstance(left, Const) and isinstance(right, Var):
        left, right, op = right, left, _FLIP[op]
    if not isinstance(left, Var) or left.name not in values:
        return []
    relation, item = values[left.name]
    if isinstance(right, Const) and isinstance(right.value, Decimal) and relation not in ("reviewed", "ref_day"):
        return [Requirement(relation, item, op, right.value)]
    if relation == "reviewed" and isinstance(right, Var) and values.get(right.name, ("",))[0] == "ref_day":
        return [Requirement("reviewed", item, op, values[right.name][1])]
    return []


@dataclass(frozen=True)
class Snapshot:
    """The patient data the requirements speak about, as the engine received them."""

    values: dict[tuple[str, str], Decimal | str]  # (relation, item) -> value (reviewed: latest day)
    reference_days: dict[str, int]

    @classmethod
    def of(cls, base: FactBase) -> Snapshot:
        values: dict[tuple[str, str], Decimal | str] = {}
        days: dict[str, int] = {}
        for relation, args in base.facts:
            if relation in ("obs_num", "obs_cat", "attested", "xuln", "age_at"):
                values[(relation, str(args[1]))] = args[2]  # type: ignore[assignment]
            elif relation in ("crcl", "egfr"):
                values[(relation, relation)] = args[1]  # type: ignore[assignment]
            elif relation == "reviewed":
                day = Decimal(args[2])
                previous = values.get(("reviewed", str(args[1])))
                values[("reviewed", str(args[1]))] = max(day, previous) if isinstance(previous, Decimal) else day
            elif relation == "ref_day":
                days[str(args[1])] = int(args[2])
        return cls(values, days)

    def state(self, req: Requirement) -> str:
        """met | unmet | missing."""
        actual = self.values.get((req.relation, req.item))
        if actual is None:
            return "missing"
        if req.relation == "reviewed":
            return "met" if actual >= self.reference_days[str(req.value)] else "unmet"  # type: ignore[operator]
        if req.relation in ("obs_cat", "attested"):
            return "met" if actual == req.value else "unmet"
        return "met" if req.holds(Decimal(actual)) else "unmet"


def _step(value: Decimal) -> Decimal:
    exponent = value.normalize().as_tuple().exponent
    return Decimal(1).scaleb(exponent) if isinstance(exponent, int) and exponent < 0 else Decimal(1)


def inside(reqs: list[Requirement]) -> Decimal:
    """A value the numeric requirements on one datum allow, next to the bound (its lower end
    when there is one, one resolution step inside a strict bound)."""
    equal = [r for r in reqs if r.op == "="]
    if equal:
        return Decimal(equal[0].value)
    low = [r for r in reqs if r.op in (">=", ">")]
    high = [r for r in reqs if r.op in ("<=", "<")]
    if low:
        r = max(low, key=lambda r: Decimal(r.value))
        value = Decimal(r.value)
        return value if r.op == ">=" else value + _step(value)
    r = min(high, key=lambda r: Decimal(r.value))
    value = Decimal(r.value)
    return value if r.op == "<=" else value - _step(value)
