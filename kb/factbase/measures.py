"""Facts computed from several results at once: scores, progression, aPL persistence.

A single lab value becomes one fact (kb/factbase/build.py); these need a set or a series: the
items of an instrument (`score`), two results of one item a known time apart (`worsening`),
or every positive antiphospholipid test (`apl_positive_tests`). Each fact carries its
derivation, shown as a node of the proof tree, and what is missing becomes a gap.
"""

from __future__ import annotations

from datetime import date, timedelta
from decimal import ROUND_HALF_UP, Decimal
from functools import lru_cache

from kb.catalogue.assumptions import AssumptionSet
from kb.catalogue.derived import Derivation
from kb.catalogue.instruments import Instrument, Measure, load_instruments, measure_instrument
from kb.catalogue.vocabulary import Vocabulary
from kb.factbase.fact_types import FactBase, Gap, Provenance
from kb.records.patients import Observation, Patient
from kb.records.units import exact

__all__ = [
    "APL_ITEMS",
    "PROGRESSION_ITEMS",
    "WORSENING_RESOLUTION",
    "add_measures",
    "apl_series",
    "worsening_value",
]

#: items whose change over time is a criterion: mRSS rises, FVC and DLCO fall
PROGRESSION_ITEMS = {"mrss": "increase", "fvc_pct": "decline", "dlco_pct": "decline"}
#: relative changes are rounded to this many percent before any comparison
WORSENING_RESOLUTION = Decimal("0.01")
#: the antiphospholipid tests of APS-I2, and the results that count as medium-to-high positive
APL_ITEMS = {
    "lupus_anticoagulant": ("positive",),
    "anticardiolipin": ("medium", "high"),
    "anti_b2gpi": ("medium", "high"),
}


def add_measures(
    base: FactBase,
    patient: Patient,
    selected: dict[str, Observation],
    vocab: Vocabulary,
    assumptions: AssumptionSet,
) -> None:
    by_instrument: dict[str, dict[str, str]] = {}
    for name, obs in selected.items():
        prefix, dot, _ = name.partition(".")
        if dot:
            by_instrument.setdefault(prefix, {})[name] = str(obs.value)
    for instrument in load_instruments().values():
        values = by_instrument.get(instrument.id, {})
        _scores(base, instrument, values, selected, str(assumptions["bvas_major_items"]))
    for item, direction in PROGRESSION_ITEMS.items():
        _worsening(base, patient, item, direction, assumptions)
    _apl_tests(base, patient, assumptions)


def _measures(instrument: Instrument, values: dict[str, str], major_set: str, explain: bool) -> list[Measure]:
    """`measure_instrument`, remembered for the ranges alone (screening)."""
    if explain:
        return measure_instrument(instrument, values, major_set)
    return _ranges(instrument.id, tuple(sorted(values.items())), major_set)


@lru_cache(maxsize=50_000)
def _ranges(instrument: str, values: tuple[tuple[str, str], ...], major_set: str) -> list[Measure]:
    """An instrument's ranges by its id (the instruments are loaded once, `load_instruments`):
    item values are a few categories, so a clinic's patients repeat the same combinations."""
    return measure_instrument(load_instruments()[instrument], dict(values), major_set, explain=False)


def _scores(
    base: FactBase,
    instrument: Instrument,
    values: dict[str, str],
    selected: dict[str, Observation],
    major_set: str,
) -> None:
    """`values`: the instrument's recorded items (item name → value)."""
    measures = _measures(instrument, values, major_set, explain=not base.lean) if values else []
    recorded_total = selected.get(instrument.total_item) if instrument.total_item else None
    unrecorded = [] if base.lean else [n for i in instrument.items if (n := instrument.item_name(i)) not in values]
    if unrecorded:
        what = "none of its items recorded" if not values else f"not recorded: {', '.join(unrecorded)}"
        base.gap("instrument", instrument.id, Gap(f"{instrument.id} items", "missing", f"{instrument.label}: {what}"))
    for m in measures:
        if m.measure == "total" and recorded_total is not None:
            continue  # the recorded total (the CRF's) is used instead, below

        def provenance(m: Measure = m) -> Provenance:
            shown = exact(m.low) if m.low == m.high else f"{exact(m.low)} to {exact(m.high)}"
            derivation = Derivation(f"{instrument.id} {m.measure}", m.formula, m.inputs, m.low)
            # from many rows: the derivation lists them, no single row is "the" source
            return Provenance(f"{instrument.label}, {m.measure}: {shown} (from items)", None, derivation)

        base.add("score", (base.patient_id, instrument.id, m.measure, m.low, m.high), provenance)
    if recorded_total is not None:
        value = Decimal(recorded_total.value)
        base.add(
            "score",
            (base.patient_id, instrument.id, "total", value, value),
            Provenance(
                f"{instrument.label}, total: {exact(value)} (recorded total, {recorded_total.date.isoformat()})",
                recorded_total.source,
            ),
        )


