"""Scores and classification criteria computed from item facts, three-valued.

An instrument (SELENA-SLEDAI, BVAS, the 2019 SLE criteria ...) is data in
`kb/rules/instruments.toml`. For one patient it yields, per measure (a points column such
as `total` or `gpa`, or a part such as `entry` or `major`, counted in present items), the
least and greatest value over the items not recorded: the worst and best completion of
the record. Every threshold the protocol applies is monotone in each item, so a rule that
asks `Lo >= 10` is true for every completion and one that asks `Hi < 10` is false for every
completion; in between the criterion is unknown and the unrecorded items are what to
collect. Thresholds live in the rules, where they read with the criterion.
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from functools import lru_cache

from kb.paths import PACKAGE_DIR

__all__ = [
    "INSTRUMENTS_FILE",
    "Instrument",
    "InstrumentItem",
    "Measure",
    "load_instruments",
    "measure_instrument",
]

INSTRUMENTS_FILE = PACKAGE_DIR / "rules" / "instruments.toml"
PRESENT = "present"
ABSENT = "absent"


@dataclass(frozen=True)
class InstrumentItem:
    name: str  # within the instrument; the observation item is `<instrument>.<name>`
    points: tuple[Decimal | None, ...]  # one per column; None: does not count in that column
    domain: str
    parts: tuple[str, ...]
    label: str


@dataclass(frozen=True)
class Instrument:
    id: str
    label: str
    window: str  # lookback | ever
    domains: str  # sum | max | cap
    columns: tuple[str, ...]
    items: tuple[InstrumentItem, ...]
    caps: Mapping[str, Decimal]
    grades: tuple[str, ...]  # grade instruments: each item takes one grade; parts count grades
    total_item: str  # an observation item carrying the recorded total, if any
    sets: Mapping[str, tuple[str, ...]]  # named item sets chosen by an assumption (BVAS major items)

    def item_name(self, item: InstrumentItem) -> str:
        return f"{self.id}.{item.name}"

    @property
    def item_values(self) -> tuple[str, ...]:
        return self.grades or (PRESENT, ABSENT)


@dataclass(frozen=True)
class Measure:
    """One measure of one instrument for one patient: its range and how it was obtained."""

    instrument: str
    measure: str
    low: Decimal
    high: Decimal
    formula: str
    inputs: tuple[tuple[str, str], ...]


def _number(text: str) -> Decimal | None:
    return None if text == "-" else Decimal(text)


def _parse_items(instrument_id: str, text: str, columns: int, grades: bool) -> tuple[InstrumentItem, ...]:
    items = []
    for n, line in enumerate(text.strip().splitlines(), start=1):
        spec, _, label = line.partition("--")
        fields = spec.split()
        if grades:
            if len(fields) != 1:
                raise ValueError(f"instruments.toml: {instrument_id} item line {n}: a grade item is just its name")
            items.append(InstrumentItem(fields[0], (), "", (), label.strip()))
            continue
        if len(fields) != columns + 3:
            raise ValueError(
                f"instruments.toml: {instrument_id} item line {n}: expected name, {columns} points, domain, parts"
            )
        name, *points, domain, parts = fields
        items.append(
            InstrumentItem(
                name,
                tuple(_number(p) for p in points),
                "" if domain == "." else domain,
                () if parts == "." else tuple(parts.split(",")),
                label.strip(),
            )
        )
    return tuple(items)


@lru_cache(maxsize=1)
def load_instruments() -> dict[str, Instrument]:
    with INSTRUMENTS_FILE.open("rb") as fh:
        data = tomllib.load(fh)
    sets = data.get("instrument_sets", {})
    instruments = {}
    for entry in data["instrument"]:
        grades = tuple(entry.get("grades", ()))
        columns = tuple(entry.get("columns", ()))
        instrument = Instrument(
            id=entry["id"],
            label=entry["label"],
            window=entry["window"],
            domains=entry.get("domains", "sum"),
            columns=columns,
            items=_parse_items(entry["id"], entry["items"], len(columns), bool(grades)),
            caps={k: Decimal(v) for k, v in entry.get("caps", {}).items()},
            grades=grades,
            total_item=entry.get("total_item", ""),
            sets={name: tuple(values) for name, values in sets.get(f"{entry['id']}_major_items", {}).items()},
        )
        instruments[instrument.id] = instrument
    return instruments


def measure_instrument(
    instrument: Instrument,
    values: Mapping[str, str],
    major_set: str = "",
    explain: bool = True,
) -> list[Measure]:
    """The measures of `instrument` given the recorded item values (item name → value).

    Items missing from `values` are unknown. No item recorded at all: no measure (the
    caller may still use a recorded total). `explain=False` leaves out the formula and
    inputs (screening thousands of patients needs the ranges only).
    """
    recorded = {i.name: values[instrument.item_name(i)] for i in instrument.items if instrument.item_name(i) in values}
    if not recorded:
        return []
    unknown = [i.name for i in instrument.items if i.name not in recorded]

    def inputs_of(members: set[str]) -> tuple[tuple[str, str], ...]:
        """The members present or not recorded (the absent ones are only counted)."""
        if not explain:
            return ()
        shown = [
            (instrument.item_name(i), recorded.get(i.name, "not recorded"))
            for i in instrument.items
            if i.name in members and recorded.get(i.name) != ABSENT
        ]
        absent = sum(1 for i in instrument.items if i.name in members and recorded.get(i.name) == ABSENT)
        return (*shown, ("items recorded absent", str(absent))) if absent else tuple(shown)

    note = f"; not recorded: {', '.join(unknown)}" if unknown else ""
    measures: list[Measure] = []
    if instrument.grades:
        for grade in instrument.grades[:2]:  # the counts the criteria use: grade A and grade B
            graded = sum(1 for v in recorded.values() if v == grade)
            formula = f"number of systems graded {grade.upper()}{note}"
            measures.append(
                Measure(
                    instrument.id,
                    f"grade_{grade}",
                    Decimal(graded),
                    Decimal(graded + len(unknown)),
                    formula,
                    inputs_of({i.name for i in instrument.items}),
                )
            )
        return measures
    present = {name for name, v in recorded.items() if v == PRESENT}
    for column_index, column in enumerate(instrument.columns):
        low, high = _column_range(instrument, column_index, present, set(unknown))
        formula = f"{_rule_text(instrument)} ({column} points){note}"
        counted = {i.name for i in instrument.items if i.points[column_index] is not None}
        measures.append(Measure(instrument.id, column, low, high, formula, inputs_of(counted)))
    parts: dict[str, set[str]] = {}
    for item in instrument.items:
        for part in item.parts:
            parts.setdefault(part, set()).add(item.name)
    if instrument.sets:
        major = set(instrument.sets[major_set])
        parts["major"] = major
        parts["minor"] = {i.name for i in instrument.items} - major
    for part, members in sorted(parts.items()):
        count = len(members & present)
        formula = f"number of present items among: {', '.join(sorted(members))}{note}"
        measures.append(
            Measure(
                instrument.id,
                part,
                Decimal(count),
                Decimal(count + len(members & set(unknown))),
                formula,
                inputs_of(members),
            )
        )
    return measures


def _rule_text(instrument: Instrument) -> str:
    return {
        "sum": "sum of the points of present items",
        "max": "sum over domains of the highest weight present in each",
        "cap": "sum over systems of the points present, each system capped",
    }[instrument.domains]


def _column_range(instrument: Instrument, column: int, present: set[str], unknown: set[str]) -> tuple[Decimal, Decimal]:
    """Least and greatest column total: unknown items chosen worst, then best."""
    worst = {i.name for i in instrument.items if i.name in unknown and (i.points[column] or 0) < 0}
    best = {i.name for i in instrument.items if i.name in unknown and (i.points[column] or 0) > 0}
    return _total(instrument, column, present | worst), _total(instrument, column, present | best)


def _total(instrument: Instrument, column: int, chosen: set[str]) -> Decimal:
    by_domain: dict[str, list[Decimal]] = {}
    total = Decimal(0)
    for item in instrument.items:
        points = item.points[column]
        if item.name not in chosen or points is None:
            continue
        if instrument.domains == "sum" or not item.domain:
            total += points
        else:
            by_domain.setdefault(item.domain, []).append(points)
    for domain, points_list in by_domain.items():
        if instrument.domains == "max":
            total += max(points_list)
        else:
            total += min(sum(points_list, Decimal(0)), instrument.caps.get(domain, Decimal("Infinity")))
    return total
