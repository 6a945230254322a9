"""The vignette library: each vignette gets the verdict and the statuses its story names."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from kb.errors import KbError
from kb.quality.vignettes import VignetteOutcome, load_vignettes
from kb.records.patients import Dataset

VIGNETTES = load_vignettes()


@pytest.mark.parametrize("patient_id", [v.patient_id for v in VIGNETTES])
def test_each_vignette_gets_what_its_story_says(vignette_outcomes: dict[str, VignetteOutcome], patient_id: str) -> None:
    outcome = vignette_outcomes[patient_id]
    assert outcome.mismatches == ()
    assert outcome.assessment.verdict == outcome.vignette.expected_verdict
    for criterion, status in outcome.vignette.targets.items():
        assert outcome.assessment.result(criterion).status == status


def test_the_library_covers_every_cohort_with_stories_and_targets(
    demo: Dataset, vignette_outcomes: dict[str, VignetteOutcome]
) -> None:
    assert len(VIGNETTES) >= 40
    assert {v.patient_id for v in VIGNETTES} == set(demo.patients)
    cohorts = Counter(c.cohort for o in vignette_outcomes.values() for c in o.assessment.cohorts)
    assert all(cohorts[c] >= 5 for c in ("sle", "pss", "ssc", "iim", "aav", "aps")), cohorts
    for v in VIGNETTES:
        assert v.story and v.exercises and v.targets, v.patient_id
    assert {v.expected_verdict for v in VIGNETTES} == {"eligible", "ineligible", "needs_data"}
    eligible = {c.cohort for o in vignette_outcomes.values() for c in o.assessment.cohorts if c.verdict == "eligible"}
    assert eligible == {"sle", "pss", "ssc", "iim", "aav", "aps"}  # iim under iim_entry


def test_a_malformed_target_names_its_row(tmp_path: Path) -> None:
    (tmp_path / "stories.csv").write_text(
        "patient_id,story,expected_verdict,exercises,assume,targets\n"
        "P001,s,eligible,e,,GI2=pass\n"
        "P002,s,eligible,e,,GI2:pass\n",
        encoding="utf-8",
    )
    with pytest.raises(KbError, match=r"stories.csv:3: target 'GI2:pass' is not CRITERION=STATUS"):
        load_vignettes(tmp_path)


def test_a_data_set_without_stories_says_so(tmp_path: Path) -> None:
    with pytest.raises(KbError, match=r"no stories\.csv"):
        load_vignettes(tmp_path)
