"""Vocabulary: drugs named in the protocol text or the rules that the reference vocabulary
does not know.

A criterion can only act on a drug the vocabulary can recognise in a patient's record. The
protocol text is scanned for words shaped like drug names (international non-proprietary
name stems: -mab, -cept, -nib, -trexate, -olimus …); each that is not an agent name or
synonym is a finding, with the nearest known names. Agent constants written in the rules
are checked the same way.
"""

from __future__ import annotations

import difflib
import re

from kb.catalogue.knowledge import KnowledgeBase
from kb.language.syntax import Atom, Const
from kb.review.findings import Finding, Witness

__all__ = ["DRUG_STEMS", "vocabulary_findings"]

#: Endings of international non-proprietary names (WHO INN stems) that rarely end other words.
DRUG_STEMS = (
    "mab", "cept", "tinib", "trexate", "famide", "phalan", "cristine", "olimus", "sporine", "sporin",
    "grastim", "platin", "rubicin", "mustine", "parin", "cillin", "mycin", "oxacin", "leucel", "kinra",
    "prine", "lukast",
    "nisone", "nisolone", "sartan", "pril", "statin", "quine", "coxib", "navir", "ciclib",
)  # fmt: skip
_WORD = re.compile(r"[A-Za-z][A-Za-z-]{5,}")
#: English words that end like a drug stem.
_ENGLISH = frozenset({"except", "accept", "concept", "intercept", "precept"})


def _known(kb: KnowledgeBase) -> dict[str, str]:
    names = {name.casefold(): name for name in kb.vocabulary.agents}
    names.update({k.replace("_", " "): v for k, v in names.items()})
    names.update(kb.vocabulary.agent_names)
    return names


def vocabulary_findings(kb: KnowledgeBase) -> list[Finding]:
    known = _known(kb)
    findings = []
    seen: set[tuple[str, str]] = set()
    for crit in kb.criteria:
        for word in _WORD.findall(f"{crit.record_text} {crit.text}"):
            term = word.casefold().strip("-")
            if not term.endswith(DRUG_STEMS) or term in known or term in _ENGLISH or (crit.id, term) in seen:
                continue
            seen.add((crit.id, term))
            findings.append(
                _finding(kb, known, term, (crit.id,), f"the text of {crit.id} (“{crit.record_text or crit.text}”)")
            )
    for rule in kb.program.rules:
        for lit in rule.body:
            if isinstance(lit, Atom) and lit.predicate == "event" and len(lit.args) >= 3:
                agent = lit.args[2]
                if (
                    isinstance(agent, Const)
                    and str(agent.value) not in kb.vocabulary.agents
                    and lit.args[1] in (Const("medication", agent.pos),)
                ):
                    term = str(agent.value)
                    findings.append(_finding(kb, known, term, (), f"the rule at {rule.pos}"))
    return findings


def _finding(kb: KnowledgeBase, known: dict[str, str], term: str, criteria: tuple[str, ...], where: str) -> Finding:
    nearest = difflib.get_close_matches(term, list(known), n=3, cutoff=0.6)
    hint = f"; nearest known names: {', '.join(nearest)}" if nearest else ""
    readings = [a.id for a in kb.assumptions.values() if term in a.resolves.casefold()]
    assumed = f" (read by the assumption {', '.join(readings)})" if readings else ""
    return Finding(
        "vocabulary",
        criteria,
        f"“{term}” in {where} is not a drug the reference vocabulary knows{assumed}: a record naming it would "
        f"not be recognised{hint}",
        Witness(
            "lookup",
            f"“{term}” is not among the {len(known)} agent names and synonyms of agents.csv",
            detail={"term": term, "nearest": ", ".join(nearest)},
        ),
    )
