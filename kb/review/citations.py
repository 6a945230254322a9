"""Citations: a criterion's count-and-time condition against the classification criteria it cites.

A criterion may restate, in its own words, a condition of the classification criteria that a
companion criterion requires ("more than two positive tests within 12 weeks" beside the
Sydney 2006 criteria, whose laboratory criterion is "on 2 or more occasions at least 12
weeks apart"). Read as written, the two may leave only a knife-edge of timings, or none.

Conditions are read from text: a count of tests (more than N, at least N, N or more) with a
time span ("within N weeks") or a spacing ("at least N weeks apart"). A criterion's clause
is compared with the items of the instruments (kb/rules/instruments.toml) it reads, or, when
its rules count dated results through a computed measure (`SERIES_MEASURES`), with the items
of the same tests in an instrument that a required companion criterion reads and whose
classification its record text cites (the instrument's year). The clause is searched under
its literal reading and under every combination of the choice assumptions that read it (the
days ones at their value in force, and the range of those values over which both can hold).
z3 works out, for the fewest tests each reading needs, the timings that meet both: none, a
single span (exactly 84 days), or a range. Constructed patients, with their tests at those
offsets and evaluated by the engine under each reading, are the witness.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from datetime import timedelta
from decimal import Decimal
from itertools import combinations, pairwise, product

import z3

from kb.catalogue.assumptions import AssumptionSet
from kb.catalogue.criteria import Criterion
from kb.catalogue.instruments import Instrument, load_instruments
from kb.catalogue.knowledge import KnowledgeBase
from kb.factbase.measures import APL_ITEMS
from kb.language.syntax import Atom, Comparison, Const, Var
from kb.reasoning.evaluation import cohort_of
from kb.records.patients import Observation, Patient, Source
from kb.review.findings import REVIEW_DAY, Case, Finding, Witness, synthetic_patient
from kb.status import Status, Truth

__all__ = ["SERIES_MEASURES", "Series", "SeriesMeasure", "citation_findings", "read_series"]


@dataclass(frozen=True)
class SeriesMeasure:
    """A computed count of dated positive results (kb/factbase/measures.py), as the engine counts it:
    under `timing` = `apart`, the longest series each at least `days` days after the one
    before; under any other value, the most within one span of `days` days."""

    items: dict[str, str]  # test item -> a value that counts as positive
    timing: str
    apart: str
    days: str


#: The computed counts of tests over time, by declared predicate (a model of kb/factbase/measures.py,
#: checked by every witness the engine evaluates).
SERIES_MEASURES = {
    "apl_positive_tests": SeriesMeasure(
        {item: values[0] for item, values in APL_ITEMS.items()}, "apl_timing", "sydney_apart", "apl_window_days"
    )
}


@dataclass(frozen=True)
class Series:
    """At least `count` tests on distinct days, each at least `gap` days after the one
    before, the first and last at most `span` days apart; `days`: which of gap or span is
    the days assumption's value (a reading), so that it can be varied."""

    count: int
    gap: int = 1
    span: int | None = None
    words: str = ""
    counted: bool = True  # False: the text gives a time but no count (two events)
    days: str = ""

    def describe(self) -> str:
        what = f"≥ {self.count} positive tests" if self.counted else "events"
        parts = [what]
        if self.gap > 1:
            parts.append(f"each at least {self.gap} days after the one before")
        if self.span is not None:
            parts.append(f"all within {self.span} days")
        return ", ".join(parts)

    def meets(self, offsets: list[int]) -> bool:
        """Whether tests on these days (sorted, distinct) meet the condition."""
        for chosen in combinations(offsets, self.count):
            spaced = all(b - a >= self.gap for a, b in pairwise(chosen))
            if spaced and (self.span is None or chosen[-1] - chosen[0] <= self.span):
                return True
        return False


