"""Qualifiers: words of a criterion's record text that no rule encodes, and the reverse.

"Persistent unexplained haematuria", "symptomatic deep vein thrombosis", "tumours effectively
controlled": a qualifier narrows the condition it stands before, and a rule that reads the
bare condition decides more patients than the protocol names. For each criterion, the
clinical qualifiers of `QUALIFIERS` found in its record text are looked for in what its
deciding rules read (`kb.program.depends_on`): predicate names, constants (items, attested
items and values, condition and agent classes, and the names of the conditions and agents in
those classes), the assumptions the rules read or that name the criterion (ids and
`resolves` text). A qualifier is also encoded when the investigator attests the whole
criterion (its rules read nothing but attestations), when it grades severity and the rules
compare a number the text states or read a score or grade instrument, when it is about time
and the rules read a series of results, and elsewhere when a criterion the catalogue points
to (an id named in the criterion's text, one sharing its record text, or an id named there)
encodes it or its opposite ('primary' APS as the secondary-APS exclusion APS-E2). The reverse:
a named restriction of the rules (a sub-predicate, an attested item or value, a class) with a
qualifier the record text does not say.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from decimal import Decimal

from kb.catalogue.assumptions import AssumptionSet
from kb.catalogue.criteria import Criterion
from kb.catalogue.knowledge import KnowledgeBase
from kb.language.syntax import Atom, Comparison, Const, Negation
from kb.reasoning.evaluation import criterion_status
from kb.reasoning.requirements import Requirement, alternatives, inside
from kb.records.patients import Patient
from kb.review.findings import Case, Finding, Witness, synthetic_patient
from kb.status import Status, Truth

__all__ = ["QUALIFIERS", "Qualifier", "qualifier_findings"]


@dataclass(frozen=True)
class Qualifier:
    name: str
    pattern: str  # in the record text (case-insensitive)
    stems: tuple[str, ...]  # a rule word starting with one of these encodes it
    meaning: str  # what a rule reading the bare condition leaves out
    opposite: tuple[str, ...] = ()  # a rule word encoding it by its opposite (primary: secondary excluded)
    degree: bool = False  # a grade: a threshold the text states, or a score, encodes it
    series: bool = False  # over time: a measure of several results encodes it


#: The clinical qualifiers looked for, with what a rule must read to encode each.
QUALIFIERS = (
    Qualifier("primary", r"\bprimary\b", ("primary",), "secondary forms are not told apart", ("secondary",)),
    Qualifier("secondary", r"\bsecondary\b", ("secondary",), "primary forms are not told apart", ("primary",)),
    Qualifier("symptomatic", r"\bsymptomatic\b", ("symptom",), "a record counts whether or not it caused symptoms"),
    Qualifier(
        "uncontrolled",
        r"\buncontrolled\b|\bnot (?:be |been )?controlled\b",
        ("uncontrol",),
        "whether it is controlled is not asked",
    ),
    Qualifier(
        "effectively controlled",
        r"\b(?:effectively|well)[- ]controlled\b",
        ("control",),
        "whether the disease is controlled is not asked: only the dates of its records count",
    ),
    Qualifier(
        "persistent",
        r"\bpersist(?:ent|ently|ence|ing)\b",
        ("persist",),
        "one result decides: nothing checks that the finding persists over time",
        series=True,
    ),
    Qualifier("refractory", r"\brefractory\b", ("refractory",), "response to treatment is not checked"),
    Qualifier(
        "relapsed",
        r"\brelaps(?:ed|e|es|ing)\b",
        ("relaps", "recur", "remission"),
        "a relapse after remission is not checked",
    ),
    Qualifier("recurrent", r"\brecurr(?:ent|ence|ing)\b", ("recur",), "one event counts: recurrence is not checked"),
    Qualifier("progressive", r"\bprogressi(?:ve|on)\b", ("progress",), "progression over time is not checked"),
    Qualifier("rapidly progressive", r"\brapidly progressive\b", ("rapid",), "the pace of progression is not checked"),
    Qualifier("active", r"\bactive\b", ("activ",), "current activity is not checked", degree=True),
    Qualifier("severe", r"\bsevere\b", ("sever",), "the severity is not graded", degree=True),
    Qualifier("moderate", r"\bmoderate\b", ("moderat",), "the severity is not graded", degree=True),
    Qualifier("significant", r"\bsignifican(?:t|ce)\b", ("signific",), "significance is not judged", degree=True),
    Qualifier("unexplained", r"\bunexplained\b", ("unexplain",), "other causes are not excluded"),
    Qualifier("unstable", r"\bunstable\b", ("unstable",), "stable forms are not told apart"),
    Qualifier("chronic", r"\bchronic\b", ("chronic",), "duration is not checked"),
    Qualifier("acute", r"\bacute\b", ("acute",), "onset is not checked"),
)
#: Computed measures over several results of one item (kb/factbase/measures.py, kb/catalogue/derived.py).
SERIES_PREDICATES = frozenset({"worsening", "apl_positive_tests", "course"})
_CLASSED = {"condition_class": "conditions", "diagnosis_of_class": "conditions", "agent_class": "agents"}
_WORD = re.compile(r"[a-z]+")
_ID = re.compile(r"\b(?:[A-Z]{2,4}-)?(?:[A-Z]{1,4}\d+(?:\.\d+)?|[A-Z]+-[A-Z]+)\b")
_EXCEPT = re.compile(r"\b(?:except|other than|are allowed)\b", re.I)


@dataclass(frozen=True)
class _Read:
    """What the deciding rules of one criterion read."""

    words: frozenset[str]  # every word of the rules and their assumptions
    named: frozenset[str]  # words of named restrictions (sub-predicates, attested items and values, classes)
    numbers: frozenset[str]
    scored: bool  # reads a score or grade instrument
    series: bool
    reads: tuple[str, ...]  # in plain words, for the explanation
    rules: tuple[str, ...]
    classes: tuple[tuple[str, str], ...] = ()  # (conditions | agents, a member) of each class read


def _words(text: str) -> set[str]:
    return set(_WORD.findall(text.casefold()))


@dataclass
class _Reader:
    """Collects, atom by atom, what the deciding rules of one criterion read."""

    kb: KnowledgeBase
    words: set[str] = field(default_factory=set)
    named: set[str] = field(default_factory=set)
    constants: set[str] = field(default_factory=set)
    numbers: set[str] = field(default_factory=set)
    reads: dict[str, None] = field(default_factory=dict)
    classes: dict[tuple[str, str], None] = field(default_factory=dict)

    def comparison(self, lit: Comparison) -> None:
        for term in (lit.left, lit.right):
            if isinstance(term, Const) and isinstance(term.value, Decimal):
                self.numbers.add(f"{term.value.normalize():f}")

    def atom(self, atom: Atom, positive: bool) -> None:
        consts = [str(a.value) for a in atom.args if isinstance(a, Const) and not a.is_number]
        self.constants |= set(consts)
        self.words |= {w for c in consts for w in _words(c)}
        if atom.predicate in ("attested", *_CLASSED):
            self.named |= {w for c in consts for w in _words(c)}
        if atom.predicate in _CLASSED and consts:
            self._classed(_CLASSED[atom.predicate], consts[-1], positive)
        elif atom.predicate == "attested" and consts:
            spec = self.kb.vocabulary.attestation_items.get(consts[0])
            self.words |= _words(spec.label) if spec else set()  # the question the investigator answers
            self.reads[f"the attestation {consts[0]}" + (f" (“{spec.label}”)" if spec else "")] = None
        elif atom.predicate in ("obs_num", "obs_cat") and consts:
            self.reads[f"one {consts[0]} result"] = None
        elif atom.predicate == "event" and consts:
            self.reads[f"{consts[0]} records"] = None
        elif atom.predicate in ("score", "crcl", *SERIES_PREDICATES):
            self.reads[atom.predicate + (f" {consts[0]}" if consts else "")] = None

    def _classed(self, kind: str, name: str, positive: bool) -> None:
        vocab = self.kb.vocabulary
        pool = vocab.conditions if kind == "conditions" else vocab.agents
        members = sorted(n for n, v in pool.items() if name in v.classes)
        if members and positive:
            self.classes[(kind, members[0])] = None
        self.words |= {w for m in members for w in _words(m)}
        self.reads[f"{name} {kind} ({', '.join(members[:4])})"] = None


def _read(kb: KnowledgeBase, crit: Criterion) -> _Read:
    assert crit.predicate is not None
    reader = _Reader(kb, words=_words(crit.predicate))
    inputs: set[str] = set()
    rules = []
    for name in kb.program.depends_on([crit.predicate]):
        decl = kb.program.declarations.get(name)
        if decl is not None and decl.role != "rule":
            inputs.add(name)
            continue
        if name != crit.predicate and kb.program.rules_for(name):
            reader.named |= _words(name)
        for rule in kb.program.rules_for(name):
            rules.append(str(rule.pos))
            for lit in rule.body:
                if isinstance(lit, Comparison):
                    reader.comparison(lit)
                elif isinstance(lit, (Atom, Negation)):
                    reader.atom(lit.atom if isinstance(lit, Negation) else lit, isinstance(lit, Atom))
    for assumption in kb.assumptions.values():
        if assumption.id in reader.constants or crit.id in assumption.used_by:
            reader.words |= _words(assumption.id) | _words(assumption.resolves)
    return _Read(
        frozenset(reader.words | reader.named),
        frozenset(reader.named),
        frozenset(reader.numbers),
        "score" in inputs,
        bool(inputs & SERIES_PREDICATES),
        tuple(reader.reads),
        tuple(dict.fromkeys(rules)),
        tuple(reader.classes),
    )


def _has(words: frozenset[str] | set[str], stems: tuple[str, ...]) -> bool:
    return any(w.startswith(stems) for w in words)


def _encoded(q: Qualifier, clause: str, read: _Read) -> str:
    """How the rules encode the qualifier ("" if they do not)."""
    if _has(read.words, q.stems + q.opposite):
        return "by name"
    if q.degree and (read.scored or set(re.findall(r"\d+(?:\.\d+)?", clause)) & read.numbers):
        return "by the threshold or score the text states"
    if q.series and read.series:
        return "by a measure over several results"
    return ""


def _pointed(kb: KnowledgeBase, crit: Criterion) -> list[Criterion]:
    """The criteria the catalogue points to from `crit`: ids its text names, criteria with the
    same record text, and ids their texts name."""
    same = [c for c in kb.criteria if c is not crit and c.record_text == crit.record_text]
    named = {i for c in (crit, *same) for i in _ID.findall(c.text)}
    found = [*same, *(c for c in kb.criteria if c.id in named and c is not crit)]
    return [c for c in dict.fromkeys(found) if c.predicate is not None]


@dataclass(frozen=True)
class Verdict:
    """One qualifier of one criterion's record text and how (or whether) the rules encode it."""

    criterion: str
    qualifier: str
    words: str  # the qualifier with the words it qualifies, from the record text
    how: str  # "" when nothing encodes it


