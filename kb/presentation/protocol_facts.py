"""What the rules say in numbers: each criterion's thresholds, windows and the drugs it counts.

Read from the rule AST (kb/language) under the assumptions in force, never copied by hand,
so the answer to "what is the platelet threshold?" follows the rule when it changes, and an
assumption that moves a number (the steroid window) is named with the number. A criterion is
followed from its deciding predicate: the rules that make it `yes` (an inclusion met, an
exclusion present) give its thresholds; the rules that make it block (an exclusion `yes`, an
inclusion `no`) give the drugs and windows that exclude; an inclusion or definition `yes`
gives the drugs that count towards it (the refractory definition's treatment course).
Negated conditions are not followed: they say what must be absent, not what decides.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from kb.catalogue.assumptions import AssumptionSet
from kb.catalogue.criteria import Criterion
from kb.catalogue.knowledge import KnowledgeBase
from kb.language.syntax import Atom, BinOp, Comparison, Const, Pos, Rule, Var
from kb.status import Truth

__all__ = ["Bound", "Reach", "Window", "measure_words", "reach", "reaches"]

#: (assumption id, value): a rule that holds only under that reading of the record
Gate = tuple[str, str]

_FLIP = {">=": "<=", "<=": ">=", ">": "<", "<": ">", "=": "=", "!=": "!="}
_NOWHERE = Pos("<protocol question>", 0, 0)


@dataclass(frozen=True)
class Bound:
    """`measure op value`, as one rule of a criterion compares it (rules of one criterion are
    alternatives; the bounds of one rule hold together)."""

    criterion: str
    measure: str  # an item name, or age | crcl | egfr | prednisone_dose | … (see measure_words)
    op: str
    value: Decimal
    rule: int  # which rule: bounds of the same rule are read with "and"
    predicate: str = ""  # the rule's head: rules of one predicate are alternatives
    assumption: str = ""  # the assumption the number (or the rule) comes from


@dataclass(frozen=True)
class Window:
    """A look-back: what counts if it falls within `days` (or `months`) before `anchor`."""

    criterion: str
    anchor: str  # enrolment | apheresis | screening | the haemoglobin sample …
    days: int | None = None
    months: int | None = None
    agent_class: str = ""  # the agent class this window is for ("" for every one)
    assumption: str = ""  # the assumption whose value is the number of days
    washout: bool = False  # 5 half-lives of the agent, ending before the anchor

    def describe(self) -> str:
        if self.washout:
            return f"within 5 half-lives before {self.anchor}"
        if self.months is not None:
            span = (
                f"{self.months // 12} years" if self.months % 12 == 0 and self.months > 12 else f"{self.months} months"
            )
        else:
            days = int(self.days or 0)
            span = f"{days} days" + (f" ({days // 7} weeks)" if days % 7 == 0 and days > 7 else "")
        return f"within {span} before {self.anchor}"


@dataclass(frozen=True)
class Reach:
    """What one criterion's rules reach, under the assumptions in force."""

    criterion: Criterion
    bounds: tuple[Bound, ...]
    windows: tuple[Window, ...]  # on the path that blocks
    blocks: dict[str, tuple[Gate, ...]]  # agent class or agent name -> the gates of the rule naming it
    supports: dict[str, tuple[Gate, ...]]  # idem, on the path that meets an inclusion or definition
    steroid_dose: bool  # the blocking path compares a prednisone-equivalent dose


_WORDS: dict[int, tuple[KnowledgeBase, dict[str, tuple[str, str]]]] = {}


