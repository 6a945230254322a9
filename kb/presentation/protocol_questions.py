"""Protocol questions: thresholds, windows, drugs, cohorts and rules, answered from the rules.

"What is the platelet threshold?", "how long after rituximab can a patient enrol?", "does
prednisone 20 mg daily exclude?", "which diseases can enter?", "show me the steroid rule":
investigators and trainers ask these about the trial, not about a patient. The numbers come
from the rule AST through kb.presentation.protocol_facts (never typed here), the protocol sentence and
the reading from the criteria catalogue, and every assumption that sets a number or decides
whether a drug counts is named with its value. A question that names or describes a patient
("my patient", "she", "P003", "45 year old") is not one of these: it is left to the parser's
other intents, so that a protocol answer never stands in for a patient's verdict.
"""

from __future__ import annotations

import csv
import re
from dataclasses import dataclass
from decimal import Decimal
from functools import lru_cache

from kb.catalogue.assumptions import AssumptionSet
from kb.catalogue.criteria import Criterion
from kb.catalogue.knowledge import KnowledgeBase
from kb.catalogue.vocabulary import Agent
from kb.paths import PACKAGE_DIR
from kb.presentation.protocol_answers import ProtocolAnswer, diseases, drug, refractory, rule, thresholds
from kb.presentation.protocol_facts import reach, reaches
from kb.status import Cohort

__all__ = ["PROTOCOL_EXAMPLES", "PROTOCOL_WAYS", "ProtocolAnswer", "answer_protocol", "is_patient_question"]

ALIASES_FILE = PACKAGE_DIR / "facts" / "vocabulary" / "question_aliases.csv"

#: the words that name each cohort in a question (its disease, its abbreviation)
COHORT_WORDS = {
    Cohort.SLE: r"lupus|\bsle\b",
    Cohort.PSS: r"sj[oö]gren|\bpss\b|sicca",
    Cohort.SSC: r"scleroderma|systemic sclerosis|\bssc\b",
    Cohort.IIM: r"myositis|myopath|\biim\b",
    Cohort.AAV: r"\banca\b|vasculitis|\baav\b|\bgpa\b|\bmpa\b|\begpa\b",
    Cohort.APS: r"antiphospholipid|\baps\b",
}

#: a question that names or describes a patient: never answered as a protocol question
_PATIENT = (
    r"\b(?:my|this|her|his|she|he|him|hers)\b|\bthe patient\b|\b(?:patient|pt)\s*#?\s*p?-?\d|\bp[-\s#]?\d{1,4}\b"
    r"|\d\s*-?\s*(?:years?|yrs?|y)[-\s]*old\b|\byo\b|\b(?:woman|man|male|female|lady|girl|boy)\b"
    r"|\bago\b|\byesterday\b|\blast (?:week|month|year)\b"  # a story's relative times: a described patient
    r"|\bwhy\b"  # "why … excluded?" asks about a verdict: the blockers' intent, as before
)
_GUARD = re.compile(rf"^(?!.*(?:{_PATIENT}))", re.IGNORECASE | re.DOTALL)
_PATIENT_RE = re.compile(_PATIENT, re.IGNORECASE)


def _way(*pieces: str) -> tuple[re.Pattern[str], ...]:
    return (_GUARD, *(re.compile(p, re.IGNORECASE) for p in pieces))


#: Ways of asking a protocol question, for kb.presentation.questions.INTENTS (each led by the patient guard).
PROTOCOL_WAYS: tuple[tuple[re.Pattern[str], ...], ...] = (
    _way(r"\b(thresholds?|cut-?offs?|limits?|minimum|maximum|lowest|highest|upper|lower|bounds?|range)\b"),
    _way(r"\bhow (high|low|old|young|long|soon|much|many)\b"),
    _way(r"\b(wash-?out|window|wait)\b"),
    _way(r"\b(exclude[sd]?|excluding|allowed|permitted|prohibited|forbidden|banned|acceptable|disqualif\w*)\b"),
    _way(r"\brequirements?\b"),
    _way(r"\bwhat\b(?! (?:data|tests?|results?|else)\b)", r"\b(?:is|are) (?:needed|required|necessary)\b"),
    _way(r"\b(which|what) (diseases?|cohorts?|conditions?|indications?)\b"),
    _way(r"\b(refractory|relapsed)\b"),
    _way(r"\b(?:show|display|print|give|see)\b(?!(?: me)? the (?:rule|criterion)\b)", r"\b(rules?|criteri(on|a))\b"),
    _way(r"\bwhat(?:'s| is| are)\b(?! the rule\b)", r"\brules?\b"),
    _way(r"\bcan\b", r"\b(?:patients|people|subjects)\b", r"\b(enrol|enroll|enter|join|be included|take part)"),
    _way(
        r"\bcan (?:a |an )?(?:patients?|someone|somebody|people|subjects?|participants?)\b",
        r"\b(enrol|enroll|enter|join|be included|take part|participate)",
    ),
)