def _clause(text: str, start: int) -> str:
    following = re.match(r"[\w'-]+(?:[ -][\w'-]+){0,3}", text[start:])
    return following.group(0) if following else text[start:]


def _elsewhere(kb: KnowledgeBase, crit: Criterion, q: Qualifier, reads: dict[str, _Read]) -> str:
    """The criteria the catalogue points to that encode the qualifier (or its opposite): by
    their rules, else by their reconstructed text ('secondary APS')."""
    pointed = _pointed(kb, crit)
    by_rules = [c.id for c in pointed if _has(reads[c.id].words, q.stems + q.opposite)]
    by_text = [c.id for c in pointed if _has(_words(c.text), q.stems + q.opposite)]
    found = by_rules or by_text
    return f"elsewhere, in {', '.join(found)}" if found else ""


def _reads(kb: KnowledgeBase) -> dict[str, _Read]:
    return {c.id: _read(kb, c) for c in kb.criteria if c.predicate is not None}


def qualifier_verdicts(kb: KnowledgeBase, reads: dict[str, _Read] | None = None) -> list[Verdict]:
    """Every qualifier of every record text, and how the rules encode it."""
    reads = _reads(kb) if reads is None else reads
    verdicts = []
    for crit in kb.criteria:
        if crit.predicate is None or not crit.record_text:
            continue
        read = reads[crit.id]
        for q in QUALIFIERS:
            for match in re.finditer(q.pattern, crit.record_text, re.I):
                words = _clause(crit.record_text, match.start())
                sentence = re.split(r"[;.](?:\s|$)", crit.record_text[match.start() :])[0]
                how = _encoded(q, sentence, read)
                if not how:
                    how = _elsewhere(kb, crit, q, reads)
                verdicts.append(Verdict(crit.id, q.name, words, how))
                break
    return verdicts


