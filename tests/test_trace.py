"""Proof trees: the rule, its bindings, facts with sources, comparisons and negative nodes."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest

from kb.catalogue.knowledge import KnowledgeBase
from kb.reasoning.evaluation import assess
from kb.reasoning.trace import Node, _decimal
from kb.records.patients import Dataset


def find(node: Node, kind: str) -> list[Node]:
    return [n for n in node.walk() if n.kind == kind]


def test_a_failing_criterion_shows_rule_bindings_fact_source_and_comparison(kb: KnowledgeBase, demo: Dataset) -> None:
    result = assess(demo.patient("P002"), kb).result("GI6.3")
    tree = result.trace
    assert tree is not None and tree.kind == "criterion"
    assert tree.detail["protocol"] == "3. Platelets ≥50×10\\^9/L;"
    (rule,) = find(tree, "rule")
    assert rule.detail["rule"] == "platelets_adequate(P, no) :- obs_num(P, platelets, Count, _), Count < 50."
    assert "Count = 49" in rule.detail["bindings"]
    (fact,) = find(tree, "fact")
    assert fact.label == "platelets 49 ×10^9/L on 2026-11-17"
    assert fact.detail["source"].startswith("observations.csv row ")
    (comparison,) = find(tree, "comparison")
    assert (comparison.label, comparison.detail["expression"]) == ("49 < 50", "Count < 50")


def test_negative_nodes_list_the_records_examined(kb: KnowledgeBase, demo: Dataset) -> None:
    result = assess(demo.patient("P001"), kb, explain="all").result("GE4.2")
    assert result.status == "pass" and result.trace is not None
    absences = find(result.trace, "absence")
    assert [a.label for a in absences] == ["no live vaccine in window", "no unrecognised vaccine in window"]
    (record,) = find(absences[0], "record")
    assert record.label == (
        "vaccination zoster_vaccine_recombinant (recorded as Shingrix) 2026-11-10: "
        "zoster_vaccine_recombinant is not a live vaccine"
    )
    review = [f for f in find(result.trace, "fact") if "reviewed" in f.label]
    assert review[0].label == "vaccinations history reviewed 2026-11-24"
    assert "Shingrix" in result.proof and "vaccinations history reviewed 2026-11-24" in result.proof
    assert result.message.startswith("Vaccination history reviewed 24 Nov 2026")
    assert "no live vaccine within 4 weeks before enrolment" in result.message


def test_records_outside_the_window_say_why(kb: KnowledgeBase, demo: Dataset) -> None:
    result = assess(demo.patient("P004"), kb, explain="all").result("GE4.2")
    (record,) = find(result.trace, "record")  # type: ignore[arg-type]
    assert record.label == ("vaccination yellow fever vaccine 2026-10-26: 2026-10-26 is not ≥ 2026-10-27 (Day ≥ From)")


def test_derived_values_show_formula_and_inputs(kb: KnowledgeBase, demo: Dataset) -> None:
    result = assess(demo.patient("P001"), kb, explain="all").result("GI6.7")
    derived = [n for n in find(result.trace, "derived") if "clearance" in n.label]  # type: ignore[arg-type]
    assert derived[0].detail["formula"] == "(140 − age) × weight / (72 × creatinine mg/dL) × 0.85"
    assert [c.label for c in derived[0].children] == [
        "age = 50 years",
        "weight = 60 kg",
        "creatinine = 80 µmol/L = 80/88.4 mg/dL",
        "sex = female",
    ]


def test_unknown_criteria_list_their_gaps(kb: KnowledgeBase, demo: Dataset) -> None:
    result = assess(demo.patient("P010"), kb).result("GE3")
    assert result.trace is not None
    assert [g.label for g in find(result.trace, "gap")] == ["hbv_dna: missing (no hbv_dna result)"]


def test_explain_none_builds_no_trees(kb: KnowledgeBase, demo: Dataset) -> None:
    quick = assess(demo.patient("P002"), kb, explain="none")
    assert all(r.trace is None for r in quick.criteria)
    assert quick.result("GI6.3").message == "Platelet count 49 ×10^9/L on 17 Nov 2026, below 50"
    assert quick.result("GI6.3").proof == "platelets 49 ×10^9/L on 2026-11-17 < 50 required"


def test_a_duration_reads_as_days_not_as_a_date(kb: KnowledgeBase, demo: Dataset) -> None:
    # `kb why P001 SLE-I4` once printed "0007-11-24 ≥ 0001-07-02 [End − Start ≥ Days]"
    tree = assess(demo.patient("P001"), kb, explain="all").result("SLE-I4").trace
    assert tree is not None
    labels = [n.label for n in find(tree, "comparison")]
    assert "2519 days (about 83 months) ≥ 183 days (about 6 months)" in labels
    assert not [label for label in labels if label.startswith("000")]


def test_a_difference_of_dates_is_a_duration_in_any_rule(tmp_path: Path, demo: Dataset) -> None:
    from tests.review_rules import criterion, rule_set

    rules = """
.decl long_exposure(P: patient, T: truth)
.decl any_long_exposure(P: patient)
any_long_exposure(P) :- event(P, medication, Agent, Start, End), Days = End - Start, Days >= 30, Start >= End - 400.
long_exposure(P, yes) :- any_long_exposure(P).
long_exposure(P, no) :- patient(P), not any_long_exposure(P).
"""
    planted = rule_set(tmp_path, rules, [criterion("GE99", "exclusion", "long_exposure")])
    tree = assess(demo.patient("P001"), planted, explain="all").result("GE99").trace  # cyclophosphamide, 183 days
    assert tree is not None
    labels = {n.label for n in tree.walk() if n.kind in ("comparison", "assignment")}
    assert "183 days (about 6 months) ≥ 30 days" in labels  # days against a bare number
    assert "Days = End − Start = 183 days (about 6 months)" in labels
    assert "2023-03-01 ≥ 2022-07-27" in labels  # a date minus a number of days is still a date


@pytest.mark.parametrize(
    ("value", "shown"),
    [
        ("3E+32", "3.0000E+32"),
        ("1E+999999", "1.0000E+999999"),
        ("50", "50"),
        ("2.25", "2.25"),
        ("Infinity", "Infinity"),
    ],
)
def test_a_number_too_large_for_the_context_is_shown_not_raised(value: str, shown: str) -> None:
    """Issue 16.2: a ×ULN ratio to a ULN of 1e-31 (3E+32) made the proof's number formatting
    raise InvalidOperation (quantize past 28 digits); it is shown in scientific notation."""
    assert _decimal(Decimal(value)) == shown
