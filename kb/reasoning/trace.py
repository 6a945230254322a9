"""Proof trees: why a criterion has its status, down to the facts and their sources.

The tree is rebuilt from the rule AST with the engine as the oracle: for the deciding atom,
the first rule whose body pyDatalog can satisfy is shown with its variable bindings; its
positive literals are proved in turn, facts are leaves with their file and row (or their
derivation), comparisons show actual against required, and each `not` lists the records it
examined and why each fell outside.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from functools import lru_cache
from itertools import count
from typing import Any

from kb.catalogue.knowledge import KnowledgeBase
from kb.factbase.build import FactBase, from_day
from kb.language.checks import variables_of
from kb.language.compile import ordered_body
from kb.language.engine import FactValue, Session
from kb.language.syntax import Atom, BinOp, Comparison, Const, Literal, Negation, Rule, Term, Var
from kb.language.syntax import evaluate as _evaluate

__all__ = ["Explainer", "Node", "message_from"]

_SYMBOLS = {">=": "≥", "<=": "≤", "!=": "≠", "=": "=", "<": "<", ">": ">"}
#: Reference facts that add nothing to a one-line message.
_QUIET = frozenset({"ref_day", "agent_class", "condition_class", "patient", "assumption", "assumption_days"})
_MAX_DEPTH = 12


@dataclass
class Node:
    """One step of a proof tree."""

    kind: str  # criterion | rule | fact | derived | comparison | assignment | absence | record | gap | note
    label: str
    detail: dict[str, str] = field(default_factory=dict)
    children: list[Node] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"kind": self.kind, "label": self.label}
        if self.detail:
            out["detail"] = dict(self.detail)
        if self.children:
            out["children"] = [c.as_dict() for c in self.children]
        return out

    def walk(self) -> list[Node]:
        return [self, *(n for c in self.children for n in c.walk())]


class Explainer:
    def __init__(self, session: Session, kb: KnowledgeBase, base: FactBase, examine: bool = True) -> None:
        """`examine=False` leaves out the records a `not` examined: enough for a one-line
        message, and several times faster for criteria whose full tree nobody will read."""
        self.session, self.kb, self.base = session, kb, base
        self.decls = kb.program.declarations
        self.examine = examine

    def _rules(self, predicate: str) -> list[Rule]:
        """The rules for `predicate` with each `_` named (the program outlives this explainer)."""
        return [_named_rule(rule, str(rule.pos)) for rule in self.kb.program.rules_for(predicate)]

    # ---- proofs -------------------------------------------------------------------------
    def prove(self, predicate: str, args: tuple[FactValue, ...], depth: int = 0) -> Node | None:
        """A proof of the ground atom `predicate(args)`, or None if it does not hold."""
        decl = self.decls.get(predicate)
        if decl is not None and decl.role != "rule":
            return self._fact_node(predicate, args)
        if depth > _MAX_DEPTH:
            return Node("note", f"{predicate}{self._show_args(args, predicate)} (proof depth limit reached)")
        for named in self._rules(predicate):
            bindings = _unify(named.head, args)
            if bindings is None:
                continue
            solutions = self.session.solve(named.body, bindings)
            if solutions:
                return self._rule_node(named, solutions[0], depth)
        return None

    def _rule_node(self, named: Rule, env: dict[str, FactValue], depth: int) -> Node:
        types = self._var_types(named)
        shown = {k: self._show(v, types.get(k)) for k, v in env.items() if not k.startswith("_")}
        node = Node(
            "rule",
            named.text,
            {
                "rule": named.text,
                "at": str(named.pos),
                "bindings": ", ".join(f"{k} = {v}" for k, v in sorted(shown.items())),
            },
        )
        for lit in named.body:
            if isinstance(lit, Atom):
                ground = tuple(_value(a, env) for a in lit.args)
                child = self.prove(lit.predicate, ground, depth + 1)
                node.children.append(child or Node("note", f"{lit.predicate}{self._show_args(ground, lit.predicate)}"))
            elif isinstance(lit, Negation):
                node.children.append(self.absence(lit.atom, env, depth + 1))
            else:
                node.children.append(self._comparison_node(lit, env, types))
        return node

    def _fact_node(self, predicate: str, args: tuple[FactValue, ...]) -> Node:
        provenance = self.base.provenance.get((predicate, args))
        if provenance is None:
            return Node("fact", f"{predicate}{self._show_args(args, predicate)}", {"relation": predicate})
        detail = {"relation": predicate}
        if provenance.source:
            detail["source"] = str(provenance.source)
        if provenance.origin:
            detail["source"] = provenance.origin
        node = Node("derived" if provenance.derivation else "fact", provenance.description, detail)
        if provenance.derivation:
            d = provenance.derivation
            node.detail["formula"] = d.formula
            node.children = [Node("fact", f"{k} = {v}") for k, v in d.inputs]
        return node

    def _comparison_node(self, lit: Comparison, env: dict[str, FactValue], types: dict[str, str]) -> Node:
        left, right = _evaluate(lit.left, env), _evaluate(lit.right, env)
        kind = (
            "assignment"
            if lit.op == "=" and isinstance(lit.left, Var) and isinstance(lit.right, BinOp)
            else "comparison"
        )
        left_type, right_type = _term_type(lit.left, types), _term_type(lit.right, types)
        shown_left = self._show(left, left_type or right_type)
        shown_right = self._show(right, right_type or left_type)
        expr = f"{_format(lit.left)} {_SYMBOLS[lit.op]} {_format(lit.right)}"
        label = f"{shown_left} {_SYMBOLS[lit.op]} {shown_right}"
        if kind == "assignment":  # a value computed in the rule: show how
            label = f"{expr} = {shown_left}"
        constant = "yes" if isinstance(lit.right, Const) else "no"
        return Node(
            kind,
            label,
            {
                "expression": expr,
                "actual": shown_left,
                "required": f"{_SYMBOLS[lit.op]} {shown_right}",
                "constant": constant,
            },
        )

    # ---- negation -----------------------------------------------------------------------
    def absence(self, atom: Atom, env: dict[str, FactValue], depth: int) -> Node:
        """Why `not atom` holds: the records examined and the literal each one failed."""
        ground = tuple(_evaluate(a, env) for a in atom.args)  # None: any value
        constants = [str(a.value) for a in atom.args if isinstance(a, Const)]
        node = Node(
            "absence",
            f"no {_humanise(atom.predicate)}" + (f" ({', '.join(constants)})" if constants else ""),
            {"checked": f"{atom.predicate}{self._show_args(ground, atom.predicate)}"},
        )
        decl = self.decls.get(atom.predicate)
        if decl is not None and decl.role != "rule":
            node.detail["why"] = "no such fact"
            return node
        if depth > _MAX_DEPTH or not self.examine:
            return node
        for named in self._rules(atom.predicate):
            bindings = _unify(named.head, ground)
            if bindings is None:
                continue
            node.children.extend(self._examine(named, bindings, depth))
        if not node.children:
            node.detail["why"] = "no record to examine"
        return node

    def _examine(self, rule: Rule, bindings: dict[str, FactValue], depth: int) -> list[Node]:
        """Each record the rule could have used, and the literal where it fell short.

        The records are those of the rule's first patient-data atom (an event, a result):
        reference dates and vocabulary facts are joined in but are not what was examined.
        """
        body = list(rule.body)
        atoms = [i for i, lit in enumerate(body) if isinstance(lit, Atom)]
        if not atoms:
            return []
        inputs = [i for i in atoms if self._is_record(body[i])]
        first = inputs[0] if inputs else atoms[0]
        prefix = [body[i] for i in atoms if i <= first]
        rest = [lit for i, lit in enumerate(body) if i not in atoms or i > first]
        types = self._var_types(rule)
        records: dict[str, Node] = {}
        for candidate in self.session.solve(prefix, bindings)[:40]:
            atom = body[first]
            assert isinstance(atom, Atom)
            ground = tuple(_value(a, candidate) for a in atom.args)
            described = self._describe(atom.predicate, ground)
            if described in records:
                continue
            failed = self._first_failure(rest, candidate)  # the candidate carries the prefix's bindings
            records[described] = Node(
                "record",
                f"{described}: {self._why(failed, candidate, types)}",
                {"patient_record": "yes" if self._is_record(atom) else "no"},
            )
        if records or depth > _MAX_DEPTH:
            return list(records.values())
        atom = body[first]
        assert isinstance(atom, Atom)
        decl = self.decls.get(atom.predicate)
        if decl is not None and decl.role == "rule":
            return self.absence(atom, bindings, depth + 1).children
        return []

    def _is_record(self, lit: Literal) -> bool:
        decl = self.decls.get(lit.predicate) if isinstance(lit, Atom) else None
        return decl is not None and decl.role == "input" and lit.predicate not in _QUIET  # type: ignore[union-attr]

    def _why(self, failed: Literal | None, env: dict[str, FactValue], types: dict[str, str]) -> str:
        if failed is None:
            return "matches"
        if isinstance(failed, Atom):
            args = tuple(_value(a, env) if _ground(a, env) else None for a in failed.args)
            if failed.predicate == "event" and args[1] is not None:
                return f"no {args[1]} recorded"
            if failed.predicate in ("agent_class", "condition_class") and args[0] is not None and args[1] is not None:
                return f"{args[0]} is not a {str(args[1]).replace('_', ' ')}"
            return f"{_humanise(failed.predicate)}{self._show_args(args, failed.predicate)} does not hold"
        if isinstance(failed, Negation):
            return f"{_humanise(failed.atom.predicate)} holds"
        left, right = _evaluate(failed.left, env), _evaluate(failed.right, env)
        left_type, right_type = _term_type(failed.left, types), _term_type(failed.right, types)
        if left is None or right is None:
            return f"{_format(failed.left)} is not known"
        shown_left = self._show(left, left_type or right_type)
        shown_right = self._show(right, right_type or left_type)
        return (
            f"{shown_left} is not {_SYMBOLS[failed.op]} {shown_right} "
            f"({_format(failed.left)} {_SYMBOLS[failed.op]} {_format(failed.right)})"
        )

    def _first_failure(self, rest: list[Literal], env: dict[str, FactValue]) -> Literal | None:
        """The first literal of `rest` that no continuation of this record satisfies.

        All partial solutions are carried forward (so a record with several classes is not
        judged on its first one); comparisons on bound values are decided here, atoms and
        negations by the engine.
        """
        envs = [env]
        for lit in ordered_body(rest, env):
            following: list[dict[str, FactValue]] = []
            for current in envs:
                if isinstance(lit, Comparison) and all(_ground(t, current) for t in (lit.left, lit.right)):
                    if _holds(lit, current):
                        following.append(current)
                else:
                    following.extend(self.session.solve([lit], current))
            if not following:
                return lit
            envs = following[:50]
        return None

    # ---- display ------------------------------------------------------------------------
    def _describe(self, predicate: str, args: tuple[FactValue, ...]) -> str:
        provenance = self.base.provenance.get((predicate, args))
        return provenance.description if provenance else f"{predicate}{self._show_args(args, predicate)}"

    def _var_types(self, rule: Rule) -> dict[str, str]:
        types: dict[str, str] = {}
        atoms = [
            rule.head,
            *(lit if isinstance(lit, Atom) else lit.atom for lit in rule.body if isinstance(lit, Atom | Negation)),
        ]
        for atom in atoms:
            decl = self.decls.get(atom.predicate)
            if decl is None:
                continue
            for arg, (_, typ) in zip(atom.args, decl.params, strict=False):
                if isinstance(arg, Var):
                    types.setdefault(arg.name, typ)
        for lit in rule.body:
            if isinstance(lit, Comparison) and lit.op == "=" and isinstance(lit.left, Var):
                inner = _term_type(lit.right, types)
                if inner:
                    types.setdefault(lit.left.name, inner)
        return types

    def _show(self, value: FactValue | None, typ: str | None) -> str:
        if value is None:
            return "?"
        if typ == "day" and isinstance(value, int | Decimal):
            return from_day(int(value)).isoformat()
        if typ == "days" and isinstance(value, int | Decimal):
            return duration(value)
        if isinstance(value, Decimal):
            return _decimal(value)
        return str(value)

    def _show_args(self, args: tuple[FactValue | None, ...], predicate: str | None = None) -> str:
        decl = self.decls.get(predicate) if predicate else None
        types = [t for _, t in decl.params] if decl and decl.arity == len(args) else [None] * len(args)
        return "(" + ", ".join("_" if a is None else self._show(a, t) for a, t in zip(args, types, strict=True)) + ")"


def _decimal(value: Decimal) -> str:
    """A number as a proof shows it: whole, or to 4 decimals; one too large or too small for
    that (a ratio to a mistyped limit) in scientific notation rather than an exception."""
    if not value.is_finite() or abs(value.adjusted()) > 20:
        return f"{value:.4E}" if value.is_finite() else str(value)
    if value == value.to_integral_value():
        return str(value.quantize(Decimal(1)))
    text = f"{value:.4f}".rstrip("0").rstrip(".")
    return text


def _humanise(predicate: str) -> str:
    words = predicate.split("_")
    if words and words[0] == "any":
        words = words[1:]
    return " ".join(words)


@lru_cache(maxsize=8192)
def _named_rule(rule: Rule, position: str) -> Rule:
    """Rules are immutable: name each one's `_` once per process (keyed by its position too,
    so that two rules written alike in two places keep their own)."""
    return _name_anonymous(rule)


def _name_anonymous(rule: Rule) -> Rule:
    """The rule with each `_` renamed, so that solutions bind every argument of a literal."""
    counter = count(1)

    def term(t: Term) -> Term:
        if isinstance(t, Var) and t.anonymous:
            return Var(f"_A{next(counter)}", t.pos)
        if isinstance(t, BinOp):
            return BinOp(t.op, term(t.left), term(t.right), t.pos)
        return t

    def lit(item: Literal) -> Literal:
        if isinstance(item, Atom):
            return Atom(item.predicate, tuple(term(a) for a in item.args), item.pos)
        if isinstance(item, Negation):
            return item
        return Comparison(item.op, term(item.left), term(item.right), item.pos)

    head = Atom(rule.head.predicate, tuple(term(a) for a in rule.head.args), rule.head.pos)
    return Rule(head, tuple(lit(b) for b in rule.body), rule.pos, rule.text)


def _unify(head: Atom, args: tuple[FactValue | None, ...]) -> dict[str, FactValue] | None:
    env: dict[str, FactValue] = {}
    for term, value in zip(head.args, args, strict=True):
        if value is None:
            continue
        if isinstance(term, Const):
            if term.value != value:
                return None
        elif isinstance(term, Var):
            if term.name in env and env[term.name] != value:
                return None
            env[term.name] = value
    return env


def _holds(lit: Comparison, env: dict[str, FactValue]) -> bool:
    left, right = _evaluate(lit.left, env), _evaluate(lit.right, env)
    if left is None or right is None:
        return False
    if lit.op in ("=", "!="):
        same = left == right
        return same if lit.op == "=" else not same
    if isinstance(left, str) or isinstance(right, str):
        return False
    a, b = Decimal(left), Decimal(right)
    return {"<": a < b, "<=": a <= b, ">": a > b, ">=": a >= b}[lit.op]


def _ground(term: Term, env: dict[str, FactValue]) -> bool:
    return all(v.name in env for v in variables_of(term))


def _value(term: Term, env: dict[str, FactValue]) -> FactValue:
    value = _evaluate(term, env)
    assert value is not None, f"unbound {term}"
    return value


def _term_type(term: Term, types: dict[str, str]) -> str | None:
    """The type an expression shows as: a date minus a date is a duration (`days`), a date
    plus or minus a duration is a date, anything else takes its operands' type."""
    if isinstance(term, Var):
        return types.get(term.name)
    if isinstance(term, Const):
        return None
    left, right = _term_type(term.left, types), _term_type(term.right, types)
    if term.op == "-" and left == right == "day":
        return "days"
    if "day" in (left, right) and term.op in "+-":
        return "day"
    return left or right


