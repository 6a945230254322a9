"""The review's creatinine arithmetic: its bisection finds the edges a linear search finds, and
its ranges are the fact base's derivations' own (checked one step either side)."""

from __future__ import annotations

from decimal import Decimal

import pytest

from kb.catalogue.assumptions import resolve_assumptions
from kb.catalogue.derived import ckd_epi_2021, cockcroft_gault, times_uln
from kb.catalogue.knowledge import load_knowledge
from kb.review.creatinine import (
    KG_STEP,
    SCR_STEP,
    Bound,
    Cell,
    Point,
    acting,
    edge,
    measured_for,
    physics_of,
    scan,
    uln_for,
)

MG_DL = Decimal("88.4")


@pytest.mark.parametrize("rising", [True, False])
@pytest.mark.parametrize("guess", [None, 0, 7, 19, 40, -3])
def test_edge_is_a_linear_search(rising: bool, guess: int | None) -> None:
    for lo, hi in ((0, 30), (5, 5), (3, 2)):
        for threshold in range(lo - 2, hi + 3):

            def holds(n: int, t: int = threshold) -> bool:
                return n >= t if rising else n <= t

            meeting = [n for n in range(lo, hi + 1) if holds(n)]
            expected = (min(meeting) if rising else max(meeting)) if meeting else None
            assert edge(lo, hi, holds, rising, guess) == expected, (lo, hi, threshold)


def test_scan_ranges_are_the_derivations_own() -> None:
    """eGFR < 15 and clearance ≥ 60 over 18–65: each cell's creatinine is the lowest with eGFR
    below 15 and its weight the lightest with a clearance of 60 there, one step either side."""
    phys = physics_of(load_knowledge(), resolve_assumptions())
    bounds = [Bound("egfr", "<", Decimal(15), "E"), Bound("crcl", ">=", Decimal(60), "I")]
    bounds += [Bound("age", ">=", Decimal(18), "A"), Bound("age", "<=", Decimal(65), "A")]
    cells = scan(bounds, phys)
    assert {(c.female, c.age) for c in cells} == {(f, a) for f in (True, False) for a in range(18, 66)}
    for cell in cells[::7]:
        age = Decimal(cell.age)
        assert ckd_epi_2021(age, cell.low, cell.female, MG_DL).value < 15
        assert ckd_epi_2021(age, cell.low - SCR_STEP, cell.female, MG_DL).value >= 15
        assert cell.high == phys.creatinine[1] and cell.lightest is not None
        assert cockcroft_gault(age, cell.lightest, cell.low, cell.female, MG_DL).value >= 60
        assert cockcroft_gault(age, cell.lightest - KG_STEP, cell.low, cell.female, MG_DL).value < 60


def test_free_data_next_to_their_bounds() -> None:
    """A laboratory ULN meeting creatinine < 1.5 × ULN; a measured clearance next to its bound,
    and none beyond the plausible 0-400 mL/min."""
    phys = physics_of(load_knowledge(), resolve_assumptions())
    ratio = Bound("xuln", "<", Decimal("1.5"), "I")
    uln = uln_for(Decimal("371.59"), [ratio], phys)
    assert uln == 248 and times_uln("creatinine", Decimal("371.59"), uln, "").value < Decimal("1.5")
    assert measured_for([Bound("crcl", ">=", Decimal(60), "I")], phys) == 60
    assert measured_for([Bound("crcl", "<", Decimal(25), "E")], phys) == 24
    assert measured_for([Bound("crcl", ">=", Decimal(500), "I")], phys) is None


def test_acting_moves_the_creatinine_to_where_the_rule_acts() -> None:
    """Clearance < 25 at 31.7 kg (a man of 65) needs a creatinine above 116.53 µmol/L."""
    phys = physics_of(load_knowledge(), resolve_assumptions())
    cell = Cell(False, 65, Decimal("116.53"), Decimal("116.53"), None, None)
    scr = acting([Bound("crcl", "<", Decimal(25), "E")], Point(cell, Decimal("31.7"), Decimal("116.53")), phys)
    assert scr is not None and scr > Decimal("116.53")
    assert cockcroft_gault(Decimal(65), Decimal("31.7"), scr, False, MG_DL).value < 25
    assert cockcroft_gault(Decimal(65), Decimal("31.7"), scr - SCR_STEP, False, MG_DL).value >= 25
