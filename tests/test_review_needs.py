"""What the rules say an inclusion needs, and what a criterion reads: planted rule sets read
without the engine."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest

from kb.catalogue.assumptions import resolve_assumptions
from kb.catalogue.knowledge import KnowledgeBase
from kb.review.needs import RuleReader
from tests.review_rules import criterion, rule_set


def _reader(tmp_path: Path, rules: str) -> RuleReader:
    kb: KnowledgeBase = rule_set(tmp_path, rules, [criterion("I1", "inclusion", "needed")])
    return RuleReader(kb, resolve_assumptions({"ge4_3_scope": "listed"}))


_HEAD = """
.decl needed(P: patient, T: truth)
.decl wanted_drug(Agent: symbol)
wanted_drug(Agent) :- agent_class(Agent, antimalarial).
wanted_drug(Agent) :- assumption(ge4_3_scope, listed), agent_class(Agent, anti_tnf).
wanted_drug(Agent) :- assumption(ge4_3_scope, all_immunosuppressive_biologics), agent_class(Agent, anti_cd20).
"""


def test_a_class_defined_by_a_predicate_with_the_assumptions_in_force(tmp_path: Path) -> None:
    reader = _reader(tmp_path, _HEAD + "needed(P, yes) :- event(P, medication, A, _, _), wanted_drug(A).\n")
    (need,) = reader.needed("needed", "yes") or []
    assert need.classes == ("antimalarial", "anti_tnf")  # anti_cd20 only under the other reading
    assert {"hydroxychloroquine", "adalimumab"} <= set(need.names) and "rituximab" not in need.names
    assert not need.conditions and need.describe() == "an agent of class antimalarial or anti_tnf"


@pytest.mark.parametrize(
    ("second", "needed"),
    [
        ("needed(P, yes) :- event(P, medication, cyclophosphamide, _, _), attested(P, consent, yes).", True),
        ("needed(P, yes) :- attested(P, consent, yes).", False),  # another way without it: not needed
    ],
)
def test_needed_on_every_way(tmp_path: Path, second: str, needed: bool) -> None:
    rules = "needed(P, yes) :- event(P, medication, cyclophosphamide, _, _), reviewed(P, medications, _).\n"
    reader = _reader(tmp_path, _HEAD + rules + second + "\n")
    found = reader.needed("needed", "yes") or []
    assert [n.names for n in found] == ([("cyclophosphamide",)] if needed else [])


def test_a_course_length_bound_by_an_assumption_and_a_dose_bound(tmp_path: Path) -> None:
    rules = _HEAD + (
        "needed(P, yes) :- course(P, A, _, _, L), wanted_drug(A), assumption_days(rr_course_days, D), L >= D, "
        "pred_mg_per_kg(P, _, _, K), K > 1.5.\n"
    )
    course, dose = _reader(tmp_path, rules).needed("needed", "yes") or []
    assert course.relation == "course" and course.bound == (">=", Decimal(183))
    assert dose.dose and dose.bound == (">", Decimal("1.5")) and "prednisone" in dose.names
    assert dose.describe() == "a glucocorticoid dose > 1.5 mg/kg/day prednisone-equivalent"


def test_reads_follow_the_constants_callers_pass(tmp_path: Path) -> None:
    """`of_class(P, ttp_tma)` reads diagnoses of that class only, not every diagnosis."""
    rules = """
.decl needed(P: patient, T: truth)
.decl of_class(P: patient, Class: symbol)
of_class(P, Class) :- event(P, diagnosis, C, _, _), condition_class(C, Class).
needed(P, yes) :- of_class(P, ttp_tma).
needed(P, no) :- reviewed(P, diagnoses, _), not of_class(P, ttp_tma).
"""
    (read,) = _reader(tmp_path, rules).reads("needed")
    assert read.conditions and read.event_kind == "diagnosis" and "thrombotic_microangiopathy" in read.names
    assert "deep_vein_thrombosis" not in read.names
