"""Eligible until: the first day eligibility lapses by itself, and why."""

from __future__ import annotations

from datetime import date

import pytest

from kb.catalogue.assumptions import resolve_assumptions
from kb.catalogue.knowledge import KnowledgeBase
from kb.reasoning.until import eligible_until
from kb.reasoning.whatif import parse_change, what_if
from kb.records.patients import Dataset


@pytest.mark.parametrize(
    ("pid", "last", "reason"),
    [
        ("P004", date(2026, 11, 24), ("GI2", "pass", "fail")),  # 66th birthday the next day
        ("P023", date(2026, 12, 15), ("GI6.3", "pass", "unknown")),  # results of 11-17 stale after 28 days
        ("P020", date(2026, 11, 27), ("GI6.7", "pass", "unknown")),  # results of 10-30
    ],
)
def test_the_last_eligible_day_and_the_first_lapse(
    kb: KnowledgeBase, demo: Dataset, pid: str, last: date, reason: tuple[str, str, str]
) -> None:
    lapse = eligible_until(demo.patient(pid), kb, resolve_assumptions())
    assert (
        lapse is not None and lapse.last_eligible == last and lapse.lapses_on == date.fromordinal(last.toordinal() + 1)
    )
    assert reason in [r[:3] for r in lapse.reasons]
    # the answer agrees with moving enrolment by hand (histories re-confirmed as the answer assumes)
    for day, verdict in (
        (last, "eligible"),
        (lapse.lapses_on, "needs_data" if reason[2] == "unknown" else "ineligible"),
    ):
        moved = [f"enrolment={day.isoformat()}"] + [
            f"{a.item}=yes@{day.isoformat()}" for a in demo.patient(pid).attestations if a.item.startswith("reviewed:")
        ]
        after = what_if(demo.patient(pid), [parse_change(t, kb.vocabulary) for t in moved], kb).after
        assert after.verdict == verdict


def test_not_eligible_now_has_no_until(kb: KnowledgeBase, demo: Dataset) -> None:
    assert eligible_until(demo.patient("P061"), kb, resolve_assumptions()) is None


def test_the_answer_says_what_it_assumes(kb: KnowledgeBase, demo: Dataset) -> None:
    lapse = eligible_until(demo.patient("P004"), kb, resolve_assumptions())
    assert lapse is not None
    text = lapse.describe()
    assert "eligible until 2026-11-24" in text and "reviewed histories re-confirmed" in text
    assert lapse.as_dict()["lapses_on"] == "2026-11-25"
