"""How long an exposure lasts and which records make one course (kb/factbase/exposures.py)."""

from __future__ import annotations

from datetime import date

import pytest

from kb.factbase.exposures import courses, exposure_end, ongoing, single_dose
from kb.records.patients import Event, Source

ENROLMENT, APHERESIS = date(2026, 11, 24), date(2026, 12, 15)
REFERENCES = (date(2026, 11, 17), ENROLMENT, APHERESIS)


def event(agent: str, start: str, end: str = "", frequency: str = "", kind: str = "medication", row: int = 1) -> Event:
    return Event(
        kind,
        agent,
        agent,
        "",
        date.fromisoformat(start),
        date.fromisoformat(end) if end else None,
        Source("events.csv", row),
        frequency=frequency,
    )


@pytest.mark.parametrize(
    ("record", "last_day", "still_taken"),
    [
        (event("tacrolimus", "2026-06-01", "2026-11-10"), date(2026, 11, 10), False),  # an end date ends it
        (event("tacrolimus", "2026-06-01", frequency="bid"), APHERESIS, True),  # no end: through apheresis
        (event("peginterferon_alfa_2a", "2026-12-01", frequency="weekly"), APHERESIS, True),  # starts after enrolment
        (event("obinutuzumab", "2026-09-25", frequency="once"), date(2026, 9, 25), False),  # one infusion
        (event("tacrolimus", "2026-06-01", frequency="once"), APHERESIS, True),  # a tablet "once": once daily
        (event("tacrolimus", "2026-06-01", frequency="single dose"), date(2026, 6, 1), False),  # says single
        (event("prednisone", "2026-06-01", frequency="单次"), date(2026, 6, 1), False),
        (event("mmr_vaccine", "2026-11-20", kind="vaccination"), date(2026, 11, 20), False),  # a vaccination
    ],
)
def test_an_exposure_lasts_to_its_end_its_day_or_through_every_reference_date(
    record: Event, last_day: date, still_taken: bool
) -> None:
    assert exposure_end(record, REFERENCES) == last_day
    assert ongoing(record) is still_taken
    assert single_dose(record) is (not still_taken and record.end is None)


def test_consecutive_records_of_one_drug_are_one_course_counted_up_to_enrolment() -> None:
    found = courses(
        [
            event("mycophenolate_mofetil", "2025-01-01", "2025-05-31", row=1),
            event("mycophenolic_acid", "2025-06-10", "2025-09-30", row=2),  # another agent of the same drug
            event("mycophenolate_mofetil", "2026-03-01", row=3),  # 152 days later: a new course, still going
            event("hydroxychloroquine", "2026-12-01", row=4),  # starts after enrolment: not history yet
        ],
        REFERENCES,
        ENROLMENT,
        gap_days=30,
    )
    assert [(c.agent, c.start, c.end, c.days, [e.source.row for e in c.records]) for c in found] == [
        ("mycophenolate_mofetil", date(2025, 1, 1), date(2025, 9, 30), 272, [1, 2]),
        ("mycophenolate_mofetil", date(2026, 3, 1), APHERESIS, 268, [3]),  # up to enrolment, not apheresis
    ]
    assert "ongoing" in found[1].describe() and "events.csv row 3" in found[1].describe()


@pytest.mark.parametrize(("gap", "lengths"), [(9, [150, 112]), (10, [272])])
def test_a_pause_longer_than_the_gap_starts_a_new_course(gap: int, lengths: list[int]) -> None:
    records = [event("azathioprine", "2025-01-01", "2025-05-31"), event("azathioprine", "2025-06-10", "2025-09-30")]
    assert [c.days for c in courses(records, REFERENCES, ENROLMENT, gap)] == lengths
