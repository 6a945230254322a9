"""What an inclusion or a definition needs a patient's record to show, read from its rules.

A criterion holds through one of its `yes` rules; what every such rule needs (through the
predicates it uses, with the assumptions in force) is needed. Of that, the review wants
the record atoms a window can forbid: an event of a drug or a condition (named, or
constrained by classes such as `agent_class(Agent, c)` or a predicate like
`rr_immunomodulator(Agent)` that the classes define), a course of a drug with its length,
a glucocorticoid dose with its bound (`pred_mg_per_kg`, `pred_equivalent`: built by
kb/factbase/build.py for the agents with a prednisone factor). Besides: the attestations of one
way of meeting a criterion (so that a constructed patient can), and every record atom a
criterion reads (so that only the criteria that may forbid a need are probed for it).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal

from kb.catalogue.assumptions import AssumptionSet
from kb.catalogue.knowledge import KnowledgeBase
from kb.language.syntax import Atom, Comparison, Const, Negation, Pos, Rule, Term, Var
from kb.status import Truth

__all__ = ["DOSE_RELATIONS", "Meaning", "Need", "RuleReader"]

#: Record relations a need is read from, and the argument naming the agent or condition.
NAMED_AT = {"event": 2, "course": 1, "pred_equivalent": 1, "pred_mg_per_kg": 1}
#: Relations with a measured value (a course's length, a daily dose), and its argument.
VALUE_AT = {"course": 4, "pred_equivalent": 3, "pred_mg_per_kg": 3}
#: The glucocorticoid dose relations and their unit.
DOSE_RELATIONS = {"pred_equivalent": "mg/day", "pred_mg_per_kg": "mg/kg/day"}
_FLIP = {"<": ">", "<=": ">=", ">": "<", ">=": "<=", "=": "=", "!=": "!="}
_WORDS = {">=": "≥", ">": ">", "<=": "≤", "<": "<", "=": "=", "!=": "≠"}

#: What a need asks of a record, wherever a rule says it: relation, names, conditions, event kind, bound.
Meaning = tuple[str, tuple[str, ...], bool, str | None, tuple[str, Decimal] | None]


@dataclass(frozen=True)
class Need:
    relation: str  # event | course | pred_equivalent | pred_mg_per_kg
    names: tuple[str, ...]  # the agents (or conditions) that can meet it
    conditions: bool  # the names are conditions (an event such as a thrombosis), not agents
    event_kind: str | None  # the event kind the atom fixes (None: any)
    bound: tuple[str, Decimal] | None  # (op, value) the course length or the dose must meet
    classes: tuple[str, ...]  # the classes that constrain the names (empty: named)
    rule: str  # file:line of the rule holding the atom
    head: str  # that rule's head predicate
    pos: Pos = field(compare=False, hash=False, repr=False)

    @property
    def meaning(self) -> Meaning:
        return (self.relation, self.names, self.conditions, self.event_kind, self.bound)

    @property
    def dose(self) -> bool:
        return self.relation in DOSE_RELATIONS

    def what(self) -> str:
        """The agent or class in words: 'cyclophosphamide', 'an agent of class a or b'."""
        if self.classes:
            noun = "an event" if self.conditions else "an agent"
            return f"{noun} of class {' or '.join(self.classes)}"
        return " or ".join(n.replace("_", " ") for n in self.names)

    def describe(self) -> str:
        if self.relation == "course":
            length = f" of {_WORDS[self.bound[0]]} {self.bound[1]} days" if self.bound else ""
            return f"a course{length} of {self.what()} (counted up to enrolment)"
        if self.dose:
            level = f" {_WORDS[self.bound[0]]} {self.bound[1]} {DOSE_RELATIONS[self.relation]}" if self.bound else ""
            return f"a glucocorticoid dose{level} prednisone-equivalent"
        return self.what()


class RuleReader:
    """Reads needs from the rules in force under one assumption set."""

    def __init__(self, kb: KnowledgeBase, assumptions: AssumptionSet) -> None:
        self.kb = kb
        self.assumptions = assumptions
        self._values = {k: str(v) for k, v in assumptions.in_force().items()}
        self._memo: dict[tuple[str, tuple[str | None, ...]], dict[Meaning, Need] | None] = {}

    def rules(self, predicate: str) -> list[Rule]:
        """The rules of `predicate` that the assumptions in force leave on."""
        return [rule for rule in self.kb.program.rules_for(predicate) if self._in_force(rule)]

    def _in_force(self, rule: Rule) -> bool:
        for lit in rule.body:
            if isinstance(lit, Atom) and lit.predicate == "assumption" and len(lit.args) == 2:
                key, value = lit.args
                if (
                    isinstance(key, Const)
                    and isinstance(value, Const)
                    and self._values.get(str(key.value), str(value.value)) != str(value.value)
                ):
                    return False
        return True

    def needed(self, predicate: str, truth: Truth) -> list[Need] | None:
        """The record atoms every way of deriving `predicate(P, truth)` needs, in rule order
        (None: no rule in force derives it). Two ways needing the same thing in different
        rules (cyclophosphamide in both) need it: the first rule's atom stands for it."""
        found = self._necessary(predicate, (None, str(truth)))
        if found is None:
            return None
        return sorted(found.values(), key=lambda n: (n.pos.path, n.pos.line, n.pos.col))

    def attestations(self, predicate: str, truth: Truth) -> dict[str, str]:
        """The attestations (item -> value) of one way of deriving `predicate(P, truth)`:
        its first rule in force, and theirs for the predicates it uses."""
        found: dict[str, str] = {}
        seen: set[tuple[str, tuple[str | None, ...]]] = set()

        def walk(name: str, call: tuple[str | None, ...]) -> None:
            if (name, call) in seen:
                return
            seen.add((name, call))
            for rule in self.rules(name):
                env = _unify(rule.head.args, call)
                if env is None:
                    continue
                for lit in rule.body:
                    if isinstance(lit, Atom) and lit.predicate == "attested" and len(lit.args) == 3:
                        item, value = _value(lit.args[1], env), _value(lit.args[2], env)
                        if item is not None and value is not None:
                            found.setdefault(item, value)
                    elif isinstance(lit, Atom) and self.kb.program.rules_for(lit.predicate):
                        walk(lit.predicate, tuple(_value(a, env) for a in lit.args))
                return

        walk(predicate, (None, str(truth)))
        return found

    def _necessary(self, predicate: str, call: tuple[str | None, ...]) -> dict[Meaning, Need] | None:
        key = (predicate, call)
        if key in self._memo:
            return self._memo[key]
        self._memo[key] = {}  # a recursive predicate needs nothing more of itself
        options: list[dict[Meaning, Need]] = []
        for rule in self.rules(predicate):
            env = _unify(rule.head.args, call)
            if env is None:
                continue
            needs: dict[Meaning, Need] = {}
            for lit in rule.body:
                if not isinstance(lit, Atom):
                    continue
                if lit.predicate in NAMED_AT:
                    need = self._need(rule, lit, env)
                    if need is not None and need.names:  # (no name at all: nothing a record could meet)
                        needs.setdefault(need.meaning, need)
                elif self.kb.program.rules_for(lit.predicate):
                    sub = self._necessary(lit.predicate, tuple(_value(a, env) for a in lit.args))
                    if sub is None:
                        break
                    for meaning, need in sub.items():
                        needs.setdefault(meaning, need)
            else:
                options.append(needs)
        result = {m: n for m, n in options[0].items() if all(m in o for o in options[1:])} if options else None
        self._memo[key] = result
        return result

    def reads(self, predicate: str) -> list[Need]:
        """Every record atom the rules behind `predicate(P, _)` read, positive or negated, with
        the constants its callers pass down (an atom whose name nothing constrains has no
        names: it reads every name)."""
        found: list[Need] = []
        seen: set[tuple[str, tuple[str | None, ...]]] = set()

        def walk(name: str, call: tuple[str | None, ...]) -> None:
            if (name, call) in seen:
                return
            seen.add((name, call))
            for rule in self.rules(name):
                env = _unify(rule.head.args, call)
                if env is None:
                    continue
                for lit in rule.body:
                    atom = lit.atom if isinstance(lit, Negation) else lit
                    if not isinstance(atom, Atom):
                        continue
                    if atom.predicate in NAMED_AT:
                        need = self._need(rule, atom, env, unconstrained_ok=True)
                        if need is not None:
                            found.append(need)
                    elif self.kb.program.rules_for(atom.predicate):
                        walk(atom.predicate, tuple(_value(a, env) for a in atom.args))

        walk(predicate, (None, None))
        return found

    def _need(self, rule: Rule, atom: Atom, env: dict[str, str], unconstrained_ok: bool = False) -> Need | None:
        at = NAMED_AT[atom.predicate]
        if len(atom.args) <= at:
            return None
        vocab = self.kb.vocabulary
        names, classes = self.names_of(atom.args[at], rule, env, atom)
        if atom.predicate in DOSE_RELATIONS:  # built only for glucocorticoids
            steroids = frozenset(n for n, a in vocab.agents.items() if a.prednisone_factor is not None)
            names = steroids if names is None else names & steroids
        if names is None and not unconstrained_ok:
            return None
        kind = _value(atom.args[1], env) if atom.predicate == "event" else "medication"
        listed = tuple(sorted(names)) if names is not None else ()
        conditions = bool(listed) and all(n in vocab.conditions for n in listed)
        bound = None
        if atom.predicate in VALUE_AT and len(atom.args) > VALUE_AT[atom.predicate]:
            bound = self.bound_on(atom.args[VALUE_AT[atom.predicate]], rule, env)
        return Need(
            atom.predicate, listed, conditions, kind, bound, classes, str(rule.pos), rule.head.predicate, rule.pos
        )

    def names_of(
        self, term: Term, rule: Rule, env: dict[str, str], skip: Atom | None = None
    ) -> tuple[frozenset[str] | None, tuple[str, ...]]:
        """The names a term of a rule can take, from the atoms constraining it there (None:
        unconstrained), and the classes that did it."""
        if isinstance(term, Const) or (isinstance(term, Var) and term.name in env):
            value = _value(term, env)
            return (frozenset({value}) if value else None), ()
        if not isinstance(term, Var) or term.anonymous:
            return None, ()
        vocab = self.kb.vocabulary
        sets: list[frozenset[str]] = []
        classes: list[str] = []
        for lit in rule.body:
            if not isinstance(lit, Atom) or lit == skip or term not in lit.args:
                continue
            if lit.predicate in ("agent_class", "condition_class") and lit.args[0] == term:
                wanted, _ = self.names_of(lit.args[1], rule, env, lit)  # a class, or the classes a variable takes
                if wanted is None:
                    continue
                table = vocab.agents if lit.predicate == "agent_class" else vocab.conditions
                sets.append(frozenset(n for n, a in table.items() if wanted & set(a.classes)))
                classes.extend(sorted(wanted))
            elif lit.predicate in DOSE_RELATIONS and lit.args.index(term) == NAMED_AT[lit.predicate]:
                sets.append(frozenset(n for n, a in vocab.agents.items() if a.prednisone_factor is not None))
            elif self.kb.program.rules_for(lit.predicate) and lit.predicate not in NAMED_AT:
                position = lit.args.index(term)
                members, via = self._members(lit.predicate, position, tuple(_value(a, env) for a in lit.args))
                if members is not None:
                    sets.append(members)
                    classes.extend(via)
        if not sets:
            return None, ()
        return frozenset.intersection(*sets), tuple(dict.fromkeys(classes))

    def _members(
        self, predicate: str, position: int, call: tuple[str | None, ...]
    ) -> tuple[frozenset[str] | None, tuple[str, ...]]:
        """The names a predicate's argument can take, over its rules in force."""
        found: set[str] = set()
        classes: list[str] = []
        for rule in self.rules(predicate):
            env = _unify(rule.head.args, call)
            if env is None:
                continue
            names, via = self.names_of(rule.head.args[position], rule, env)
            if names is None:
                return None, ()
            found |= names
            classes.extend(via)
        return frozenset(found), tuple(dict.fromkeys(classes))

    def bound_on(self, term: Term, rule: Rule, env: dict[str, str]) -> tuple[str, Decimal] | None:
        """The lower bound a rule puts on a value (`Length >= Days`, `MgPerKg >= 1`)."""
        if not isinstance(term, Var):
            return None
        for lit in rule.body:
            if not isinstance(lit, Comparison):
                continue
            op, other = (lit.op, lit.right) if lit.left == term else (_FLIP[lit.op], lit.left)
            if term not in (lit.left, lit.right) or op not in (">", ">="):
                continue
            value = self._number(other, rule)
            if value is not None:
                return op, value
        return None

    def _number(self, term: Term, rule: Rule) -> Decimal | None:
        if isinstance(term, Const) and isinstance(term.value, Decimal):
            return term.value
        if isinstance(term, Var):  # a number from `assumption_days(name, Var)`
            for lit in rule.body:
                if isinstance(lit, Atom) and lit.predicate == "assumption_days" and lit.args[1] == term:
                    key = lit.args[0]
                    if isinstance(key, Const):
                        return Decimal(self.assumptions.days(str(key.value)))
        return None


def _value(term: Term, env: dict[str, str]) -> str | None:
    if isinstance(term, Const):
        return str(term.value)
    if isinstance(term, Var) and not term.anonymous:
        return env.get(term.name)
    return None


def _unify(head: tuple[Term, ...], call: tuple[str | None, ...]) -> dict[str, str] | None:
    """Variable bindings making a rule head match a call's constants (None: it cannot)."""
    env: dict[str, str] = {}
    for arg, wanted in zip(head, call, strict=False):
        if wanted is None:
            continue
        if isinstance(arg, Const):
            if str(arg.value) != wanted:
                return None
        elif isinstance(arg, Var) and not arg.anonymous and env.setdefault(arg.name, wanted) != wanted:
            return None
    return env
