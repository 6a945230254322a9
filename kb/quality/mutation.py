"""The mutation check: does the vignette suite notice when a threshold or window moves?

Every numeric constant of the rules (a bound in a comparison, a window in its arithmetic, a
number in a fact such as `gi6_window(short_acting_gcsf, 7)`) is shifted by one step of its
own resolution (1 for 7, 0.1 for 1.5), up and down, one at a time. Each mutant rule set is
run over the vignettes; it is killed when some vignette's verdict or targeted status
changes, or when the rules contradict themselves (two truth values for one criterion). A
mutant nobody notices is a boundary no vignette sits on.
"""

from __future__ import annotations

import multiprocessing
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, replace
from decimal import Decimal
from typing import Any

from kb.catalogue.knowledge import KnowledgeBase
from kb.language.engine import Engine, EngineError
from kb.language.syntax import Atom, BinOp, Comparison, Const, Program, Rule, Term
from kb.quality.vignettes import Vignette, VignetteOutcome, check_vignettes
from kb.records.patients import Dataset
from kb.status import Status

__all__ = ["Mutant", "MutationReport", "mutants", "run_mutation_check"]


@dataclass(frozen=True)
class Mutant:
    rule_index: int
    where: str  # file:line:col of the constant
    original: Decimal
    mutated: Decimal
    rule_text: str
    head: str  # the predicate whose rule changed

    def describe(self) -> str:
        return f"{self.where}: {self.original} → {self.mutated} in `{self.rule_text}`"


@dataclass
class MutationReport:
    total: int
    killed: int
    survivors: list[Mutant]

    @property
    def ratio(self) -> float:
        return self.killed / self.total if self.total else 1.0

    def as_dict(self) -> dict[str, Any]:
        return {
            "mutants": self.total,
            "killed": self.killed,
            "kill_ratio": round(self.ratio, 4),
            "survivors": [m.describe() for m in self.survivors],
        }


def _step(value: Decimal) -> Decimal:
    exponent = value.as_tuple().exponent
    return Decimal(1).scaleb(exponent) if isinstance(exponent, int) and exponent < 0 else Decimal(1)


def _shift(term: Term, target: Const, new: Decimal) -> Term:
    if term is target:
        return Const(new, term.pos)
    if isinstance(term, BinOp):
        return BinOp(term.op, _shift(term.left, target, new), _shift(term.right, target, new), term.pos)
    return term


def _numbers(term: Term) -> Iterator[Const]:
    if isinstance(term, Const) and term.is_number:
        yield term
    elif isinstance(term, BinOp):
        yield from _numbers(term.left)
        yield from _numbers(term.right)


def mutants(program: Program) -> Iterator[tuple[Mutant, Program]]:
    for rule_index, rule in enumerate(program.rules):
        for const in _constants(rule):
            assert isinstance(const.value, Decimal)
            for new in (const.value + _step(const.value), const.value - _step(const.value)):
                mutated = _replace_constant(rule, const, new)
                rules = list(program.rules)
                rules[rule_index] = mutated
                mutant = Mutant(rule_index, str(const.pos), const.value, new, rule.text, rule.head.predicate)
                yield mutant, Program(program.declarations, rules)


def _constants(rule: Rule) -> list[Const]:
    found = [a for a in rule.head.args if isinstance(a, Const) and a.is_number]
    for lit in rule.body:
        if isinstance(lit, Comparison):
            found += [*_numbers(lit.left), *_numbers(lit.right)]
    return found


def _replace_constant(rule: Rule, const: Const, new: Decimal) -> Rule:
    head = Atom(rule.head.predicate, tuple(_shift(a, const, new) for a in rule.head.args), rule.head.pos)
    body = tuple(
        Comparison(lit.op, _shift(lit.left, const, new), _shift(lit.right, const, new), lit.pos)
        if isinstance(lit, Comparison)
        else lit
        for lit in rule.body
    )
    return replace(rule, head=head, body=body)


def run_mutation_check(
    kb: KnowledgeBase,
    dataset: Dataset,
    vignettes: Sequence[Vignette],
    baseline: Sequence[VignetteOutcome],
    only: Callable[[Mutant], bool] | None = None,
    workers: int = 2,
) -> MutationReport:
    """Run every mutant (or those `only` selects) over the vignettes that can notice it:
    those for which a criterion depending on the mutated rule applies. `baseline` is the
    unmutated run; mutants are shared out over `workers` processes (the machine has two
    cores, and each mutant is independent)."""
    relevant: dict[str, set[str]] = {}  # predicate -> criteria whose deciding predicate depends on it
    for crit in kb.criteria:
        if crit.predicate:
            for predicate in kb.program.depends_on([crit.predicate]):
                relevant.setdefault(predicate, set()).add(crit.id)
    jobs = []
    for mutant, program in mutants(kb.program):
        if only is not None and not only(mutant):
            continue
        affected = relevant.get(mutant.head, set())
        watching = [
            o.vignette
            for o in baseline
            if any(r.id in affected and r.status != Status.NOT_APPLICABLE for r in o.assessment.criteria)
        ]
        jobs.append((mutant, program, watching))
    global _JOB_CONTEXT
    _JOB_CONTEXT = (kb, dataset, jobs)
    indexes = range(len(jobs))
    if workers > 1 and len(jobs) > 1 and "fork" in multiprocessing.get_all_start_methods():
        context = multiprocessing.get_context("fork")  # workers inherit the loaded knowledge base
        with ProcessPoolExecutor(max_workers=workers, mp_context=context) as pool:
            noticed = list(pool.map(_noticed, indexes, chunksize=4))
    else:
        noticed = [_noticed(i) for i in indexes]
    _JOB_CONTEXT = None
    survivors = [job[0] for job, seen in zip(jobs, noticed, strict=True) if not seen]
    return MutationReport(len(jobs), len(jobs) - len(survivors), survivors)


_JOB_CONTEXT: tuple[KnowledgeBase, Dataset, list[tuple[Mutant, Program, list[Vignette]]]] | None = None


def _noticed(index: int) -> bool:
    assert _JOB_CONTEXT is not None
    kb, dataset, jobs = _JOB_CONTEXT
    _, program, watching = jobs[index]
    mutated_kb = replace(kb, program=program, engine=Engine(program))
    try:
        outcomes = check_vignettes(mutated_kb, dataset, watching, explain="status")
    except EngineError:
        return True  # the rules now contradict themselves on some vignette
    return any(not o.ok for o in outcomes)
