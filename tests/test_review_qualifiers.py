"""Qualifier findings: a word of the record text no rule encodes (planted with a clean
counterpart each: one result vs an attested persistence, a stated threshold, a qualifier
encoded by another criterion), the reverse (a rule restriction the text does not say), and
the real encoding's GE7 and GE8."""

from __future__ import annotations

from pathlib import Path

import pytest

from kb.catalogue.assumptions import resolve_assumptions
from kb.catalogue.knowledge import KnowledgeBase
from kb.review.findings import check_witness
from kb.review.qualifiers import qualifier_findings, qualifier_verdicts
from tests.review_rules import PLATELETS_100, criterion, exclusion_below, findings_of, rule_set

ONE_RESULT = """
.decl haematuria(P: patient, T: truth)
haematuria(P, yes) :- obs_num(P, urine_rbc, Cells, _), Cells > 5.
haematuria(P, no) :- obs_num(P, urine_rbc, Cells, _), Cells <= 5.
"""
# the attestation haematuria_unexplained asks "Haematuria is persistent and unexplained"
ATTESTED = """
.decl haematuria(P: patient, T: truth)
haematuria(P, yes) :- obs_num(P, urine_rbc, Cells, _), Cells > 5, attested(P, haematuria_unexplained, yes).
haematuria(P, no) :- obs_num(P, urine_rbc, Cells, _), Cells <= 5.
haematuria(P, no) :- attested(P, haematuria_unexplained, no).
"""
INFECTION = """
.decl infection(P: patient, T: truth)
infection(P, yes) :- attested(P, uncontrolled_infection, yes).
infection(P, no) :- attested(P, uncontrolled_infection, no).
"""


@pytest.mark.parametrize(
    ("rules", "text", "found"),
    [
        (ONE_RESULT, "Persistent haematuria (> 5 RBC/hpf)", ["persistent"]),
        (ATTESTED, "Persistent unexplained haematuria (> 5 RBC/hpf)", []),  # attested: "persistent and unexplained"
        (ONE_RESULT, "Haematuria (> 5 RBC/hpf)", []),
    ],
)
def test_persistent_in_the_text_and_a_rule_reading_one_result(
    tmp_path: Path, rules: str, text: str, found: list[str]
) -> None:
    kb = rule_set(tmp_path, rules, [criterion("E1", "exclusion", "haematuria", text)])
    findings = findings_of(kb, "qualifier")
    assert [f.witness.detail["qualifier"] for f in findings] == found
    for finding in findings:
        assert finding.criteria == ("E1",) and text in finding.explanation
        assert "one urine_rbc result" in finding.explanation and "persists over time" in finding.explanation
        [case] = finding.witness.cases  # a single result excludes
        assert case.expected == {"E1": "fail"} and case.note.startswith("a single urine_rbc result of")
        assert [o.item for o in case.patient.observations] == ["urine_rbc"]


@pytest.mark.parametrize(
    ("text", "bound", "found"),
    [
        ("Severe thrombocytopenia (platelets < 50)", "50", []),  # the text states the grade's threshold
        ("Severe thrombocytopenia", "50", ["severe"]),
    ],
)
def test_a_grade_is_encoded_by_the_threshold_the_text_states(
    tmp_path: Path, text: str, bound: str, found: list[str]
) -> None:
    kb = rule_set(
        tmp_path, exclusion_below("low_plt", "platelets", bound), [criterion("E1", "exclusion", "low_plt", text)]
    )
    assert [f.witness.detail["qualifier"] for f in findings_of(kb, "qualifier")] == found


@pytest.mark.parametrize(("names_a2", "found"), [(True, []), (False, ["primary"])])
def test_a_qualifier_encoded_by_the_criterion_the_text_points_to(
    tmp_path: Path, names_a2: bool, found: list[str]
) -> None:
    other = """
.decl secondary_form(P: patient, T: truth)
secondary_form(P, yes) :- attested(P, neuropsychiatric_lupus, yes).
secondary_form(P, no) :- attested(P, neuropsychiatric_lupus, no).
"""
    text = "Primary disease" + (" (secondary forms: A2)" if names_a2 else "")
    kb = rule_set(
        tmp_path,
        PLATELETS_100 + other,
        [criterion("A1", "inclusion", "plt_high", text), criterion("A2", "exclusion", "secondary_form", "Other forms")],
    )
    assert [f.witness.detail["qualifier"] for f in findings_of(kb, "qualifier")] == found
    how = {v.qualifier: v.how for v in qualifier_verdicts(kb) if v.criterion == "A1"}
    assert how["primary"] == ("elsewhere, in A2" if names_a2 else "")


@pytest.mark.parametrize(
    ("text", "found"),
    [
        ("Infection needing intravenous antibiotics", True),
        ("Uncontrolled infection", False),
        ("Infection that is not controlled", False),
    ],
)
def test_a_rule_restriction_the_text_does_not_say(tmp_path: Path, text: str, found: bool) -> None:
    kb = rule_set(tmp_path, INFECTION, [criterion("E1", "exclusion", "infection", text)])
    findings = findings_of(kb, "qualifier")
    assert [(f.criteria, f.witness.detail.get("rule words")) for f in findings] == (
        [(("E1",), "uncontrolled")] if found else []
    )
    for finding in findings:
        assert finding.witness.kind == "lookup" and text in finding.explanation


def test_real_qualifiers_symptomatic_dvt_and_controlled_tumours(kb: KnowledgeBase) -> None:
    assumptions = resolve_assumptions()
    found = qualifier_findings(kb, assumptions)
    by_criteria = {f.criteria: f for f in found}
    assert set(by_criteria) == {("GE7",), ("GE8",)}
    ge7, ge8 = by_criteria["GE7",], by_criteria["GE8",]
    assert ge7.witness.detail["qualifier"] == "symptomatic" and "symptomatic deep vein thrombosis" in ge7.explanation
    assert "dvt_pe conditions" in ge7.explanation and "anticoagulant agents" in ge7.explanation
    [case] = ge7.witness.cases  # an anticoagulated DVT with nothing about symptoms excludes
    assert case.expected == {"GE7": "fail"} and "deep_vein_thrombosis" in case.note
    assert ge8.witness.detail["qualifier"] == "effectively controlled" and ge8.witness.kind == "lookup"
    assert "only the dates of its records count" in ge8.explanation
    assert any(r.startswith("kb/rules/general_exclusion.dl:") for r in ge8.rules)
    for finding in found:
        assert finding.kind == "qualifier" and check_witness(finding.witness, kb, assumptions) == []


def test_real_qualifiers_encoded_are_not_findings(kb: KnowledgeBase) -> None:
    how = {(v.criterion, v.qualifier): v.how for v in qualifier_verdicts(kb)}
    assert how["SSC-E6", "persistent"] == "by name"  # the attestation asks "persistent and unexplained"
    assert how["SSC-E6", "unexplained"] == "by name"
    assert how["APS-I1", "primary"] == "elsewhere, in APS-E2"  # the secondary-APS exclusion
    assert how["SSC-DC", "progressive"] == "elsewhere, in SSC-I1, SSC-I2"
    assert how["SLE-I2", "severe"] == how["SSC-E2", "severe"] == "by the threshold or score the text states"
    assert how["GE5", "unstable"] == "by name"  # unstable_angina is the class's member
    assert how["IIM-RR", "progressive"] == "elsewhere, in IIM-I5"
