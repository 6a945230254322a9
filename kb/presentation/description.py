"""A patient described in words ("a 45-year-old woman with lupus, rituximab 2 weeks ago"),
read deterministically into an ad-hoc patient that lives only in the answer.

A clinician asks about a patient who is not in any file; answering about the patient
selected in the sidebar instead would be dangerous. The words are read with the knowledge
base's own vocabularies (item names and synonyms, agent names and brands, sex words) and
a short list of the six diseases' names mapped to their ICD-10 codes, plus ages, relative
times ("2 weeks ago", "until yesterday", "last month") and units (kb/records/units.py). Everything
read into the words is said (`Description.assumptions`), everything left unread too
(`Description.unread`), so a misreading shows and can be corrected by rephrasing.

A vague time ("last month") is a range of days, never one guessed day: the patient can be
built at any day of the range (`Description.patient(k)`), and kb/presentation/described.py evaluates the
range's ends. Nothing is attested and no history counts as reviewed: what the words do not
say stays unknown, so a described patient is never eligible by omission.
"""

from __future__ import annotations

import re
from bisect import bisect_left, bisect_right
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import Decimal

from dateutil.relativedelta import relativedelta

from kb.catalogue.derived import EARLIEST_DATE, LATEST_DATE
from kb.catalogue.vocabulary import Vocabulary
from kb.errors import KbError
from kb.records.patients import Attestation, Event, Observation, Patient, Source
from kb.records.units import UnitError, convert, exact

__all__ = ["DESCRIBED_ID", "DISEASES", "Description", "Span", "read_description"]

#: The id the ad-hoc patient carries: not a stored patient's id, and said to be none.
DESCRIBED_ID = "described patient"
SOURCE = Source("the question's words", 0)

