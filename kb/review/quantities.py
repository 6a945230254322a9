"""Dead or nearly dead rules through related quantities: eGFR, clearance and creatinine ×ULN.

The solver of `kb.review.logic` sees `egfr`, `crcl`, `obs_num creatinine` and `xuln creatinine`
as unrelated numbers, so it cannot see that AAV-E1's "eGFR < 15" and GI6.7's "clearance ≥ 60"
are about one serum creatinine. The fact base computes all of them from the selected creatinine
result (with the age at enrolment, the sex and, for Cockcroft–Gault, the weight), and each is
monotone in it: for a fixed (sex, age, weight) a bound on any of them is a bound on creatinine.
This module finds that bound by bisection through the very functions the fact base calls
(`kb.derived`), never a re-derived formula, and scans the admitted box: both sexes, every whole
age the inclusions admit, every weight patients.csv accepts (bisection again: the clearance rises
with weight). What a record may supply freely stays free: a measured clearance wins over the
formula, and a laboratory's own ULN may be anything in the creatinine's plausible range.

A bound the others make unreachable is a "dead rule" finding; so is one reachable only for a
patient heavier than severe obesity at a tall height (HEAVY_KG) or lighter than severe thinness
at a short one (LIGHT_KG): such a rule acts on almost nobody. Each finding says whether a measured
clearance that disagrees with the formula would reach it anyway, which is a different finding
from "unreachable". Pairs on one relation (clearance < 40 against clearance ≥ 60) are the
solver's and are left to it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from decimal import ROUND_FLOOR, Decimal
from itertools import product

import portion as P

from kb.assumptions import AssumptionSet
from kb.criteria import Criterion
from kb.derived import ckd_epi_2021, cockcroft_gault, cockcroft_gault_si, times_uln
from kb.evaluation import cohort_of
from kb.knowledge import KnowledgeBase
from kb.patients import WEIGHT_RANGE_KG
from kb.requirements import Alternative, Requirement, alternatives
from kb.review.findings import REVIEW_DAY, Case, Finding, Witness, synthetic_patient

__all__ = ["HEAVY_KG", "LIGHT_KG", "quantity_findings"]

#: Reachable only above this weight counts as nearly dead: BMI 40 (severe obesity, WHO class III)
#: at 1.90 m is 144.4 kg, so a patient must be severely obese even at a tall height.
HEAVY_KG = Decimal("144.4")
#: Reachable only below this weight counts as nearly dead: BMI 16 (severe thinness) at 1.50 m.
LIGHT_KG = Decimal("36.0")
_SCR_STEP = Decimal("0.01")  # µmol/L: finer than any report, so "unreachable" holds for real values
_KG_STEP = Decimal("0.1")
_MAX_AGE = 120
_MAX_COMBINATIONS = 16
_NOMINAL_KG = Decimal(70)  # the weight of the measured-clearance witness: any weight does
_QUANTITY = {
    ("obs_num", "creatinine"): "creatinine",
    ("egfr", "egfr"): "egfr",
    ("crcl", "crcl"): "crcl",
    ("xuln", "creatinine"): "xuln",
    ("age_at", "enrolment"): "age",
}
_NAMES = {"creatinine": "creatinine", "egfr": "eGFR", "crcl": "clearance", "xuln": "creatinine", "age": "age"}
_UNITS = {"creatinine": " µmol/L", "egfr": " mL/min/1.73 m²", "crcl": " mL/min", "xuln": " × ULN", "age": ""}
_SYMBOL = {">=": "≥", "<=": "≤"}


@dataclass(frozen=True)
class _Bound:
    """One bound of one criterion on a quantity of the creatinine family (or the age)."""

    quantity: str
    op: str  # < <= > >=
    value: Decimal
    owner: str

    def holds(self, actual: Decimal) -> bool:
        return Requirement("", "", self.op, self.value).holds(actual)

    def describe(self) -> str:
        return f"{_NAMES[self.quantity]} {_SYMBOL.get(self.op, self.op)} {self.value}{_UNITS[self.quantity]}"

    @property
    def upward(self) -> bool:
        """Whether it holds for high values of its quantity."""
        return self.op in (">", ">=")


def _bounds(alt: Alternative, owner: str) -> list[_Bound]:
    out = []
    for req in alt.requirements:
        quantity = _QUANTITY.get((req.relation, req.item))
        if quantity is None or not isinstance(req.value, Decimal):
            continue  # what is not read stays free: the analysis can only find less
        ops = (">=", "<=") if req.op == "=" else (req.op,) if req.op != "!=" else ()
        out += [_Bound(quantity, op, req.value, owner) for op in ops]
    return out


@dataclass(frozen=True)
class _Physics:
    """The fact base's derivations and the ranges a record may hold."""

    factor: Decimal  # µmol/L per mg/dL
    formula: str
    measured_only: bool
    creatinine: tuple[Decimal, Decimal]
    measured: tuple[Decimal, Decimal]
    weight: tuple[Decimal, Decimal]

    def egfr(self, age: int, scr: Decimal, female: bool) -> Decimal:
        return ckd_epi_2021(Decimal(age), scr, female, self.factor).value

    def crcl(self, age: int, kg: Decimal, scr: Decimal, female: bool) -> Decimal:
        if self.formula == "cockcroft_gault_si":
            return cockcroft_gault_si(Decimal(age), kg, scr, female).value
        return cockcroft_gault(Decimal(age), kg, scr, female, self.factor).value

    def scr(self, n: int) -> Decimal:
        return self.creatinine[0] + n * _SCR_STEP

    def kg(self, n: int) -> Decimal:
        return self.weight[0] + n * _KG_STEP

    def value(
        self, bound: _Bound, age: int, female: bool, kg: Decimal, scr: Decimal, measured: Decimal | None
    ) -> Decimal:
        if bound.quantity == "egfr":
            return self.egfr(age, scr, female)
        if bound.quantity == "crcl":
            return measured if measured is not None else self.crcl(age, kg, scr, female)
        return Decimal(age) if bound.quantity == "age" else scr