#: Questions offered when a protocol question's subject was not understood.
PROTOCOL_EXAMPLES = (
    "What is the platelet threshold?",
    "How long after rituximab can a patient enrol?",
    "Does prednisone 20 mg daily exclude?",
    "Is hydroxychloroquine allowed?",
    "Which diseases can enter?",
    "What makes lupus refractory here?",
    "Show me the steroid rule",
)

#: words for measures that are not one vocabulary item
_MEASURE_WORDS = {
    "creatinine clearance": ("crcl",), "clearance": ("crcl",), "crcl": ("crcl",),
    "kidney": ("crcl", "creatinine/uln"), "renal": ("crcl", "creatinine/uln"),
    "egfr": ("egfr",), "gfr": ("egfr",), "glomerular": ("egfr",),
    "age": ("age",), "old": ("age",), "young": ("age",), "weight": ("weight",), "body weight": ("weight",),
    "transaminase": ("alt/uln", "ast/uln"), "liver": ("alt/uln", "ast/uln", "bilirubin_total/uln"),
    "sledai": ("sledai.total",), "bvas": ("bvas.total", "bvas.major", "bvas.minor", "bvas.renal"),
    "bilag": ("bilag.grade_a", "bilag.grade_b"), "mrss": ("mrss/worsening",), "skin score": ("mrss/worsening",),
    "pulmonary pressure": ("pap_echo",), "pulmonary artery pressure": ("pap_echo",), "pap": ("pap_echo",),
    "pulmonary hypertension": ("pap_echo",), "haematuria": ("urine_rbc",), "hematuria": ("urine_rbc",),
}  # fmt: skip
#: words for drug classes: (agent class, a pseudo agent's prednisone factor)
_CLASS_WORDS = {
    r"steroids?|corticosteroids?|glucocorticoids?": ("glucocorticoid", "glucocorticoids", Decimal(1)),
    r"live vaccines?": ("live_vaccine", "live vaccines", None),
    r"biologics?": ("immunosuppressive_biologic", "immunosuppressive biologics", None),
    r"antimalarials?": ("antimalarial", "antimalarials", None),
    r"car-?\s?t(?: cells?| therapy)?": ("car_t", "CAR-T cells", None),
    r"immunosuppressants?": ("immunosuppressant", "immunosuppressants", None),
}


def is_patient_question(text: str) -> bool:
    """Whether the text names or describes a patient (then it is not a protocol question)."""
    return _PATIENT_RE.search(text) is not None


def answer_protocol(text: str, kb: KnowledgeBase, assumptions: AssumptionSet) -> ProtocolAnswer | None:
    """The answer to a protocol question, or None if the text is not one (or names a patient)."""
    lowered = " ".join(text.casefold().split())
    if is_patient_question(lowered):
        return None
    found = reaches(kb, assumptions)
    named_cohorts = [c for c, words in COHORT_WORDS.items() if re.search(words, lowered)]
    if re.search(r"\b(refractory|relapsed|relapse|progressive|progression)\b", lowered):
        return refractory(named_cohorts, found, kb, assumptions)
    named = _named_criterion(lowered, kb)
    if named and re.search(r"\b(show|display|see|print|rule|criterion)\b", lowered):
        return rule(named, found.get(named.id) or reach(kb, named, assumptions), kb, assumptions)
    agents = _agents(lowered, kb)
    if agents:
        return drug(lowered, agents, found, kb, assumptions)
    measures = _measures(lowered, kb)
    if measures:
        return thresholds(measures, found, kb, assumptions)
    if named_cohorts or re.search(r"\b(diseases?|cohorts?|indications?|conditions?)\b", lowered):
        return diseases(named_cohorts, kb, assumptions)
    return rule(named, found.get(named.id) or reach(kb, named, assumptions), kb, assumptions) if named else None


