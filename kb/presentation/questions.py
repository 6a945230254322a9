"""Questions in free wording, understood deterministically: an intent and its entities.

The chat must work offline and never guess: the intent is the first of an ordered list of
patterns that matches ("what would make … eligible" is asked before "eligible"), patient ids
are read from "P-003", "p3" or "patient 3" and resolved to the one id with that number
(rapidfuzz for a mistyped id), criteria from ids written loosely ("GE 4.7", "sle i2") or
from the aliases in question_aliases.csv ("the steroid rule"), what-if changes from "<item>
were <value> [unit]" (items by name, label or synonym, with typos), "enrol on <date>", "stop
<drug> on <date>" and "<window> were N days|weeks". What was understood is returned with
the question, so that a misreading shows; what cannot be settled comes back as a
clarification with the choices, never as a guess. Nothing here is evaluated or executed.

Never the wrong patient (issue 17): a question that names no patient is about the one
selected on screen only when it points at it ("is she eligible?", "this patient"), and the
answer says so; a question that describes a patient (an age, a disease, a drug with its
time, a result) is read as that patient (kb/presentation/description.py), never as a stored one; and a
question nothing matches is asked back with choices, not answered with the help menu.
"""

from __future__ import annotations

import csv
import re
from bisect import bisect_left, bisect_right
from dataclasses import dataclass, field
from datetime import date
from functools import lru_cache

from rapidfuzz import fuzz, process, utils

from kb.catalogue.criteria import X_BLOCK
from kb.catalogue.knowledge import KnowledgeBase
from kb.errors import KbError
from kb.paths import PACKAGE_DIR
from kb.presentation.description import Description, read_description
from kb.presentation.protocol_questions import PROTOCOL_WAYS
from kb.status import COHORTS

__all__ = [
    "DESCRIBABLE",
    "INTENTS",
    "MAX_QUESTION_CHARS",
    "UNCLEAR_OPTIONS",
    "Clarification",
    "Question",
    "check_length",
    "parse_question",
]

ALIASES_FILE = PACKAGE_DIR / "facts" / "vocabulary" / "question_aliases.csv"

#: The longest question the chat and `kb ask` accept (the parser itself stays linear beyond it).
MAX_QUESTION_CHARS = 2000

#: One way of asking: patterns that must occur in this order (each searched from where the
#: previous one ended), so "why …, by …" is one search per piece and never the backtracking
#: of `why.*by`, which is quadratic in the length of the question.
Sequence = tuple[re.Pattern[str], ...]


def _ways(*alternatives: str) -> tuple[Sequence, ...]:
    """Alternatives written as regular expressions whose `.*` means "then, later on"."""
    return tuple(tuple(re.compile(piece, re.IGNORECASE) for piece in way.split(".*")) for way in alternatives)