_N = r"(\d+|an?|one|two|three|four|five|six|seven|eight|nine|ten|twelve)"
_WORDS = {"a": 1, "an": 1, "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6}
_WORDS |= {"seven": 7, "eight": 8, "nine": 9, "ten": 10, "twelve": 12}
_UNIT = r"(day|week|month|year)s?"
_DAYS = {"day": 1, "week": 7, "month": 30, "year": 365}  # to compare texts only, never to evaluate
_NOUN = r"(?:[\w-]+\s+){0,2}?(?:tests?|occasions|times|results|determinations)\b"
_MORE = re.compile(rf"(?:\bmore than|\bover|>)\s*{_N}\s+{_NOUN}", re.I)
_LEAST = re.compile(rf"(?:\bat least|\bno (?:less|fewer) than|>=|≥)\s*{_N}\s+{_NOUN}", re.I)
_OR_MORE = re.compile(rf"\b{_N}\s+or\s+more\s+{_NOUN}", re.I)
_WITHIN = re.compile(rf"\bwithin\s+(less than\s+)?{_N}\s+{_UNIT}", re.I)
_APART = re.compile(rf"(?:\bat least|\bno less than|>=|≥)\s*{_N}\s+{_UNIT}\s+apart", re.I)
_CLAUSE = re.compile(r"[;,]|\.\s|\s\d+\.\s")
_YEAR = re.compile(r"\b(?:19|20)\d\d\b")


def _number(text: str) -> int:
    return int(text) if text.isdigit() else _WORDS[text.casefold()]


def read_series(text: str) -> list[Series]:
    """The count-and-time conditions of a text, one per clause that states a time."""
    found = []
    for clause in _CLAUSE.split(text):
        count, counted = 2, False
        if match := _MORE.search(clause):
            count, counted = _number(match[1]) + 1, True
        elif match := _LEAST.search(clause) or _OR_MORE.search(clause):
            count, counted = _number(match[1]), True
        gap, span = 1, None
        if match := _APART.search(clause):
            gap = _number(match[1]) * _DAYS[match[2].casefold()]
        if match := _WITHIN.search(clause):
            span = _number(match[2]) * _DAYS[match[3].casefold()] - (1 if match[1] else 0)
        if gap > 1 or span is not None:
            words = clause.strip(" ()").strip()
            words += ")" * (words.count("(") - words.count(")"))
            found.append(Series(count, gap, span, words, counted))
    return found


@dataclass(frozen=True)
class Both:
    """The timings meeting two conditions, with the fewest tests either needs."""

    tests: int
    low: int | None  # least span first to last (None: no timing meets both)
    high: int | None  # greatest span (None: unbounded)
    example: tuple[int, ...] = ()
    more: tuple[int, ...] = ()  # with one more test, an example avoiding the single span
    noun: str = "test"  # "event" for a time with no count

    @property
    def knife_edge(self) -> bool:
        return self.low is None or self.low == self.high

    def describe(self, more: bool = True) -> str:
        if self.low is None:
            return f"no timing of the {self.noun}s meets both"
        ends = f"the two {self.noun}s" if self.tests == 2 else f"the first and last {self.noun}"
        if self.low == self.high:
            text = f"only if {ends} are exactly {self.low} days apart (e.g. days {_days(self.example)})"
        elif self.high is None:
            text = f"when {ends} are at least {self.low} days apart (e.g. days {_days(self.example)})"
        else:
            text = f"when {ends} are {self.low} to {self.high} days apart (e.g. days {_days(self.example)})"
        if self.more and more:
            text += f"; with one more positive test, other timings too (e.g. days {_days(self.more)})"
        return text


def _days(offsets: tuple[int, ...]) -> str:
    return ", ".join(str(d) for d in offsets)


def _holds(series: Series, t: list[z3.ArithRef], days: z3.ArithRef | None = None) -> z3.BoolRef:
    gap: z3.ArithRef | int = days if days is not None and series.days == "gap" else series.gap
    span: z3.ArithRef | int | None = days if days is not None and series.days == "span" else series.span
    options = []
    for chosen in combinations(t, series.count):
        parts = [b - a >= gap for a, b in pairwise(chosen)]
        if span is not None:
            parts.append(chosen[-1] - chosen[0] <= span)
        options.append(z3.And(*parts))
    return z3.Or(*options) if options else z3.BoolVal(False)


def _timeline(n: int) -> list[z3.ArithRef]:
    return [z3.Int(f"t{i}") for i in range(n)]


def _ordered(t: list[z3.ArithRef]) -> list[z3.BoolRef]:
    return [t[0] == 0, *(b >= a + 1 for a, b in pairwise(t))]


def _values(model: z3.ModelRef, t: list[z3.ArithRef]) -> tuple[int, ...]:
    return tuple(model.eval(x, model_completion=True).as_long() for x in t)


_FAR = 100_000  # days: a span beyond any protocol's


def _both(reading: Series, cited: Series) -> Both:
    n = max(reading.count, cited.count)
    t = _timeline(n)
    base = [*_ordered(t), _holds(reading, t), _holds(cited, t)]
    low = z3.Optimize()
    low.add(*base)
    low.minimize(t[-1])
    noun = "test" if reading.counted else "event"
    if low.check() != z3.sat:
        return Both(n, None, None, noun=noun)
    example = _values(low.model(), t)
    top = z3.Optimize()
    top.add(*base, t[-1] <= _FAR)
    top.maximize(t[-1])
    top.check()
    high: int | None = _values(top.model(), t)[-1]
    high = None if high == _FAR else high
    more: tuple[int, ...] = ()
    if example[-1] == high:  # a single span: does one more test free the timing?
        u = _timeline(n + 1)
        extra = z3.Optimize()
        extra.add(*_ordered(u), _holds(reading, u), _holds(cited, u))
        extra.add(*(b - a != example[-1] for a, b in combinations(u, 2)))
        extra.minimize(u[-1])
        if extra.check() == z3.sat:
            more = _values(extra.model(), u)
    return Both(n, example[-1], high, example, more, noun)


def _least_days(reading: Series, cited: Series, low: int, high: int) -> int | None:
    """The least value of the reading's days assumption at which both can hold."""
    n = max(reading.count, cited.count)
    t, days = _timeline(n), z3.Int("days")
    opt = z3.Optimize()
    opt.add(*_ordered(t), _holds(reading, t, days), _holds(cited, t), days >= low, days <= high)
    opt.minimize(days)
    if opt.check() != z3.sat:
        return None
    return int(opt.model().eval(days).as_long())


@dataclass(frozen=True)
class _Link:
    criterion: Criterion
    cited: Criterion
    instrument: Instrument
    items: tuple[str, ...]  # the instrument's items that are the criterion's tests
    measure: SeriesMeasure | None
    predicate: str  # the computed measure's predicate ("" when the instrument is read directly)


def _closure_atoms(kb: KnowledgeBase, predicate: str) -> list[Atom]:
    return [
        lit
        for name in kb.program.depends_on([predicate])
        for rule in kb.program.rules_for(name)
        for lit in rule.body
        if isinstance(lit, Atom)
    ]


def _instruments_read(kb: KnowledgeBase, predicate: str) -> set[str]:
    return {
        str(a.args[1].value)
        for a in _closure_atoms(kb, predicate)
        if a.predicate == "score" and len(a.args) > 1 and isinstance(a.args[1], Const)
    }


def _links(kb: KnowledgeBase, assumptions: AssumptionSet) -> list[_Link]:
    instruments = load_instruments()
    links = []
    for crit in kb.criteria:
        if crit.predicate is None or not crit.record_text:
            continue
        for name in sorted(_instruments_read(kb, crit.predicate) & set(instruments)):
            instrument = instruments[name]
            links.append(_Link(crit, crit, instrument, tuple(i.name for i in instrument.items), None, ""))
        read = {a.predicate for a in _closure_atoms(kb, crit.predicate)}
        for predicate in sorted(read & set(SERIES_MEASURES)):
            measure = SERIES_MEASURES[predicate]
            for other in _companions(kb, crit, assumptions):
                assert other.predicate is not None
                for name in sorted(_instruments_read(kb, other.predicate) & set(instruments)):
                    instrument = instruments[name]
                    shared = tuple(i.name for i in instrument.items if i.name in measure.items)
                    if shared and set(_YEAR.findall(instrument.label)) & set(_YEAR.findall(other.record_text)):
                        links.append(_Link(crit, other, instrument, shared, measure, predicate))
    return links


def _companions(kb: KnowledgeBase, crit: Criterion, assumptions: AssumptionSet) -> list[Criterion]:
    """The criteria a patient must meet together with `crit`: inclusions of its cohort, not
    its alternatives."""
    if crit.kind != "inclusion":
        return []
    return [
        c
        for c in kb.criteria
        if c is not crit and c.kind == "inclusion" and c.predicate is not None and c.record_text
        if cohort_of(c, assumptions) == cohort_of(crit, assumptions) and not (crit.group and c.group == crit.group)
    ]


def _threshold(kb: KnowledgeBase, link: _Link, assumptions: AssumptionSet) -> int | None:
    """The least count of the measure the criterion's passing rule accepts, read from the
    rules under these assumptions (a constant, or a fact chosen by an assumption)."""
    assert link.criterion.predicate is not None
    for name in kb.program.depends_on([link.criterion.predicate]):
        for rule in kb.program.rules_for(name):
            if rule.head.args[-1] != Const(Truth.YES, rule.pos):
                continue
            counts = {
                a.args[-1].name
                for a in rule.body
                if isinstance(a, Atom) and a.predicate == link.predicate and isinstance(a.args[-1], Var)
            }
            for lit in rule.body:
                if isinstance(lit, Comparison) and isinstance(lit.left, Var) and lit.left.name in counts:
                    bound = _bound(kb, rule.body, lit.right, assumptions)
                    if bound is not None and lit.op in (">=", ">"):
                        return bound + (1 if lit.op == ">" else 0)
    return None


def _bound(kb: KnowledgeBase, body: tuple[object, ...], term: object, assumptions: AssumptionSet) -> int | None:
    if isinstance(term, Const) and term.is_number:
        return int(term.value)
    if not isinstance(term, Var):
        return None
    for atom in body:
        if isinstance(atom, Atom) and len(atom.args) == 1 and atom.args[0] == term:
            for fact in kb.program.rules_for(atom.predicate):
                chosen = all(
                    isinstance(b, Atom)
                    and b.predicate == "assumption"
                    and str(assumptions[str(b.args[0].value)]) == str(b.args[1].value)  # type: ignore[union-attr]
                    for b in fact.body
                )
                value = fact.head.args[0]
                if chosen and isinstance(value, Const) and value.is_number:
                    return int(value.value)
    return None


@dataclass(frozen=True)
class _Row:
    label: str
    assume: tuple[tuple[str, str], ...]
    series: Series
    both: Both
    same: bool  # the reading is the cited condition itself
    literal: bool  # the reading is the record's words as written
    encoded: bool = True  # a reading the engine computes under `assume` (the literal one need not be)
    note: str = ""


def _reading(kb: KnowledgeBase, link: _Link, under: AssumptionSet, words: str) -> Series | None:
    measure = link.measure
    assert measure is not None
    count = _threshold(kb, link, under)
    if count is None:
        return None
    days = under.days(measure.days)
    if under[measure.timing] == measure.apart:
        return Series(count, days, None, words, True, "gap")
    return Series(count, 1, days, words, True, "span")


def _shape(series: Series) -> tuple[int, int, int | None]:
    return series.count, series.gap, series.span


def _rows(kb: KnowledgeBase, link: _Link, clause: Series, cited: Series, assumptions: AssumptionSet) -> list[_Row]:
    """Each combination of the choice assumptions that read the clause, and the literal reading:
    one of those, or one the measure's own timing assumption gives, or else read by z3 alone."""
    literal = _Row("read literally", (), clause, _both(clause, cited), _shape(clause) == _shape(cited), True, False)
    measure = link.measure
    if measure is None:
        return [literal]
    reading = [a for a in kb.assumptions.values() if link.criterion.id in a.used_by and a.kind == "choice"]
    combos = [
        tuple((a.id, v) for a, v in zip(reading, values, strict=True))
        for values in product(*(a.allowed for a in reading))
    ]
    rows = [row for assume in combos[:16] if (row := _row(kb, link, clause, cited, assumptions, assume))]
    if not any(r.literal for r in rows) and measure.timing not in {a.id for a in reading}:
        for value in kb.assumptions[measure.timing].allowed:  # the literal reading, if the measure's timing gives it
            row = _row(kb, link, clause, cited, assumptions, ((measure.timing, value),))
            if row and row.literal:
                rows.append(row)
    return rows if any(r.literal for r in rows) else [literal, *rows]


def _row(
    kb: KnowledgeBase,
    link: _Link,
    clause: Series,
    cited: Series,
    assumptions: AssumptionSet,
    assume: tuple[tuple[str, str], ...],
) -> _Row | None:
    assert link.measure is not None
    under = AssumptionSet(assumptions.registry, {**assumptions.values, **dict(assume)})
    series = _reading(kb, link, under, clause.words)
    if series is None:
        return None
    in_force = all(assumptions[k] == v for k, v in assume)
    label = ", ".join(f"{k}={v}" for k, v in assume) or "the reading"
    label += " (in force)" if in_force else ""
    same, literal = _shape(series) == _shape(cited), _shape(series) == _shape(clause)
    both = _both(series, cited)
    note = _days_note(link.measure, under, series, cited) if both.knife_edge else ""
    return _Row(label, assume, series, both, same, literal, True, note)


def _days_note(measure: SeriesMeasure, under: AssumptionSet, series: Series, cited: Series) -> str:
    spec = under.registry[measure.days]
    least = _least_days(series, cited, spec.minimum or 1, spec.maximum or _FAR)
    if least is None:
        return f"none for any {measure.days}"
    if least > (spec.minimum or 1):
        return f"none with {measure.days} below {least}"
    return ""


def citation_findings(kb: KnowledgeBase, assumptions: AssumptionSet) -> list[Finding]:
    findings = []
    seen: set[tuple[str, str, tuple[int, int, int | None]]] = set()
    for link in _links(kb, assumptions):
        by_condition: dict[Series, list[str]] = {}  # the instrument's items asking the same of their tests
        for entry in link.instrument.items:
            if entry.name in link.items:
                for cited in read_series(entry.label):
                    by_condition.setdefault(replace(cited, words=""), []).append(entry.name)
        for clause in read_series(link.criterion.record_text):
            for condition, items in by_condition.items():
                key = (link.criterion.predicate or "", clause.words, _shape(condition))
                if condition.counted != clause.counted or key in seen:
                    continue
                seen.add(key)
                labels = {i.name: i.label for i in link.instrument.items}
                cited = next(c for c in read_series(labels[items[0]]) if replace(c, words="") == condition)
                rows = _rows(kb, link, clause, cited, assumptions)
                if any(r.both.knife_edge for r in rows):
                    findings.append(_finding(kb, assumptions, link, tuple(items), clause, cited, rows))
    return findings


def _finding(
    kb: KnowledgeBase,
    assumptions: AssumptionSet,
    link: _Link,
    items: tuple[str, ...],
    clause: Series,
    cited: Series,
    rows: list[_Row],
) -> Finding:
    crit, other = link.criterion, link.cited
    literal = next(r for r in rows if r.literal)
    which = f"item {items[0]} asks" if len(items) == 1 else f"items {', '.join(items)} each ask"
    source = f"{other.id} (“{other.record_text}”) requires" if other is not crit else "its rules read"
    explanation = (
        f"{crit.id} (“{crit.record_text}”) asks for “{clause.words}”: {clause.describe()}. {source} the "
        f"{link.instrument.label}, whose {which} for {cited.describe()} (“{cited.words}”). Read literally, "
        + (
            "no timing of the tests meets both: no patient can meet both as written."
            if literal.both.low is None
            else f"a patient meets both {literal.both.describe(more=False)}{_edges(literal, cited, crit.id)}."
        )
    )
    readings = [r for r in rows if r.encoded]
    if readings:
        assert link.measure is not None
        days = f"{link.measure.days} = {assumptions[link.measure.days]}"
        explanation += f" Under each reading of the clause ({days}): " + "; ".join(
            f"{r.label}: {crit.id} reads {r.series.describe()}"
            + (f", the cited condition itself (the literal “{clause.words}” is dropped)" if r.same else "")
            + (", the literal reading" if r.literal else "")
            + f"; both are met {r.both.describe()}"
            + (f"; {r.note}" if r.note else "")
            for r in readings
        )
        explanation += (
            ". Which reading the protocol means is for its authors to say: the one in force is the assumptions' "
            "choice, not the record's."
        )
    detail = {"cited": f"{link.instrument.id}.{'/'.join(items)}: {cited.describe()}"}
    detail |= {r.label: f"{r.series.describe()} | both: {r.both.describe()}" for r in rows}
    cases = [case for r in readings for case in _cases(kb, link, items[0], cited, r)]
    summary = (
        f"for each reading, constructed patients with positive {items[0]} tests at chosen days, evaluated "
        f"under that reading: {crit.id} by the engine, {other.id} with the {link.instrument.id} items recorded "
        f"as the cited condition decides them"
        if cases
        else f"the timings meeting both, worked out by z3 for the fewest tests each needs: {literal.both.describe()}"
    )
    assert crit.predicate is not None and other.predicate is not None
    rules = tuple(
        str(rule.pos)
        for name in dict.fromkeys([*kb.program.depends_on([crit.predicate]), other.predicate])
        for rule in kb.program.rules_for(name)
    )
    return Finding(
        "citation",
        (crit.id, other.id) if other is not crit else (crit.id,),
        explanation,
        Witness("patient" if cases else "interval", summary, tuple(cases), detail=detail),
        rules,
    )


def _edges(row: _Row, cited: Series, criterion: str) -> str:
    """What one day either side of a single span means: which condition still holds."""
    if not row.both.knife_edge or not row.both.example:
        return ""
    example = list(row.both.example)
    said = []
    for shift, where in ((-1, "closer"), (1, "further apart")):
        moved = [*example[:-1], example[-1] + shift]
        if len(moved) > 1 and moved[-1] <= moved[-2]:
            continue
        own, theirs = row.series.meets(moved), cited.meets(moved)
        if own != theirs:
            said.append(f"a day {where}, only {'the ' + criterion + ' clause' if own else 'the cited condition'} holds")
    if not said:
        return ""
    more = f" (e.g. days {_days(row.both.more)})" if row.both.more else ""
    return f": {'; '.join(said)}, unless the patient has a further positive test beyond those the clause counts{more}"


def _cases(kb: KnowledgeBase, link: _Link, item: str, cited: Series, row: _Row) -> list[Case]:
    """Patients at the edge of a reading's set: the timing meeting both, and the same timing
    with the last test a day earlier or later, each with the statuses the model expects."""
    assert link.measure is not None
    timings = []
    if row.both.example:
        example = list(row.both.example)
        timings.append(example)
        for shift in (-1, 1) if row.both.knife_edge else (-1,):
            moved = [*example[:-1], example[-1] + shift]
            if len(moved) < 2 or moved[-1] > moved[-2]:
                timings.append(moved)
    else:
        for alone in (row.series, cited):
            t = _timeline(alone.count)
            solver = z3.Solver()
            solver.add(*_ordered(t), _holds(alone, t))
            if solver.check() == z3.sat:
                timings.append(list(_values(solver.model(), t)))
    cases = []
    for n, offsets in enumerate(timings):
        meets, meets_cited = row.series.meets(offsets), cited.meets(offsets)
        note = f"{item} positive on days {_days(tuple(offsets))} under {row.label}"
        expected = {
            link.criterion.id: Status.PASS if meets else Status.FAIL,
            link.cited.id: Status.PASS if meets_cited else Status.FAIL,
        }
        patient = _tested_patient(f"CIT-{n}", kb, link, item, offsets, meets_cited)
        cases.append(Case(patient, expected, note, tuple((k, str(v)) for k, v in row.assume)))
    return cases


_SOURCE = Source("review (constructed patient)", 0)


def _tested_patient(pid: str, kb: KnowledgeBase, link: _Link, item: str, offsets: list[int], cited: bool) -> Patient:
    """Tests of `item` on the given days (the last a week before enrolment); the cited
    instrument's other items present, its items for these tests present as the cited
    condition decides."""
    assert link.measure is not None
    items: dict[str, Decimal | str] = {}
    for entry in link.instrument.items:
        present = cited and entry.name == item if entry.name in link.items else True
        items[link.instrument.item_name(entry)] = "present" if present else "absent"
    patient = synthetic_patient(pid, kb, items)
    value = link.measure.items[item]
    tests = [
        Observation(item, value, REVIEW_DAY - timedelta(days=7 + offsets[-1] - day), None, None, value, _SOURCE)
        for day in offsets
    ]
    return replace(patient, observations=[*patient.observations, *tests])
