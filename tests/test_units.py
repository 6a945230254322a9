"""Units: normalised to each item's canonical UCUM unit, exactly."""

from __future__ import annotations

from decimal import Decimal

import pytest

from kb.catalogue.vocabulary import load_vocabulary
from kb.records.units import UnitError, convert

VOCAB = load_vocabulary()


@pytest.mark.parametrize(
    ("value", "unit", "item", "expected"),
    [
        ("9.5", "g/dL", "hemoglobin", "95"),
        ("80", "10*3/uL", "platelets", "80"),
        ("80000", "/uL", "platelets", "80"),
        ("50", "×10^9/L", "platelets", "50"),
        ("1.2", "mg/dL", "creatinine", "106.08"),  # × 88.4
        ("1", "mg/dL", "bilirubin_total", "17.1"),
        ("30", "IU/L", "ast", "30"),
        ("2000", "copies/mL", "hbv_dna", "2000"),
        ("2", "", "ecog", "2"),
        ("93", "%", "spo2", "93"),
    ],
)
def test_conversion_to_the_canonical_unit(value: str, unit: str, item: str, expected: str) -> None:
    result = convert(Decimal(value), unit, VOCAB.items[item], VOCAB)
    assert result == Decimal(expected)
    assert str(result) == expected  # shown as written, not 8E+1


@pytest.mark.parametrize(("unit", "item"), [("furlong", "anc"), ("mmol/L", "hemoglobin"), ("", "platelets")])
def test_units_that_cannot_be_read_or_converted(unit: str, item: str) -> None:
    with pytest.raises(UnitError):
        convert(Decimal(1), unit, VOCAB.items[item], VOCAB)


@pytest.mark.parametrize(
    ("value", "unit", "item"),
    [
        ("1e28", "g/dL", "hemoglobin"),  # 1E+29 g/L: more digits than Decimal's context (exact() raised)
        ("9e999998", "g/dL", "hemoglobin"),  # the product overflows the context (Overflow raised)
        ("50", "10*308/L", "platelets"),  # a factor of 1e299
        ("1e999998", "mg/dL", "creatinine"),  # through mg/dL and the molar factor
    ],
)
def test_a_conversion_too_large_is_implausible_not_an_exception(value: str, unit: str, item: str) -> None:
    """Issue 16.2: these raised InvalidOperation or Overflow inside convert(); now the result
    is a number (or infinity) that the item's plausible range rejects, with the range."""
    converted = convert(Decimal(value), unit, VOCAB.items[item], VOCAB)
    why = VOCAB.items[item].implausible(converted, f"{value} {unit}")
    assert why.startswith(f"{item} {value} {unit}") and "is outside the plausible range" in why


@pytest.mark.parametrize("unit", ["10*400/L", "10*-400/L"])
def test_a_unit_whose_factor_leaves_the_floats_is_a_unit_error(unit: str) -> None:
    with pytest.raises(UnitError, match=r"out of range|cannot be|not a unit"):
        convert(Decimal(50), unit, VOCAB.items["platelets"], VOCAB)


@pytest.mark.parametrize(("unit", "item"), [("furlong", "anc"), ("mmol/L", "hemoglobin"), ("", "platelets")])
def test_a_failed_conversion_fails_the_same_way_every_time(unit: str, item: str) -> None:
    """A factor that cannot be had is remembered with its reason (issue 20: creatinine in
    mg/dL re-read two UCUM codes on every row before its molar factor was used): a second
    row in the same unit gets the same error, and a mass unit still converts."""
    messages = []
    for _ in range(2):
        with pytest.raises(UnitError) as caught:
            convert(Decimal(1), unit, VOCAB.items[item], VOCAB)
        messages.append(str(caught.value))
    assert messages[0] == messages[1] and messages[0]
    for _ in range(2):
        assert convert(Decimal("0.905"), "mg/dL", VOCAB.items["creatinine"], VOCAB) == Decimal("80.002")