#: (intent, ways of asking), the first intent with a way that matches wins: the order matters.
INTENTS: tuple[tuple[str, tuple[Sequence, ...]], ...] = (
    ("help", _ways(r"^\s*(help|\?+|what can you (do|answer)|how do i)\b")),
    ("review", _ways(r"contradict|review (the )?protocol|protocol review|dead rules?|redundan|inconsisten")),
    (
        "screen",
        _ways(
            r"which patients|all patients|who is eligible|^\s*screen\b",
            r"screen(ing)? (the )?(cohort|patients|data ?set)",
        ),
    ),
    (
        "whatif",
        _ways(r"\bwhat if\b|\bsuppose\b|\bimagine\b", r"\bif (we|the|his|her|their|p)\b.*\b(were|was|had|enrol|stop)"),
    ),
    # questions about the protocol that name or describe no patient (kb.presentation.protocol_questions):
    # before until/repair/check, which would take the selected patient for them
    ("protocol", PROTOCOL_WAYS),
    (
        "until",
        _ways(r"until when|eligible until", r"how long .*eligible", r"when .*(lapse|expire|stop being eligible)"),
    ),
    (
        "repair",
        _ways(
            r"what would (it take|make)|\brepair|earliest", r"what (does|do) .* need to",
            r"how (can|could) .* (become|be) eligible", r"make .* eligible",
            r"when (can|could) .* (be )?(enrol|enroll|included)",
        ),
    ),
    ("missing", _ways(r"missing|to collect|what data|which data|what (tests|results)|still need")),
    ("criterion", _ways(r"\bexplain\b|show (me )?the rule|\brule for\b|definition of", r"what does .* (mean|say)")),
    (
        "why",
        _ways(
            r"\bwhy\b.*\b(by|under|on)\b", r"\bwhy\b.*\b(fail\w*)\b.*\b[a-z]{2,3}[- ]?[ie]?[- ]?\d",
            r"why .*\bcriterion\b",
        ),
    ),
    (
        "blockers",
        _ways(r"\bblock|what stops|\breasons?\b|\bfail", r"why .*(not |in)eligible", r"why .*(excluded|rejected)"),
    ),
    ("check", _ways(r"eligib|\bcheck\b|summar|status|verdict|\bok\b", r"can .* (join|enrol|enroll)")),
)  # fmt: skip
NEEDS_PATIENT = frozenset({"check", "blockers", "why", "repair", "until", "whatif", "missing"})
#: The intents (None: none matched) a question describing a patient in words is read as
#: "described" from: about a patient, with no patient named.
DESCRIBABLE = frozenset({None, "check", "blockers", "why", "repair", "until", "missing"})
#: Words that point at the patient already on screen: only these make a question that names
#: no patient one about the selected patient.
_REFERS = re.compile(
    r"\b(?:she|he|her|hers|him|his|they|them|their"
    r"|(?:this|that|the|current|selected|same) (?:patient|one|person|pt))\b",
    re.IGNORECASE,
)
#: Offered when a question was not understood ({p}: the selected patient).
UNCLEAR_OPTIONS = (
    "Is {p} eligible?",
    "Which criteria block {p}?",
    "What data are missing for {p}?",
    "a 45-year-old woman with lupus, rituximab 2 weeks ago",
    "Explain criterion GE4.7",
    "help",
)
_ID = re.compile(
    r"\b(?:patient|pt)\s*#?\s*p?[-\s]?0*(\d{1,4})(?='?s\b|\b)(?!\s*-?(?:days?|weeks?|months?|years?|yrs?|y\b|yo\b|mg\b))"
    r"|\bp[-\s#]?0*(\d{1,4})(?='?s\b|\b)",
    re.IGNORECASE,
)
_CRITERION = re.compile(
    rf"\b(def[-\s]?(?:aps[-\s]?)?(?:rr|caps)|consent|cohort|(?:{'|'.join(COHORTS)}|{X_BLOCK})[-\s]?[ie][-\s]?\d{{1,2}}|"
    r"g[ie][-\s]?\d{1,2}(?:\s*\.\s*\d)?)\b",
    re.IGNORECASE,
)
_DATE = re.compile(r"\b(\d{4}-\d{2}-\d{2})\b")
_NUMBER = re.compile(
    r"(?<![\w.-])(\d+(?:\.\d+)?(?:e[-+]?\d+)?)"  # an exponent too: 1e-41 is not 1
    r"(?:\s*(x\s?10\^?9/l|×10\^9/l|g/dl|g/l|mg/dl|µmol/l|umol/l|%|mmhg|u/l))?",
    re.I,
)
_FILLER = frozenset(
    [
        "what",
        "if",
        "the",
        "his",
        "her",
        "their",
        "were",
        "was",
        "had",
        "is",
        "are",
        "of",
        "at",
        "to",
        "a",
        "an",
        "and",
        "p",
        "patient",
        "s",
        "'s",
        "count",
        "level",
        "value",
        "be",
        "would",
    ]
)


@dataclass(frozen=True)
class Question:
    intent: str
    text: str
    patient: str | None = None
    criterion: str | None = None
    changes: tuple[str, ...] = ()  # kb.reasoning.whatif change texts
    notes: tuple[str, ...] = ()  # what was assumed while reading (a default date …)
    #: the patient is the one selected on screen, not named: the answer says so first
    selected: bool = False
    #: a patient described in words (intent "described"): never a stored patient
    description: Description | None = field(default=None, compare=False)

    def understood(self) -> str:
        if self.description is not None:
            return "understood: a patient described in words (not a stored patient) · " + " · ".join(
                self.description.summary()
            )
        parts = [self.intent.replace("whatif", "what-if")]
        parts += [f"{self.patient} (selected)" if self.selected else self.patient] if self.patient else []
        parts += [self.criterion] if self.criterion else []
        parts += list(self.changes)
        return "understood: " + " · ".join(parts)