def measure_words(kb: KnowledgeBase) -> dict[str, tuple[str, str]]:
    """measure -> (label, unit) for what the rules compare; items from the vocabulary."""
    cached = _WORDS.get(id(kb))
    if cached is not None and cached[0] is kb:
        return cached[1]
    words = {
        "age": ("age at enrolment", "years"),
        "crcl": ("creatinine clearance", "mL/min"),
        "egfr": ("eGFR", "mL/min/1.73 m²"),
        "prednisone_dose": ("glucocorticoid dose", "mg/day prednisone-equivalent"),
        "prednisone_per_kg": ("glucocorticoid dose", "mg/kg/day prednisone-equivalent"),
        "course": ("course of an immunomodulator or biologic", "days"),
        "weight": ("body weight", "kg"),
    }
    for rule in kb.program.rules:  # instrument scores: "SLEDAI total", in points
        for lit in rule.body:
            if isinstance(lit, Atom) and lit.predicate == "score" and all(isinstance(a, Const) for a in lit.args[1:3]):
                instrument, part = (str(_text(a)) for a in lit.args[1:3])
                label = f"{instrument.upper().replace('_', ' ')} {part.replace('_', ' ')}"
                words[f"{instrument}.{part}"] = (label, "points")
    for item in kb.vocabulary.items.values():
        unit = item.display_unit.replace("^9", "⁹").replace("10*9", "10⁹")
        words[item.name] = (item.label, unit)
        words[f"{item.name}/uln"] = (item.label, "× ULN")
        words[f"{item.name}/worsening"] = (f"{item.label} worsening", "%")
    return words


def _measure(atom: Atom, position: int) -> str | None:
    """The measure a variable at `position` of `atom` holds, if it holds one."""
    names = [a.value if isinstance(a, Const) else None for a in atom.args]
    key = {
        ("obs_num", 2): names[1] if len(names) > 1 else None,
        ("xuln", 2): f"{names[1]}/uln" if len(names) > 1 else None,
        ("worsening", 2): f"{names[1]}/worsening" if len(names) > 1 else None,
        ("crcl", 1): "crcl",
        ("egfr", 1): "egfr",
        ("age_at", 2): "age",
        ("pred_equivalent", 3): "prednisone_dose",
        ("pred_mg_per_kg", 3): "prednisone_per_kg",
        ("course", 4): "course",
    }.get((atom.predicate, position))
    if atom.predicate == "score" and position in (3, 4):
        key = f"{names[1]}.{names[2]}"
    return str(key) if key else None


def _bindings(rule: Rule) -> dict[str, tuple[Atom, int]]:
    found: dict[str, tuple[Atom, int]] = {}
    for lit in rule.body:
        if isinstance(lit, Atom):
            for position, arg in enumerate(lit.args):
                if isinstance(arg, Var) and not arg.anonymous:
                    found.setdefault(arg.name, (lit, position))
    return found


def _unifies(head: Atom, call: Atom) -> bool:
    return all(
        not (isinstance(h, Const) and isinstance(c, Const) and h.value != c.value)
        for h, c in zip(head.args, call.args, strict=False)
    )


def _gates(rule: Rule) -> tuple[Gate, ...]:
    return tuple(
        (str(_text(lit.args[0])), str(_text(lit.args[1])))
        for lit in rule.body
        if isinstance(lit, Atom) and lit.predicate == "assumption" and all(isinstance(a, Const) for a in lit.args)
    )


def _text(term: object) -> str | None:
    """A constant's value as text (a symbol or a number), None for a variable or an expression."""
    return str(term.value) if isinstance(term, Const) else None


def _walk(kb: KnowledgeBase, predicate: str, truth: Truth) -> list[tuple[Rule, tuple[Gate, ...]]]:
    """The rules that can make `predicate(P, truth)` hold, through positive conditions, with
    the assumption gates met on the way (a rule whose gate is not in force is kept, marked)."""
    start = Atom(predicate, (Var("P", _NOWHERE), Const(str(truth), _NOWHERE)), _NOWHERE)
    out: list[tuple[Rule, tuple[Gate, ...]]] = []
    seen: set[tuple[int, tuple[Gate, ...]]] = set()
    todo: list[tuple[Atom, tuple[Gate, ...]]] = [(start, ())]
    while todo:
        call, gates = todo.pop()
        for rule in kb.program.rules_for(call.predicate):
            if not _unifies(rule.head, call):
                continue
            ruled = gates + _gates(rule)
            if (id(rule), ruled) in seen:
                continue
            seen.add((id(rule), ruled))
            out.append((rule, ruled))
            todo.extend((lit, ruled) for lit in rule.body if isinstance(lit, Atom) and lit.predicate != "assumption")
    return out