def _physics(kb: KnowledgeBase, assumptions: AssumptionSet) -> _Physics:
    items = kb.vocabulary.items
    scr, measured = items["creatinine"], items["crcl_measured"]
    return _Physics(
        scr.molar_factor or Decimal("88.4"),
        str(assumptions["crcl_formula"]),
        assumptions["crcl_method"] == "measured_only",
        (scr.minimum or Decimal(10), scr.maximum or Decimal(3000)),
        (measured.minimum or Decimal(0), measured.maximum or Decimal(400)),
        (Decimal(WEIGHT_RANGE_KG[0]), Decimal(WEIGHT_RANGE_KG[1])),
    )


def _edge(lo: int, hi: int, holds: Callable[[int], bool], rising: bool, guess: int | None = None) -> int | None:
    """The first n in [lo, hi] where a monotone `holds` is true (`rising`: false, then true), or
    the last (true, then false); None if there is none. From a guess, it gallops outwards."""
    if lo > hi:
        return None
    if not rising:  # the last true is one before the first false

        def fails(n: int) -> bool:
            return not holds(n)

        found = _edge(lo, hi, fails, True, guess)
        return hi if found is None else None if found == lo else found - 1
    if guess is None or not lo <= guess <= hi:
        false, true = lo - 1, hi
        if not holds(hi):
            return None
    elif holds(guess):
        false, true, step = guess, guess, 1
        while false == true:
            probe = true - step
            if probe < lo:
                false = lo - 1
            elif holds(probe):
                true, false, step = probe, probe, step * 2
            else:
                false = probe
    else:
        false, true, step = guess, guess, 1
        while false == true:
            probe = false + step
            if probe > hi:
                if not holds(hi):
                    return None
                true = hi
            elif holds(probe):
                true = probe
            else:
                false, true, step = probe, probe, step * 2
    while true - false > 1:  # holds(false) is false (or false is lo - 1), holds(true) is true
        mid = (false + true) // 2
        false, true = (false, mid) if holds(mid) else (mid, true)
    return true


