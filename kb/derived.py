"""Derived values with exact arithmetic; each one carries its inputs and formula for traces.

These are the `computed` relations of kb/rules/declarations.dl. They are computed in Python
before the facts reach pyDatalog, because an exception inside a pyDatalog expression
silently becomes a value (see the engine notes); here a missing input means no fact, and the
criterion that needs it is `unknown` with that input listed.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import ROUND_HALF_UP, Decimal

__all__ = [
    "CRCL_RESOLUTION",
    "Derivation",
    "age_in_years",
    "cockcroft_gault",
    "times_uln",
]

#: Cockcroft–Gault results are rounded to this resolution before any comparison.
CRCL_RESOLUTION = Decimal("0.01")


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
        value / uln,
    )


def cockcroft_gault(
    age: Decimal, weight_kg: Decimal, creatinine_umol_l: Decimal, female: bool, umol_per_mg_dl: Decimal
) -> Derivation:
    """Cockcroft–Gault with actual weight, creatinine in mg/dL, × 0.85 for women.

    A 50-year-old 60 kg woman with creatinine 80 µmol/L: (140 − 50) × 60 / (72 × 80/88.4)
    × 0.85 = 70.44 mL/min.
    """
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
