"""Derived values: exact arithmetic, documented rounding, inputs kept for the trace."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from decimal import Decimal

import pytest

from kb.catalogue.derived import (
    DateRangeError,
    age_in_years,
    check_date,
    ckd_epi_2021,
    cockcroft_gault,
    cockcroft_gault_si,
    months_before,
    times_uln,
)
from kb.errors import KbError


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


@pytest.mark.parametrize(
    ("age", "creatinine_umol", "female", "expected"),
    [
        # 50-year-old woman, creatinine 0.8 mg/dL (70.72 µmol/L): 142 × (0.8/0.7)^−1.2 × 0.9938^50 × 1.012 = 89.71
        (50, "70.72", True, "89.7"),
        # 60-year-old man, creatinine 100 µmol/L (1.131 mg/dL): 142 × (1.131/0.9)^−1.2 × 0.9938^60 = 74.31
        (60, "100", False, "74.3"),
        # 30-year-old woman below κ: 142 × (0.6/0.7)^−0.241 × 0.9938^30 × 1.012 = 123.76
        (30, "53.04", True, "123.8"),
    ],
)
def test_ckd_epi_2021(age: int, creatinine_umol: str, female: bool, expected: str) -> None:
    from kb.catalogue.derived import ckd_epi_2021

    result = ckd_epi_2021(Decimal(age), Decimal(creatinine_umol), female, Decimal("88.4"))
    assert result.value == Decimal(expected)


def test_cockcroft_gault_si_variant() -> None:
    from kb.catalogue.derived import cockcroft_gault_si

    # (140 − 60) × 50 × 1.04 / 69.4 = 59.94; the mg/dL form gives 60.15
    assert cockcroft_gault_si(Decimal(60), Decimal(50), Decimal("69.4"), True).value == Decimal("59.94")
    assert cockcroft_gault(Decimal(60), Decimal(50), Decimal("69.4"), True, Decimal("88.4")).value == Decimal("60.15")


@pytest.mark.parametrize(
    ("half_life", "rounding", "days"), [("35", "up", 8), ("35", "nearest", 7), ("12", "up", 3), ("168", "up", 35)]
)
def test_washout_of_five_half_lives(half_life: str, rounding: str, days: int) -> None:
    from kb.catalogue.derived import washout_days

    result = washout_days("tacrolimus", Decimal(half_life), rounding)
    assert result.value == days
    assert f"5 × t½ = {5 * Decimal(half_life)} h" in result.formula


@pytest.mark.parametrize(
    ("dose", "factor", "frequency", "expected"),
    [
        ("1.5", "5/0.75", "daily", "10.000"),  # dexamethasone: 0.75 mg = 5 mg, so 1.5 mg is 10 (6.67 gave 10.005)
        ("2", "5/0.75", "daily", "13.333"),
        ("8", "1.25", "", "10.00"),
        ("5", "1", "bid", "10"),
        ("500", "1.25", "once", "625"),
        ("20", "1", "qod", "20"),  # 20 mg every other day is 20 mg on the day taken, not 10 on average
        ("20", "1", "weekly", "20"),
    ],
)
def test_prednisone_equivalent_daily_dose(dose: str, factor: str, frequency: str, expected: str) -> None:
    from kb.catalogue.derived import doses_per_day, prednisone_equivalent

    per_day = doses_per_day(frequency)
    assert per_day is not None
    numerator, _, denominator = factor.partition("/")
    potency = Decimal(numerator) / Decimal(denominator or "1")  # as agents.csv writes it
    result = prednisone_equivalent("x", Decimal(dose), potency, per_day, frequency)
    assert result.value == Decimal(expected)


def test_dose_per_kg_and_unknown_frequency() -> None:
    from kb.catalogue.derived import doses_per_day, per_kg, prednisone_equivalent

    daily = prednisone_equivalent("prednisone", Decimal(60), Decimal(1), Decimal(1), "daily")
    assert per_kg(daily, Decimal(60)).value == Decimal(1)
    assert doses_per_day("when needed") is None


@pytest.mark.parametrize(
    ("anchor", "months", "mode", "expected"),
    [
        ("2026-11-24", 12, "calendar", "2025-11-24"),
        ("2026-11-24", 12, "30", "2025-11-29"),
        ("2026-03-31", 1, "calendar", "2026-02-28"),
        # month ends and leap days: the day is kept, or the month's last when it has none
        ("2024-03-31", 1, "calendar", "2024-02-29"),
        ("2024-02-29", 12, "calendar", "2023-02-28"),
        ("2024-02-29", 48, "calendar", "2020-02-29"),
        ("2026-05-31", 3, "calendar", "2026-02-28"),
        ("2026-01-31", 2, "calendar", "2025-11-30"),
        ("2026-03-31", 1, "30", "2026-03-01"),
        ("2026-11-24", 60, "calendar", "2021-11-24"),
        ("2026-11-24", 6, "calendar", "2026-05-24"),
    ],
)
def test_months_before(anchor: str, months: int, mode: str, expected: str) -> None:
    from kb.catalogue.derived import months_before

    assert months_before(date.fromisoformat(anchor), months, mode) == date.fromisoformat(expected)


@pytest.mark.parametrize(
    ("compute", "message"),
    [
        (lambda: cockcroft_gault(Decimal(50), Decimal(60), Decimal(0), True, Decimal("88.4")), "creatinine 0"),
        (lambda: cockcroft_gault(Decimal(50), Decimal(60), Decimal("1e-41"), True, Decimal("88.4")), "creatinine"),
        (lambda: cockcroft_gault_si(Decimal(50), Decimal(60), Decimal(0), False), "creatinine clearance"),
        (lambda: ckd_epi_2021(Decimal(50), Decimal(0), True, Decimal("88.4")), "eGFR"),
        (lambda: times_uln("alt", Decimal(30), Decimal("1e-31"), "U/L"), "alt ×ULN"),
        (lambda: times_uln("alt", Decimal(30), Decimal("1e-999999999"), "U/L"), "alt ×ULN"),
        (lambda: times_uln("alt", Decimal(30), Decimal(0), "U/L"), "alt ×ULN"),
        (lambda: months_before(date(1, 3, 1), 6, "calendar"), "6 months before 0001-03-01"),
        (lambda: months_before(date(1, 3, 1), 6, "30"), "6 months before 0001-03-01"),
    ],
)
def test_a_derivation_from_an_unchecked_value_is_a_kb_error(compute: Callable[[], object], message: str) -> None:
    """Issue 16.2: these raised DivisionByZero, InvalidOperation, Overflow or OverflowError
    from inside the arithmetic; a value that reaches a derivation unchecked (a hand-built
    patient) is now a KbError naming the derivation, which every front end shows."""
    with pytest.raises(KbError, match=message):
        compute()


@pytest.mark.parametrize(
    ("when", "accepted"),
    [("1900-01-01", True), ("2200-12-31", True), ("1899-12-31", False), ("0001-01-01", False), ("9999-12-31", False)],
)
def test_dates_are_read_within_a_range_whose_arithmetic_cannot_overflow(when: str, accepted: bool) -> None:
    day = date.fromisoformat(when)
    if accepted:
        assert check_date(day) == day
    else:
        with pytest.raises(DateRangeError, match=r"outside the dates accepted \(1900-01-01 to 2200-12-31\)"):
            check_date(day, "enrolment")