@dataclass(frozen=True)
class _Cell:
    """One (sex, age): the creatinine range the creatinine-only bounds leave, and the weights at
    which the formula's clearance meets the clearance bounds there (None: at no weight)."""

    female: bool
    age: int
    low: Decimal
    high: Decimal
    lightest: Decimal | None
    heaviest: Decimal | None

    @property
    def who(self) -> str:
        return f"{'a woman' if self.female else 'a man'} of {self.age}"


def _scan(bounds: list[_Bound], phys: _Physics) -> list[_Cell]:
    """Every (sex, age) the age bounds admit whose creatinine-only bounds some creatinine meets."""
    ages = [a for a in range(_MAX_AGE + 1) if all(b.holds(Decimal(a)) for b in bounds if b.quantity == "age")]
    direct = [b for b in bounds if b.quantity in ("creatinine", "egfr")]
    clearance = [] if phys.measured_only else [b for b in bounds if b.quantity == "crcl"]
    cells = []
    for female in (True, False):
        seen: list[list[int | None]] = [[] for _ in direct]  # each bound's edge at the ages before
        for age in ages:
            guesses = [
                2 * e[-1] - e[-2] if len(e) > 1 and e[-1] is not None and e[-2] is not None else None for e in seen
            ]
            cell, edges = _cell(direct, clearance, female, age, phys, guesses)
            for edge, history in zip(edges, seen, strict=True):
                history.append(edge)
            if cell is not None:
                cells.append(cell)
    return cells


def _cell(
    direct: list[_Bound], clearance: list[_Bound], female: bool, age: int, phys: _Physics, guesses: list[int | None]
) -> tuple[_Cell | None, list[int | None]]:
    """The cell, and where each creatinine-only bound's edge fell (the next age's guesses: the
    edges move smoothly with age, so a guess saves most of the eGFR evaluations)."""
    first, last = 0, int((phys.creatinine[1] - phys.creatinine[0]) / _SCR_STEP)
    edges: list[int | None] = [None] * len(direct)
    for n, b in enumerate(direct):

        def holds(n: int, b: _Bound = b) -> bool:
            return b.holds(phys.value(b, age, female, Decimal(0), phys.scr(n), None))

        # creatinine rises with n, eGFR falls: the bound holds for high creatinine or for low
        rising = b.upward if b.quantity == "creatinine" else not b.upward
        found = edges[n] = _edge(first, last, holds, rising, guesses[n])
        if found is None:
            return None, edges
        first, last = (found, last) if rising else (first, found)
    low, high = phys.scr(first), phys.scr(last)

    def meets(n: int, scr: Decimal, up: bool) -> bool:
        return all(b.holds(phys.crcl(age, phys.kg(n), scr, female)) for b in clearance if b.upward is up)

    # the clearance rises with weight and falls with creatinine: a lower bound is best met at the
    # lowest creatinine, an upper one at the highest
    top = int((phys.weight[1] - phys.weight[0]) / _KG_STEP)
    light = _edge(0, top, lambda n: meets(n, low, True), True)
    heavy = _edge(0, top, lambda n: meets(n, high, False), False)
    if light is None or heavy is None or light > heavy:
        return _Cell(female, age, low, high, None, None), edges
    return _Cell(female, age, low, high, phys.kg(light), phys.kg(heavy)), edges