# --- reading the question ---------------------------------------------------------------


@lru_cache(maxsize=1)
def _aliases() -> tuple[tuple[str, str], ...]:
    with ALIASES_FILE.open(encoding="utf-8") as fh:
        rows = [(r["alias"].casefold(), r["target"]) for r in csv.DictReader(fh) if r["kind"] == "criterion"]
    return tuple(sorted(rows, key=lambda r: -len(r[0])))


def _named_criterion(lowered: str, kb: KnowledgeBase) -> Criterion | None:
    ids = {re.sub(r"[\s.-]", "", c.id).casefold(): c for c in kb.criteria}
    for match in re.finditer(r"\b(def-?[a-z-]+|[a-z]{1,4}-?[ie]?\d{1,2}(?:\.\d)?|consent|cohort)\b", lowered):
        found = ids.get(re.sub(r"[\s.-]", "", match.group(1)))
        if found is not None and match.group(1) not in ("consent", "cohort"):
            return found
    alias = next((t for a, t in _aliases() if re.search(rf"\b{re.escape(a)}", lowered)), None)
    return kb.criterion(alias) if alias else None


def _word(words: str, lowered: str) -> bool:
    return re.search(rf"(?<![\w-])(?:{words})(?![\w-])", lowered) is not None


@dataclass(frozen=True)
class _Lexicon:
    """The names a question is read with, compiled once per knowledge base: agents by name,
    brand or Chinese name; measures by item name, label or synonym (longest first)."""

    agents: re.Pattern[str]
    agent_of: dict[str, str]
    measures: re.Pattern[str]
    measure_of: dict[str, tuple[str, ...]]


_LEXICONS: dict[int, tuple[KnowledgeBase, _Lexicon]] = {}


def _alternation(names: list[str]) -> re.Pattern[str]:
    ordered = sorted(names, key=len, reverse=True)
    return re.compile(r"(?<![\w-])(" + "|".join(re.escape(n) for n in ordered) + r")s?(?![\w-])")


def _lexicon(kb: KnowledgeBase) -> _Lexicon:
    cached = _LEXICONS.get(id(kb))
    if cached is not None and cached[0] is kb:
        return cached[1]
    agent_of = {name: key for name, key in kb.vocabulary.agent_names.items() if len(name) >= 3}
    measure_of: dict[str, tuple[str, ...]] = {}
    for item in kb.vocabulary.items.values():
        if "." in item.name:
            continue  # instrument items: asked about through their instrument
        keys = ("crcl",) if item.name == "crcl_measured" else (item.name, f"{item.name}/uln", f"{item.name}/worsening")
        for alias in (item.name, item.name.replace("_", " "), item.label, *item.synonyms):
            if len(alias) >= 2:
                measure_of.setdefault(alias.casefold(), keys)
    measure_of.update(_MEASURE_WORDS)
    for name in measure_of:  # "platelets" is the count asked about, not the transfusion
        agent_of.pop(name, None)
        agent_of.pop(name + "s", None)
    lexicon = _Lexicon(_alternation(list(agent_of)), agent_of, _alternation(list(measure_of)), measure_of)
    _LEXICONS[id(kb)] = (kb, lexicon)
    return lexicon


def _agents(lowered: str, kb: KnowledgeBase) -> list[Agent]:
    found: dict[str, Agent] = {}
    for words, (cls, label, factor) in _CLASS_WORDS.items():
        if _word(words, lowered):
            found[cls] = Agent(label, (cls,), (), None, factor)
    lexicon = _lexicon(kb)
    for match in lexicon.agents.finditer(lowered):
        key = lexicon.agent_of[match.group(1)]
        found.setdefault(key, kb.vocabulary.agents[key])
    return list(found.values())


def _measures(lowered: str, kb: KnowledgeBase) -> list[str]:
    lexicon = _lexicon(kb)
    found: list[str] = []
    for match in lexicon.measures.finditer(lowered):
        found.extend(k for k in lexicon.measure_of[match.group(1)] if k not in found)
    return found
