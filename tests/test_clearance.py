"""The creatinine that gives a clearance: z3's answer, confirmed by the fact base's formula."""

from __future__ import annotations

from decimal import Decimal

import pytest

from kb.catalogue.derived import cockcroft_gault, cockcroft_gault_si
from kb.factbase.clearance import creatinine_for_clearance

WOMAN_50_60KG = {"age": Decimal(50), "weight_kg": Decimal(60), "female": True, "umol_per_mg_dl": Decimal("88.4")}


@pytest.mark.parametrize("formula", ["cockcroft_gault_mg_dl", "cockcroft_gault_si"])
def test_the_highest_creatinine_that_meets_the_bound(formula: str) -> None:
    found = creatinine_for_clearance(">=", Decimal(60), formula=formula, **WOMAN_50_60KG)  # type: ignore[arg-type]
    assert found is not None

    def clearance(creatinine: Decimal) -> Decimal:
        if formula == "cockcroft_gault_si":
            return cockcroft_gault_si(Decimal(50), Decimal(60), creatinine, True).value
        return cockcroft_gault(Decimal(50), Decimal(60), creatinine, True, Decimal("88.4")).value

    assert clearance(found) >= 60 > clearance(found + 1)


def test_the_documented_example() -> None:
    """(140 − 50) × 60 / (72 × 93/88.4) × 0.85 = 60.6; at 94 µmol/L it is 59.95."""
    assert creatinine_for_clearance(">=", Decimal(60), formula="cockcroft_gault_mg_dl", **WOMAN_50_60KG) == 93  # type: ignore[arg-type]


def test_the_creatinine_bound_of_the_same_criterion_is_solved_together() -> None:
    """With ULN 60 and creatinine < 1.5 × ULN, the answer is 89, not 93."""
    found = creatinine_for_clearance(
        ">=",
        Decimal(60),
        formula="cockcroft_gault_mg_dl",
        uln=Decimal(60),
        max_ratio=Decimal("1.5"),
        **WOMAN_50_60KG,  # type: ignore[arg-type]
    )
    assert found == 89


def test_no_creatinine_for_an_upper_bound_or_an_impossible_one() -> None:
    assert creatinine_for_clearance("<", Decimal(60), formula="cockcroft_gault_mg_dl", **WOMAN_50_60KG) is None  # type: ignore[arg-type]
    old = {**WOMAN_50_60KG, "age": Decimal(139), "weight_kg": Decimal(40)}
    assert creatinine_for_clearance(">=", Decimal(60), formula="cockcroft_gault_mg_dl", **old) is None  # type: ignore[arg-type]
