"""The creatinine family's arithmetic for the protocol review: bounds as creatinine ranges.

eGFR (CKD-EPI 2021), the Cockcroft–Gault clearance and creatinine × ULN are computed by the fact
base from one selected serum creatinine, with the age at enrolment, the sex and (Cockcroft–Gault)
the weight. Each falls or rises monotonically with the creatinine, and the clearance rises with
the weight, so for one (sex, age) a bound on any of them is a creatinine range, and a clearance
bound at that range's edge is a weight range. Both are found here by bisection through the very
functions the fact base calls (`kb.catalogue.derived`), never a re-derived formula: what this module says
is reachable, the engine computes the same way. What a record may supply freely stays free: a
measured clearance wins over the formula, and a laboratory's ULN may be any plausible value.
"""

from __future__ import annotations

import operator
from collections.abc import Callable
from dataclasses import dataclass
from decimal import ROUND_FLOOR, Decimal

from kb.catalogue.assumptions import AssumptionSet
from kb.catalogue.derived import ckd_epi_2021, cockcroft_gault, cockcroft_gault_si, times_uln
from kb.catalogue.knowledge import KnowledgeBase
from kb.reasoning.requirements import Alternative, Requirement, inside
from kb.records.patients import WEIGHT_RANGE_KG

__all__ = [
    "KG_STEP",
    "MAX_AGE",
    "QUANTITY",
    "SCR_STEP",
    "Bound",
    "Cell",
    "Physics",
    "Point",
    "acting",
    "bounds_of",
    "edge",
    "holds_at",
    "measured_for",
    "physics_of",
    "scan",
    "uln_for",
]

SCR_STEP = Decimal("0.01")  # µmol/L: finer than any report, so "unreachable" holds for real values
KG_STEP = Decimal("0.1")
MAX_AGE = 120
QUANTITY = {
    ("obs_num", "creatinine"): "creatinine",
    ("egfr", "egfr"): "egfr",
    ("crcl", "crcl"): "crcl",
    ("xuln", "creatinine"): "xuln",
    ("age_at", "enrolment"): "age",
}
_NAMES = {"creatinine": "creatinine", "egfr": "eGFR", "crcl": "clearance", "xuln": "creatinine", "age": "age"}
_UNITS = {"creatinine": " µmol/L", "egfr": " mL/min/1.73 m²", "crcl": " mL/min", "xuln": " × ULN", "age": ""}
_SYMBOL = {">=": "≥", "<=": "≤"}
_COMPARE = {"<": operator.lt, "<=": operator.le, ">": operator.gt, ">=": operator.ge}


@dataclass(frozen=True)
class Bound:
    """One bound of one criterion on a quantity of the creatinine family (or the age)."""

    quantity: str
    op: str  # < <= > >=
    value: Decimal
    owner: str

    def holds(self, actual: Decimal) -> bool:
        return bool(_COMPARE[self.op](actual, self.value))

    def describe(self) -> str:
        return f"{_NAMES[self.quantity]} {_SYMBOL.get(self.op, self.op)} {self.value}{_UNITS[self.quantity]}"

    @property
    def upward(self) -> bool:
        """Whether it holds for high values of its quantity."""
        return self.op in (">", ">=")


def bounds_of(alt: Alternative, owner: str) -> list[Bound]:
    """The alternative's requirements on the family and the age at enrolment, as one-sided
    bounds (an equality is two); every other requirement is left out."""
    out = []
    for req in alt.requirements:
        quantity = QUANTITY.get((req.relation, req.item))
        if quantity is None or not isinstance(req.value, Decimal):
            continue  # what is not read stays free: the analysis can only find less
        ops = (">=", "<=") if req.op == "=" else (req.op,) if req.op != "!=" else ()
        out += [Bound(quantity, op, req.value, owner) for op in ops]
    return out


@dataclass(frozen=True)
class Physics:
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
        return self.creatinine[0] + n * SCR_STEP

    def kg(self, n: int) -> Decimal:
        return self.weight[0] + n * KG_STEP

    def value(
        self, bound: Bound, age: int, female: bool, kg: Decimal, scr: Decimal, measured: Decimal | None
    ) -> Decimal:
        if bound.quantity == "egfr":
            return self.egfr(age, scr, female)
        if bound.quantity == "crcl":
            return measured if measured is not None else self.crcl(age, kg, scr, female)
        return Decimal(age) if bound.quantity == "age" else scr


def physics_of(kb: KnowledgeBase, assumptions: AssumptionSet) -> Physics:
    items = kb.vocabulary.items
    scr, measured = items["creatinine"], items["crcl_measured"]
    return Physics(
        scr.molar_factor or Decimal("88.4"),
        str(assumptions["crcl_formula"]),
        assumptions["crcl_method"] == "measured_only",
        (scr.minimum or Decimal(10), scr.maximum or Decimal(3000)),
        (measured.minimum or Decimal(0), measured.maximum or Decimal(400)),
        (Decimal(WEIGHT_RANGE_KG[0]), Decimal(WEIGHT_RANGE_KG[1])),
    )