def _uln(scr: Decimal, bounds: list[_Bound], phys: _Physics) -> Decimal | None:
    """A laboratory ULN (whole µmol/L where one does) meeting every ×ULN bound at `scr`."""
    ratios = [b for b in bounds if b.quantity == "xuln"]
    if not ratios or any(b.value <= 0 for b in ratios):
        return None
    lo = max([scr / b.value for b in ratios if not b.upward], default=scr / 1000)
    hi = min([scr / b.value for b in ratios if b.upward], default=phys.creatinine[1])
    for candidate in (lo.to_integral_value(ROUND_FLOOR) + 1, ((lo + hi) / 2).quantize(Decimal("0.01")), hi):
        plausible = 0 < candidate <= phys.creatinine[1] and scr <= candidate * 1000
        if plausible and all(b.holds(times_uln("creatinine", scr, candidate, "").value) for b in ratios):
            return candidate
    return None


def _measured(bounds: list[_Bound], phys: _Physics) -> Decimal | None:
    """A measured clearance meeting every clearance bound, in the plausible range."""
    interval = P.closed(*phys.measured)
    for b in (b for b in bounds if b.quantity == "crcl"):
        interval &= {">=": P.closed(b.value, P.inf), ">": P.open(b.value, P.inf)}.get(
            b.op, P.closed(-P.inf, b.value) if b.op == "<=" else P.open(-P.inf, b.value)
        )
    if interval.empty:
        return None
    first = interval[0]
    if first.left == P.CLOSED:
        return Decimal(first.lower)
    return Decimal(first.lower) + 1 if first.upper - first.lower > 1 else (Decimal(first.lower) + first.upper) / 2


@dataclass(frozen=True)
class _Option:
    """One way to pass an inclusion: its member, its bounds on the family, all it requires."""

    member: Criterion
    bounds: tuple[_Bound, ...]
    requirements: tuple[Requirement, ...]
    rules: tuple[str, ...]


def _analysed(kb: KnowledgeBase, assumptions: AssumptionSet) -> list[Criterion]:
    return [
        c
        for c in kb.criteria
        if c.counted
        and c.predicate is not None
        and c.kind in ("inclusion", "exclusion")
        and not (c.manual_unless and assumptions[c.manual_unless] == "none")
    ]


def _truth(crit: Criterion, passes: bool) -> str:
    """The truth of the criterion's predicate that passes it (or fails it)."""
    return "yes" if (crit.kind == "inclusion") is passes else "no"


def _passing(kb: KnowledgeBase, analysed: list[Criterion]) -> dict[str, list[_Option]]:
    out = {}
    for crit in (c for c in analysed if c.kind == "inclusion"):
        assert crit.predicate is not None
        out[crit.id] = [
            _Option(crit, tuple(_bounds(alt, crit.id)), alt.requirements, alt.rules)
            for alt in alternatives(kb.program, crit.predicate, _truth(crit, True))
        ]
    return out


def _obligations(
    subject: Criterion, analysed: list[Criterion], passing: dict[str, list[_Option]], assumptions: AssumptionSet
) -> tuple[list[list[_Option]], list[Requirement]]:
    """The ways to pass each inclusion (an OR-group as one) a patient the subject can act on must
    pass: those in its scope (general, or general and its cohort), but not its own group. One
    with a way to pass that bounds none of the family constrains nothing here and is left out;
    the requirements of those with a single way to pass are returned too, for the check that
    the solver does not already see the subject dead on one relation."""
    owner = cohort_of(subject, assumptions)
    groups: dict[str, list[_Option]] = {}
    for crit in analysed:
        if crit.kind == "inclusion" and cohort_of(crit, assumptions) in ("general", owner):
            name = crit.group or crit.id
            if name != (subject.group or subject.id):
                groups.setdefault(name, []).extend(passing[crit.id])
    family = [options for options in groups.values() if options and all(o.bounds for o in options)]
    single = [r for options in groups.values() if len(options) == 1 for r in options[0].requirements]
    return family, single


def _interval(op: str, value: Decimal) -> P.Interval:
    return {
        ">=": P.closed(value, P.inf),
        ">": P.open(value, P.inf),
        "<=": P.closed(-P.inf, value),
        "<": P.open(-P.inf, value),
        "=": P.singleton(value),
    }.get(op, P.open(-P.inf, P.inf))