@dataclass(frozen=True)
class Clarification:
    text: str
    prompt: str
    options: tuple[str, ...] = field(default_factory=tuple)  # questions to pick from, rewritten


def check_length(text: str) -> None:
    """Refuse a question longer than MAX_QUESTION_CHARS (the chat's input box and `kb ask`).

    The parser is linear, but a question of pages is a paste gone wrong, and every answer
    echoes its question; the limit keeps one user's paste from slowing everyone's answers.
    """
    if len(text) > MAX_QUESTION_CHARS:
        raise KbError(
            f"the question is {len(text):,} characters long; at most {MAX_QUESTION_CHARS:,} are read: "
            "ask about one patient or criterion at a time"
        )


@lru_cache(maxsize=1)
def _aliases() -> tuple[tuple[str, str, str], ...]:
    with ALIASES_FILE.open(encoding="utf-8") as fh:
        rows = [(r["alias"].casefold(), r["kind"], r["target"]) for r in csv.DictReader(fh)]
    return tuple(sorted(rows, key=lambda r: -len(r[0])))  # the longest alias first


def parse_question(
    text: str,
    kb: KnowledgeBase,
    patient_ids: list[str] | tuple[str, ...],
    current_patient: str | None = None,
    today: date | None = None,
) -> Question | Clarification:
    """The question understood, or a clarification to ask back."""
    cleaned = " ".join(text.split())
    corrected = _corrected(cleaned)
    intent = next((name for name, ways in INTENTS if any(_asked(way, corrected) for way in ways)), None)
    patient = _patient(cleaned, patient_ids)
    if isinstance(patient, Clarification):
        return patient
    if patient is None and (intent in DESCRIBABLE or intent == "protocol"):
        described = _described(cleaned, kb, today, intent)
        if described is not None:
            return described
    if intent is None:
        return _unclear(cleaned, patient or current_patient)
    if intent == "help":  # the examples name the selected patient
        patient = patient or current_patient
    selected = False
    if intent in NEEDS_PATIENT and patient is None:
        if current_patient is not None and _REFERS.search(cleaned):
            patient, selected = current_patient, True
        else:
            return _which_patient(cleaned, patient_ids, current_patient)
    criterion = _criterion(cleaned, kb, intent) if intent in ("why", "criterion") else None
    if intent == "why" and criterion is None:
        intent = "blockers"
    if intent == "criterion" and criterion is None:
        return Clarification(cleaned, "Which criterion? Give its id (GE4.7) or its subject (the steroid rule).")
    changes: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()
    if intent == "whatif":
        found = _changes(cleaned, kb, today)
        if isinstance(found, Clarification):
            return found
        changes, notes = found
        if not changes:
            return Clarification(
                cleaned,
                "What should change? For instance: platelets were 80, enrol on 2027-01-12, "
                "the steroid window were 4 weeks, stop rituximab on 2026-10-01.",
            )
    return Question(intent, cleaned, patient, criterion, changes, notes, selected)


def _described(text: str, kb: KnowledgeBase, today: date | None, intent: str | None) -> Question | None:
    """A question that describes a patient ("my 45-year-old lupus patient on rituximab"): read
    as that patient, never as the one selected on screen. A disease named in a question that
    asks nothing about a patient ("what makes lupus refractory here?") describes no one."""
    description = read_description(text, kb.vocabulary, today or date.today())
    if not description.describes:
        return None
    only_diseases = description.facts == len(description.diagnoses)
    if only_diseases and intent is None and not description.cues and description.sex is None:
        return None
    if only_diseases and intent == "protocol":  # "can lupus patients enter?" asks the protocol;
        return None  # "can a lupus patient with platelets of 40 enrol?" describes one
    return Question("described", text, notes=description.assumptions, description=description)


