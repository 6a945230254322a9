"""Dead or nearly dead rules through related quantities: eGFR, clearance and creatinine ×ULN.

The solver of `kb.review.logic` reads `egfr`, `crcl`, `obs_num creatinine` and `xuln creatinine`
as unrelated numbers, so it cannot see that AAV-E1's "eGFR < 15" and GI6.7's "clearance ≥ 60"
speak of one serum creatinine. Here every way a criterion acts (an exclusion excludes, an
inclusion fails) that bounds one of them meets the inclusions a patient it acts on must pass
(general, or general and its cohort), and `kb.review.creatinine` scans the admitted box (both
sexes, the ages the inclusions admit, the weights patients.csv accepts) with the fact base's own
derivations.

A bound the others make unreachable is a "dead rule" finding; so is one reachable only for a
patient heavier than severe obesity at a tall height (HEAVY_KG) or lighter than severe thinness
at a short one (LIGHT_KG): such a rule acts on almost nobody, and saying it is reachable would
hide that. Each finding says whether a measured clearance that disagrees with the formula reaches
it anyway, a different finding from "unreachable". A relation bounded both ways on its own
(clearance < 40 against clearance ≥ 60) is the solver's finding and is left to it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from itertools import product

import portion as P

from kb.catalogue.assumptions import AssumptionSet
from kb.catalogue.criteria import Criterion
from kb.catalogue.knowledge import KnowledgeBase
from kb.reasoning.evaluation import cohort_of
from kb.reasoning.requirements import Alternative, Requirement, alternatives
from kb.review.creatinine import (
    KG_STEP,
    MAX_AGE,
    Bound,
    Cell,
    Physics,
    Point,
    acting,
    bounds_of,
    holds_at,
    measured_for,
    physics_of,
    scan,
    uln_for,
)
from kb.review.findings import REVIEW_DAY, Case, Finding, Witness, synthetic_patient
from kb.status import Status, Truth

__all__ = ["HEAVY_KG", "LIGHT_KG", "quantity_findings"]

#: Reachable only above this weight counts as nearly dead: BMI 40 (severe obesity, WHO class III)
#: at 1.90 m is 144.4 kg, so a patient must be severely obese even at a tall height.
HEAVY_KG = Decimal("144.4")
#: Reachable only below this weight counts as nearly dead: BMI 16 (severe thinness) at 1.50 m.
LIGHT_KG = Decimal("36.0")
_MAX_COMBINATIONS = 16
_NOMINAL_KG = Decimal(70)  # the weight of the measured-clearance witness: any weight does


@dataclass(frozen=True)
class _Option:
    """One way to pass an inclusion: its member, its bounds on the family, all it requires."""

    member: Criterion
    bounds: tuple[Bound, ...]
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


def _truth(crit: Criterion, passes: bool) -> Truth:
    """The truth of the criterion's predicate that passes it (or fails it)."""
    return Truth.YES if (crit.kind == "inclusion") is passes else Truth.NO


