"""Screening a cohort: every patient's verdict and statuses, and the attrition funnel.

A coordinator screening a site's patients wants to see where they drop out: how many have
a trial diagnosis at all, how many of those meet the general inclusions, then the general
exclusions, then their own cohort's criteria. A patient leaves the funnel at the first stage
where a criterion blocks; one with data still missing stays in (not ruled out yet).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import date

from kb.assumptions import AssumptionSet
from kb.batch import evaluate_many
from kb.criteria import Criterion
from kb.evaluation import CohortVerdict, assess, criteria_with
from kb.knowledge import KnowledgeBase
from kb.patients import Dataset
from kb.repairs import find_repairs

__all__ = ["STAGES", "ScreenRow", "earliest_dates", "funnel", "screen"]

#: patients from which screening uses both cores
PARALLEL_FROM = 1000

STAGES = (
    "all patients",
    "with a trial diagnosis",
    "meeting the general inclusions",
    "clear of the general exclusions",
    "meeting their cohort's criteria",
)


@dataclass(frozen=True)
class ScreenRow:
    patient: str
    verdict: str  # eligible | needs_data | ineligible | not_evaluated (no row of the patient could be read)
    cohorts: tuple[str, ...]
    statuses: dict[str, str]  # counted criteria only
    blocking: tuple[str, ...]
    dropped_at: int  # the stage (index into STAGES) the patient leaves at; len(STAGES) if never
    unknown: tuple[str, ...] = ()
    earliest: date | None = None  # the first enrolment day, when waiting is all it takes
    #: why a patient was not evaluated, or what keeps a cohort open beyond its unknown
    #: criteria (a lost entry criterion that only an assumption can read)
    reason: str = ""

    def as_dict(self) -> dict[str, str]:
        return {
            "patient": self.patient,
            "verdict": self.verdict,
            "cohorts": " ".join(self.cohorts),
            "blocking": " ".join(self.blocking),
            "unknown": " ".join(self.unknown),
            "earliest_date": self.earliest.isoformat() if self.earliest else "",
            "left_at": STAGES[self.dropped_at] if self.dropped_at < len(STAGES) else "",
            "reason": self.reason,
        }


def _stage(crit: Criterion) -> int:
    if crit.id == "COHORT":
        return 1
    if crit.cohort == "general":
        return 2 if crit.kind == "inclusion" else 3
    return 4


def _row(
    kb: KnowledgeBase, patient_id: str, verdict: str, cohorts: tuple[CohortVerdict, ...], statuses: dict[str, str]
) -> ScreenRow:
    """A screening row from a patient's verdicts and statuses, whichever engine gave them."""
    blocking_ids = criteria_with(cohorts, "fail", kb.criteria, statuses)
    unknown_ids = criteria_with(cohorts, "unknown", kb.criteria, statuses)
    blocking = [c for c in kb.criteria if c.id in blocking_ids]
    stages = [_stage(c) for c in blocking]
    return ScreenRow(
        patient_id,
        verdict,
        tuple(c.cohort for c in cohorts),
        {c.id: statuses[c.id] for c in kb.criteria if c.counted},
        tuple(c.id for c in blocking),
        min(stages) if stages and verdict == "ineligible" else len(STAGES),
        tuple(c.id for c in kb.criteria if c.id in unknown_ids),
        reason="; ".join(c.note for c in cohorts if c.note) if verdict == "needs_data" else "",
    )


def screen(
    kb: KnowledgeBase,
    dataset: Dataset,
    assumptions: AssumptionSet,
    as_of: date | None = None,
    progress: Callable[[int, int], None] | None = None,
    engine: str = "sql",
) -> list[ScreenRow]:
    """Every input patient, in the data set's order, then those none of whose rows could be
    read (`not_evaluated`, with the reason): as many rows as the input has patients.

    `engine`: "sql", the set-at-a-time path (`kb.batch`, identical statuses, both cores), or
    "pydatalog", one patient at a time. `progress(done, total)` as patients are done.
    """
    patients = list(dataset.patients.values())
    missing = dataset.not_loaded
    total = len(patients) + len(missing)
    rows = []
    if engine == "pydatalog":
        for n, patient in enumerate(patients):
            result = assess(patient, kb, assumptions, as_of, explain="status")
            rows.append(_row(kb, patient.id, result.verdict, result.cohorts, {r.id: r.status for r in result.criteria}))
            if progress is not None:
                progress(n + 1, total)
    else:
        tick = (lambda done: progress(done, total)) if progress is not None else None
        # below a thousand patients a second process costs more than it saves (and the app
        # should not fork its server for a clinic's worth)
        workers = 1 if len(patients) < PARALLEL_FROM else None
        for verdict in evaluate_many(patients, kb, assumptions, as_of, workers=workers, progress=tick):
            rows.append(_row(kb, verdict.patient_id, verdict.verdict, verdict.cohorts, verdict.statuses))
    for pid, reason in missing.items():
        rows.append(ScreenRow(pid, "not_evaluated", (), {}, (), 0, reason=reason))
    if progress is not None:
        progress(total, total)
    return rows


def earliest_dates(
    rows: list[ScreenRow], kb: KnowledgeBase, dataset: Dataset, assumptions: AssumptionSet, as_of: date | None = None
) -> list[ScreenRow]:
    """The rows with, for each ineligible patient whom waiting alone makes eligible (the
    cheapest confirmed repair is a wait, with what moving enrolment implies), that date."""
    out = []
    for row in rows:
        if row.verdict == "ineligible":
            answer = find_repairs(dataset.patient(row.patient), kb, assumptions, as_of, max_repairs=1)
            best = answer.repairs[0] if answer.repairs else None
            if best is not None and best.cost == "wait":
                row = replace(row, earliest=best.enrolment)
        out.append(row)
    return out


def funnel(rows: list[ScreenRow]) -> list[tuple[str, int]]:
    """How many patients are still in after each stage."""
    return [(name, sum(1 for r in rows if r.dropped_at > n)) for n, name in enumerate(STAGES)]
