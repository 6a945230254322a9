"""The creatinine that gives a clearance: GI6.7 couples creatinine, age, weight and sex.

A rule bounds the clearance ("≥ 60 mL/min"); the value a clinician can act on is the serum
creatinine. The clearance formula (the one the assumption crcl_formula selects) and the
creatinine's own ×ULN bound are handed to z3 together, which finds the highest creatinine
that meets both; the answer is then rounded down to a whole µmol/L and checked with the
very derivation the fact base uses, so the repair is exact, not a float approximation.
"""

from __future__ import annotations

from decimal import ROUND_FLOOR, Decimal

import z3

from kb.catalogue.derived import CRCL_RESOLUTION, Derivation, cockcroft_gault, cockcroft_gault_si

__all__ = ["creatinine_for_clearance"]

_STEP = Decimal(1)  # µmol/L: creatinine is reported in whole µmol/L


def _clearance(
    formula: str, age: Decimal, weight: Decimal, creatinine: Decimal, female: bool, factor: Decimal
) -> Derivation:
    if formula == "cockcroft_gault_si":
        return cockcroft_gault_si(age, weight, creatinine, female)
    return cockcroft_gault(age, weight, creatinine, female, factor)


def _holds(op: str, value: Decimal, bound: Decimal) -> bool:
    return value >= bound if op == ">=" else value > bound


def creatinine_for_clearance(
    op: str,
    bound: Decimal,
    *,
    age: Decimal,
    weight_kg: Decimal,
    female: bool,
    formula: str,
    umol_per_mg_dl: Decimal,
    uln: Decimal | None = None,
    max_ratio: Decimal | None = None,
) -> Decimal | None:
    """The highest creatinine (µmol/L) whose clearance meets `op bound` (op is >= or >) and,
    when given, stays below `max_ratio` × `uln`; None when no creatinine does."""
    if op not in (">=", ">"):
        return None
    scr = z3.Real("creatinine")
    half = CRCL_RESOLUTION / 2  # the clearance is rounded half up before it is compared
    target = bound - half if op == ">=" else bound + half
    if formula == "cockcroft_gault_si":
        constant = Decimal("1.04") if female else Decimal("1.23")
        numerator = (Decimal(140) - age) * weight_kg * constant
        denominator = Decimal(1)
    else:
        numerator = (Decimal(140) - age) * weight_kg * umol_per_mg_dl * (Decimal("0.85") if female else Decimal(1))
        denominator = Decimal(72)
    opt = z3.Optimize()
    # clearance = numerator / (denominator × creatinine) ≥ target, with creatinine > 0
    opt.add(scr > 0, z3.RealVal(str(numerator)) >= z3.RealVal(str(denominator * target)) * scr)
    if uln is not None and max_ratio is not None:
        # non-strict here (a strict bound has no maximum); the check below steps off it
        opt.add(scr <= z3.RealVal(str(max_ratio * uln)))
    opt.maximize(scr)
    if opt.check() != z3.sat:
        return None
    best = opt.model()[scr]
    if not z3.is_rational_value(best):
        return None
    exact = Decimal(best.numerator_as_long()) / Decimal(best.denominator_as_long())
    candidate = exact.quantize(_STEP, rounding=ROUND_FLOOR)
    while candidate > 0:  # confirm with the fact base's own derivation
        within_uln = uln is None or max_ratio is None or candidate / uln < max_ratio
        value = _clearance(formula, age, weight_kg, candidate, female, umol_per_mg_dl).value
        if within_uln and _holds(op, value, bound):
            return candidate
        candidate -= _STEP
    return None
