"""The reviewer's report: findings quoting the protocol, their witnesses, and the impact."""

from __future__ import annotations

from kb.catalogue.knowledge import KnowledgeBase
from kb.review.findings import KINDS, Finding
from kb.review.impact import Impact
from kb.review.reviewer import Review

__all__ = ["review_markdown"]

_TITLES = {
    "contradiction": "Contradictions: cohorts that admit nobody",
    "dead rule": "Dead rules: criteria that can never decide alone who is eligible",
    "duplicate": "Duplicates: one condition decided in two places",
    "redundancy": "Redundancies: criteria that never block alone",
    "tension": "Tensions: required in one place, forbidden in another",
    "citation": "Citations: criteria at odds with the classification criteria they cite",
    "boundary/window": "Boundaries and windows",
    "qualifier": "Qualifiers: words of the record text that no rule encodes",
    "vocabulary": "Vocabulary: names the reference lists do not know",
}


def review_markdown(result: Review, kb: KnowledgeBase) -> str:
    lines = ["# Protocol review of NCT06420154", ""]
    counts = ", ".join(f"{len(result.of_kind(kind))} {kind}" for kind in KINDS)
    lines += [f"Findings: {counts}.", ""]
    lines += [
        "Every finding is computed from the rules, the criteria catalogue and the vocabulary, and comes "
        "with a witness: constructed patients evaluated by the engine, an unsatisfiable core, or a lookup.",
        "",
    ]
    for kind in KINDS:
        found = [(n, f) for n, f in enumerate(result.findings) if f.kind == kind]
        if not found:
            continue
        lines += [f"## {_TITLES[kind]}", ""]
        for n, finding in found:
            lines += _finding(n, finding, result, kb)
    if result.impact:
        lines += ["## Population impact", "", *_impact_table(result.impact)]
    if result.impact_switched:
        switched = ", ".join(f"{k} = {v}" for k, v in (result.switched or {}).items())
        lines += ["", f"### Under {switched}", "", *_impact_table(result.impact_switched)]
    return "\n".join(lines).rstrip() + "\n"


def _finding(n: int, finding: Finding, result: Review, kb: KnowledgeBase) -> list[str]:
    lines = [f"### {n + 1}. {', '.join(finding.criteria) or 'rules'}", "", finding.explanation, ""]
    for cid in dict.fromkeys(finding.criteria):
        crit = kb.criterion(cid)
        if crit is not None and crit.record_text:
            lines.append(f"> **{cid}**: {crit.record_text}")
    if any(kb.criterion(c) and kb.criterion(c).record_text for c in finding.criteria):  # type: ignore[union-attr]
        lines.append("")
    witness = finding.witness
    confirmed = "" if n not in result.unconfirmed else " (**not confirmed**: " + "; ".join(result.unconfirmed[n]) + ")"
    lines.append(f"*Witness ({witness.kind}){confirmed}:* {witness.summary}")
    for case in witness.cases:
        statuses = ", ".join(f"{c} {s}" for c, s in case.expected.items())
        lines.append(f"- {case.note}: {statuses}")
    if finding.rules:
        lines.append(f"- rules: {', '.join(finding.rules)}")
    lines.append("")
    return lines


def _impact_table(rows: tuple[Impact, ...]) -> list[str]:
    lines = ["| criterion | blocks | blocks alone | eligible without it |", "|---|---:|---:|---:|"]
    lines += [f"| {r.criterion} | {r.blocks} | {r.blocks_alone} | {r.gained} |" for r in rows]
    return lines
