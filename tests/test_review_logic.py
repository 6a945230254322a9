"""The solver's findings, each planted in a small rule set: found with a witness the engine
confirms, and absent from the clean counterpart."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.review_rules import PLATELETS_100, criterion, exclusion_below, findings_of, rule_set


@pytest.mark.parametrize(("second", "found"), [("50", 0), ("150", 1)])
def test_contradiction_a_cohort_that_admits_nobody(tmp_path: Path, second: str, found: int) -> None:
    """Platelets ≥ 100 and platelets below `second` (an inclusion written the wrong way round)."""
    rules = (
        PLATELETS_100
        + f"""
.decl plt_low(P: patient, T: truth)
plt_low(P, yes) :- obs_num(P, platelets, C, _), C < {100 if found else 150}.
plt_low(P, no) :- obs_num(P, platelets, C, _), C >= {100 if found else 150}.
"""
    )
    kb = rule_set(tmp_path, rules, [criterion("A1", "inclusion", "plt_high"), criterion("A2", "inclusion", "plt_low")])
    contradictions = findings_of(kb, "contradiction")
    assert len(contradictions) == found
    if found:
        witness = contradictions[0].witness
        assert set(contradictions[0].criteria) == {"A1", "A2"} and witness.kind == "unsat_core"
        # whoever meets one fails the other: platelets 100 passes A1 and fails A2, and 99 the reverse
        assert [c.expected for c in witness.cases] == [{"A1": "pass", "A2": "fail"}, {"A1": "fail", "A2": "pass"}]


@pytest.mark.parametrize(("bound", "dead"), [("80", True), ("120", False)])
def test_dead_rule_an_exclusion_the_inclusions_make_impossible(tmp_path: Path, bound: str, dead: bool) -> None:
    rules = PLATELETS_100 + exclusion_below("plt_excl", "platelets", bound)
    kb = rule_set(tmp_path, rules, [criterion("A1", "inclusion", "plt_high"), criterion("E1", "exclusion", "plt_excl")])
    # (at 120 it is A1 that never decides, the exclusion already asking ≥ 120: kb.review.implied's)
    found = [f for f in findings_of(kb, "dead rule") if f.criteria[0] == "E1"]
    assert bool(found) is dead
    if dead:
        assert found[0].criteria == ("E1", "A1")
        case = found[0].witness.cases[0]  # platelets 79: excluded, and already failing A1
        assert case.expected == {"E1": "fail", "A1": "fail"} and "platelets 79" in case.note


@pytest.mark.parametrize(("item", "redundant"), [("anc", True), ("alc", False)])
def test_redundancy_an_exclusion_inside_another(tmp_path: Path, item: str, redundant: bool) -> None:
    """`item` < 0.5 beside ANC < 1.0: on the same count the first never blocks alone."""
    rules = exclusion_below("low", item, "0.5") + exclusion_below("anc_lower", "anc", "1.0")
    kb = rule_set(tmp_path, rules, [criterion("E1", "exclusion", "low"), criterion("E2", "exclusion", "anc_lower")])
    found = findings_of(kb, "redundancy")
    assert [f.criteria for f in found] == ([("E1", "E2")] if redundant else [])
    if redundant:  # ANC 0.4: both exclude
        assert found[0].witness.cases[0].expected == {"E1": "fail", "E2": "fail"}
        assert "anc 0.4" in found[0].witness.cases[0].note


@pytest.mark.parametrize(("no_bound", "gap"), [("90", True), ("92", False)])
def test_boundary_a_range_no_rule_decides(tmp_path: Path, no_bound: str, gap: bool) -> None:
    rules = f"""
.decl spo2_ok(P: patient, T: truth)
spo2_ok(P, yes) :- obs_num(P, spo2, S, _), S > 92.
spo2_ok(P, no) :- obs_num(P, spo2, S, _), S < {no_bound}.
""" + ("" if gap else "spo2_ok(P, no) :- obs_num(P, spo2, S, _), S = 92.\n")
    kb = rule_set(tmp_path, rules, [criterion("I1", "inclusion", "spo2_ok")])
    found = findings_of(kb, "boundary/window")
    assert bool(found) is gap
    if gap:
        assert found[0].witness.cases[0].expected == {"I1": "unknown"}  # a recorded value, and no answer
        assert found[0].witness.detail["undecided"] == "[90,92]"
