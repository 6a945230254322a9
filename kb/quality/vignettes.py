"""The vignette library: demo patients with a story, the verdict they should get and the
criterion statuses they are meant to exercise, kept as data (`stories.csv`).

They are the trainers' material and the regression suite: the tests, `kb coverage` and
the mutation check all run them through `check_vignettes`.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

from kb.catalogue.assumptions import resolve_assumptions
from kb.catalogue.knowledge import KnowledgeBase
from kb.errors import KbError
from kb.reasoning.evaluation import Assessment, assess
from kb.records.patients import DEMO_DATASET, Dataset
from kb.status import Status

__all__ = ["Vignette", "VignetteOutcome", "check_vignettes", "load_vignettes"]

_STATUSES = frozenset(Status)  # `in Status` takes members only before Python 3.12


@dataclass(frozen=True)
class Vignette:
    patient_id: str
    story: str
    expected_verdict: str
    exercises: str
    assume: tuple[str, ...]  # ID=VALUE assumptions the vignette is evaluated under
    targets: dict[str, Status]  # criterion id -> the status it must get


@dataclass(frozen=True)
class VignetteOutcome:
    vignette: Vignette
    assessment: Assessment
    mismatches: tuple[str, ...]  # empty when the vignette gets what its story says

    @property
    def ok(self) -> bool:
        return not self.mismatches


def load_vignettes(folder: Path = DEMO_DATASET) -> list[Vignette]:
    """The vignettes of a data set, in file order; a malformed target is an error naming its row."""
    path = folder / "stories.csv"
    if not path.exists():
        raise KbError(f"{folder}: no stories.csv (the vignettes' expected verdicts and statuses)")
    vignettes = []
    with path.open(encoding="utf-8", newline="") as fh:
        for row_number, row in enumerate(csv.DictReader(fh), start=2):
            targets = {}
            for pair in (row.get("targets") or "").split():
                criterion, sep, status = pair.partition("=")
                if not sep or status not in _STATUSES:
                    raise KbError(f"{path.name}:{row_number}: target '{pair}' is not CRITERION=STATUS")
                targets[criterion] = Status(status)
            vignettes.append(
                Vignette(
                    row["patient_id"],
                    row["story"],
                    row["expected_verdict"],
                    row.get("exercises", ""),
                    tuple((row.get("assume") or "").split()),
                    targets,
                )
            )
    return vignettes


def check_vignettes(
    kb: KnowledgeBase, dataset: Dataset, vignettes: list[Vignette], explain: str = "none"
) -> list[VignetteOutcome]:
    """Evaluate every vignette under its assumptions and compare with its story."""
    outcomes = []
    for vignette in vignettes:
        patient = dataset.patients[vignette.patient_id]
        assessment = assess(patient, kb, resolve_assumptions(vignette.assume), explain=explain)
        mismatches = []
        if assessment.verdict != vignette.expected_verdict:
            mismatches.append(f"verdict {assessment.verdict}, expected {vignette.expected_verdict}")
        for criterion, status in vignette.targets.items():
            try:
                got = assessment.result(criterion).status
            except KeyError:
                mismatches.append(f"{criterion}: no such criterion")
                continue
            if got != status:
                mismatches.append(f"{criterion} {got}, expected {status}")
        outcomes.append(VignetteOutcome(vignette, assessment, tuple(mismatches)))
    return outcomes