def _worsening(base: FactBase, patient: Patient, item: str, direction: str, assumptions: AssumptionSet) -> None:
    """Relative change from the earliest result in the progression window to the current one."""
    enrolment = base.reference.enrolment
    lookback = assumptions.days("lab_lookback_days")
    span = assumptions.days("progression_window_days")
    results = sorted((o for o in patient.observations if o.item == item and o.date <= enrolment), key=lambda o: o.date)
    current = results[-1] if results else None
    if current is None or current.date < enrolment - timedelta(days=lookback):
        base.gap("worsening", item, Gap(item, "missing", f"no current {item} result within {lookback} days"))
        return
    earlier = [o for o in results if current.date - timedelta(days=span) <= o.date < current.date]
    if not earlier:
        detail = f"no earlier {item} result within {span} days before {current.date.isoformat()} to compare with"
        base.gap("worsening", item, Gap(f"{item} (reference)", "missing", detail))
        return
    reference = earlier[0]
    now, ref = Decimal(current.value), Decimal(reference.value)
    absolute = item != "mrss" and assumptions["fvc_decline_mode"] == "absolute"
    found = worsening_value(direction, now, ref, absolute)
    if absolute:
        assert found is not None
        value, formula = found, f"reference - current, in percentage points of predicted ({direction})"
    elif found is None:
        base.gap("worsening", item, Gap(f"{item} (reference)", "missing", f"reference {item} is 0: no relative change"))
        return
    else:
        value = found
        sign = "current - reference" if direction == "increase" else "reference - current"
        formula = f"({sign}) / reference × 100, rounded to {WORSENING_RESOLUTION}%"
    derivation = Derivation(
        f"{item} {direction}",
        formula,
        (
            (f"reference {item} ({reference.date.isoformat()})", str(exact(ref))),
            (f"current {item} ({current.date.isoformat()})", str(exact(now))),
        ),
        value,
    )
    unit = " points" if absolute else "%"
    base.add(
        "worsening",
        (base.patient_id, item, value),
        Provenance(
            f"{item} {direction} {exact(value)}{unit} since {reference.date.isoformat()}", current.source, derivation
        ),
    )


def worsening_value(direction: str, now: Decimal, ref: Decimal, absolute: bool) -> Decimal | None:
    """The change from `ref` to `now` that counts as worsening (`direction`: increase or
    decline): in points if `absolute`, else in percent of `ref`, rounded to
    WORSENING_RESOLUTION (None when `ref` is 0: no relative change)."""
    change = (now - ref) if direction == "increase" else (ref - now)
    if absolute:
        return change
    if ref == 0:
        return None
    return (change / ref * 100).quantize(WORSENING_RESOLUTION, rounding=ROUND_HALF_UP)


def apl_series(positive: list[date], window: int, apart: bool) -> list[date]:
    """The dates of one aPL test that count (`positive`: sorted, distinct): with `apart`, the
    earliest, then each next one at least `window` days later; else the most within one span
    of `window` days (the earliest such span)."""
    series: list[date] = []
    if apart:
        for day in positive:
            if not series or (day - series[-1]).days >= window:
                series.append(day)
        return series
    for start in positive:
        run = [d for d in positive if start <= d <= start + timedelta(days=window)]
        if len(run) > len(series):
            series = run
    return series


def _apl_tests(base: FactBase, patient: Patient, assumptions: AssumptionSet) -> None:
    """How many medium-to-high positive aPL test dates count for APS-I2 (assumption
    apl_timing): the longest series of one antibody each at least `apl_window_days` after the
    one before (the Sydney 2006 persistence), or the most within one span of that many days."""
    enrolment = base.reference.enrolment
    window = assumptions.days("apl_window_days")
    apart = assumptions["apl_timing"] == "sydney_apart"
    tested = [o for o in patient.observations if o.item in APL_ITEMS and o.date <= enrolment]
    if not tested:
        base.gap("apl", "", Gap("lupus_anticoagulant", "missing", "no antiphospholipid antibody results"))
        return
    best: list[date] = []
    for item in APL_ITEMS:  # persistence is of one antibody: LA twice, not LA then aCL
        positive = sorted({o.date for o in tested if o.item == item and str(o.value) in APL_ITEMS[item]})
        series = apl_series(positive, window, apart)
        if len(series) > len(best):
            best = series
    how = f"each at least {window} days after the one before" if apart else f"within {window} days"
    inputs = tuple((f"{o.item} {o.date.isoformat()}", str(o.value)) for o in sorted(tested, key=lambda o: o.date))
    derivation = Derivation(
        "positive aPL tests",
        f"largest number of dates with a medium/high positive result of one aPL test {how}",
        inputs,
        Decimal(len(best)),
    )
    dates = ", ".join(d.isoformat() for d in best) or "none"
    base.add(
        "apl_positive_tests",
        (base.patient_id, Decimal(len(best))),
        Provenance(f"{len(best)} positive aPL test dates {how} ({dates})", None, derivation),
    )