def duration(days: int | Decimal) -> str:
    """A number of days as a clinician reads it: '273 days (about 9 months)'."""
    n = int(days)
    text = f"{n} day" if abs(n) == 1 else f"{n} days"
    if abs(n) >= 60:
        text += f" (about {round(Decimal(n) / Decimal('30.44'))} months)"
    return text


def _format(term: Term) -> str:
    if isinstance(term, Var):
        return term.name
    if isinstance(term, Const):
        return _decimal(term.value) if isinstance(term.value, Decimal) else str(term.value)
    return f"{_format(term.left)} {'−' if term.op == '-' else term.op} {_format(term.right)}"


def message_from(node: Node) -> str:
    """A one-line summary of a proof: the facts used, with the bound each was held to."""
    phrases: list[str] = []
    _collect(node, phrases)
    return "; ".join(dict.fromkeys(p for p in phrases if p))


def _collect(node: Node, phrases: list[str]) -> None:
    if node.kind == "rule":
        last_fact: int | None = None
        bounds: list[str] = []

        def close() -> None:
            if last_fact is not None and bounds:
                phrases[last_fact] += " " + " and ".join(bounds) + " required"
            bounds.clear()

        for child in node.children:
            if child.kind in ("fact", "derived"):
                if child.detail.get("relation") in _QUIET:
                    continue
                close()
                phrases.append(child.label)
                last_fact = len(phrases) - 1
            elif child.kind == "comparison":
                if last_fact is not None and child.detail.get("constant") == "yes":
                    bounds.append(child.detail["required"])
                else:
                    phrases.append(f"{child.detail.get('expression', '')} ({child.label})")
            elif child.kind == "assignment":
                phrases.append(child.label)
            elif child.kind == "absence":
                records = [
                    c.label for c in child.children if c.kind == "record" and c.detail.get("patient_record") == "yes"
                ][:3]
                phrases.append(child.label + (f" ({'; '.join(records)})" if records else ""))
            elif child.kind == "rule":
                _collect(child, phrases)
        close()
    elif node.kind in ("fact", "derived"):
        phrases.append(node.label)
