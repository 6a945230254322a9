"""Constructed patients evaluated together: many patients in one engine session.

A review evaluates hundreds of constructed patients (the window probes, the witnesses). One
engine session per patient pays each time for a fresh logic and the compiled rules, most of
its 15 ms; asked by its id in a session shared with others, a patient costs a fraction of a
millisecond per criterion. The answers are the same as alone when the rules are
patient-local: every rule of a patient reads that patient's facts only, and reads reference
facts (the vocabulary's classes, washouts) only about agents and conditions the patient's own
records name, which its own fact base holds too; the assumptions are the same for all.
`patient_local` proves that on the rule AST; rules it cannot prove so (a rule that asks
whether the vocabulary knows some drug, whoever took it) are evaluated one patient per
session, as before.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import replace

from kb.catalogue.assumptions import AssumptionSet
from kb.catalogue.knowledge import KnowledgeBase
from kb.factbase.build import assumption_facts, build_facts
from kb.language.engine import Fact, FactValue
from kb.language.syntax import Atom, Declaration, Negation, Program, Rule, Var
from kb.records.patients import Patient

__all__ = ["SESSION_SIZE", "patient_local", "truths_many"]

#: Patients per shared session at most: a few hundred keep the fact base small and the
#: compilation (once per session) negligible.
SESSION_SIZE = 400

#: Input relations that hold the assumptions: the same facts in every session of one set.
_SETTLED_INPUTS = frozenset({"assumption", "assumption_days"})

Truths = dict[str, frozenset[FactValue]]


def truths_many(
    kb: KnowledgeBase, assumptions: AssumptionSet, asks: Sequence[tuple[Patient, Collection[str]]]
) -> list[Truths]:
    """For each (patient, predicates): the truths each predicate derives for the patient
    (its second argument, as `session.ask(predicate, [patient, None])` gives it alone)."""
    wanted = frozenset(p for _, predicates in asks for p in predicates)
    if not patient_local(kb.program, wanted):
        return [_alone(kb, assumptions, patient, predicates) for patient, predicates in asks]
    out: list[Truths] = []
    for start in range(0, len(asks), SESSION_SIZE):
        out.extend(_together(kb, assumptions, asks[start : start + SESSION_SIZE], wanted))
    return out


def _alone(kb: KnowledgeBase, assumptions: AssumptionSet, patient: Patient, predicates: Collection[str]) -> Truths:
    base = build_facts(patient, kb, assumptions)
    with kb.engine.session(base.facts, frozenset(predicates)) as session:
        return {p: frozenset(row[1] for row in session.ask(p, [patient.id, None])) for p in predicates}


def _together(
    kb: KnowledgeBase,
    assumptions: AssumptionSet,
    asks: Sequence[tuple[Patient, Collection[str]]],
    roots: frozenset[str],
) -> list[Truths]:
    # constructed patients share ids (one per drug probed): each gets its own in the session
    renamed = [(replace(patient, id=f"review-{n}"), predicates) for n, (patient, predicates) in enumerate(asks)]
    # lean facts: the same facts without their provenance (which only explanations read),
    # as screening builds them; the assumptions, the same for all, once
    facts: dict[Fact, None] = dict.fromkeys(assumption_facts(assumptions))
    for patient, _ in renamed:
        facts.update(dict.fromkeys(build_facts(patient, kb, assumptions, lean=True).facts))
    with kb.engine.session(facts, roots) as session:
        return [
            {p: frozenset(row[1] for row in session.ask(p, [patient.id, None])) for p in predicates}
            for patient, predicates in renamed
        ]


def patient_local(program: Program, roots: Iterable[str]) -> bool:
    """Whether each patient's answers to `roots` depend on its own facts alone when patients
    share a fact base: every rule keeps to one patient (all patient atoms share the head's
    patient), and every reference atom (not about a patient, not read from the assumptions
    alone) is keyed by a value the patient's own records give (an agent its events name, which
    its fact base holds the vocabulary's facts about), or, in a rule of a reference relation,
    by the head's key."""
    decls = program.declarations
    needed = program.depends_on(roots)
    if any(name not in decls and program.rules_for(name) for name in needed):
        return False  # rules of an undeclared relation: nothing says whose facts it holds
    settled = _settled(program, needed)
    sourced = _sourced(program, needed, settled)
    return all(_local(rule, decls, settled, sourced) for name in needed for rule in program.rules_for(name))


