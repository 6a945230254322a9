"""Coverage of the protocol: every numbered item of section 2 → criterion → rules → vignettes.

An investigator must be able to trust that every sentence of the protocol is encoded, or
visibly marked as needing a human. This report shows, for each item, the rules that decide
it and the vignettes that drive it to pass, fail and unknown, and names what is missing:
an item with neither a rule nor a placeholder, a rule file naming an id the catalogue does
not know, a criterion no vignette drives to pass or to fail.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kb.catalogue.criteria import Criterion
from kb.catalogue.knowledge import KnowledgeBase
from kb.quality.mutation import MutationReport, run_mutation_check
from kb.quality.vignettes import VignetteOutcome, check_vignettes, load_vignettes
from kb.records.patients import Dataset
from kb.status import Status

__all__ = [
    "PROTOCOL_ITEMS",
    "CoverageCheck",
    "CoverageReport",
    "CriterionCoverage",
    "check_coverage",
    "protocol_coverage",
]


def _numbered(prefix: str, count: int) -> list[str]:
    return [f"{prefix}{n}" for n in range(1, count + 1)]


#: The numbered items and sub-items of section 2 of the protocol file, parents included.
PROTOCOL_ITEMS: tuple[str, ...] = tuple(
    _numbered("GI", 9)
    + _numbered("GI6.", 7)
    + _numbered("GE", 14)
    + _numbered("GE4.", 7)
    + _numbered("SLE-I", 4)
    + _numbered("PSS-I", 2)
    + _numbered("SSC-I", 2)
    + _numbered("IIM-I", 5)
    + _numbered("AAV-I", 5)
    + _numbered("APS-I", 4)
    + _numbered("SLE-E", 2)
    + _numbered("X-E", 4)
    + _numbered("SSC-E", 9)
    + _numbered("IIM-E", 3)
    + _numbered("AAV-E", 4)
    + _numbered("APS-E", 3)
)
#: A criterion id as the rule files write it in their comments.
ID_PATTERN = re.compile(
    r"\b(?:G[IE]\d+(?:\.\d+)?|(?:SLE|PSS|SSC|IIM|AAV|APS|X)-(?:[IE]\d+|DC|CLASS|RR)|DEF-[A-Z-]*[A-Z])\b"
)
#: Inputs that are judgements, not data: a criterion resting only on these is attestation-only.
JUDGEMENT_INPUTS = frozenset({"attested", "patient", "assumption"})


@dataclass(frozen=True)
class CriterionCoverage:
    criterion: Criterion
    rules: tuple[str, ...]  # file:line of the rules of its deciding predicate
    attestation_only: bool
    vignettes: dict[Status, tuple[str, ...]]  # status -> vignette ids

    def as_dict(self) -> dict[str, Any]:
        c = self.criterion
        return {
            "id": c.id,
            "kind": c.kind,
            "cohort": c.cohort,
            "provenance": c.provenance,
            "placeholder": c.placeholder,
            "attestation_only": self.attestation_only,
            "rules": list(self.rules),
            "vignettes": {status: list(ids) for status, ids in self.vignettes.items()},
        }


@dataclass
class CoverageReport:
    criteria: list[CriterionCoverage]
    problems: list[str] = field(default_factory=list)  # each makes `kb coverage` exit non-zero
    notes: list[str] = field(default_factory=list)  # worth knowing, not failures

    @property
    def ok(self) -> bool:
        return not self.problems

    def as_dict(self) -> dict[str, Any]:
        return {
            "criteria": [c.as_dict() for c in self.criteria],
            "placeholders": [c.criterion.id for c in self.criteria if c.criterion.placeholder],
            "attestation_only": [c.criterion.id for c in self.criteria if c.attestation_only],
            "problems": self.problems,
            "notes": self.notes,
        }


def protocol_coverage(kb: KnowledgeBase, outcomes: Sequence[VignetteOutcome]) -> CoverageReport:
    catalogue = {c.id for c in kb.criteria}
    problems = [
        f"protocol item {item} has neither a rule nor a placeholder in the catalogue"
        for item in PROTOCOL_ITEMS
        if item not in catalogue
    ]
    problems += _ids_named_by_rules(kb, catalogue)
    notes = []
    rows = []
    for crit in kb.criteria:
        by_status: dict[Status, list[str]] = {}
        for outcome in outcomes:
            status = outcome.assessment.result(crit.id).status
            by_status.setdefault(status, []).append(outcome.vignette.patient_id)
        rules = tuple(f"{r.pos.path}:{r.pos.line}" for r in kb.program.rules_for(crit.predicate or ""))
        rows.append(
            CriterionCoverage(
                crit, rules, _attestation_only(kb, crit), {s: tuple(ids) for s, ids in sorted(by_status.items())}
            )
        )
        if crit.placeholder:
            continue
        for status in (Status.PASS, Status.FAIL):
            if status not in by_status:
                problems.append(f"{crit.id}: no vignette drives it to {status}")
        if Status.UNKNOWN not in by_status:
            notes.append(f"{crit.id}: no vignette leaves it unknown")
    return CoverageReport(rows, problems, notes)


def _attestation_only(kb: KnowledgeBase, crit: Criterion) -> bool:
    if crit.predicate is None:
        return False
    inputs = {p for p in kb.program.depends_on([crit.predicate]) if kb.program.declarations[p].role != "rule"}
    return bool(inputs) and inputs <= JUDGEMENT_INPUTS


def _ids_named_by_rules(kb: KnowledgeBase, catalogue: set[str]) -> list[str]:
    problems = []
    files = sorted({rule.pos.path for rule in kb.program.rules})
    for path in files:
        try:
            text = Path(path).read_text(encoding="utf-8")
        except OSError:
            continue
        for number, line in enumerate(text.splitlines(), start=1):
            for found in ID_PATTERN.findall(line):
                if found not in catalogue:
                    problems.append(f"{path}:{number}: names {found}, which is not in the criteria catalogue")
    return problems


@dataclass(frozen=True)
class CoverageCheck:
    """`kb coverage`: the coverage report, the vignettes that do not get what their story
    says, and (if asked for) the mutation check. Any of the three failing is a failure."""

    report: CoverageReport
    outcomes: list[VignetteOutcome]
    mutation: MutationReport | None = None

    @property
    def failing(self) -> list[VignetteOutcome]:
        return [o for o in self.outcomes if not o.ok]

    @property
    def ok(self) -> bool:
        survivors = self.mutation.survivors if self.mutation is not None else []
        return not (self.report.problems or self.failing or survivors)

    def as_dict(self) -> dict[str, Any]:
        answer = self.report.as_dict()
        failing = {o.vignette.patient_id: o.mismatches for o in self.failing}
        answer["vignettes"] = {"count": len(self.outcomes), "failing": failing}
        if self.mutation is not None:
            answer["mutation"] = self.mutation.as_dict()
        return answer


def check_coverage(kb: KnowledgeBase, dataset: Dataset, mutate: bool = False) -> CoverageCheck:
    """The vignettes stored with `dataset` evaluated (statuses only), the protocol coverage
    they give, and with `mutate` the mutation check over them (a few minutes)."""
    vignettes = load_vignettes(Path(dataset.path))
    outcomes = check_vignettes(kb, dataset, vignettes, explain="status")
    report = protocol_coverage(kb, outcomes)
    mutation = run_mutation_check(kb, dataset, vignettes, outcomes) if mutate else None
    return CoverageCheck(report, outcomes, mutation)
