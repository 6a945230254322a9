"""The protocol review: every finding with its witness checked, and the population impact.

`review` runs the analyses (z3 over the requirements of the rules, engine-probed windows,
the vocabulary), checks each witness by evaluating its constructed patients (a finding
whose witness does not hold is kept but marked unconfirmed, never silently dropped), and
measures what each criterion does to a cohort of patients.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

from kb.assumptions import AssumptionSet
from kb.knowledge import KnowledgeBase
from kb.patients import Dataset
from kb.review.findings import KINDS, Finding, check_witness
from kb.review.impact import Impact, population_impact
from kb.review.logic import logic_findings
from kb.review.tensions import tension_findings
from kb.review.terms import vocabulary_findings
from kb.review.windows import probe_windows, window_findings

__all__ = ["Review", "checked_findings", "review"]


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
    findings, unconfirmed = checked_findings(kb, assumptions)
    impact: tuple[Impact, ...] = ()
    impact_switched: tuple[Impact, ...] = ()
    if population is not None:
        impact = tuple(population_impact(kb, population, assumptions))
        if switched is not None:
            impact_switched = tuple(population_impact(kb, population, switched))
    return Review(
        findings,
        {n: list(problems) for n, problems in unconfirmed.items()},
        impact,
        assumptions.in_force(),
        impact_switched,
        switched.changed() if switched is not None else None,
    )


#: The findings of the most recently used (knowledge base, assumptions) pairs, oldest first.
_FINDINGS: dict[tuple[int, tuple[tuple[str, int | str], ...]], _Checked] = {}
_KEEP = 8
_LOCK = threading.Lock()  # app sessions run in threads of one process


@dataclass(frozen=True)
class _Checked:
    kb: KnowledgeBase  # held, so that the id in the key cannot be reused by another object
    findings: tuple[Finding, ...]
    unconfirmed: Mapping[int, tuple[str, ...]]


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
    key = (id(kb), tuple(assumptions.in_force().items()))
    with _LOCK:
        cached = _FINDINGS.pop(key, None)
    if cached is None:  # (an id in the key is never reused: the entry holds its knowledge base)
        cached = _Checked(kb, *_work_out(kb, assumptions))
    with _LOCK:
        _FINDINGS[key] = cached
        while len(_FINDINGS) > _KEEP:
            del _FINDINGS[next(iter(_FINDINGS))]
    return cached.findings, cached.unconfirmed


def _work_out(
    kb: KnowledgeBase, assumptions: AssumptionSet
) -> tuple[tuple[Finding, ...], Mapping[int, tuple[str, ...]]]:
    windows = probe_windows(kb, assumptions)
    found = [
        *logic_findings(kb, assumptions),
        *window_findings(kb, assumptions, windows),
        *tension_findings(kb, assumptions, windows),
        *vocabulary_findings(kb),
    ]
    found.sort(key=lambda f: KINDS.index(f.kind))
    unconfirmed = {}
    for n, finding in enumerate(found):
        problems = check_witness(finding.witness, kb, assumptions)
        if problems:
            unconfirmed[n] = tuple(problems)
    return tuple(found), MappingProxyType(unconfirmed)  # shared by every caller: read-only
