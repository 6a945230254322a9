"""Derived values with exact arithmetic; each one carries its inputs and formula for traces.

These are the `computed` relations of kb/rules/declarations.dl. They are computed in Python
before the facts reach pyDatalog, because an exception inside a pyDatalog expression
silently becomes a value (see the engine notes); here a missing input means no fact, and the
criterion that needs it is `unknown` with that input listed.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from decimal import ROUND_CEILING, ROUND_HALF_UP, Decimal, DecimalException
from functools import lru_cache

from dateutil.relativedelta import relativedelta

from kb.errors import KbError

__all__ = [
    "CRCL_RESOLUTION",
    "EARLIEST_DATE",
    "EGFR_RESOLUTION",
    "LATEST_DATE",
    "PREDNISONE_RESOLUTION",
    "DateRangeError",
    "Derivation",
    "age_in_years",
    "check_date",
    "ckd_epi_2021",
    "cockcroft_gault",
    "cockcroft_gault_si",
    "doses_per_day",
    "months_before",
    "per_kg",
    "prednisone_equivalent",
    "times_uln",
    "washout_days",
]

#: Cockcroft–Gault results are rounded to this resolution before any comparison.
CRCL_RESOLUTION = Decimal("0.01")
#: The dates read anywhere (files, --as-of, what-ifs): every window and offset the criteria
#: compute from a date in this range stays inside Python's calendar (years 1-9999), so no
#: date arithmetic can overflow, and no clinical record falls outside it.
EARLIEST_DATE = date(1900, 1, 1)
LATEST_DATE = date(2200, 12, 31)


class DateRangeError(KbError):
    """A date, or a date computed from one, outside the dates read (EARLIEST_DATE-LATEST_DATE)."""


def check_date(when: date, what: str = "date") -> date:
    """`when` if it is within the dates read; else a DateRangeError with the range."""
    if not EARLIEST_DATE <= when <= LATEST_DATE:
        raise DateRangeError(
            f"{what} {when.isoformat()} is outside the dates accepted "
            f"({EARLIEST_DATE.isoformat()} to {LATEST_DATE.isoformat()})"
        )
    return when


class _Guarded:
    """Turns a Decimal failure of a derivation (a division by a zero creatinine, an overflow)
    into a KbError that names the derivation and its inputs: a value that reached here
    unchecked is the caller's mistake, never a stack trace."""

    def __init__(self, name: str, *inputs: object) -> None:
        self.name, self.inputs = name, inputs

    def __enter__(self) -> None:
        return None

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: object) -> None:
        if kind is not None and issubclass(kind, DecimalException | ZeroDivisionError):
            shown = ", ".join(str(i) for i in self.inputs)
            raise KbError(f"{self.name} cannot be computed from {shown}: a value is outside its plausible range")


@dataclass(frozen=True)
class Derivation:
    """How a derived value was obtained: shown as a node of the proof tree."""

    name: str
    formula: str
    inputs: tuple[tuple[str, str], ...]  # (input, value as shown)
    value: Decimal

    def describe(self) -> str:
        inputs = ", ".join(f"{k} = {v}" for k, v in self.inputs)
        return f"{self.name} = {self.formula} with {inputs} → {self.value}"


def age_in_years(birth: date, on: date) -> Derivation:
    """Completed years on `on`: a birthday counts from the day itself (29 February: 1 March)."""
    years = on.year - birth.year - ((on.month, on.day) < (birth.month, birth.day))
    return Derivation(
        "age",
        "completed years from birth date to enrolment",
        (("birth_date", birth.isoformat()), ("enrolment", on.isoformat())),
        Decimal(years),
    )


def times_uln(item: str, value: Decimal, uln: Decimal, unit: str) -> Derivation:
    """value / ULN of the same result, kept exact (Decimal division to 28 digits)."""
    return Derivation(
        f"{item} ×ULN",
        f"{item} / ULN",
        ((item, f"{value} {unit}".strip()), ("ULN", f"{uln} {unit}".strip())),
        _ratio(item, value, uln),
    )


def _ratio(item: str, value: Decimal, uln: Decimal) -> Decimal:
    with _Guarded(f"{item} ×ULN", value, f"ULN {uln}"):
        if uln <= 0:
            raise ZeroDivisionError
        ratio = value / uln
        ratio.quantize(Decimal("0.0001"))  # a ratio no trace could show (1e-31 ULN) fails here
        return ratio