def qualifier_findings(kb: KnowledgeBase, assumptions: AssumptionSet) -> list[Finding]:
    reads = _reads(kb)
    by_id = {c.id: c for c in kb.criteria}
    grouped: dict[tuple[str, str], list[Verdict]] = {}  # criteria sharing a predicate and a text: one finding
    for verdict in qualifier_verdicts(kb, reads):
        if not verdict.how:
            grouped.setdefault((by_id[verdict.criterion].predicate or "", verdict.qualifier), []).append(verdict)
    findings = []
    for (_, name), verdicts in grouped.items():
        q = next(q for q in QUALIFIERS if q.name == name)
        crits = [by_id[v.criterion] for v in verdicts]
        findings.append(_unencoded(kb, assumptions, reads[crits[0].id], q, verdicts[0].words, crits))
    return findings + _unsaid(kb, reads)


def _unencoded(
    kb: KnowledgeBase, assumptions: AssumptionSet, read: _Read, q: Qualifier, words: str, crits: list[Criterion]
) -> Finding:
    crit = crits[0]
    reads = "; ".join(read.reads) or "other data"
    explanation = (
        f"{crit.id} (“{crit.record_text}”) says “{words}”, but no condition of its rules encodes "
        f"“{q.name}”: they read {reads}. So {q.meaning}; a reviewer should decide whether the rule must "
        f"ask for it (an attested item, a series of results or a named assumption)."
    )
    cases = _witness_patient(kb, assumptions, read, crit, q, words)
    summary = (
        f"“{q.name}” is in the record text of {crit.id}; no predicate, item, class, attestation question or "
        f"assumption its rules read says it"
    )
    return Finding(
        "qualifier",
        tuple(c.id for c in crits),
        explanation,
        Witness(
            "patient" if cases else "lookup",
            summary,
            cases,
            detail={"qualifier": q.name, "text": words, "rules read": reads},
        ),
        read.rules,
    )