def _passing(kb: KnowledgeBase, analysed: list[Criterion]) -> dict[str, list[_Option]]:
    out = {}
    for crit in (c for c in analysed if c.kind == "inclusion"):
        assert crit.predicate is not None
        out[crit.id] = [
            _Option(crit, tuple(bounds_of(alt, crit.id)), alt.requirements, alt.rules)
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
    bounds: list[Bound]
    cells: list[Cell]

    @property
    def rank(self) -> tuple[int, Decimal]:
        """How reachable (lower: more): a finding reports the most reachable combination."""
        if self.verdict == "heavy":
            return 0, min(c.lightest for c in self.cells if c.lightest is not None)
        if self.verdict == "light":
            return 0, -max(c.heaviest for c in self.cells if c.heaviest is not None)
        return (1 if self.verdict == "formula" else 2), Decimal(0)


def _verdict(bounds: list[Bound], phys: Physics) -> tuple[str, list[Cell]] | None:
    """None when patients of ordinary build meet every bound; else why they cannot."""
    cells = scan(bounds, phys)
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
    phys = physics_of(kb, assumptions)
    analysed = _analysed(kb, assumptions)
    passing = _passing(kb, analysed)
    findings = []
    for subject in analysed:
        assert subject.predicate is not None
        for alt in alternatives(kb.program, subject.predicate, _truth(subject, False)):
            own = bounds_of(alt, subject.id)
            if not [b for b in own if b.quantity != "age"]:
                continue
            outcome = _examine(alt, own, *_obligations(subject, analysed, passing, assumptions), phys)
            if outcome is not None:
                findings.append(_finding(kb, subject, alt, own, outcome, phys))
    return findings


def _examine(
    alt: Alternative, own: list[Bound], obligations: list[list[_Option]], single: list[Requirement], phys: Physics
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


def _listed(bounds: list[Bound]) -> str:
    return " and ".join(dict.fromkeys(b.describe() for b in bounds))


def _case(kb: KnowledgeBase, phys: Physics, outcome: _Outcome, subject: Criterion, who: Point, n: int) -> Case | None:
    """The patient with the statuses the arithmetic says the engine must give: the subject acts
    on it (None if it cannot); each inclusion passes when all its bounds hold."""
    scr = acting([b for b in outcome.bounds if b.owner == subject.id], who, phys)
    if scr is None:
        return None
    who = Point(who.cell, who.kg, scr, who.measured)
    uln = uln_for(scr, outcome.bounds, phys)
    cell = who.cell
    expected = {subject.id: Status.FAIL}
    for option in outcome.combo:
        expected[option.member.id] = Status.PASS if holds_at(option.bounds, who, uln, phys) else Status.FAIL
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


def _weights_by_sex(cells: list[Cell], light: bool) -> str:
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
    who: list[Point]
    detail: dict[str, str]


def _by_weight(outcome: _Outcome, phys: Physics, plain: str, subject: Criterion) -> _Story:
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
    step = edge + KG_STEP if light else edge - KG_STEP
    who = [Point(best, edge, scr)]
    who += [Point(best, step, scr)] if phys.weight[0] <= step <= phys.weight[1] else []
    summary = f"{_listed(_of(outcome, 'crcl'))} at creatinine {scr} µmol/L ({best.who}) only {limit}"
    return _Story(text, summary, who, {"weight_kg": str(edge), "creatinine_umol_l": str(scr), "at": best.who})


def _at_no_weight(outcome: _Outcome, phys: Physics, plain: str) -> _Story:
    """Out of the formula's reach at every admitted weight: the most favourable patient at the
    weight limit, still refused."""
    clearance = _of(outcome, "crcl")
    up = any(b.upward for b in clearance)
    kg = phys.weight[1] if up else phys.weight[0]

    def reach(c: Cell) -> Decimal:
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
    return _Story(text, summary, [Point(best, kg, scr)], {"creatinine_umol_l": str(scr), "at": best.who})


def _no_creatinine(outcome: _Outcome, own: list[Bound], phys: Physics, plain: str) -> _Story:
    """No creatinine meets the bounds together: a patient the subject acts on, refused."""
    direct = _listed(_of(outcome, "creatinine", "egfr"))
    mine = scan([*own, *_of(outcome, "age")], phys)
    text = (
        f"no creatinine in its plausible range ({phys.creatinine[0]}–{phys.creatinine[1]} µmol/L) meets {direct} "
        f"together, whatever the sex and weight, over {_ages(outcome)}: eGFR (CKD-EPI 2021) is computed from the "
        "creatinine alone, so neither a measured clearance nor the laboratory's ULN changes it. "
        f"In plain words: {plain}."
    )
    who = [Point(mine[0], _NOMINAL_KG, mine[0].low)] if mine else []
    return _Story(text, f"{direct}: no creatinine meets them together", who, {})


def _of(outcome: _Outcome, *quantities: str) -> list[Bound]:
    return [b for b in outcome.bounds if b.quantity in quantities]


def _ages(outcome: _Outcome) -> str:
    """The whole ages the age bounds admit (contiguous: each bound is one-sided)."""
    ages = [a for a in range(MAX_AGE + 1) if all(b.holds(Decimal(a)) for b in _of(outcome, "age"))]
    return f"the ages {ages[0]}–{ages[-1]}" if ages else "no age"


def _finding(
    kb: KnowledgeBase, subject: Criterion, alt: Alternative, own: list[Bound], outcome: _Outcome, phys: Physics
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
    measured = measured_for(outcome.bounds, phys) if outcome.verdict != "unreachable" else None
    if measured is not None and story.who:
        first = story.who[0]
        story.who.append(Point(first.cell, _NOMINAL_KG, first.scr, measured))
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