def _in_force(gates: tuple[Gate, ...], assumptions: AssumptionSet) -> bool:
    return all(str(assumptions[a]) == v for a, v in gates if a in assumptions.registry)


def _number(term: object) -> Decimal | None:
    return term.value if isinstance(term, Const) and isinstance(term.value, Decimal) else None


def _bounds(crit: Criterion, rules: list[tuple[Rule, tuple[Gate, ...]]], assumptions: AssumptionSet) -> list[Bound]:
    found: list[Bound] = []
    for index, (rule, gates) in enumerate(rules):
        truth = rule.head.args[-1] if rule.head.args else None
        if not _in_force(gates, assumptions) or (isinstance(truth, Const) and truth.value in (Truth.NO, Truth.NA)):
            continue  # a `no` reached through a truth variable says when the criterion fails, not its bound
        bound_by = _bindings(rule)
        for lit in rule.body:
            if not isinstance(lit, Comparison):
                continue
            var, other, op = lit.left, lit.right, lit.op
            if isinstance(var, Const):
                var, other, op = other, var, _FLIP[op]
            if not isinstance(var, Var) or var.name not in bound_by:
                continue
            measure = _measure(*bound_by[var.name])
            value, assumption = _number(other), ""
            if (
                isinstance(other, Var)
                and other.name in bound_by
                and bound_by[other.name][0].predicate == "assumption_days"
            ):
                assumption = str(_text(bound_by[other.name][0].args[0]))
                value = Decimal(assumptions.days(assumption))
            if measure and value is not None:
                gate = next((a for a, _ in gates if a in assumptions.registry), assumption)
                found.append(Bound(crit.id, measure, op, value, index, rule.head.predicate, gate))
    return found


def _anchor(var: Var, bound_by: dict[str, tuple[Atom, int]], kb: KnowledgeBase) -> str:
    atom, _ = bound_by.get(var.name, (None, 0))
    if atom is None:
        return "the reference day"
    first = atom.args[1] if len(atom.args) > 1 and isinstance(atom.args[1], Const) else None
    if atom.predicate == "ref_day" and first is not None:
        return str(first.value)
    if atom.predicate == "obs_num" and first is not None:
        item = kb.vocabulary.items.get(str(first.value))
        return f"the {(item.label if item else str(first.value)).lower()} sample"
    if atom.predicate == "haematology_sample":
        return "the screening haematology sample"
    return "the " + atom.predicate.replace("_", " ")


def _windows(
    crit: Criterion, rules: list[tuple[Rule, tuple[Gate, ...]]], kb: KnowledgeBase, assumptions: AssumptionSet
) -> list[Window]:
    found: list[Window] = []
    for rule, gates in rules:
        if not _in_force(gates, assumptions):
            continue
        bound_by = _bindings(rule)
        for lit in rule.body:
            if isinstance(lit, Atom) and lit.predicate == "months_before" and _number(lit.args[2]) is not None:
                months = int(_number(lit.args[2]) or 0)
                found.append(Window(crit.id, _text(lit.args[1]) or "enrolment", months=months))
            if isinstance(lit, Atom) and lit.predicate == "washout_days":
                anchors = (_text(a.args[1]) for a in rule.body if isinstance(a, Atom) and a.predicate == "ref_day")
                found.append(Window(crit.id, next((a for a in anchors if a), "apheresis"), washout=True))
            if not isinstance(lit, Comparison):
                continue
            shifted = next(
                (t for t in (lit.left, lit.right) if isinstance(t, BinOp) and t.op == "-" and isinstance(t.left, Var)),
                None,
            )
            if shifted is None:
                continue
            assert isinstance(shifted.left, Var)
            anchor = _anchor(shifted.left, bound_by, kb)
            span = shifted.right
            if _number(span) is not None:
                found.append(Window(crit.id, anchor, days=int(_number(span) or 0)))
                continue
            if not isinstance(span, Var) or span.name not in bound_by:
                continue
            table, position = bound_by[span.name]
            if table.predicate == "assumption_days":
                assumption = str(_text(table.args[0]))
                found.append(Window(crit.id, anchor, days=assumptions.days(assumption), assumption=assumption))
                continue
            for fact in kb.program.rules_for(table.predicate):  # a table of windows, one per agent class
                if not _unifies(fact.head, table) or not _in_force(_gates(fact), assumptions):
                    continue
                days = _number(fact.head.args[position])
                key = next(
                    (str(a.value) for i, a in enumerate(fact.head.args) if i != position and isinstance(a, Const)), ""
                )
                if days is not None:
                    found.append(Window(crit.id, anchor, days=int(days), agent_class=key))
    return list(dict.fromkeys(found))