def _one_relation_conflict(requirements: list[Requirement]) -> bool:
    """Whether one relation alone is bounded both ways (clearance < 40 against ≥ 60): what the
    solver of kb.review.logic, reading each relation as its own number, already reports."""
    numeric: dict[tuple[str, str], P.Interval] = {}
    equal: dict[tuple[str, str], set[str]] = {}
    for r in requirements:
        key = (r.relation, r.item)
        if r.relation == "reviewed":
            continue
        if isinstance(r.value, Decimal):
            numeric[key] = numeric.get(key, P.closed(0, P.inf)) & _interval(r.op, r.value)
        elif r.op == "=":
            equal.setdefault(key, set()).add(str(r.value))
    return any(i.empty for i in numeric.values()) or any(len(v) > 1 for v in equal.values())


@dataclass(frozen=True)
class _Outcome:
    verdict: str  # unreachable | formula (at no weight) | heavy | light
    combo: tuple[_Option, ...]
    bounds: list[_Bound]
    cells: list[_Cell]

    @property
    def rank(self) -> tuple[int, Decimal]:
        """How reachable (lower: more): a finding reports the most reachable combination."""
        if self.verdict == "heavy":
            return 0, min(c.lightest for c in self.cells if c.lightest is not None)
        if self.verdict == "light":
            return 0, -max(c.heaviest for c in self.cells if c.heaviest is not None)
        return (1 if self.verdict == "formula" else 2), Decimal(0)


def _verdict(bounds: list[_Bound], phys: _Physics) -> tuple[str, list[_Cell]] | None:
    """None when patients of ordinary build meet every bound; else why they cannot."""
    cells = _scan(bounds, phys)
    if not cells:
        return "unreachable", cells
    if phys.measured_only or not any(b.quantity == "crcl" for b in bounds):
        return None  # nothing ties the clearance to the creatinine
    weights = [c for c in cells if c.lightest is not None and c.heaviest is not None]
    if not weights:
        return "formula", cells
    if min(c.lightest for c in weights if c.lightest is not None) > HEAVY_KG:
        return "heavy", weights
    if max(c.heaviest for c in weights if c.heaviest is not None) < LIGHT_KG:
        return "light", weights
    return None


def quantity_findings(kb: KnowledgeBase, assumptions: AssumptionSet) -> list[Finding]:
    """Every way of failing a criterion (an exclusion's exclusion, an inclusion's failure) that
    bounds a quantity of the creatinine family, against the inclusions a patient it acts on must
    pass: a "dead rule" finding where no patient, or only an extreme one, meets them together."""
    phys = _physics(kb, assumptions)
    analysed = _analysed(kb, assumptions)
    passing = _passing(kb, analysed)
    findings = []
    for subject in analysed:
        assert subject.predicate is not None
        for alt in alternatives(kb.program, subject.predicate, _truth(subject, False)):
            own = _bounds(alt, subject.id)
            if not [b for b in own if b.quantity != "age"]:
                continue
            outcome = _examine(alt, own, *_obligations(subject, analysed, passing, assumptions), phys)
            if outcome is not None:
                findings.append(_finding(kb, subject, alt, own, outcome, phys))
    return findings


def _examine(
    alt: Alternative, own: list[_Bound], obligations: list[list[_Option]], single: list[Requirement], phys: _Physics
) -> _Outcome | None:
    """The verdict on the most reachable combination of ways to pass (None: ordinary patients
    reach one, or the solver already reports it)."""
    found = []
    for n, combo in enumerate(product(*obligations)):
        if n == _MAX_COMBINATIONS:
            return None  # not every way was examined: no claim
        if _one_relation_conflict([*alt.requirements, *single, *(r for o in combo for r in o.requirements)]):
            continue  # the solver's finding
        bounds = [*own, *(b for o in combo for b in o.bounds)]
        if not any(b.quantity in ("egfr", "crcl") for b in bounds):
            return None  # creatinine and its ×ULN with a free ULN: nothing couples them
        verdict = _verdict(bounds, phys)
        if verdict is None:
            return None
        found.append(_Outcome(verdict[0], combo, bounds, verdict[1]))
    return min(found, key=lambda o: o.rank) if found else None