def cockcroft_gault(
    age: Decimal, weight_kg: Decimal, creatinine_umol_l: Decimal, female: bool, umol_per_mg_dl: Decimal
) -> Derivation:
    """Cockcroft–Gault with actual weight, creatinine in mg/dL, × 0.85 for women.

    A 50-year-old 60 kg woman with creatinine 80 µmol/L: (140 − 50) × 60 / (72 × 80/88.4)
    × 0.85 = 70.44 mL/min.
    """
    with _Guarded("creatinine clearance", f"creatinine {creatinine_umol_l} µmol/L", f"weight {weight_kg} kg"):
        scr_mg_dl = creatinine_umol_l / umol_per_mg_dl
        value = (Decimal(140) - age) * weight_kg / (Decimal(72) * scr_mg_dl)
        if female:
            value *= Decimal("0.85")
        rounded = value.quantize(CRCL_RESOLUTION, rounding=ROUND_HALF_UP)
    formula = "(140 − age) × weight / (72 × creatinine mg/dL)" + (" × 0.85" if female else "")
    return Derivation(
        "creatinine clearance (Cockcroft–Gault)",
        formula,
        (
            ("age", f"{age} years"),
            ("weight", f"{weight_kg} kg"),
            ("creatinine", f"{creatinine_umol_l} µmol/L = {creatinine_umol_l}/{umol_per_mg_dl} mg/dL"),
            ("sex", "female" if female else "male"),
        ),
        rounded,
    )


#: CKD-EPI results are rounded to this resolution before any comparison.
EGFR_RESOLUTION = Decimal("0.1")
_FREQUENCIES = {
    "": Decimal(1),
    "daily": Decimal(1),
    "qd": Decimal(1),
    "once daily": Decimal(1),
    "od": Decimal(1),
    "bid": Decimal(2),
    "twice daily": Decimal(2),
    "tid": Decimal(3),
    "qid": Decimal(4),
    "once": Decimal(1),
    "single": Decimal(1),
    "pulse": Decimal(1),
    "qod": Decimal("0.5"),
    "every other day": Decimal("0.5"),
    "weekly": Decimal(1) / Decimal(7),
    "qw": Decimal(1) / Decimal(7),
}


def cockcroft_gault_si(age: Decimal, weight_kg: Decimal, creatinine_umol_l: Decimal, female: bool) -> Derivation:
    """The SI variant: (140 − age) × weight × 1.23 (men) or 1.04 (women) / creatinine µmol/L."""
    constant = Decimal("1.04") if female else Decimal("1.23")
    with _Guarded("creatinine clearance", f"creatinine {creatinine_umol_l} µmol/L", f"weight {weight_kg} kg"):
        value = (Decimal(140) - age) * weight_kg * constant / creatinine_umol_l
        rounded = value.quantize(CRCL_RESOLUTION, rounding=ROUND_HALF_UP)
    return Derivation(
        "creatinine clearance (Cockcroft–Gault, SI)",
        f"(140 − age) × weight × {constant} / creatinine µmol/L",
        (
            ("age", f"{age} years"),
            ("weight", f"{weight_kg} kg"),
            ("creatinine", f"{creatinine_umol_l} µmol/L"),
            ("sex", "female" if female else "male"),
        ),
        rounded,
    )


def ckd_epi_2021(age: Decimal, creatinine_umol_l: Decimal, female: bool, umol_per_mg_dl: Decimal) -> Derivation:
    """The same, remembered: its fractional powers cost ~0.1 ms, and a clinic's ages and
    creatinine values repeat. Keyed by the values as written, so the trace text is theirs:
    1.0 and 1.00 are equal Decimals, and one key would show the other's digits."""
    return _ckd_epi_written(str(age), str(creatinine_umol_l), female, str(umol_per_mg_dl))


@lru_cache(maxsize=100_000)
def _ckd_epi_written(age: str, creatinine_umol_l: str, female: bool, umol_per_mg_dl: str) -> Derivation:
    # a Decimal's text gives back the same Decimal, digits and exponent alike
    return _ckd_epi_2021(Decimal(age), Decimal(creatinine_umol_l), female, Decimal(umol_per_mg_dl))


