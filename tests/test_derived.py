"""Derived values: exact arithmetic, documented rounding, inputs kept for the trace."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest

from kb.derived import age_in_years, cockcroft_gault, times_uln


def test_cockcroft_gault_for_the_reference_woman() -> None:
    # 50-year-old 60 kg woman, creatinine 80 µmol/L: 70.44 mL/min (issue #3's worked example)
    result = cockcroft_gault(Decimal(50), Decimal(60), Decimal(80), True, Decimal("88.4"))
    assert result.value == Decimal("70.44")
    assert result.formula.endswith("× 0.85")
    assert ("weight", "60 kg") in result.inputs


def test_cockcroft_gault_for_a_man_has_no_sex_factor() -> None:
    result = cockcroft_gault(Decimal(50), Decimal(60), Decimal(80), False, Decimal("88.4"))
    assert result.value == Decimal("82.88")  # 82.875 rounded half up to 0.01


@pytest.mark.parametrize(
    ("born", "on", "years"),
    [
        ("1960-11-24", "2026-11-24", 66),
        ("1960-11-25", "2026-11-24", 65),
        ("2008-11-24", "2026-11-24", 18),
        ("2008-11-25", "2026-11-24", 17),
        ("2000-02-29", "2026-02-28", 25),
        ("2000-02-29", "2026-03-01", 26),
    ],
)
def test_age_in_completed_years(born: str, on: str, years: int) -> None:
    assert age_in_years(date.fromisoformat(born), date.fromisoformat(on)).value == years


def test_times_uln_is_exact() -> None:
    assert times_uln("bilirubin_total", Decimal("31.5"), Decimal(21), "µmol/L").value == Decimal("1.5")
    assert times_uln("ast", Decimal(100), Decimal(40), "U/L").value == Decimal("2.5")