def edge(lo: int, hi: int, holds: Callable[[int], bool], rising: bool, guess: int | None = None) -> int | None:
    """The first n in [lo, hi] where a monotone `holds` is true (`rising`: false, then true), or
    the last (true, then false); None if there is none. From a guess, it gallops outwards."""
    if lo > hi:
        return None
    if not rising:  # the last true is one before the first false

        def fails(n: int) -> bool:
            return not holds(n)

        found = edge(lo, hi, fails, True, guess)
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
class Cell:
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


def scan(bounds: list[Bound], phys: Physics) -> list[Cell]:
    """Every (sex, age) the age bounds admit whose creatinine-only bounds some creatinine meets."""
    ages = [a for a in range(MAX_AGE + 1) if all(b.holds(Decimal(a)) for b in bounds if b.quantity == "age")]
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
    direct: list[Bound], clearance: list[Bound], female: bool, age: int, phys: Physics, guesses: list[int | None]
) -> tuple[Cell | None, list[int | None]]:
    """The cell, and where each creatinine-only bound's edge fell (the next age's guesses: the
    edges move smoothly with age, so a guess saves most of the eGFR evaluations)."""
    first, last = 0, int((phys.creatinine[1] - phys.creatinine[0]) / SCR_STEP)
    edges: list[int | None] = [None] * len(direct)
    for i, b in enumerate(direct):

        def holds(n: int, b: Bound = b) -> bool:
            return b.holds(phys.value(b, age, female, Decimal(0), phys.scr(n), None))

        # creatinine rises with n, eGFR falls: the bound holds for high creatinine or for low
        rising = b.upward if b.quantity == "creatinine" else not b.upward
        found = edges[i] = edge(first, last, holds, rising, guesses[i])
        if found is None:
            return None, edges
        first, last = (found, last) if rising else (first, found)
    low, high = phys.scr(first), phys.scr(last)

    def meets(n: int, scr: Decimal, up: bool) -> bool:
        return all(b.holds(phys.crcl(age, phys.kg(n), scr, female)) for b in clearance if b.upward is up)

    # the clearance rises with weight and falls with creatinine: a lower bound is best met at the
    # lowest creatinine, an upper one at the highest
    top = int((phys.weight[1] - phys.weight[0]) / KG_STEP)
    light = edge(0, top, lambda n: meets(n, low, True), True)
    heavy = edge(0, top, lambda n: meets(n, high, False), False)
    if light is None or heavy is None or light > heavy:
        return Cell(female, age, low, high, None, None), edges
    return Cell(female, age, low, high, phys.kg(light), phys.kg(heavy)), edges


def uln_for(scr: Decimal, bounds: list[Bound], phys: Physics) -> Decimal | None:
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


def measured_for(bounds: list[Bound], phys: Physics) -> Decimal | None:
    """A measured clearance meeting every clearance bound, next to the bound (60 for ≥ 60, 24
    for < 25), in the plausible range; None if there is none."""
    clearance = [b for b in bounds if b.quantity == "crcl"]
    if not clearance:
        return None
    value = inside([Requirement("crcl", "crcl", b.op, b.value) for b in clearance])
    low, high = phys.measured
    return value if low <= value <= high and all(b.holds(value) for b in clearance) else None


@dataclass(frozen=True)
class Point:
    """A constructed patient of one cell: weight, creatinine, and a measured clearance if any."""

    cell: Cell
    kg: Decimal
    scr: Decimal
    measured: Decimal | None = None


def acting(own: list[Bound], who: Point, phys: Physics) -> Decimal | None:
    """The creatinine nearest the patient's at which the subject's own bounds all hold, at its
    weight (and measured clearance): past a weight edge the subject may need another creatinine
    to act (a clearance < 25 at a heavier weight needs a higher one)."""
    cell = who.cell
    if not all(b.holds(Decimal(cell.age)) for b in own if b.quantity == "age"):
        return None
    first, last = 0, int((phys.creatinine[1] - phys.creatinine[0]) / SCR_STEP)
    for b in (b for b in own if b.quantity not in ("age", "xuln")):

        def holds(n: int, b: Bound = b) -> bool:
            return b.holds(phys.value(b, cell.age, cell.female, who.kg, phys.scr(n), who.measured))

        rising = b.upward if b.quantity == "creatinine" else not b.upward  # eGFR and clearance fall
        found = edge(first, last, holds, rising)
        if found is None:
            return None
        first, last = (found, last) if rising else (first, found)
    return phys.scr(min(max(int((who.scr - phys.creatinine[0]) / SCR_STEP), first), last))


def holds_at(bounds: tuple[Bound, ...] | list[Bound], point: Point, uln: Decimal | None, phys: Physics) -> bool:
    """Whether every bound holds for the patient at `point` whose laboratory gives `uln`."""
    for b in bounds:
        if b.quantity == "xuln":
            if uln is None or not b.holds(times_uln("creatinine", point.scr, uln, "").value):
                return False
        elif not b.holds(phys.value(b, point.cell.age, point.cell.female, point.kg, point.scr, point.measured)):
            return False
    return True