def _text(crit: Criterion) -> str:
    return f"{crit.id} (“{crit.record_text or crit.text}”)"


def _listed(bounds: list[_Bound]) -> str:
    return " and ".join(dict.fromkeys(b.describe() for b in bounds))


@dataclass(frozen=True)
class _Patient:
    """A constructed patient of one cell: weight, creatinine, and a measured clearance if any."""

    cell: _Cell
    kg: Decimal
    scr: Decimal
    measured: Decimal | None = None


def _case(
    kb: KnowledgeBase, phys: _Physics, outcome: _Outcome, subject: Criterion, who: _Patient, n: int
) -> Case | None:
    """The patient with the statuses the arithmetic says the engine must give: the subject acts
    on it; each inclusion passes when all its bounds hold (None if the subject does not act)."""
    uln = _uln(who.scr, outcome.bounds, phys)
    cell = who.cell

    def holds(bounds: list[_Bound] | tuple[_Bound, ...]) -> bool:
        for b in bounds:
            if b.quantity == "xuln":
                if uln is None or not b.holds(times_uln("creatinine", who.scr, uln, "").value):
                    return False
            elif not b.holds(phys.value(b, cell.age, cell.female, who.kg, who.scr, who.measured)):
                return False
        return True

    if not holds([b for b in outcome.bounds if b.owner == subject.id]):
        return None
    expected = {subject.id: "fail"}
    for option in outcome.combo:
        expected[option.member.id] = "pass" if holds(option.bounds) else "fail"
    values: dict[str, Decimal | str] = {"creatinine": who.scr}
    if who.measured is not None:
        values["crcl_measured"] = who.measured
    patient = synthetic_patient(
        f"W-{subject.id}-{n}",
        kb,
        values,
        uln={"creatinine": uln} if uln is not None else None,
        birth_date=date(REVIEW_DAY.year - cell.age, REVIEW_DAY.month, REVIEW_DAY.day),
        weight_kg=who.kg,
        sex="female" if cell.female else "male",
    )
    shown = [f"{cell.who}, {who.kg} kg, creatinine {who.scr} µmol/L"]
    shown += [f"ULN {uln} µmol/L"] if uln is not None else []
    shown += [f"eGFR {phys.egfr(cell.age, who.scr, cell.female)}"]
    formula = phys.crcl(cell.age, who.kg, who.scr, cell.female)
    if who.measured is not None:
        shown += [f"measured clearance {who.measured} mL/min (Cockcroft–Gault gives {formula})"]
    else:
        shown += [f"Cockcroft–Gault clearance {formula} mL/min"]
    return Case(patient, expected, ", ".join(shown))


def _weights_by_sex(cells: list[_Cell], light: bool) -> str:
    parts = []
    for female, name in ((True, "women"), (False, "men")):
        own = [c.heaviest if light else c.lightest for c in cells if c.female is female]
        edges = [e for e in own if e is not None]
        if not edges:
            parts.append(f"{name} never")
        else:
            parts.append(f"{name} up to {max(edges)} kg" if light else f"{name} from {min(edges)} kg")
    return ", ".join(parts)


@dataclass
class _Story:
    """What a finding says, and the patients that show it."""

    text: str
    summary: str
    who: list[_Patient]
    detail: dict[str, str]