def _ckd_epi_2021(age: Decimal, creatinine_umol_l: Decimal, female: bool, umol_per_mg_dl: Decimal) -> Derivation:
    """eGFR by the race-free CKD-EPI 2021 equation, rounded to 0.1 mL/min/1.73 m².

    142 × min(Scr/κ, 1)^α × max(Scr/κ, 1)^−1.200 × 0.9938^age [× 1.012 if female], Scr in
    mg/dL, κ 0.7 (women) / 0.9 (men), α −0.241 / −0.302. Decimal powers are correctly
    rounded to 28 digits, so the result does not depend on the platform's floats.
    """
    kappa = Decimal("0.7") if female else Decimal("0.9")
    alpha = Decimal("-0.241") if female else Decimal("-0.302")
    with _Guarded("eGFR", f"creatinine {creatinine_umol_l} µmol/L", f"age {age}"):
        scr = creatinine_umol_l / umol_per_mg_dl
        ratio = scr / kappa
        value = (
            Decimal(142)
            * min(ratio, Decimal(1)) ** alpha
            * max(ratio, Decimal(1)) ** Decimal("-1.200")
            * Decimal("0.9938") ** age
        )
        if female:
            value *= Decimal("1.012")
        rounded = value.quantize(EGFR_RESOLUTION, rounding=ROUND_HALF_UP)
    return Derivation(
        "eGFR (CKD-EPI 2021)",
        "142 × min(Scr/κ,1)^α × max(Scr/κ,1)^−1.200 × 0.9938^age" + (" × 1.012" if female else ""),
        (
            ("age", f"{age} years"),
            ("creatinine", f"{creatinine_umol_l} µmol/L = {scr:.4f} mg/dL"),
            ("sex", "female" if female else "male"),
        ),
        rounded,
    )


def washout_days(agent: str, half_life_hours: Decimal, rounding: str) -> Derivation:
    """5 half-lives as whole days: rounded up (never shortens the washout) or to the nearest."""
    hours = 5 * half_life_hours
    days = hours / 24
    whole = days.to_integral_value(rounding=ROUND_CEILING if rounding == "up" else ROUND_HALF_UP)
    return Derivation(
        f"{agent} washout",
        f"5 × t½ = {hours} h = {days:.2f} days, rounded {rounding}",
        (("half-life", f"{half_life_hours} h"),),
        whole,
    )


def doses_per_day(frequency: str) -> Decimal | None:
    """Administrations per day for the usual frequency words; None if not understood."""
    return _FREQUENCIES.get(" ".join(frequency.casefold().split()))


#: The resolution of a prednisone-equivalent daily dose (potencies such as 5/0.75 are no finite decimal).
PREDNISONE_RESOLUTION = Decimal("0.001")


def prednisone_equivalent(
    agent: str, dose_mg: Decimal, factor: Decimal, per_day: Decimal, frequency: str
) -> Derivation:
    """Daily prednisone-equivalent dose: dose × potency factor × administrations per day. A
    dose taken less often than daily (alternate days, weekly) counts as what it is on the
    day it is taken, not averaged: 20 mg every other day is 20 mg on those days, above
    GE4.7's 10 mg/day (averaging would hide a pharmacological dose). The result is rounded to
    PREDNISONE_RESOLUTION (0.001 mg): a potency such as dexamethasone's 5/0.75 is no finite
    decimal, and 1.5 mg of it must be exactly 10 mg, not 10.000…0005 mg above the bound."""
    value = (dose_mg * factor * max(per_day, Decimal(1))).quantize(PREDNISONE_RESOLUTION)
    shown = str(factor) if factor == factor.quantize(Decimal("0.0001")) else f"{factor:.4f}…"
    return Derivation(
        "prednisone-equivalent daily dose",
        "dose × potency factor × doses per day, to 0.001 mg (a dose taken less than daily: as on the day it is taken)",
        ((agent, f"{dose_mg} mg"), ("factor", shown), ("frequency", frequency or "daily (no frequency given)")),
        value,
    )


def per_kg(daily: Derivation, weight_kg: Decimal) -> Derivation:
    """A daily dose per kg of body weight (for the refractoriness definition's > 1 mg/kg/d)."""
    return Derivation(
        "prednisone-equivalent mg/kg/day",
        "daily dose / weight",
        (("daily dose", f"{daily.value} mg"), ("weight", f"{weight_kg} kg")),
        _per(daily.value, weight_kg),
    )


def _per(dose: Decimal, weight_kg: Decimal) -> Decimal:
    with _Guarded("prednisone-equivalent mg/kg/day", f"{dose} mg", f"weight {weight_kg} kg"):
        return dose / weight_kg


def months_before(anchor: date, months: int, mode: str) -> date:
    """The day `months` before `anchor`: calendar months (clamped to the month's end) or 30 days
    each. A day before the calendar's first (an anchor near year 1) is a DateRangeError."""
    try:
        if mode == "30":
            return anchor - timedelta(days=30 * months)
        return anchor - relativedelta(months=months)  # 31 March - 1 month: 28 or 29 February
    except (OverflowError, ValueError):
        raise DateRangeError(f"{months} months before {anchor.isoformat()} is outside the calendar") from None
