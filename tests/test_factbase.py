"""One patient's facts as of the reference dates: lab selection, windows, gaps."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from decimal import Decimal
from pathlib import Path

from kb.catalogue.assumptions import resolve_assumptions
from kb.catalogue.knowledge import KnowledgeBase
from kb.factbase.build import build_facts, day_number, reference_dates
from kb.records.patients import Dataset, load_dataset
from tests.support import demo_files


def facts_of(base: object, relation: str) -> list[tuple[object, ...]]:
    return [args for rel, args in base.facts if rel == relation]  # type: ignore[attr-defined]


def test_reference_dates_default_as_documented(demo: Dataset) -> None:
    patient = demo.patient("P001")
    refs = reference_dates(patient, resolve_assumptions(), None)
    assert (refs.screening, refs.enrolment, refs.apheresis) == (
        date(2026, 11, 17),
        date(2026, 11, 24),
        date(2026, 11, 24),
    )
    moved = reference_dates(patient, resolve_assumptions(["apheresis_offset_days=10"]), date(2026, 12, 1))
    assert moved.enrolment == date(2026, 12, 1) and moved.apheresis == date(2026, 12, 11)
    assert any("--as-of" in n for n in moved.notes)


def test_without_an_enrolment_date_the_answer_says_today_was_used(demo: Dataset) -> None:
    patient = demo.patient("P001")
    patient_copy = type(patient)(**{**patient.__dict__, "enrolment_date": None, "screening_date": None})
    refs = reference_dates(patient_copy, resolve_assumptions(), None, today=date(2026, 11, 25))
    assert refs.enrolment == date(2026, 11, 25)
    assert any("today (2026-11-25) was used" in n for n in refs.notes)


def test_the_latest_result_in_the_window_is_used(kb: KnowledgeBase, write_dataset: Callable[..., Path]) -> None:
    files = demo_files("P001")
    extra = {**next(r for r in files["observations"] if r["item"] == "platelets")}
    files["observations"] += [
        {**extra, "value": "30", "date": "2026-11-01"},  # older, in window
        {**extra, "value": "99", "date": "2026-11-30"},
    ]  # after enrolment: ignored
    base = build_facts(load_dataset(write_dataset(**files)).patient("P001"), kb, resolve_assumptions())
    assert [a for a in facts_of(base, "obs_num") if a[1] == "platelets"] == [
        ("P001", "platelets", Decimal(50), day_number(date(2026, 11, 17)))
    ]
    provenance = base.provenance[("obs_num", ("P001", "platelets", Decimal(50), day_number(date(2026, 11, 17))))]
    assert "latest of 2 results" in provenance.description and provenance.source is not None


def test_a_result_older_than_the_lookback_is_stale(kb: KnowledgeBase, demo: Dataset) -> None:
    base = build_facts(demo.patient("P007"), kb, resolve_assumptions())
    assert not [a for a in facts_of(base, "obs_num") if a[1] == "platelets"]
    (gap,) = base.gaps_for("obs_num", "platelets")
    assert gap.reason == "stale" and "2026-10-01" in gap.detail
    longer = build_facts(demo.patient("P007"), kb, resolve_assumptions(["lab_lookback_days=60"]))
    assert [a for a in facts_of(longer, "obs_num") if a[1] == "platelets"]


def test_derived_values_carry_their_derivation(kb: KnowledgeBase, demo: Dataset) -> None:
    base = build_facts(demo.patient("P001"), kb, resolve_assumptions())
    assert facts_of(base, "crcl") == [("P001", Decimal("70.44"))]
    assert ("P001", "enrolment", Decimal(50)) in facts_of(base, "age_at")
    derivation = base.provenance[("crcl", ("P001", Decimal("70.44")))].derivation
    assert derivation is not None and "Cockcroft" in derivation.name


def test_measured_clearance_wins(kb: KnowledgeBase, demo: Dataset) -> None:
    base = build_facts(demo.patient("P016"), kb, resolve_assumptions())
    assert facts_of(base, "crcl") == [("P016", Decimal(95))]


def test_events_become_day_ranges_and_unknown_names_are_kept(kb: KnowledgeBase, demo: Dataset) -> None:
    base = build_facts(demo.patient("P015"), kb, resolve_assumptions())
    assert ("P015", "vaccination", day_number(date(2026, 11, 15)), day_number(date(2026, 11, 15))) in facts_of(
        base, "unrecognised"
    )
    (gap,) = base.gaps_for("unrecognised", "vaccination")
    assert gap.reason == "unknown_term" and gap.item == "vaccination:Foovax"
    ongoing = build_facts(demo.patient("P001"), kb, resolve_assumptions())
    hcq = [a for a in facts_of(ongoing, "event") if a[2] == "hydroxychloroquine"]
    assert hcq == [
        ("P001", "medication", "hydroxychloroquine", day_number(date(2020, 1, 1)), day_number(date(2026, 11, 24)))
    ]  # ongoing: up to the as-of date


def test_cohort_comes_from_codes_with_the_default_code_system(kb: KnowledgeBase, demo: Dataset) -> None:
    base = build_facts(demo.patient("P005"), kb, resolve_assumptions())
    assert facts_of(base, "cohort_diagnosis") == [("P005", "aps", "D68.6", day_number(date(2019, 3, 1)))]
    us = build_facts(demo.patient("P005"), kb, resolve_assumptions(["default_code_system=icd10cm"]))
    assert facts_of(us, "cohort_diagnosis") == []  # D68.6 alone is not APS in ICD-10-CM