def _named(rules: list[tuple[Rule, tuple[Gate, ...]]], kb: KnowledgeBase) -> dict[str, tuple[Gate, ...]]:
    """Agent classes and agent names the rules count, with the gates of the rule naming them
    (the first rule in force wins over one that is not)."""
    named: dict[str, tuple[Gate, ...]] = {}
    agents, classes = kb.vocabulary.agents, kb.vocabulary.agent_classes
    for rule, gates in rules:
        for lit in (rule.head, *(x for x in rule.body if isinstance(x, Atom))):
            for arg in lit.args:
                name = str(arg.value) if isinstance(arg, Const) else ""
                counted = name in agents or (lit.predicate == "agent_class" and name in classes)
                if counted and (name not in named or not named[name]):
                    named[name] = gates
    return named


def _steroid_dose(rules: list[tuple[Rule, tuple[Gate, ...]]]) -> bool:
    return any(isinstance(x, Atom) and x.predicate == "pred_equivalent" for rule, _ in rules for x in rule.body)


_CACHE: dict[tuple[int, tuple[tuple[str, object], ...]], tuple[KnowledgeBase, dict[str, Reach]]] = {}


def reaches(kb: KnowledgeBase, assumptions: AssumptionSet) -> dict[str, Reach]:
    """Every criterion's reach (headings left out), once per knowledge base and assumption values:
    the walk costs tens of milliseconds and a chat asks many questions under the same values."""
    key = (id(kb), tuple(sorted(assumptions.in_force().items())))
    cached = _CACHE.get(key)
    if cached is None or cached[0] is not kb:
        if len(_CACHE) > 16:
            _CACHE.clear()
        cached = (kb, {c.id: reach(kb, c, assumptions) for c in kb.criteria if not c.summary})
        _CACHE[key] = cached
    return cached[1]


def reach(kb: KnowledgeBase, crit: Criterion, assumptions: AssumptionSet) -> Reach:
    """What `crit` compares, looks back over and counts, under `assumptions`."""
    if crit.predicate is None:
        return Reach(crit, (), (), {}, {}, False)
    met = _walk(kb, crit.predicate, Truth.YES)
    blocking = met if crit.kind == "exclusion" else _walk(kb, crit.predicate, Truth.NO)
    supporting = [] if crit.kind == "exclusion" else met
    # an inclusion blocks on a drug only through a look-back (GI6's growth factors, GI6.2's
    # transfusion); the rest of its `no` rules are evidence of absence, not exposures
    blocked_in_window = bool(_windows(crit, blocking, kb, assumptions))
    return Reach(
        crit,
        tuple(_bounds(crit, met, assumptions)),
        tuple(_windows(crit, blocking if crit.kind != "definition" else met, kb, assumptions)),
        _named(blocking, kb) if crit.kind == "exclusion" or (crit.kind == "inclusion" and blocked_in_window) else {},
        _named(supporting, kb),
        _steroid_dose(blocking),
    )
