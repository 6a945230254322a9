"""Unit normalisation to one canonical UCUM unit per item, with exact results.

ucumvert reads UCUM codes (plain pint cannot: `10*3/uL`); common non-UCUM spellings that
investigators type (`×10^9/L`, `µmol/L`) are mapped first by `unit_aliases.csv`. The
conversion factor pint computes is a float; it is rounded to 12 significant digits and
applied as a Decimal, so 9.5 g/dL becomes exactly 95 g/L. Mass <-> molar conversions use
the item's conventional factor (creatinine 88.4, bilirubin 17.1 µmol/L per mg/dL).

A conversion never raises for the size of a number: a product too large for Decimal's
context (1e999999 g/dL, or a unit such as `10*308/L`) is infinite, and the caller's
plausibility check (`Item.implausible`) rejects it with the item's range.
"""

from __future__ import annotations

import math
from decimal import Decimal, InvalidOperation, Overflow, localcontext
from functools import lru_cache
from typing import Any

from kb.catalogue.vocabulary import Item, Vocabulary

__all__ = ["UnitError", "convert", "convert_unit", "exact", "ucum", "warm_units"]


class UnitError(ValueError):
    """A unit that cannot be read or converted to the item's canonical unit."""


@lru_cache(maxsize=1)
def _registry() -> Any:
    from ucumvert import PintUcumRegistry  # slow to build (about a second): only once

    return PintUcumRegistry()


def _factor(source: str, target: str) -> Decimal:
    found = _factor_of(source, target)
    if isinstance(found, str):
        raise UnitError(found)
    return found


@lru_cache(maxsize=1024)
def _factor_of(source: str, target: str) -> Decimal | str:
    """The factor, or why there is none: a failure is remembered too (a mass unit of an item
    converted through its molar factor fails first on every row, and reading a UCUM code
    costs milliseconds)."""
    try:
        src, dst = _parsed(source), _parsed(target)
    except UnitError:
        return f"'{source}' is not a unit we can read"
    if not hasattr(src, "to") or not hasattr(dst, "units"):
        if str(src) == str(dst):
            return Decimal(1)
        return f"cannot convert '{source}' to '{target}'"
    try:
        magnitude = (1 * src).to(dst.units).magnitude / getattr(dst, "magnitude", 1)
    except Exception:  # pint's DimensionalityError
        return f"'{source}' cannot be converted to '{target}'"
    factor = float(magnitude)
    if not math.isfinite(factor) or factor == 0:
        return f"'{source}' cannot be converted to '{target}' (the factor is out of range)"
    return Decimal(format(factor, ".12g"))


@lru_cache(maxsize=512)
def _parsed(code: str) -> Any:
    """A UCUM code read by ucumvert (each code once: the same target is read for every source)."""
    try:
        return _registry().from_ucum(code)
    except Exception as exc:  # ucumvert raises its own parse errors
        raise UnitError(code) from exc


def warm_units() -> None:
    """Build the unit registry now (before a fork, so that every worker inherits it)."""
    _registry()


def exact(value: Decimal) -> Decimal:
    """Drop trailing zeros without switching to exponent notation (80, not 8E+1); a number
    with more digits than the context holds (1E+40) keeps its exponent rather than failing."""
    if not value.is_finite():
        return value
    value = value.normalize()
    exponent = value.as_tuple().exponent
    if isinstance(exponent, int) and exponent > 0:
        try:
            return value.quantize(Decimal(1))
        except InvalidOperation:
            return value
    return value


def _times(*numbers: Decimal) -> Decimal:
    """The exact product; one too large for the context is infinite, not an exception."""
    with localcontext() as context:
        context.traps[Overflow] = False
        product = Decimal(1)
        for number in numbers:
            product *= number
    return exact(product)


def ucum(unit: str, vocabulary: Vocabulary) -> str:
    """The UCUM code for a unit as written (common spellings such as µmol/L are mapped)."""
    return _ucum(unit, vocabulary)


def _ucum(unit: str, vocabulary: Vocabulary) -> str:
    unit = unit.strip()
    return vocabulary.unit_aliases.get(unit, unit)


def convert(value: Decimal, unit: str, item: Item, vocabulary: Vocabulary) -> Decimal:
    """`value` in `unit` expressed in the item's canonical unit, exactly."""
    target = item.unit
    source = _ucum(unit, vocabulary)
    if not source:
        if target in ("", "1"):
            return value
        raise UnitError(f"a unit is required for {item.name} (canonical {item.display_unit or target})")
    if target in ("", "1") and source in ("1", "{score}", "{points}"):
        return value
    if source == target:
        return value
    try:
        return _times(value, _factor(source, target))
    except UnitError:
        if item.molar_factor is None:
            raise
    # mass concentration -> molar concentration through mg/dL and the item's factor
    return _times(value, _factor(source, "mg/dL"), item.molar_factor, _factor("umol/L", target))


def convert_unit(value: Decimal, source: str, target: str, vocabulary: Vocabulary) -> Decimal:
    """`value` in `source` expressed in `target` (UCUM or a common spelling), exactly: a body
    weight in [lb_av] as kg. Raises UnitError for a unit that cannot be read or converted."""
    source = _ucum(source, vocabulary)
    return value if source == target else _times(value, _factor(source, target))
