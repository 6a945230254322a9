"""What a part of a derivation is evidence of: a record (its kind and the vocabulary names it
can bear), or a datum; and how to build a constructed patient who has it.

Two exclusions decide the same condition when their derivations need the same records or
data, not when their texts look alike: SLE-E2 and X-E4 both read a diagnosis of the class
`ttp_tma`; X-E2 reads the class `marrow_disorder` and GE6 `genetic_bm_failure`, and the
vocabulary puts Fanconi anaemia in both. So a record is read off the rule literals (the
event's kind, the classes and names its agent must have, the classes a negation takes
away) and expanded through the vocabulary (kb/facts/vocabulary/conditions.csv, agents.csv).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import timedelta
from decimal import Decimal

import z3

from kb.catalogue.knowledge import KnowledgeBase
from kb.language.syntax import Atom, BinOp, Comparison, Const, Literal, Negation, Term, Var
from kb.records.patients import AGENT_KINDS, Event, Patient, Source
from kb.review.derivations import READS, Derivations, canonical, datum_read, names_in, occurrences
from kb.review.findings import REVIEW_DAY, synthetic_patient

__all__ = ["Record", "Shared", "cohort_events", "describe_part", "model_patient", "records", "shared_record"]

_SOURCE = Source("review (constructed patient)", 0)
_CLASSES = ("condition_class", "agent_class")


@dataclass(frozen=True)
class Record:
    """A record a part of a derivation needs: an event of `kind` (None: any) whose name is one
    of `names` (None: any name) and none of `excluded`."""

    kind: str | None
    names: frozenset[str] | None
    excluded: frozenset[str]
    agents: bool  # names from the agent vocabulary (drugs, vaccines, cell products)
    plain: bool  # the part needs only that such a record exists (no window, no other datum)
    text: str  # the part, canonical (its proposition in the solver)

    def allowed(self) -> frozenset[str] | None:
        return None if self.names is None else self.names - self.excluded


@dataclass(frozen=True)
class Shared:
    """The records two parts both accept."""

    kind: str | None
    names: frozenset[str] | None  # None: any name (of that kind) but the excluded
    excluded: frozenset[str]


def _members(kb: KnowledgeBase, cls: str) -> tuple[frozenset[str], bool]:
    conditions = frozenset(n for n, c in kb.vocabulary.conditions.items() if cls in c.classes)
    agents = frozenset(n for n, a in kb.vocabulary.agents.items() if cls in a.classes)
    return (agents, True) if agents and not conditions else (conditions, False)


def records(part: tuple[Literal, ...], kb: KnowledgeBase, derivations: Derivations) -> list[Record]:
    """The records a part needs, one per event literal in it."""
    events = [lit for lit in part if isinstance(lit, Atom) and lit.predicate == "event"]
    uses = occurrences(part)
    out = []
    for event in events:
        kind_arg, name_arg = event.args[1], event.args[2]
        kind = str(kind_arg.value) if isinstance(kind_arg, Const) else None
        names: frozenset[str] | None = None
        agents = kind in AGENT_KINDS
        excluded: frozenset[str] = frozenset()
        known = {event}
        if isinstance(name_arg, Const):
            names = frozenset({str(name_arg.value)})
            agents = str(name_arg.value) in kb.vocabulary.agents
        elif isinstance(name_arg, Var):
            for lit in part:
                classed = isinstance(lit, Atom) and lit.predicate in _CLASSES and lit.args[0] == name_arg
                if classed and isinstance(lit, Atom):
                    if isinstance(lit.args[1], Const):
                        found, agents = _members(kb, str(lit.args[1].value))
                        names = found if names is None else names & found
                        known.add(lit)
                elif isinstance(lit, Negation) and name_arg in lit.atom.args:
                    taken = _taken(lit.atom, name_arg, kb, derivations)
                    if taken is not None:
                        excluded |= taken
                        known.add(lit)  # type: ignore[arg-type]
        others = [lit for lit in part if lit not in known]
        days = [a for a in event.args[3:] if isinstance(a, Var) and uses.get(a.name, 0) > 1]
        plain = not others and not days and len(events) == 1
        out.append(Record(kind, names, excluded, agents, plain, canonical(part)))
    return out


def _taken(atom: Atom, name: Var, kb: KnowledgeBase, derivations: Derivations) -> frozenset[str] | None:
    """The names a negated helper `not q(Name)` takes away, when q is only a class test."""
    unfolded = derivations.unfold(atom, memo=False)  # its literals must name `name` itself
    if not unfolded.complete:
        return None
    out: set[str] = set()
    for derivation in unfolded.derivations:
        lits = derivation.literals
        if len(lits) != 1 or not isinstance(lits[0], Atom) or lits[0].predicate not in _CLASSES:
            return None
        if lits[0].args[0] != name or not isinstance(lits[0].args[1], Const):
            return None
        out |= _members(kb, str(lits[0].args[1].value))[0]
    return frozenset(out)


def _of_kind(kb: KnowledgeBase, names: frozenset[str], kind: str) -> frozenset[str]:
    """The names the vocabulary classes as the event kind itself (a malignancy record of a
    malignancy): what an any-named record of that kind can share with a named one."""
    return frozenset(n for n in names if n in kb.vocabulary.conditions and kind in kb.vocabulary.conditions[n].classes)


def shared_record(a: Record, b: Record, kb: KnowledgeBase) -> Shared | None:
    """The records both accept (None: none)."""
    if a.kind is not None and b.kind is not None and a.kind != b.kind:
        return None
    kind = a.kind or b.kind
    excluded = a.excluded | b.excluded
    left, right = a.allowed(), b.allowed()
    if left is not None and right is not None:
        names = left & right - excluded
    elif left is None and right is None:
        return Shared(kind, None, excluded) if kind is not None and a.kind == b.kind else None
    else:
        named, loose = (a, b) if left is not None else (b, a)
        names = (named.allowed() or frozenset()) - excluded
        if loose.kind is not None and named.kind is None:
            names = _of_kind(kb, names, loose.kind)
    return Shared(kind, frozenset(names), excluded) if names else None


def contains(inner: Record, outer: Record) -> bool:
    """Whether every record `inner` accepts, the plain `outer` accepts too."""
    if not outer.plain or (outer.kind is not None and inner.kind != outer.kind):
        return False
    small, big = inner.allowed(), outer.allowed()
    if big is None:
        return outer.excluded <= inner.excluded or (small is not None and not small & outer.excluded)
    return small is not None and small <= big


def _words(name: str) -> str:
    return name.replace("_", " ")


def _codes(kb: KnowledgeBase, names: frozenset[str]) -> list[str]:
    return sorted({f"{c.code}" for c in kb.vocabulary.condition_codes if c.condition in names and c.system == "icd10"})


def describe_shared(shared: Shared, kb: KnowledgeBase) -> str:
    kind = f"a {_words(shared.kind)} record" if shared.kind else "a record"
    if shared.names is None:
        but = f" other than {', '.join(_words(n) for n in sorted(shared.excluded))}" if shared.excluded else ""
        return f"{kind} of any name{but}"
    codes = _codes(kb, shared.names)
    coded = f" (ICD-10 {', '.join(codes)})" if codes else ""
    return f"{kind} of {', '.join(_words(n) for n in sorted(shared.names))}{coded}"


def witness_name(shared: Shared, kb: KnowledgeBase, wording: str = "") -> str | None:
    """A vocabulary name a constructed record can bear to meet both sides: one the protocol's
    `wording` names, if any (TTP rather than HUS for "thrombotic thrombocytopenic purpura")."""
    if shared.names is not None:
        fitting = sorted(shared.names)
    elif shared.kind is not None:
        fitting = sorted(_of_kind(kb, frozenset(kb.vocabulary.conditions), shared.kind) - shared.excluded)
    else:
        return None
    named = [n for n in fitting if _words(n).casefold() in wording.casefold()]
    return (named or fitting)[0] if fitting else None


def cohort_events(kb: KnowledgeBase, cohorts: list[str], days_before: int) -> list[Event]:
    """Diagnoses that put a constructed patient in each cohort (by code, as a site's list does)."""
    out = []
    for cohort in cohorts:
        code = next((c for c in kb.vocabulary.diagnosis_codes if c.cohort == cohort and c.system == "icd10"), None)
        if code is not None:
            day = REVIEW_DAY - timedelta(days=days_before)
            out.append(Event("diagnosis", "", None, f"icd10:{code.code}", day, None, _SOURCE))
    return out


def describe_part(part: tuple[Literal, ...]) -> str:
    """A part in plain words where it reads data or negates a helper; else its rule text."""
    if len(part) == 1 and isinstance(part[0], Negation) and len(part[0].atom.args) == 1:
        name = part[0].atom.predicate
        return _words(name.removeprefix("not_")) if name.startswith("not_") else f"no {_words(name)}"
    if datum_read(part) is None:
        return canonical(part)
    labels: dict[str, str] = {}
    words = []
    for lit in part:
        if not isinstance(lit, Atom):
            continue
        keys, positions = READS[lit.predicate]
        label = " ".join(_words(str(a.value)) for a in (lit.args[k] for k in keys) if isinstance(a, Const))
        for position in positions:
            arg = lit.args[position]
            if isinstance(arg, Const) and lit.predicate == "sex":
                words.append({"female": "a woman", "male": "a man"}.get(str(arg.value), f"sex {arg.value}"))
            elif isinstance(arg, Const):
                words.append(f"{label} {_words(str(arg.value))}")
            elif isinstance(arg, Var):
                labels[arg.name] = label or _words(lit.predicate)
    for lit in part:
        if isinstance(lit, Comparison):
            symbol = {">=": "≥", "<=": "≤", "!=": "≠"}.get(lit.op, lit.op)
            words.append(f"{_term_words(lit.left, labels)} {symbol} {_term_words(lit.right, labels)}")
    return ", ".join(words)


def _term_words(term: Term, labels: dict[str, str]) -> str:
    if isinstance(term, Var):
        return labels.get(term.name, term.name)
    if isinstance(term, Const):
        return str(term.value) if isinstance(term.value, str) else format(term.value.normalize(), "f")
    assert isinstance(term, BinOp)
    return f"{_term_words(term.left, labels)} {term.op} {_term_words(term.right, labels)}"


def model_patient(
    patient_id: str, model: z3.ModelRef, formulas: list[z3.BoolRef], kb: KnowledgeBase
) -> tuple[str, Patient] | None:
    """A constructed patient with the data a model gives the datum reads of `formulas` (None
    when one cannot be recorded: a score, a computed eGFR, a value with no item)."""
    names = names_in(formulas)
    values: dict[str, Decimal | str] = {}
    attested: dict[str, str] = {}
    uln: dict[str, Decimal] = {}
    sex = "female"
    shown = []
    for name in sorted(names):
        if name.startswith("has ") or " " in name:
            continue
        relation, _, item = name.partition(":")
        if name != "sex" and not z3.is_true(model.eval(z3.Bool(f"has {name}"), model_completion=True)):
            continue
        raw = model.eval(z3.String(name) if relation in ("obs_cat", "attested", "sex") else z3.Real(name), True)
        if relation in ("obs_cat", "attested", "sex"):
            text = raw.as_string() if isinstance(raw, z3.SeqRef) else str(raw)
            if not text:
                return None
            if relation == "sex":
                sex = text
                shown.append({"female": "a woman", "male": "a man"}.get(text, f"sex {text}"))
                continue
            (values if relation == "obs_cat" else attested)[item] = text
            shown.append(f"{_words(item)} {_words(text)}")
        elif relation in ("obs_num", "xuln", "crcl"):
            number = _decimal(raw)
            if relation == "xuln":
                values[item], uln[item] = number * 100, Decimal(100)
            else:
                values["crcl_measured" if relation == "crcl" else item] = number
            shown.append(f"{_words(item)} {number.normalize():f}" + (" × ULN" if relation == "xuln" else ""))
        else:
            return None
    patient = synthetic_patient(patient_id, kb, values, attested=attested, uln=uln, sex=sex)
    return ", ".join(shown) or "no datum", patient


def _decimal(value: z3.ExprRef) -> Decimal:
    if z3.is_rational_value(value):
        return (Decimal(value.numerator_as_long()) / Decimal(value.denominator_as_long())).quantize(Decimal("0.0001"))
    return Decimal(str(value).rstrip("?"))


def with_events(patient: Patient, events: list[Event]) -> Patient:
    return replace(patient, events=[*patient.events, *events])
