"""Facts from several results: relative worsening with its reference, aPL persistence, and
a recorded total used in place of the items' sum."""

from __future__ import annotations

from dataclasses import replace
from decimal import Decimal

from kb.catalogue.assumptions import resolve_assumptions
from kb.catalogue.knowledge import KnowledgeBase
from kb.factbase.build import build_facts
from kb.records.patients import Dataset


def facts(kb: KnowledgeBase, demo: Dataset, pid: str, relation: str, *assume: str) -> list[tuple[object, ...]]:
    base = build_facts(demo.patient(pid), kb, resolve_assumptions(list(assume)))
    return [args for name, args in base.facts if name == relation]


def test_mrss_increase_is_relative_to_the_earliest_result_in_the_window(kb: KnowledgeBase, demo: Dataset) -> None:
    assert ("P031", "mrss", Decimal("10.53")) in facts(kb, demo, "P031", "worsening")  # 19 -> 21
    assert ("P032", "mrss", Decimal("10.00")) in facts(kb, demo, "P032", "worsening")  # 20 -> 22


def test_fvc_decline_relative_or_absolute(kb: KnowledgeBase, demo: Dataset) -> None:
    assert ("P033", "fvc_pct", Decimal("5.00")) in facts(kb, demo, "P033", "worsening")  # 80 -> 76
    assert ("P033", "fvc_pct", Decimal("4")) in facts(kb, demo, "P033", "worsening", "fvc_decline_mode=absolute")


def test_no_reference_inside_the_window_leaves_a_gap(kb: KnowledgeBase, demo: Dataset) -> None:
    base = build_facts(demo.patient("P031"), kb, resolve_assumptions(["progression_window_days=300"]))
    assert not [a for n, a in base.facts if n == "worsening" and a[1] == "mrss"]
    assert [g.item for g in base.gaps_for("worsening", "mrss")] == ["mrss (reference)"]


def test_apl_tests_count_as_the_sydney_persistence_or_within_one_window(kb: KnowledgeBase, demo: Dataset) -> None:
    # the Sydney 2006 persistence by default: each counted test at least 84 days after the one before
    assert facts(kb, demo, "P005", "apl_positive_tests") == [("P005", Decimal(2))]  # exactly 84 days apart
    assert facts(kb, demo, "P073", "apl_positive_tests") == [("P073", Decimal(2))]  # 91 days apart
    assert facts(kb, demo, "P005", "apl_positive_tests", "apl_window_days=85") == [("P005", Decimal(1))]
    assert facts(kb, demo, "P051", "apl_positive_tests") == [("P051", Decimal(3))]  # 85 and 85 days apart
    # read literally: the most positive tests within one span of 84 days
    literal = "apl_timing=within_window"
    assert facts(kb, demo, "P005", "apl_positive_tests", literal) == [("P005", Decimal(2))]
    assert facts(kb, demo, "P073", "apl_positive_tests", literal) == [("P073", Decimal(1))]
    assert facts(kb, demo, "P051", "apl_positive_tests", literal) == [("P051", Decimal(1))]


def test_a_recorded_total_stands_for_the_items(kb: KnowledgeBase, demo: Dataset) -> None:
    scores = facts(kb, demo, "P044", "score")
    assert ("P044", "bvas", "total", Decimal(14), Decimal(14)) in scores  # the CRF total, not 1 + 4 from items
    assert ("P044", "bvas", "renal", Decimal(1), Decimal(1)) in scores  # parts still come from the items


def test_score_facts_carry_their_derivation(kb: KnowledgeBase, demo: Dataset) -> None:
    base = build_facts(demo.patient("P017"), kb, resolve_assumptions())
    fact = ("score", ("P017", "sle_2019", "total", Decimal(10), Decimal(10)))
    derivation = base.provenance[fact].derivation
    assert derivation is not None and "highest weight" in derivation.formula
    assert ("sle_2019.low_c3_and_c4", "present") in derivation.inputs


def test_persistence_is_of_one_antibody(kb: KnowledgeBase, demo: Dataset) -> None:
    # lupus anticoagulant once and anticardiolipin 84 days later: two antibodies, once each
    patient = demo.patient("P005")
    first, second = (o for o in patient.observations if o.item == "lupus_anticoagulant")
    mixed = replace(patient, observations=[o for o in patient.observations if o is not second])
    mixed.observations.append(replace(second, item="anticardiolipin", value="medium"))
    base = build_facts(mixed, kb, resolve_assumptions())
    assert [a for n, a in base.facts if n == "apl_positive_tests"] == [("P005", Decimal(1))]
    assert (second.date - first.date).days == 84