def _by_weight(outcome: _Outcome, phys: _Physics, plain: str, subject: Criterion) -> _Story:
    """Reachable only for a patient heavier than HEAVY_KG (or lighter than LIGHT_KG): the lightest
    (heaviest) such patient, and one a step past it whom the inclusions refuse."""
    light = outcome.verdict == "light"
    edges = [(c.heaviest if light else c.lightest, c) for c in outcome.cells]
    edge, best = (max if light else min)(((e, c) for e, c in edges if e is not None), key=lambda pair: pair[0])
    scr = best.high if light else best.low
    limit = f"up to {edge} kg" if light else f"from {edge} kg"
    direct = _listed([b for b in outcome.bounds if b.quantity in ("creatinine", "egfr")]) or "the plausible range"
    extreme = (
        f"lighter than {LIGHT_KG} kg (BMI 16 at 1.50 m)" if light else f"heavier than {HEAVY_KG} kg (BMI 40 at 1.90 m)"
    )
    text = (
        f"it can act only on a patient who weighs {'at most' if light else 'at least'} {edge} kg. eGFR (CKD-EPI "
        "2021), the Cockcroft–Gault clearance and creatinine × ULN are all computed from one serum creatinine, "
        f"and eGFR and the clearance both fall as it rises: over {_ages(outcome)}, both sexes and the weights "
        f"patients.csv accepts ({phys.weight[0]}–{phys.weight[1]} kg), the {'highest' if light else 'lowest'} "
        f"creatinine that {direct} allows is {scr} µmol/L for {best.who} (the most favourable), where "
        f"{_listed(_of(outcome, 'crcl'))} holds only {limit} ({_weights_by_sex(outcome.cells, light)}). "
        f"In plain words: {plain} unless {extreme}, so {subject.id} acts on almost nobody."
    )
    step = edge + _KG_STEP if light else edge - _KG_STEP
    who = [_Patient(best, edge, scr)]
    who += [_Patient(best, step, scr)] if phys.weight[0] <= step <= phys.weight[1] else []
    summary = f"{_listed(_of(outcome, 'crcl'))} at creatinine {scr} µmol/L ({best.who}) only {limit}"
    return _Story(text, summary, who, {"weight_kg": str(edge), "creatinine_umol_l": str(scr), "at": best.who})


def _at_no_weight(outcome: _Outcome, phys: _Physics, plain: str) -> _Story:
    """Out of the formula's reach at every admitted weight: the most favourable patient at the
    weight limit, still refused."""
    clearance = _of(outcome, "crcl")
    up = any(b.upward for b in clearance)
    kg = phys.weight[1] if up else phys.weight[0]

    def reach(c: _Cell) -> Decimal:
        value = phys.crcl(c.age, kg, c.low if up else c.high, c.female)
        return value if up else -value

    best = max(outcome.cells, key=reach)
    scr = best.low if up else best.high
    text = (
        f"no clearance by the formula allows it at any weight patients.csv accepts ({phys.weight[0]}–"
        f"{phys.weight[1]} kg): over {_ages(outcome)} and both sexes, at the {'lowest' if up else 'highest'} "
        f"creatinine that {_listed(_of(outcome, 'creatinine', 'egfr'))} allows ({scr} µmol/L for {best.who}, the "
        f"most favourable) even {kg} kg gives a Cockcroft–Gault clearance of "
        f"{phys.crcl(best.age, kg, scr, best.female)} mL/min, against {_listed(clearance)}. In plain words: {plain}."
    )
    summary = f"{_listed(clearance)} out of Cockcroft–Gault's reach at {_listed(_of(outcome, 'creatinine', 'egfr'))}"
    return _Story(text, summary, [_Patient(best, kg, scr)], {"creatinine_umol_l": str(scr), "at": best.who})


