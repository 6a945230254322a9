"""What the overlap and implication checks of the review share: the criteria applied, their
derivations unfolded for z3, the value range of every datum, and the engine's statuses for a
constructed patient.

`kb.review.overlaps` (duplicate exclusions) and `kb.review.implied` (implied inclusions,
exclusions repeating an inclusion's failure) both reason over one `Context`; it lives here,
beneath both, so that overlaps can combine their findings without the two importing each other.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import z3

from kb.catalogue.assumptions import AssumptionSet
from kb.catalogue.criteria import Criterion
from kb.catalogue.knowledge import KnowledgeBase
from kb.factbase.build import build_facts
from kb.reasoning.evaluation import cohort_of, status_from_truth
from kb.records.patients import Patient
from kb.review.derivations import Derivation, Derivations, Unfolded, datum_names, names_in, parts
from kb.review.evidence import Record, describe_part, records
from kb.review.logic import _NUMERIC, _domain
from kb.status import COHORTS, Status, Truth

__all__ = ["Context", "Datum", "context", "domain", "domain_of", "proves", "statuses", "text"]


@dataclass(frozen=True)
class Datum:
    """A part of a blocking derivation that reads data: their names, its formula, in words."""

    names: tuple[str, ...]
    formula: z3.BoolRef
    words: str


@dataclass
class Context:
    """The criteria the checks apply (counted, decided by a rule, in a cohort), their derivations
    and the value ranges of the data they read: built once per review by `context`."""

    kb: KnowledgeBase
    assumptions: AssumptionSet
    derivations: Derivations
    applied: list[Criterion]
    #: pairs sharing only named drugs, left to the windows (kept for inspection, not reported)
    drugs: list[tuple[str, str]] = field(default_factory=list)
    _evidence: dict[str, tuple[list[Record], list[Datum]]] = field(default_factory=dict)
    domain: list[z3.BoolRef] = field(default_factory=list)  # the value ranges of every datum read

    def owner(self, crit: Criterion) -> str:
        return cohort_of(crit, self.assumptions)

    def truth(self, crit: Criterion, truth: Truth) -> Unfolded:
        assert crit.predicate is not None
        return self.derivations.of(crit.predicate, truth)

    def formula(self, derivation: Derivation) -> z3.BoolRef:
        return self.derivations.formula(derivation)

    def any_of(self, unfolded: Unfolded) -> z3.BoolRef:
        return self.derivations.any_of(unfolded)

    def passing(self, crit: Criterion) -> z3.BoolRef:
        """Necessary for not blocking: its passing truth or `na` (not applicable never blocks)."""
        good = Truth.YES if crit.kind == "inclusion" else Truth.NO
        return z3.Or(self.any_of(self.truth(crit, good)), self.any_of(self.truth(crit, Truth.NA)))

    def evidence(self, crit: Criterion) -> tuple[list[Record], list[Datum]]:
        """The records and the data parts the blocking derivations of an exclusion need."""
        if crit.id not in self._evidence:
            found: list[Record] = []
            data = []
            for derivation in self.truth(crit, Truth.YES).derivations:
                for part in parts(derivation):
                    found += records(part, self.kb, self.derivations)
                    names = datum_names(part)
                    if names and names != ("sex",):
                        data.append(Datum(names, self.derivations.part_formula(part), describe_part(part)))
            self._evidence[crit.id] = (found, data)
        return self._evidence[crit.id]

    def failing(self, crit: Criterion) -> Unfolded:
        return self.truth(crit, Truth.NO if crit.kind == "inclusion" else Truth.YES)


def context(kb: KnowledgeBase, assumptions: AssumptionSet) -> Context:
    applied = [
        c
        for c in kb.criteria
        if c.counted
        and c.predicate is not None
        and c.kind in ("inclusion", "exclusion")
        and not (c.manual_unless and assumptions[c.manual_unless] == "none")
        and cohort_of(c, assumptions) in ("general", *COHORTS)
    ]
    ctx = Context(kb, assumptions, Derivations(kb.program, assumptions), applied)
    names = {n for c in applied for truth in Truth for n in ctx.derivations.keys(ctx.truth(c, truth))}
    ctx.domain = domain(names, kb)
    return ctx


def text(crit: Criterion) -> str:
    return f"{crit.id} (“{crit.record_text or crit.text}”)"


def domain(names: set[str], kb: KnowledgeBase) -> list[z3.BoolRef]:
    """The value ranges of the named data (kb.review.logic's, and a score's bounds in order)."""
    keys: set[tuple[str, str]] = set()
    out: list[z3.BoolRef] = []
    for name in sorted(names):
        relation, _, item = name.partition(":")
        if relation in _NUMERIC:
            keys.add((relation, item))
        elif relation == "score" and name.endswith(":lo"):
            lo, hi = z3.Real(name), z3.Real(name.removesuffix(":lo") + ":hi")
            out += [lo >= 0, lo <= hi]
    return [*_domain(keys, kb), *out]


def domain_of(formulas: list[z3.BoolRef], kb: KnowledgeBase) -> list[z3.BoolRef]:
    return domain(names_in(formulas), kb)


def proves(ctx: Context, *constraints: z3.BoolRef) -> bool:
    """Whether the constraints, with the value ranges of every datum, have no solution."""
    solver = z3.Solver()
    solver.add(*ctx.domain, *constraints)
    return bool(solver.check() == z3.unsat)


def statuses(ctx: Context, patient: Patient, crits: tuple[Criterion, ...]) -> dict[str, Status]:
    """The statuses the engine gives a constructed patient, one session for all the criteria
    (as `criterion_status` reads them: the truth derived, or unknown)."""
    base = build_facts(patient, ctx.kb, ctx.assumptions)
    roots = frozenset(c.predicate for c in crits if c.predicate)
    with ctx.kb.engine.session(base.facts, roots) as session:
        out = {}
        for crit in crits:
            assert crit.predicate is not None
            truths = {str(row[1]) for row in session.ask(crit.predicate, [base.patient_id, None])}
            out[crit.id] = status_from_truth(crit, truths.pop()) if len(truths) == 1 else Status.UNKNOWN
        return out