def _unclear(text: str, current: str | None) -> Clarification:
    """Nothing understood: say so and offer questions, instead of falling into the help menu."""
    shown = text if len(text) <= 80 else text[:77] + "…"
    options = tuple(o.format(p=current or "P001") for o in UNCLEAR_OPTIONS)
    prompt = (
        f"I did not understand “{shown}”. Ask about a patient by id (P003), about the one selected "
        "(“is she eligible?”), describe a patient in words, or pick a question:"
    )
    return Clarification(text, prompt, options)


def _which_patient(text: str, ids: list[str] | tuple[str, ...], current: str | None) -> Clarification:
    """No patient named and none pointed at: ask, offering the selected one first."""
    first = [current] if current else []
    choices = [*first, *(pid for pid in list(ids)[:3] if pid != current)][:3]
    prompt = (
        "Which patient do you mean? Name one (e.g. P003), say “this patient” for the one selected, "
        "or describe the patient in words (age, disease, drugs with when, results)."
    )
    return Clarification(text, prompt, tuple(f"{text} ({pid})" for pid in choices))


def _asked(way: Sequence, text: str) -> bool:
    """Whether the pieces occur in order: each searched once, from the end of the one before.

    The earliest match of a piece ends first, so nothing is lost by not trying later ones.
    """
    position = 0
    for piece in way:
        found = piece.search(text, position)
        if found is None:
            return False
        position = found.end()
    return True


class _Spans:
    """Non-overlapping spans in text order (a pattern's matches), asked by position in O(log n)."""

    def __init__(self, spans: list[tuple[int, int]]) -> None:
        self.starts = [start for start, _ in spans]
        self.ends = [end for _, end in spans]

    def __contains__(self, position: object) -> bool:
        assert isinstance(position, int)
        k = bisect_right(self.starts, position) - 1
        return k >= 0 and position < self.ends[k]


def _dates(text: str) -> _Spans:
    return _Spans([m.span() for m in _DATE.finditer(text)])


#: The words the intent patterns hang on, to correct a typo before matching.
_KEYWORDS = (
    "eligible", "ineligible", "eligibility", "block", "blocks", "blocked", "blocking", "excluded", "missing",
    "collect", "until", "explain", "contradict", "review", "protocol", "screen", "patients", "summarise",
    "summarize", "check", "enrolled", "enrol", "repair", "criterion", "definition", "redundant", "results",
)  # fmt: skip


def _corrected(text: str) -> str:
    """The question with each long word that is a near miss of a keyword replaced by it."""

    def fix(match: re.Match[str]) -> str:
        word = match.group(0)
        if len(word) < 5 or word.casefold() in _KEYWORDS:
            return word
        best = process.extractOne(word.casefold(), _KEYWORDS, scorer=fuzz.ratio, score_cutoff=80)
        return str(best[0]) if best else word

    return re.sub(r"[A-Za-z]+", fix, text)


def _patient(text: str, ids: list[str] | tuple[str, ...]) -> str | Clarification | None:
    dates = _dates(text)
    numbers = dict.fromkeys(m.group(1) or m.group(2) for m in _ID.finditer(text) if m.start() not in dates)
    if not numbers:  # an id that is not "P" and a number (an upload's own ids) names its patient when written whole
        written = sorted({pid for pid in ids if len(pid) > 1 and pid in text})
        return written[0] if len(written) == 1 else None
    by_number: dict[str, list[str]] = {}  # once per question, not once per number named
    for pid in ids:
        by_number.setdefault(re.sub(r"\D", "", pid).lstrip("0"), []).append(pid)
    found: set[str] = set()
    for number in numbers:  # in the order written, so the first unknown one is the one named
        same = by_number.get(number.lstrip("0"), [])
        if not same:
            best = process.extractOne(f"P{number}", list(ids), scorer=fuzz.ratio, processor=utils.default_process)
            if best is None or best[1] < 75:
                return Clarification(text, f"There is no patient P{number}; which patient do you mean?", tuple(ids[:5]))
            same = [best[0]]
        found.update(same)
    if len(found) > 1:
        return Clarification(text, "Which of these patients do you mean?", tuple(sorted(found)))
    return found.pop()


