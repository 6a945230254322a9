"""Named assumptions: documented, validated, switchable, and reported with every answer."""

from __future__ import annotations

import pytest

from kb.catalogue.assumptions import load_assumptions, resolve_assumptions
from kb.errors import KbError


def test_every_assumption_is_documented() -> None:
    for assumption in load_assumptions().values():
        assert assumption.resolves and assumption.reason
        if assumption.kind == "choice":
            assert str(assumption.default) in assumption.allowed
        else:
            assert assumption.minimum is not None and assumption.minimum <= int(assumption.default)


def test_defaults_and_overrides() -> None:
    defaults = resolve_assumptions()
    assert defaults["lab_lookback_days"] == 28 and defaults["ge4_3_scope"] == "all_immunosuppressive_biologics"
    switched = resolve_assumptions(["lab_lookback_days=14", "ge4_3_scope=listed"])
    assert switched.changed() == {"ge4_3_scope": "listed", "lab_lookback_days": 14}
    assert switched.in_force()["crcl_method"] == "measured_or_cockcroft_gault"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("lab_lookback=14", "unknown assumption 'lab_lookback'; did you mean lab_lookback_days?"),
        ("lab_lookback_days=two", "is a whole number of days, not 'two'"),
        ("lab_lookback_days=0", "must be between 1 and 365 days"),
        ("ge4_3_scope=some", "cannot be 'some'; allowed: listed, all_immunosuppressive_biologics"),
        ("ge4_3_scope", "is not ID=VALUE"),
    ],
)
def test_bad_assumptions_are_clear_errors(text: str, message: str) -> None:
    with pytest.raises(KbError) as caught:
        resolve_assumptions([text])
    assert message in str(caught.value)
