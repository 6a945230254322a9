"""Small rule sets for the protocol-review tests: the real input declarations, planted
rules and a catalogue, loaded as a knowledge base."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

from kb.catalogue.assumptions import resolve_assumptions
from kb.catalogue.knowledge import RULES_DIR, KnowledgeBase, load_knowledge
from kb.review.findings import Finding, check_witness
from kb.review.reviewer import review

HEADER = "\n".join(
    line
    for line in (RULES_DIR / "declarations.dl").read_text().splitlines()
    if re.match(r"^\.decl .*\) (input|computed)", line)
)


def criterion(cid: str, kind: str, predicate: str, text: str = "") -> str:
    return (
        f'[[criterion]]\nid = "{cid}"\nkind = "{kind}"\ncohort = "general"\nprovenance = "REC"\n'
        f'predicate = "{predicate}"\nrecord_text = "{text or cid}"\ntext = "{text or cid}"\n'
    )


def rule_set(tmp_path: Path, rules: str, catalogue: list[str]) -> KnowledgeBase:
    folder = tmp_path / "rules"
    folder.mkdir()
    (folder / "declarations.dl").write_text(HEADER + "\n", encoding="utf-8")
    (folder / "planted.dl").write_text(rules, encoding="utf-8")
    (folder / "criteria.toml").write_text("\n".join(catalogue), encoding="utf-8")
    for shared in ("assumptions.toml", "instruments.toml"):  # the readings and scores stay the real ones
        shutil.copy(RULES_DIR / shared, folder / shared)
    return load_knowledge(folder)


def findings_of(kb: KnowledgeBase, kind: str) -> list[Finding]:
    result = review(kb, resolve_assumptions())
    found = result.of_kind(kind)
    for finding in found:  # every witness must really show it
        assert check_witness(finding.witness, kb, resolve_assumptions()) == [], finding
    return found


PLATELETS_100 = """
.decl plt_high(P: patient, T: truth)
plt_high(P, yes) :- obs_num(P, platelets, C, _), C >= 100.
plt_high(P, no) :- obs_num(P, platelets, C, _), C < 100.
"""


def exclusion_below(name: str, item: str, bound: str) -> str:
    return f"""
.decl {name}(P: patient, T: truth)
{name}(P, yes) :- obs_num(P, {item}, C, _), C < {bound}.
{name}(P, no) :- obs_num(P, {item}, C, _), C >= {bound}.
"""


def drug_window(name: str, drug: str, days: int, anchor: str = "enrolment") -> str:
    return f"""
.decl {name}_exposed(P: patient)
.decl {name}(P: patient, T: truth)
{name}_exposed(P) :- ref_day(P, {anchor}, A), event(P, medication, {drug}, Start, End), End >= A - {days}, Start <= A.
{name}(P, yes) :- {name}_exposed(P).
{name}(P, no) :- ref_day(P, {anchor}, A), reviewed(P, medications, R), R >= A, not {name}_exposed(P).
"""