def _keyed(decls: Mapping[str, Declaration], name: str) -> bool:
    decl = decls.get(name)
    return decl is not None and bool(decl.params) and decl.params[0][1] == "patient"


def _atoms(rule: Rule) -> Iterable[tuple[Atom, bool]]:
    for lit in rule.body:
        if isinstance(lit, Negation):
            yield lit.atom, False
        elif isinstance(lit, Atom):
            yield lit, True


def _settled(program: Program, needed: Iterable[str]) -> set[str]:
    """Relations read from the assumptions alone (and rule constants): the same in every session."""
    settled = set(_SETTLED_INPUTS)
    derived = [n for n in needed if program.rules_for(n) and n not in settled]
    grown = True
    while grown:
        grown = False
        for name in derived:
            if name not in settled and all(_all_settled(rule, settled) for rule in program.rules_for(name)):
                settled.add(name)
                grown = True
    return settled


def _all_settled(rule: Rule, settled: set[str]) -> bool:
    return all(atom.predicate in settled for atom, _ in _atoms(rule))


def _sourced(program: Program, needed: Iterable[str], settled: set[str]) -> set[tuple[str, int]]:
    """The positions of derived patient relations that only ever hold values of the patient's
    own input facts (the largest such set: recursion keeps what it does not contradict)."""
    decls = program.declarations
    derived = [n for n in needed if program.rules_for(n) and _keyed(decls, n)]
    sourced = {(n, i) for n in derived for i in range(decls[n].arity)}
    shrunk = True
    while shrunk:
        shrunk = False
        for name in derived:
            for rule in program.rules_for(name):
                bound = _bound(rule, decls, sourced)
                for i, arg in enumerate(rule.head.args):
                    if (name, i) in sourced and not (isinstance(arg, Var) and arg.name in bound):
                        sourced.discard((name, i))
                        shrunk = True
    return sourced


def _bound(rule: Rule, decls: Mapping[str, Declaration], sourced: set[tuple[str, int]]) -> set[str]:
    """Variables bound to values of the head patient's own input facts."""
    key = rule.head.args[0]
    return {
        v.name
        for atom, positive in _atoms(rule)
        if positive and _keyed(decls, atom.predicate) and atom.args[0] == key
        for i, v in enumerate(atom.args)
        if isinstance(v, Var) and not v.anonymous
        if decls[atom.predicate].role != "rule" or (atom.predicate, i) in sourced
    }


def _local(rule: Rule, decls: Mapping[str, Declaration], settled: set[str], sourced: set[tuple[str, int]]) -> bool:
    head = rule.head
    keyed = _keyed(decls, head.predicate)
    if not keyed and _all_settled(rule, settled):
        return True  # the same facts in every session (`ge4_5_agent(methotrexate)` by an assumption)
    key = head.args[0] if head.args else None
    if not isinstance(key, Var) or key.anonymous:
        return False
    if not keyed:  # a reference relation (an agent's class): keyed by its head's key only
        return all(
            atom.predicate in settled or (not _keyed(decls, atom.predicate) and atom.args[:1] == (key,))
            for atom, _ in _atoms(rule)
        )
    bound = _bound(rule, decls, sourced)
    for atom, _ in _atoms(rule):
        first = atom.args[0] if atom.args else None
        if _keyed(decls, atom.predicate):
            if first != key:
                return False
        elif atom.predicate not in settled and not (isinstance(first, Var) and first.name in bound):
            return False
    return True