def _no_creatinine(outcome: _Outcome, own: list[_Bound], phys: _Physics, plain: str) -> _Story:
    """No creatinine meets the bounds together: a patient the subject acts on, refused."""
    direct = _listed(_of(outcome, "creatinine", "egfr"))
    mine = _scan([*own, *_of(outcome, "age")], phys)
    text = (
        f"no creatinine in its plausible range ({phys.creatinine[0]}–{phys.creatinine[1]} µmol/L) meets {direct} "
        "together, whatever the age, sex and weight: eGFR (CKD-EPI 2021) is computed from the creatinine alone, so "
        f"neither a measured clearance nor the laboratory's ULN changes it. In plain words: {plain}."
    )
    who = [_Patient(mine[0], _NOMINAL_KG, mine[0].low)] if mine else []
    return _Story(text, f"{direct}: no creatinine meets them together", who, {})


def _of(outcome: _Outcome, *quantities: str) -> list[_Bound]:
    return [b for b in outcome.bounds if b.quantity in quantities]


def _ages(outcome: _Outcome) -> str:
    ages = sorted({c.age for c in outcome.cells})
    return f"the ages {ages[0]}–{ages[-1]}" if ages else "every age"


def _finding(
    kb: KnowledgeBase, subject: Criterion, alt: Alternative, own: list[_Bound], outcome: _Outcome, phys: _Physics
) -> Finding:
    act, acts = ("exclude", "excludes") if subject.kind == "exclusion" else ("fail", "fails")
    shown = sorted(outcome.combo, key=lambda o: all(b.quantity == "age" for b in o.bounds))  # the ages last
    others = "; ".join(f"{_text(o.member)}, which needs {_listed(list(o.bounds))}" for o in shown)
    blockers = [o.member.id for o in shown if any(b.quantity != "age" for b in o.bounds)]
    plain = f"whoever {subject.id} would {act} already fails {', '.join(blockers)}" if blockers else "it never acts"
    if outcome.verdict in ("heavy", "light"):
        story = _by_weight(outcome, phys, plain, subject)
    elif outcome.verdict == "formula":
        story = _at_no_weight(outcome, phys, plain)
    else:
        story = _no_creatinine(outcome, own, phys, plain)
    text = f"{_text(subject)} {acts} a patient when {_listed(own)}"
    text += f"; among patients who meet {others}, {story.text}" if others else f": {story.text}"
    detail = {"verdict": outcome.verdict, **story.detail}
    measured = _measured(outcome.bounds, phys) if outcome.verdict != "unreachable" else None
    if measured is not None and story.who:
        first = story.who[0]
        story.who.append(_Patient(first.cell, _NOMINAL_KG, first.scr, measured))
        formula = phys.crcl(first.cell.age, _NOMINAL_KG, first.scr, first.cell.female)
        text += (
            f" A measured 24-hour clearance wins over the formula: with one of {measured} mL/min (where the formula "
            f"gives {formula} mL/min for {first.cell.who} of {_NOMINAL_KG} kg at that creatinine), {subject.id} "
            f"{acts} at any weight, so the rule is reachable only through a measured clearance that disagrees with "
            "the formula."
        )
        detail["measured_clearance"] = f"{measured} mL/min reaches it"
    elif outcome.verdict != "unreachable":
        detail["measured_clearance"] = "none within its plausible range reaches it"
    below = (
        [story.who[0].scr / b.value for b in _of(outcome, "xuln") if not b.upward and b.value > 0] if story.who else []
    )
    if below:
        text += (
            f" At creatinine {story.who[0].scr} µmol/L, {_listed(_of(outcome, 'xuln'))} also needs the laboratory's "
            f"ULN above {max(below).quantize(Decimal('0.1'))} µmol/L."
        )
    cases = [c for n, w in enumerate(story.who) if (c := _case(kb, phys, outcome, subject, w, n)) is not None]
    ids = [subject.id, *blockers, *(o.member.id for o in shown if o.member.id not in blockers)]
    rules = tuple(dict.fromkeys([*alt.rules, *(r for o in outcome.combo for r in o.rules)]))
    witness = Witness("patient", story.summary, tuple(cases), detail=detail)
    return Finding("dead rule", tuple(dict.fromkeys(ids)), text, witness, rules)
