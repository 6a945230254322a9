"""The registry of named assumptions: every ambiguity the encoding resolved, switchable.

Assumptions reach the rules as facts (`assumption(ge4_3_scope, listed)`), so the rule that
depends on a reading says so in its own text and in its trace.
"""

from __future__ import annotations

import difflib
import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from kb.errors import KbError
from kb.paths import PACKAGE_DIR

__all__ = ["GROUPS", "Assumption", "AssumptionSet", "load_assumptions", "resolve_assumptions"]

ASSUMPTIONS_FILE = PACKAGE_DIR / "rules" / "assumptions.toml"
AssumptionValue = int | str
#: the topics the assumptions are shown under, general ones first, then the cohorts'
GROUPS = (
    "Dates and windows",
    "Laboratory results",
    "Medications and washouts",
    "Refractory disease (every cohort)",
    "Diagnoses and cohorts",
    "Sjögren's syndrome",
    "Myositis",
    "Systemic sclerosis",
    "ANCA-associated vasculitis",
    "Antiphospholipid syndrome",
)


@dataclass(frozen=True)
class Assumption:
    id: str
    kind: str  # "days" | "choice"
    default: AssumptionValue
    allowed: tuple[str, ...]
    minimum: int | None
    maximum: int | None
    resolves: str
    reason: str
    used_by: tuple[str, ...]
    label: str = ""  # a short plain name, for people (the id is for `--assume`)
    group: str = ""  # one of GROUPS

    def parse(self, text: str) -> AssumptionValue:
        """The value `text` stands for, or a KbError saying what is allowed."""
        text = text.strip()
        if self.kind == "days":
            try:
                value = int(text)
            except ValueError:
                raise KbError(f"assumption {self.id} is a whole number of days, not '{text}'") from None
            if (self.minimum is not None and value < self.minimum) or (
                self.maximum is not None and value > self.maximum
            ):
                raise KbError(f"assumption {self.id} must be between {self.minimum} and {self.maximum} days")
            return value
        if text not in self.allowed:
            raise KbError(f"assumption {self.id} cannot be '{text}'; allowed: {', '.join(self.allowed)}")
        return text

    def as_dict(self) -> dict[str, Any]:
        """What `kb criteria --assumptions --json` lists: the values allowed as a list of
        choices, or as the range of days a days assumption accepts."""
        return {
            "id": self.id,
            "default": self.default,
            "allowed": list(self.allowed) or f"{self.minimum}-{self.maximum} days",
            "resolves": self.resolves,
            "reason": self.reason,
            "used_by": list(self.used_by),
        }


@dataclass(frozen=True)
class AssumptionSet:
    """The values in force for one answer: the defaults with any overrides."""

    registry: Mapping[str, Assumption]
    values: Mapping[str, AssumptionValue] = field(default_factory=dict)

    def __getitem__(self, key: str) -> AssumptionValue:
        return self.values.get(key, self.registry[key].default)

    def days(self, key: str) -> int:
        value = self[key]
        assert isinstance(value, int)
        return value

    def in_force(self) -> dict[str, AssumptionValue]:
        return {key: self[key] for key in sorted(self.registry)}

    def changed(self) -> dict[str, AssumptionValue]:
        return {k: v for k, v in sorted(self.values.items()) if v != self.registry[k].default}


@lru_cache(maxsize=1)
def load_assumptions() -> dict[str, Assumption]:
    with ASSUMPTIONS_FILE.open("rb") as fh:
        data = tomllib.load(fh)
    registry = {}
    for entry in data["assumption"]:
        registry[entry["id"]] = Assumption(
            id=entry["id"],
            kind=entry["kind"],
            default=entry["default"],
            allowed=tuple(entry.get("allowed", ())),
            minimum=entry.get("min"),
            maximum=entry.get("max"),
            resolves=entry["resolves"],
            reason=entry["reason"],
            used_by=tuple(entry.get("used_by", ())),
            label=entry.get("label", entry["id"]),
            group=entry.get("group", GROUPS[0]),
        )
    return registry


def resolve_assumptions(overrides: Iterable[str] | Mapping[str, str] = ()) -> AssumptionSet:
    """Defaults overridden by `ID=VALUE` strings (or a mapping); bad ones raise KbError."""
    registry = load_assumptions()
    pairs = overrides.items() if isinstance(overrides, Mapping) else (_split(o) for o in overrides)
    values: dict[str, AssumptionValue] = {}
    for key, text in pairs:
        spec = registry.get(key)
        if spec is None:
            close = difflib.get_close_matches(key, list(registry), n=1)
            hint = f"; did you mean {close[0]}?" if close else f"; known: {', '.join(sorted(registry))}"
            raise KbError(f"unknown assumption '{key}'{hint}")
        values[key] = spec.parse(str(text))
    return AssumptionSet(registry, values)


def _split(text: str) -> tuple[str, str]:
    key, sep, value = text.partition("=")
    if not sep or not key.strip():
        raise KbError(f"'{text}' is not ID=VALUE (e.g. lab_lookback_days=14)")
    return key.strip(), value.strip()
