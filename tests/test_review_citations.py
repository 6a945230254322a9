"""Citation findings: a count-and-time clause against the classification criteria a companion
criterion cites, planted (a knife-edge, none at all, and consistent clauses) and on the real
APS-I2 / Sydney 2006 pair under every reading of the clause."""

from __future__ import annotations

from pathlib import Path

import pytest

from kb.catalogue.assumptions import resolve_assumptions
from kb.catalogue.knowledge import KnowledgeBase
from kb.review.citations import Series, citation_findings, read_series
from kb.review.findings import check_witness
from tests.review_rules import criterion, findings_of, rule_set

SYDNEY_AND_TESTS = """
.decl planted_sydney(P: patient, T: truth)
planted_sydney(P, yes) :- score(P, sydney_2006, laboratory, Lab, _), Lab >= 1.
planted_sydney(P, no) :- score(P, sydney_2006, laboratory, _, Lab), Lab < 1.
.decl planted_apl(P: patient, T: truth)
planted_apl(P, yes) :- apl_positive_tests(P, Count), Count >= 2.
planted_apl(P, no) :- apl_positive_tests(P, Count), Count < 2.
"""
CITES = "Meets the Sydney 2006 classification criteria for APS"


@pytest.mark.parametrize(
    ("text", "series"),
    [
        ("more than two positive tests within 12 weeks", Series(3, 1, 84)),
        ("Lupus anticoagulant on >= 2 occasions >= 12 weeks apart (ISTH)", Series(2, 84, None)),
        ("positive on two or more occasions at least 12 weeks apart", Series(2, 84, None)),
        ("Manifestations simultaneously or within less than a week", Series(2, 1, 6, counted=False)),
        ("Positive aPL and clinical event no less than 12 weeks and no more than 5 years apart", None),
        ("aCL > 40 GPL/MPL", None),
    ],
)
def test_conditions_are_read_from_the_text(text: str, series: Series | None) -> None:
    found = [(s.count, s.gap, s.span, s.counted) for s in read_series(text)]
    assert found == ([] if series is None else [(series.count, series.gap, series.span, series.counted)])


def test_a_clause_within_12_weeks_beside_sydney_meets_it_only_84_days_apart(tmp_path: Path) -> None:
    clause = "two or more positive aPL tests within 12 weeks"
    kb = rule_set(
        tmp_path,
        SYDNEY_AND_TESTS,
        [
            criterion("PX-I1", "inclusion", "planted_sydney", CITES),
            criterion("PX-I2", "inclusion", "planted_apl", clause),
        ],
    )
    [finding] = findings_of(kb, "citation")  # (findings_of checks every witness with the engine)
    assert finding.criteria == ("PX-I2", "PX-I1")
    assert clause in finding.explanation and CITES in finding.explanation
    assert "only if the two tests are exactly 84 days apart" in finding.explanation
    assert "a day closer, only the PX-I2 clause holds; a day further apart, only the cited condition holds" in (
        finding.explanation
    )
    # the reading in force (Sydney persistence) and the literal one, realised by apl_timing=within_window
    statuses = {(c.assume, c.note.split(" under ")[0]): c.expected for c in finding.witness.cases}
    literal = (("apl_timing", "within_window"),)
    assert statuses[literal, "lupus_anticoagulant positive on days 0, 83"] == {"PX-I2": "pass", "PX-I1": "fail"}
    assert statuses[literal, "lupus_anticoagulant positive on days 0, 84"] == {"PX-I2": "pass", "PX-I1": "pass"}
    assert statuses[literal, "lupus_anticoagulant positive on days 0, 85"] == {"PX-I2": "fail", "PX-I1": "pass"}
    assert statuses[(), "lupus_anticoagulant positive on days 0, 83"] == {"PX-I2": "fail", "PX-I1": "fail"}
    assert finding.rules[0].startswith(str(tmp_path))


def test_a_span_shorter_than_the_cited_spacing_leaves_no_timing(tmp_path: Path) -> None:
    clause = "more than two positive tests within 8 weeks"
    kb = rule_set(
        tmp_path,
        SYDNEY_AND_TESTS,
        [
            criterion("PX-I1", "inclusion", "planted_sydney", CITES),
            criterion("PX-I2", "inclusion", "planted_apl", clause),
        ],
    )
    [finding] = findings_of(kb, "citation")
    assert "Read literally, no timing of the tests meets both: no patient can meet both as written" in (
        finding.explanation
    )
    assert finding.witness.detail["read literally"].endswith("no timing of the tests meets both")


@pytest.mark.parametrize(
    ("clause", "cites"),
    [
        ("positive on two or more occasions at least 12 weeks apart", CITES),  # the cited condition itself
        ("positive aPL tests at least once", CITES),  # no time stated
        ("two or more positive aPL tests within 12 weeks", "Meets the APS criteria"),  # cites no dated criteria
    ],
)
def test_consistent_or_uncited_clauses_give_no_finding(tmp_path: Path, clause: str, cites: str) -> None:
    kb = rule_set(
        tmp_path,
        SYDNEY_AND_TESTS,
        [
            criterion("PX-I1", "inclusion", "planted_sydney", cites),
            criterion("PX-I2", "inclusion", "planted_apl", clause),
        ],
    )
    assert findings_of(kb, "citation") == []


def test_real_aps_i2_against_sydney_under_every_reading(kb: KnowledgeBase) -> None:
    assumptions = resolve_assumptions()
    found = citation_findings(kb, assumptions)
    [finding] = found
    assert finding.kind == "citation" and finding.criteria == ("APS-I2", "APS-I1")
    text = finding.explanation
    assert "more than two positive tests within 12 weeks" in text and "Sydney 2006" in text
    assert "Read literally, a patient meets both only if the first and last test are exactly 84 days apart" in text
    detail = finding.witness.detail
    assert detail["cited"].startswith("sydney_2006.lupus_anticoagulant/anticardiolipin/anti_b2gpi: ≥ 2 positive tests")
    in_force = "apl_tests_reading=two_or_more, apl_timing=sydney_apart (in force)"
    assert "both: when the two tests are at least 84 days apart" in detail[in_force]
    assert (
        "only if the two tests are exactly 84 days apart"
        in detail["apl_tests_reading=two_or_more, apl_timing=within_window"]
    )
    assert "at least 168 days apart" in detail["apl_tests_reading=more_than_two, apl_timing=sydney_apart"]
    literal = detail["apl_tests_reading=more_than_two, apl_timing=within_window"]
    assert literal.startswith("≥ 3 positive tests, all within 84 days") and "exactly 84 days apart" in literal
    assert "the literal “more than two positive tests within 12 weeks” is dropped" in text
    assert "none with apl_window_days below 84" in text
    assert {c.assume for c in finding.witness.cases} == {
        (("apl_tests_reading", r), ("apl_timing", t))
        for r in ("two_or_more", "more_than_two")
        for t in ("sydney_apart", "within_window")
    }
    knife = [
        c
        for c in finding.witness.cases
        if c.assume == (("apl_tests_reading", "more_than_two"), ("apl_timing", "within_window"))
    ]
    assert [c.expected for c in knife] == [
        {"APS-I2": "pass", "APS-I1": "pass"},  # days 0, 1, 84
        {"APS-I2": "pass", "APS-I1": "fail"},  # days 0, 1, 83: within 12 weeks, never 12 weeks apart
        {"APS-I2": "fail", "APS-I1": "pass"},  # days 0, 1, 85
    ]
    assert "kb/rules/aps.dl:22:1" in finding.rules
    assert check_witness(finding.witness, kb, assumptions) == []