def _witness_patient(
    kb: KnowledgeBase, assumptions: AssumptionSet, read: _Read, crit: Criterion, q: Qualifier, words: str
) -> tuple[Case, ...]:
    """A patient meeting the bare condition, when the qualifier narrows the condition rather
    than an exception to it: through data values alone (one result, an attestation), else
    through records of the classes the rules read, 30 days before enrolment. Kept only if
    the engine gives the status the rule's reading implies."""
    start = crit.record_text.casefold().find(words.casefold())
    if _EXCEPT.search(crit.record_text[: max(start, 0)]):
        return ()
    status = Status.FAIL if crit.kind == "exclusion" else Status.PASS
    for patient, shown in _candidates(kb, read, crit):
        if criterion_status(patient, crit, kb, assumptions) == status:
            return (Case(patient, {crit.id: status}, f"{shown} (nothing says “{q.name}”)"),)
    return ()


def _candidates(kb: KnowledgeBase, read: _Read, crit: Criterion) -> list[tuple[Patient, str]]:
    assert crit.predicate is not None
    found = []
    for alt in alternatives(kb.program, crit.predicate, Truth.YES):
        by_item: dict[tuple[str, str], list[Requirement]] = {}
        for req in alt.requirements:
            if req.relation != "reviewed":
                by_item.setdefault((req.relation, req.item), []).append(req)
        relations = {r for r, _ in by_item}
        if not alt.exact or not relations & {"obs_num", "obs_cat"} or relations - {"obs_num", "obs_cat", "attested"}:
            continue
        values: dict[str, Decimal | str] = {i: inside(reqs) for (r, i), reqs in by_item.items() if r == "obs_num"}
        values |= {i: str(reqs[0].value) for (r, i), reqs in by_item.items() if r == "obs_cat"}
        attested = {i: str(reqs[0].value) for (r, i), reqs in by_item.items() if r == "attested"}
        shown = [f"a single {i} result of {v}" for i, v in values.items()]
        shown += [f"{i} attested {v}" for i, v in attested.items()]
        found.append((synthetic_patient("QUAL-1", kb, values, attested=attested), ", ".join(shown)))
    if read.classes:
        classes = sorted(read.classes, key=lambda c: c[0] != "conditions")  # the condition, then its treatment
        events: list[tuple[str, str, int, int | None]] = [
            ("diagnosis" if pool == "conditions" else "medication", member, 30, None) for pool, member in classes
        ]
        told = ", ".join(
            f"{member} {'recorded 30 days before enrolment' if pool == 'conditions' else 'since that day'}"
            for pool, member in classes
        )
        found.append((synthetic_patient("QUAL-2", kb, events=events), told))
    return found


def _unsaid(kb: KnowledgeBase, reads: dict[str, _Read]) -> list[Finding]:
    """Named restrictions of the rules (sub-predicates, attested items and values, classes)
    whose qualifier the record text does not say, nor its opposite."""
    findings = []
    for crit in kb.criteria:
        if crit.predicate is None or not crit.record_text:
            continue
        read = reads[crit.id]
        for q in QUALIFIERS:
            said = re.search(q.pattern, crit.record_text, re.I) or any(
                re.search(rf"\b{o}", crit.record_text, re.I) for o in q.opposite
            )
            where = sorted(w for w in read.named if w.startswith(q.stems))
            if said or not where:
                continue
            findings.append(
                Finding(
                    "qualifier",
                    (crit.id,),
                    f"the rules of {crit.id} restrict by “{', '.join(where)}”, a qualifier (“{q.name}”) its record "
                    f"text (“{crit.record_text}”) does not say: they decide fewer patients than the protocol names, "
                    f"or the record lost the word",
                    Witness(
                        "lookup",
                        f"“{q.name}” names a restriction of the rules of {crit.id}, not a word of its record text",
                        detail={"qualifier": q.name, "rule words": ", ".join(where)},
                    ),
                    read.rules,
                )
            )
    return findings
