"""The protocol review: every finding with its witness checked, and the population impact.

`review` runs the analyses (z3 over the requirements of the rules, engine-probed windows,
the vocabulary), checks each witness by evaluating its constructed patients (a finding
whose witness does not hold is kept but marked unconfirmed, never silently dropped), and
measures what each criterion does to a cohort of patients.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

from kb.catalogue.assumptions import AssumptionSet
from kb.catalogue.knowledge import KnowledgeBase
from kb.records.patients import Dataset
from kb.review.cache import Memo
from kb.review.citations import citation_findings
from kb.review.findings import KINDS, Finding, check_witnesses
from kb.review.impact import Impact, population_impact
from kb.review.logic import logic_findings
from kb.review.overlaps import overlap_findings
from kb.review.qualifiers import qualifier_findings
from kb.review.quantities import quantity_findings
from kb.review.tensions import tension_findings
from kb.review.terms import vocabulary_findings
from kb.review.windows import probe_windows, window_findings

__all__ = ["Review", "checked_findings", "clear_caches", "review"]


@dataclass(frozen=True)
class Review:
    findings: tuple[Finding, ...]
    unconfirmed: dict[int, list[str]]  # finding index -> what in its witness did not hold
    impact: tuple[Impact, ...]
    assumptions: dict[str, int | str]
    impact_switched: tuple[Impact, ...] = ()
    switched: dict[str, int | str] | None = None

    def of_kind(self, kind: str) -> list[Finding]:
        return [f for f in self.findings if f.kind == kind]

    def as_dict(self) -> dict[str, Any]:
        return {
            "findings": [
                {**f.as_dict(), "witness_confirmed": n not in self.unconfirmed} for n, f in enumerate(self.findings)
            ],
            "counts": {kind: len(self.of_kind(kind)) for kind in KINDS},
            "impact": [i.as_dict() for i in self.impact],
            "assumptions": self.assumptions,
            "impact_switched": [i.as_dict() for i in self.impact_switched],
            "switched_assumptions": self.switched,
        }


def review(
    kb: KnowledgeBase,
    assumptions: AssumptionSet,
    population: Dataset | None = None,
    switched: AssumptionSet | None = None,
) -> Review:
    """The review of these rules under these assumptions, with the impact on `population`
    (and under `switched`). Worked out once per rule set, assumption set(s) and data set and
    kept (`Memo`): the chat's "which rules contradict each other?", the review page and the
    CLI get the same object, read-only, from the second time on."""
    key = (id(kb), _reading(assumptions), _identity(population), None if switched is None else _reading(switched))
    return _REVIEWS.get(
        key, lambda: _review(kb, assumptions, population, switched), (kb,), () if population is None else (population,)
    )


def _review(
    kb: KnowledgeBase, assumptions: AssumptionSet, population: Dataset | None, switched: AssumptionSet | None
) -> Review:
    findings, unconfirmed = checked_findings(kb, assumptions)
    impact: tuple[Impact, ...] = ()
    impact_switched: tuple[Impact, ...] = ()
    if population is not None:
        impact = _impact(kb, population, assumptions)
        if switched is not None:
            impact_switched = _impact(kb, population, switched)
    return Review(
        findings,
        {n: list(problems) for n, problems in unconfirmed.items()},
        impact,
        assumptions.in_force(),
        impact_switched,
        switched.changed() if switched is not None else None,
    )


def _reading(assumptions: AssumptionSet) -> tuple[tuple[str, int | str], ...]:
    return tuple(assumptions.in_force().items())


def _identity(population: Dataset | None) -> int | None:
    return None if population is None else id(population)


#: Kept for the most recently used rule sets, assumption sets and data sets (`Memo`).
_FINDINGS: Memo[tuple[tuple[Finding, ...], Mapping[int, tuple[str, ...]]]] = Memo(keep=8)
_IMPACTS: Memo[tuple[Impact, ...]] = Memo(keep=8)
_REVIEWS: Memo[Review] = Memo(keep=8)


def clear_caches() -> None:
    """Forget every kept review, findings and impact (a benchmark's honest cold run)."""
    for memo in (_FINDINGS, _IMPACTS, _REVIEWS):
        memo.clear()


def _impact(kb: KnowledgeBase, population: Dataset, assumptions: AssumptionSet) -> tuple[Impact, ...]:
    """The population impact, kept per data set: the review under a switched assumption and
    the one without share the default reading's."""
    key = (id(kb), _reading(assumptions), id(population))
    return _IMPACTS.get(key, lambda: tuple(population_impact(kb, population, assumptions)), (kb,), (population,))


def checked_findings(
    kb: KnowledgeBase, assumptions: AssumptionSet
) -> tuple[tuple[Finding, ...], Mapping[int, tuple[str, ...]]]:
    """Every finding, sorted by kind, and what did not hold in each unconfirmed witness.

    They depend on the rules and the assumptions alone, not on any patient, and take
    seconds (windows probed by the engine, every witness evaluated): so they are worked out
    once per knowledge base and assumption set and kept, like the compiled rule plans, for
    the chat, the review page and the CLI to share. A knowledge base is immutable; an edited
    rule set is another one.
    """
    return _FINDINGS.get((id(kb), _reading(assumptions)), lambda: _work_out(kb, assumptions), (kb,))


def _work_out(
    kb: KnowledgeBase, assumptions: AssumptionSet
) -> tuple[tuple[Finding, ...], Mapping[int, tuple[str, ...]]]:
    windows = probe_windows(kb, assumptions)
    found = [
        *logic_findings(kb, assumptions),
        *quantity_findings(kb, assumptions),
        *overlap_findings(kb, assumptions),
        *window_findings(kb, assumptions, windows),
        *tension_findings(kb, assumptions, windows),
        *vocabulary_findings(kb),
        *citation_findings(kb, assumptions),
        *qualifier_findings(kb, assumptions),
    ]
    found.sort(key=lambda f: KINDS.index(f.kind))
    checked = check_witnesses([f.witness for f in found], kb, assumptions)  # one batch for all
    unconfirmed = {n: tuple(problems) for n, problems in enumerate(checked) if problems}
    return tuple(found), MappingProxyType(unconfirmed)  # shared by every caller: read-only
