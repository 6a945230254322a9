"""Eligible until: the first day on which an eligible patient stops being eligible by itself.

An investigator who has an eligible patient (or a repair that makes one) needs to know how
long that holds if nothing is done: a result leaves the look-back window, the 66th birthday
comes, a treatment falls out of the window a definition needs. The patient is evaluated as
if enrolled on later days with nothing new recorded and the reviewed histories re-confirmed
up to each day (DESIGN.md: a review covers the days before it; without re-confirmation every
history would lapse the next morning, which tells nobody anything). Lapses are taken to be
lasting (no data is added, so a window that has closed stays closed); the days on which a
result turns stale or a birthday falls are probed first, then the gap is bisected.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from kb.catalogue.assumptions import AssumptionSet
from kb.catalogue.knowledge import KnowledgeBase
from kb.factbase.build import reference_dates
from kb.reasoning.evaluation import Assessment, assess
from kb.reasoning.whatif import apply_changes, moved_enrolment
from kb.records.patients import Patient
from kb.status import Verdict

__all__ = ["HORIZON_DAYS", "Lapse", "eligible_until"]

#: How far ahead a lapse is looked for.
HORIZON_DAYS = 730
CONDITION = "nothing new recorded, and the reviewed histories re-confirmed up to enrolment"


@dataclass(frozen=True)
class Lapse:
    """When eligibility ends: `lapses_on` is None when it holds to the horizon."""

    patient_id: str
    enrolment: date
    last_eligible: date
    lapses_on: date | None
    reasons: tuple[tuple[str, str, str, str], ...]  # criterion, status before, after, message after
    horizon: date
    condition: str = CONDITION

    def describe(self) -> str:
        if self.lapses_on is None:
            return f"eligible at least until {self.horizon.isoformat()} ({self.condition})"
        changed = ", ".join(f"{cid} {before} → {after}" for cid, before, after, _ in self.reasons)
        first = self.reasons[0][3] if self.reasons else ""
        return (
            f"eligible until {self.last_eligible.isoformat()}; from {self.lapses_on.isoformat()}: {changed} "
            f"(first: {first}) — assuming {self.condition}"
        )

    def as_dict(self) -> dict[str, Any]:
        return {
            "enrolment": self.enrolment.isoformat(),
            "eligible_until": self.last_eligible.isoformat() if self.lapses_on else None,
            "lapses_on": self.lapses_on.isoformat() if self.lapses_on else None,
            "horizon": self.horizon.isoformat(),
            "reasons": [{"criterion": c, "before": b, "after": a, "message": m} for c, b, a, m in self.reasons],
            "condition": self.condition,
        }


def eligible_until(
    patient: Patient, kb: KnowledgeBase, assumptions: AssumptionSet, as_of: date | None = None
) -> Lapse | None:
    """The first day eligibility lapses, or None if the patient is not eligible now."""
    reference = reference_dates(patient, assumptions, as_of)
    start = reference.enrolment
    cache: dict[date, Assessment] = {}

    def at(day: date, explain: str = "status") -> Assessment:
        if explain != "status" or day not in cache:
            changes = moved_enrolment(patient, reference, day, kb.vocabulary) if day != start else []
            moved, _ = apply_changes(patient, changes, kb.vocabulary, start)
            answer = assess(moved, kb, assumptions, day, explain=explain)
            if explain != "status":
                return answer
            cache[day] = answer
        return cache[day]

    def eligible(day: date) -> bool:
        return at(day).verdict == Verdict.ELIGIBLE

    if not eligible(start):
        return None
    horizon = start + timedelta(days=HORIZON_DAYS)
    last = _last_eligible(start, horizon, _likely_lapses(patient, reference.enrolment, assumptions), eligible)
    if last is None:
        return Lapse(patient.id, start, horizon, None, (), horizon)
    lapse = last + timedelta(days=1)
    before = {r.id: r.status for r in at(last).criteria}
    after = at(lapse, explain="decisive")
    reasons = tuple(
        (r.id, before[r.id], r.status, r.message)
        for r in after.criteria
        if r.status != before[r.id] and r.criterion.counted
    )
    return Lapse(patient.id, start, last, lapse, reasons, horizon)


def _likely_lapses(patient: Patient, enrolment: date, assumptions: AssumptionSet) -> list[date]:
    """The days a result turns stale and the 66th birthday: where lapses usually fall."""
    lookback = assumptions.days("lab_lookback_days")
    latest: dict[str, date] = {}
    for obs in patient.observations:
        if obs.date <= enrolment:
            latest[obs.item] = max(obs.date, latest.get(obs.item, obs.date))
    days = {d + timedelta(days=lookback + 1) for d in latest.values()}
    if patient.birth_date is not None:
        birth = patient.birth_date
        try:
            days.add(birth.replace(year=birth.year + 66))
        except ValueError:  # born on 29 February
            days.add(date(birth.year + 66, 3, 1))
    return sorted(d for d in days if d > enrolment)


def _last_eligible(start: date, horizon: date, probes: list[date], eligible: Callable[[date], bool]) -> date | None:
    """The last eligible day before the first lapse (None: none before the horizon)."""
    low, high = start, None
    for day in probes:
        if day > horizon:
            break
        if eligible(day):
            low = day
        else:
            high = day
            break
    if high is None:
        if eligible(horizon):
            return None
        high = horizon
    if eligible(high - timedelta(days=1)):
        return high - timedelta(days=1)
    high -= timedelta(days=1)
    while (high - low).days > 1:  # low eligible, high not
        middle = low + timedelta(days=(high - low).days // 2)
        if eligible(middle):
            low = middle
        else:
            high = middle
    return low