#: Disease names → (ICD-10 code, cohort label). A code, never the words, decides the cohort
#: (kb/factbase/build.py), so "drug-induced lupus" (M32.0) and CREST (M34.1) stay outside it.
DISEASES: dict[str, tuple[str, str]] = {
    **dict.fromkeys(["sle", "lupus", "systemic lupus", "systemic lupus erythematosus", "lupus erythematosus",
                     "lupus nephritis"], ("M32.9", "SLE")),
    **dict.fromkeys(["drug-induced lupus", "drug induced lupus"], ("M32.0", "drug-induced lupus (not a cohort)")),
    **dict.fromkeys(["sjögren's", "sjogren's", "sjögren", "sjogren", "sjögrens", "sjogrens", "pss",
                     "primary sjögren's", "primary sjogren's", "sjögren's syndrome", "sjogren's syndrome",
                     "sjögren syndrome", "sjogren syndrome", "sicca syndrome"], ("M35.0", "primary Sjögren's")),
    **dict.fromkeys(["ssc", "systemic sclerosis", "scleroderma", "diffuse systemic sclerosis", "dcssc",
                     "diffuse cutaneous systemic sclerosis", "diffuse scleroderma"], ("M34.0", "systemic sclerosis")),
    **dict.fromkeys(["crest", "limited scleroderma", "lcssc"], ("M34.1", "CREST / limited SSc (not a cohort)")),
    **dict.fromkeys(["dermatomyositis", "dm-ild"], ("M33.1", "dermatomyositis")),
    **dict.fromkeys(["polymyositis"], ("M33.2", "polymyositis")),
    **dict.fromkeys(["myositis", "iim", "inflammatory myopathy", "idiopathic inflammatory myopathy",
                     "inflammatory myositis", "antisynthetase syndrome"], ("M33.9", "inflammatory myopathy")),
    **dict.fromkeys(["gpa", "granulomatosis with polyangiitis", "wegener's", "wegener", "wegeners"],
                    ("M31.3", "GPA (ANCA vasculitis)")),
    **dict.fromkeys(["mpa", "microscopic polyangiitis", "aav", "anca vasculitis", "anca-associated vasculitis",
                     "anca associated vasculitis", "anca-vasculitis"], ("M31.7", "ANCA vasculitis (as MPA)")),
    **dict.fromkeys(["egpa", "churg-strauss", "churg strauss", "eosinophilic granulomatosis with polyangiitis"],
                    ("M30.1", "EGPA (ANCA vasculitis)")),
    **dict.fromkeys(["aps", "antiphospholipid syndrome", "anti-phospholipid syndrome", "antiphospholipid",
                     "antiphospholipid antibody syndrome", "catastrophic aps", "caps"],
                    ("D68.6", "antiphospholipid syndrome")),
}  # fmt: skip
SEX_WORDS = {
    **dict.fromkeys(["woman", "female", "lady", "girl", "she", "her", "mother", "mrs", "ms", "women"], "female"),
    **dict.fromkeys(["man", "male", "gentleman", "boy", "he", "him", "his", "father", "mr", "guy", "men"], "male"),
}
NUMBER_WORDS = {"a": 1, "an": 1, "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7}
NUMBER_WORDS |= {"eight": 8, "nine": 9, "ten": 10, "eleven": 11, "twelve": 12}
ONGOING = frozenset({"on", "taking", "takes", "receiving", "receives", "currently", "still", "ongoing"})
#: "prior CAR-T", "previous rituximab": given on some day before today, which one unsaid (a range)
PRIOR = frozenset({"prior", "previous", "previously", "past"})
FREQUENCIES = {"daily": "daily", "qd": "daily", "od": "daily", "bid": "bid", "tid": "tid", "qid": "qid"}
MAX_FACTS = 40  # results and doses read from one question (unit conversions cost): more is a paste
MAX_UNREAD = 6  # what was not read: the first few say enough, and a paste of numbers stays linear
_TOKEN = re.compile(r"[^\s,;:()!?]+")
_CLAUSE = re.compile(r"[,;]|\.(?!\d)|\b(?:and|but|with|plus|while|who|whose)\b", re.IGNORECASE)
_NUMBER = re.compile(r"^(\d+(?:\.\d+)?)(.*)$")
_WEIGHT = re.compile(
    r"\b(?:body\s+weight|weight|wt|weighs|weighing)\s*(?:of|is|=|:)?\s*(\d{1,4}(?:\.\d+)?)\s*(kgs?|lbs?)?(?![\w/])"
    r"|(?<![\w.])(\d{1,4}(?:\.\d+)?)\s*(kgs?)(?![\w/])"
)
_PREGNANCY = re.compile(r"\b(not\s+|non-?|no\s+)?(pregnant|breast-?feeding|lactating|nursing)\b")
#: a number written with thousands separators (1,500 or 150,000): one number, not a list
_THOUSANDS = re.compile(r"(?<![\d.,])\d{1,3}(?:,\d{3})+(?![\d,])")
_AGE = re.compile(
    r"\b(\d{1,3})\s*-?\s*(?:years?|yrs?|y)\s*-?\s*old\b|\b(\d{1,3})\s*(?:yo|y/o|y\.o\.?)(?!\w)"
    r"|\bage[ds]?\s*[:=]?\s*(\d{1,3})\b|\b(\d{2})\s?([mf])\b",
    re.IGNORECASE,
)
_WHEN = re.compile(
    r"\b(?:(\d+|an?|one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve)\s+(day|week|month|year)s?\s+(?:ago|after|since|post)"
    r"|(yesterday|today|this morning|last night|last week|last month|last year)|(\d{4}-\d{2}-\d{2}))\b",
    re.IGNORECASE,
)
_UNTIL = re.compile(r"\b(?:until|till|up to|through|stopped|ended|last dose|last given)\s*(?:on\s*)?$", re.I)
_SINCE = re.compile(r"\b(?:since|from|started|starting|began)\s*(?:on\s*)?$", re.I)


@dataclass(frozen=True)
class Span:
    """The days a phrase of time may mean: one day ("2 weeks ago"), or a range ("last month")."""

    first: date
    last: date
    words: str

    def at(self, k: int) -> date:
        """The k-th day of the range (its last day beyond it)."""
        return min(self.first + timedelta(days=k), self.last)

    @property
    def days(self) -> int:
        return (self.last - self.first).days

    def describe(self) -> str:
        if self.first == self.last:
            return f"{self.first.isoformat()} ({self.words})"
        return f"any day from {self.first.isoformat()} to {self.last.isoformat()} ({self.words})"


@dataclass(frozen=True)
class _Drug:
    kind: str
    written: str
    agent: str
    start: Span
    end: Span | None  # None: ongoing
    dose: Decimal | None = None
    unit: str = ""
    frequency: str = ""
    how: str = "given on"  # "last taken on": an end without a start ("until yesterday")


@dataclass(frozen=True)
class _Lab:
    item: str
    value: Decimal | str
    written: str
    when: Span


@dataclass(frozen=True)
class Description:
    """What the words say about a patient, what was read into them, and what was not read."""

    text: str
    enrolment: date
    sex: str | None = None
    age: int | None = None
    diagnoses: tuple[tuple[str, str, str], ...] = ()  # (words, ICD-10 code, label)
    drugs: tuple[_Drug, ...] = ()
    labs: tuple[_Lab, ...] = ()
    assumptions: tuple[str, ...] = ()
    unread: tuple[str, ...] = ()
    cues: tuple[str, ...] = field(default=())  # "my patient", "a patient with": a patient is described
    weight_kg: Decimal | None = None
    attested: tuple[tuple[str, str], ...] = ()  # (attestation item, value): "breastfeeding" → (breastfeeding, yes)

    @property
    def facts(self) -> int:
        """How many facts about a patient were read (a sex word alone, a pronoun, is not one)."""
        return (
            (self.age is not None)
            + (self.weight_kg is not None)
            + len(self.diagnoses)
            + len(self.drugs)
            + len(self.labs)
            + len(self.attested)
        )

    @property
    def describes(self) -> bool:
        """Whether the words describe a patient: a fact read, or "my patient …" with words
        that were meant as facts but could not be read (said, rather than another patient)."""
        return bool(self.facts or (self.cues and self.unread))

    @property
    def spans(self) -> tuple[Span, ...]:
        found = [d.start for d in self.drugs] + [d.end for d in self.drugs if d.end] + [lab.when for lab in self.labs]
        return tuple(s for s in found if s.days)

    @property
    def range_days(self) -> int:
        """The widest range of days a vague time leaves (0: every date is one day)."""
        return max((s.days for s in self.spans), default=0)

    def summary(self) -> tuple[str, ...]:
        """The facts read, one short phrase each (what "understood:" shows)."""
        parts = [{"female": "woman", "male": "man"}[self.sex]] if self.sex else []
        parts += [f"{self.age} years"] if self.age is not None else []
        parts += [f"{exact(self.weight_kg)} kg"] if self.weight_kg is not None else []
        parts += [label for _, _, label in self.diagnoses]
        parts += [f"{d.agent} {_when(d)}" for d in self.drugs]
        parts += [f"{lab.item} {lab.written}" for lab in self.labs]
        parts += [f"{item} {value}" for item, value in self.attested]
        return tuple(parts)

    def patient(self, k: int = 0) -> Patient:
        """The ad-hoc patient, each vague time taken at its k-th day (never stored anywhere)."""
        birth = None
        if self.age is not None:
            birth = _years_before(self.enrolment, self.age + 1) + timedelta(days=183)  # mid-year: no birthday near
        patient = Patient(
            DESCRIBED_ID, sex=self.sex, birth_date=birth, weight_kg=self.weight_kg, enrolment_date=self.enrolment,
            source=SOURCE,
        )  # fmt: skip
        for _, code, _ in self.diagnoses:
            patient.events.append(Event("diagnosis", "", None, f"icd10:{code}", self.enrolment, None, SOURCE))
        for drug in self.drugs:
            start, end = drug.start.at(k), drug.end.at(k) if drug.end else None
            patient.events.append(
                Event(drug.kind, drug.written, drug.agent, "", min(start, end or start), end, SOURCE,
                      drug.dose, drug.unit, drug.frequency)
            )  # fmt: skip
        for item, value in self.attested:
            patient.attestations.append(Attestation(item, value, self.enrolment, "the question's words", SOURCE))
        for lab in self.labs:
            patient.observations.append(
                Observation(lab.item, lab.value, lab.when.at(k), None, None, lab.written, SOURCE)
            )
        return patient


def _when(drug: _Drug) -> str:
    if drug.end is None:
        return f"ongoing since {drug.start.first.isoformat()}"
    if drug.end == drug.start:
        return drug.start.describe()
    return f"{drug.start.describe()} until {drug.end.describe()}"


def _years_before(day: date, years: int) -> date:
    return day - relativedelta(years=years)  # from 29 February: 28 February of a common year


_NAMES: dict[int, tuple[Vocabulary, dict[str, str], dict[str, str]]] = {}


def _names(vocabulary: Vocabulary) -> tuple[dict[str, str], dict[str, str]]:
    """Agent and item names (each with spaces and hyphens for underscores), casefolded; built
    once per vocabulary (kept with it, so an id is never reused for another)."""
    known = _NAMES.get(id(vocabulary))
    if known is not None and known[0] is vocabulary:
        return known[1], known[2]
    agents: dict[str, str] = {}
    for key, agent in vocabulary.agent_names.items():
        for variant in (key, key.replace("_", " "), key.replace("_", "-")):
            agents.setdefault(variant, agent)
    items: dict[str, str] = {}
    for item in vocabulary.items.values():
        if "." in item.name:
            continue  # instrument items: scored, not described
        for alias in (item.name, item.label, *item.synonyms):
            for variant in (alias.casefold(), alias.casefold().replace("_", " "), alias.casefold().replace("_", "-")):
                items.setdefault(variant, item.name)
    if len(_NAMES) > 8:
        _NAMES.clear()
    _NAMES[id(vocabulary)] = (vocabulary, agents, items)
    return agents, items


def _agent_kind(classes: tuple[str, ...]) -> str:
    if any(c.endswith("_vaccine") for c in classes):
        return "vaccination"
    if any(c.endswith("_transfusion") for c in classes):
        return "transfusion"
    if {"car_t", "gm_t_cell"} & set(classes):
        return "cell_therapy"
    return "medication"


def _span(match: re.Match[str], today: date) -> Span:
    """The days a time in words covers; a date that does not exist, or one outside the dates
    read anywhere (1900-2200, so no window computed from it leaves the calendar), is the
    user's mistake, named: never a traceback."""
    try:
        span = _days(match, today)
    except (ValueError, OverflowError):
        raise KbError(f"'{match.group(0)}' is not a day in the calendar (dates are written YYYY-MM-DD)") from None
    for day in (span.first, span.last):
        if not EARLIEST_DATE <= day <= LATEST_DATE:
            raise KbError(
                f"'{match.group(0)}' is {day.isoformat()}, outside the dates accepted "
                f"({EARLIEST_DATE.isoformat()} to {LATEST_DATE.isoformat()})"
            )
    return span


def _days(match: re.Match[str], today: date) -> Span:
    words = match.group(0)
    if match.group(4):
        day = date.fromisoformat(match.group(4))
        return Span(day, day, words)
    if match.group(3):
        phrase = " ".join(match.group(3).casefold().split())
        if phrase in ("today", "this morning"):
            return Span(today, today, words)
        if phrase in ("yesterday", "last night"):
            return Span(today - timedelta(days=1), today - timedelta(days=1), words)
        if phrase == "last week":  # the calendar week before this one, Monday to Sunday
            monday = today - timedelta(days=today.weekday() + 7)
            return Span(monday, monday + timedelta(days=6), words)
        if phrase == "last month":
            last = today.replace(day=1) - timedelta(days=1)
            return Span(last.replace(day=1), last, words)
        return Span(date(today.year - 1, 1, 1), date(today.year - 1, 12, 31), words)  # last year
    count = NUMBER_WORDS.get(match.group(1).casefold()) or int(match.group(1))
    unit = match.group(2).casefold()
    if unit in ("day", "week"):
        day = today - timedelta(days=count * (7 if unit == "week" else 1))
        return Span(day, day, words)
    if unit == "month":  # "2 months ago": that calendar month, not a guessed day of it
        first = today.replace(day=1) - relativedelta(months=count)
        return Span(first, min(first + relativedelta(day=31), today), words)  # day=31: the month's last
    return Span(date(today.year - count, 1, 1), min(date(today.year - count, 12, 31), today), words)


def read_description(text: str, vocabulary: Vocabulary, today: date) -> Description:
    """What the words say about a patient (`facts` is 0 when they describe none)."""
    agents, items = _names(vocabulary)
    text = _THOUSANDS.sub(lambda m: m[0].replace(",", ""), text)  # "ANC 1,500/uL" is 1500, not 1 and 500
    lowered = text.casefold().replace("’", "'")
    tokens = [(m.start(), m.end(), lowered[m.start() : m.end()].rstrip(".")) for m in _TOKEN.finditer(lowered)]
    words = [t for _, _, t in tokens]
    bounds = [m.start() for m in _CLAUSE.finditer(lowered)]
    clause_of = [_clause(bounds, start) for start, _, _ in tokens]
    clauses: dict[int, list[tuple[str, Span]]] = {}
    for match in _WHEN.finditer(lowered):
        span = _span(match, today)
        before = lowered[max(0, match.start() - 14) : match.start()]
        role = "end" if _UNTIL.search(before) else "start" if _SINCE.search(before) else "point"
        clauses.setdefault(_clause(bounds, match.start()), []).append((role, span))
    used: set[int] = set()  # tokens read as part of a fact
    starts = [start for start, _, _ in tokens]
    for match in _WHEN.finditer(lowered):  # each time's own tokens, found by bisection: linear overall
        used.update(range(bisect_left(starts, match.start()), bisect_left(starts, match.end())))
    notes: list[str] = [f"enrolment assumed on {today.isoformat()} (today), screening and apheresis the same day"]
    unread: list[str] = []
    sex, age = _sex_and_age(lowered, words, tokens, used, notes)
    weight = _weight(lowered, tokens, used, notes, unread)
    diagnoses: list[tuple[str, str, str]] = []
    drugs: list[_Drug] = []
    labs: list[_Lab] = []
    attested: list[tuple[str, str]] = []
    for match in _PREGNANCY.finditer(lowered):  # GE10: pregnant or breastfeeding (a woman, then)
        negated, word = match.group(1) is not None, match.group(2)
        used.update(i for i, (s, e, _) in enumerate(tokens) if s < match.end() and e > match.start())
        sex = sex or "female"
        if word.startswith("pregnan"):
            value = "negative" if negated else "positive"
            labs.append(_Lab("pregnancy_test", value, f"{value} ('{match.group(0)}')", Span(today, today, "today")))
            notes.append(f"pregnancy test {value} today (from '{match.group(0)}')")
        else:
            attested.append(("breastfeeding", "no" if negated else "yes"))
            notes.append(f"breastfeeding: {'no' if negated else 'yes'} (from '{match.group(0)}')")
    i = 0
    while i < len(words):
        if len(diagnoses) + len(drugs) + len(labs) >= MAX_FACTS:  # a paste, not a patient: bounded work
            unread.append(f"only the first {MAX_FACTS} facts were read")
            break
        for size in (4, 3, 2, 1):
            phrase = " ".join(words[i : i + size])
            if len(words[i : i + size]) < size:
                continue
            clause = clauses.get(clause_of[i], [])
            if phrase in DISEASES:
                code, label = DISEASES[phrase]
                if code not in {c for _, c, _ in diagnoses}:
                    diagnoses.append((phrase, code, label))
                    notes.append(f"diagnosis recorded as {label} (ICD-10 {code}), dated the enrolment day")
            elif phrase in items or phrase in agents:
                lab = _lab(vocabulary, items[phrase], text, tokens, i, size, clause, today) if phrase in items else ""
                if not isinstance(lab, str):  # a result ("platelets 40") before a product ("platelets last week")
                    labs.append(lab[0])
                    used.update(lab[1])
                    notes.append(lab[2])
                elif phrase in agents:
                    drug = _drug(vocabulary, agents[phrase], phrase, words, i + size, clause, today)
                    if isinstance(drug, str):
                        unread.append(drug)
                    else:
                        drugs.append(drug)
                        used.update(range(i + size, i + size + (3 if drug.dose is not None else 0)))
                        notes.append(_drug_note(drug))
                else:
                    unread.append(lab)
            else:
                continue
            used.update(range(i, i + size))
            i += size - 1
            break
        i += 1
    cues = tuple(m.group(0) for m in re.finditer(r"\b(?:my|a|an|new)\s+(?:\w+\s+)?(?:patient|pt)\b", lowered))
    for n, word in enumerate(words):
        if len(unread) >= MAX_UNREAD:
            break
        said = any(f" {word}" in note for note in unread)  # already asked about ("hb 9: in which unit?")
        if n not in used and not said and _NUMBER.match(word) and not re.match(r"\d{4}-\d{2}-\d{2}", word):
            unread.append(f"the number {word} (what does it measure? e.g. 'platelets {word}')")
    if diagnoses or drugs or labs or attested or age is not None or weight is not None:
        notes.append("nothing is recorded as reviewed: the histories the words do not mention stay open")
    return Description(text, today, sex, age, tuple(diagnoses), tuple(drugs), tuple(labs), tuple(notes),
                       tuple(unread[:MAX_UNREAD]), cues, weight, tuple(attested))  # fmt: skip


def _clause(bounds: list[int], position: int) -> int:
    return bisect_right(bounds, position)


def _sex_and_age(
    lowered: str, words: list[str], tokens: list[tuple[int, int, str]], used: set[int], notes: list[str]
) -> tuple[str | None, int | None]:
    sexes = {SEX_WORDS[w.removesuffix("'s")] for w in words if w.removesuffix("'s") in SEX_WORDS}
    age: int | None = None
    for match in _AGE.finditer(lowered):
        number = next(g for g in match.groups()[:4] if g)
        age = int(number)
        if match.group(5):
            sexes.add("female" if match.group(5) == "f" else "male")
        used.update(i for i, (s, e, _) in enumerate(tokens) if s < match.end() and e > match.start())
        break
    sex = sexes.pop() if len(sexes) == 1 else None
    if age is not None:
        notes.append(f"{age} years old at enrolment (a birthday half a year away assumed)")
    return sex, age


def _weight(
    lowered: str, tokens: list[tuple[int, int, str]], used: set[int], notes: list[str], unread: list[str]
) -> Decimal | None:
    """Body weight ("weight 60 kg", "wt 60kg", "weighing 154 lb", "70 kg"): Cockcroft-Gault and
    mg/kg doses need it. Pounds are converted; a weight outside 20-300 kg is asked back."""
    for match in _WEIGHT.finditer(lowered):
        number, unit = (match.group(1), match.group(2)) if match.group(1) else (match.group(3), match.group(4))
        kg = Decimal(number) * (Decimal("0.45359237") if unit and unit.startswith("lb") else 1)
        used.update(i for i, (s, e, _) in enumerate(tokens) if s < match.end() and e > match.start())
        if not Decimal(20) <= kg <= Decimal(300):
            unread.append(f"a weight of {number} {unit or 'kg'}: is that right? (read from 20 to 300 kg)")
            return None
        kg = kg.quantize(Decimal("0.1"))
        notes.append(f"weight {exact(kg)} kg" + (f" ({number} {unit})" if unit and unit.startswith("lb") else ""))
        return kg
    return None


def _drug(
    vocabulary: Vocabulary,
    name: str,
    written: str,
    words: list[str],
    after: int,
    times: list[tuple[str, Span]],
    today: date,
) -> _Drug | str:
    agent = vocabulary.agents[name]
    roles = {role: span for role, span in reversed(times)}  # the first of each role in the clause
    start, end = roles.get("start"), roles.get("end")
    how = "given on"
    if "point" in roles and start is None and end is None:
        start = end = roles["point"]
    elif end is not None:
        how = "last taken (start not given) on" if start is None else how
        start = start or end  # "until yesterday": taken at least on that day
    elif start is not None:
        end = start if agent.one_off else None
    else:
        before = set(words[max(0, after - 4) : after])
        if PRIOR & before:  # a criterion that counts any time decides; a window names the deciding day
            start = end = Span(EARLIEST_DATE, today - timedelta(days=1), "prior: some day before today")
            return _Drug(_agent_kind(agent.classes), written, name, start, end, None, "", "", "given on")
        if not (ONGOING & before) and "ongoing" not in words[after : after + 3]:
            return f"{written}: when was it given? (e.g. '{written} 3 weeks ago', 'on {written} until yesterday')"
        start = Span(today, today, "ongoing")
        end = start if agent.one_off else None
    dose, unit, frequency = None, "", ""
    following = words[after : after + 4]
    if following and (found := _NUMBER.match(following[0])):
        rest = found.group(2) or (following[1] if len(following) > 1 else "")
        if rest in ("mg", "g"):
            dose, unit = Decimal(found.group(1)), rest
            frequency = next((FREQUENCIES[w] for w in following[1:] if w in FREQUENCIES), "")
    return _Drug(_agent_kind(agent.classes), written, name, start, end, dose, unit, frequency, how)


def _drug_note(drug: _Drug) -> str:
    dose = f" {exact(drug.dose)} {drug.unit} {drug.frequency or 'daily (assumed)'}" if drug.dose is not None else ""
    if drug.end is None:
        return f"{drug.agent}{dose} taken from {drug.start.describe()} and still taken at enrolment"
    if drug.end == drug.start:
        return f"{drug.agent}{dose} {drug.how} {drug.start.describe()}"
    return f"{drug.agent}{dose} taken from {drug.start.describe()} until {drug.end.describe()}"


def _lab(
    vocabulary: Vocabulary,
    name: str,
    text: str,
    tokens: list[tuple[int, int, str]],
    at: int,
    size: int,
    times: list[tuple[str, Span]],
    today: date,
) -> tuple[_Lab, set[int], str] | str:
    item = vocabulary.items[name]
    words = [t for _, _, t in tokens]
    when = next((span for role, span in times if role == "point"), Span(today, today, "today, assumed"))
    if not item.quantitative:
        near = [at - 1, *range(at + size, min(at + size + 3, len(words)))]
        for n in near:
            if 0 <= n < len(words) and words[n].rstrip("+-") in item.allowed_values:
                value = words[n]
                return _Lab(name, value, value, when), {n}, f"{name} {value} on {when.describe()}"
        return f"{name}: which result? (e.g. '{name} {item.allowed_values[0]}')"
    n = at + size
    while n < len(words) and words[n] in ("of", "is", "was", "=", "at", "count", "level", "only", "about", "around"):
        n += 1
    found = _NUMBER.match(words[n]) if n < len(words) else None
    if found is None:
        return f"{name}: which value? (e.g. '{name} 50')"
    value = Decimal(found.group(1))
    original = [text[s:e].rstrip(".") for s, e, _ in tokens[n + 1 : n + 3]]
    candidates = [(found.group(2), 0)] if found.group(2) else []
    candidates += [("".join(original[:2]), 2), (" ".join(original[:2]), 2), (original[0] if original else "", 1)]
    for unit, extra in candidates:
        if not unit:
            continue
        try:
            converted = convert(value, unit, item, vocabulary)
        except (UnitError, ValueError, ArithmeticError):
            continue
        written = f"{found.group(1)} {unit}"
        problem = item.implausible(converted, written)
        if problem:
            return f"{problem}: not read"
        return (
            _Lab(name, converted, written, when),
            set(range(n, n + extra + 1)),
            f"{name} {written} on {when.describe()}",
        )
    canonical = item.display_unit
    if item.unit not in ("", "1") and item.implausible(value, found.group(1)):
        return f"{name} {found.group(1)}: in which unit? (e.g. '{name} {found.group(1)} {canonical}')"
    written = f"{found.group(1)} {canonical}".strip()
    unit_note = f" (unit {canonical} assumed)" if canonical else ""
    return _Lab(name, value, written, when), {n}, f"{name} {written}{unit_note} on {when.describe()}"