def _criterion(text: str, kb: KnowledgeBase, intent: str) -> str | None:
    ids = {c.id.upper().replace("-", ""): c.id for c in kb.criteria}
    for match in _CRITERION.finditer(text):
        key = re.sub(r"[\s-]", "", match.group(1)).upper()
        if key in ids:
            return ids[key]
    if intent not in ("criterion", "why"):
        return None
    lowered = text.casefold()
    for alias, kind, target in _aliases():
        if kind == "criterion" and re.search(rf"\b{re.escape(alias)}", lowered):
            return target
    return None


def _items(kb: KnowledgeBase) -> dict[str, str]:
    names: dict[str, str] = {}
    for item in kb.vocabulary.items.values():
        if "." in item.name:
            continue  # instrument items are recorded, not asked about
        for alias in (item.name, item.name.replace("_", " "), item.label, *item.synonyms):
            names.setdefault(alias.casefold(), item.name)
    return names


def _changes(
    text: str, kb: KnowledgeBase, today: date | None
) -> tuple[tuple[str, ...], tuple[str, ...]] | Clarification:
    lowered = text.casefold()
    changes: list[str] = []
    notes: list[str] = []
    stops: list[tuple[int, int]] = []
    for stop in re.finditer(r"\bstop(?:ped|ping|s)?\s+([a-z][\w-]*)(?:\s+on)?(?:\s+(\d{4}-\d{2}-\d{2}))?", lowered):
        when = stop.group(2)
        if when is None:
            if today is None:
                return Clarification(text, f"On which day would {stop.group(1)} be stopped? Give a date (YYYY-MM-DD).")
            when = today.isoformat()
            notes.append(f"{stop.group(1)} stopped on {when}, the as-of date")
        changes.append(f"stop:{stop.group(1)}@{when}")
        stops.append(stop.span())
    consumed = _Spans(stops)
    for match in _DATE.finditer(lowered):
        if match.start() in consumed:
            continue
        before = lowered[max(0, match.start() - 40) : match.start()]  # a slice, not a copy of the whole prefix
        anchor = next((a for a in ("apheresis", "screening", "enrol") if a in before), None)
        if anchor:
            changes.append(f"{'enrolment' if anchor == 'enrol' else anchor}={match.group(1)}")
    window = re.search(r"(?<!\d)(\d+)\s*(day|week|month)s?", lowered)  # from a run's first digit: linear
    if window and re.search(r"window|look-?back|course", lowered):
        days = int(window.group(1)) * {"day": 1, "week": 7, "month": 30}[window.group(2)]
        assumption = next(
            (target for alias, kind, target in _aliases() if kind == "assumption" and alias in lowered), None
        )
        if assumption is None:
            choices = tuple(sorted({t for _, k, t in _aliases() if k == "assumption"}))
            return Clarification(text, "Which window do you mean?", choices)
        changes.append(f"assume:{assumption}={days}")
        return tuple(changes), tuple(notes)
    names = _items(kb)
    known = list(names)
    dates = _dates(lowered)
    words = [m.span() for m in re.finditer(r"[a-z][a-z0-9_/-]*", lowered)]  # tokenised once
    starts = [start for start, _ in words]
    for match in _NUMBER.finditer(lowered):
        at = match.start()
        if at in dates or re.match(r"p[-\s#]?$", lowered[max(0, at - 2) : at]):
            continue
        # the last four words before the number (one running into it cut where the number starts)
        k = bisect_left(starts, at)
        preceding = [lowered[a : min(b, at)] for a, b in words[max(0, k - 4) : k]]
        item = _item([w for w in preceding if w not in _FILLER], names, known)
        if item is None:
            continue
        unit = f" {text[match.start(2) : match.end(2)]}" if match.group(2) else ""
        changes.append(f"{item}={match.group(1)}{unit}")
    return tuple(changes), tuple(notes)


def _item(words: list[str], names: dict[str, str], choices: list[str]) -> str | None:
    """The item the last words before a number name (two words first: 'ejection fraction')."""
    for size in (3, 2, 1):
        if len(words) >= size:
            phrase = " ".join(words[-size:])
            if phrase in names:
                return names[phrase]
    if not words:
        return None
    best = process.extractOne(words[-1], choices, scorer=fuzz.ratio, score_cutoff=80)
    return names[best[0]] if best else None
