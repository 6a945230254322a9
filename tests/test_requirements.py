"""Requirements: the bounds a criterion needs, read from the rules themselves."""

from __future__ import annotations

from decimal import Decimal

import pytest

from kb.catalogue.assumptions import resolve_assumptions
from kb.catalogue.knowledge import KnowledgeBase
from kb.factbase.build import build_facts
from kb.reasoning.requirements import Requirement, Snapshot, requirements
from kb.records.patients import Dataset


def req(relation: str, item: str, op: str, value: str) -> Requirement:
    return Requirement(relation, item, op, Decimal(value) if value[0].isdigit() else value)


@pytest.mark.parametrize(
    ("predicate", "truth", "expected"),
    [
        ("platelets_adequate", "yes", [(req("obs_num", "platelets", ">=", "50"),)]),
        ("oxygen_saturation_adequate", "yes", [(req("obs_num", "spo2", ">", "92"),)]),
        (
            "renal_function_adequate",
            "yes",
            [(req("xuln", "creatinine", "<", "1.5"), req("crcl", "crcl", ">=", "60"))],
        ),
        ("age_in_range", "yes", [(req("age_at", "enrolment", ">=", "18"), req("age_at", "enrolment", "<=", "65"))]),
        ("consented", "yes", [(req("attested", "consent", "=", "yes"),)]),
        ("recent_live_vaccine", "no", [(req("reviewed", "vaccinations", ">=", "enrolment"),)]),
    ],
)
def test_requirements_come_from_the_rule_bounds(
    kb: KnowledgeBase, predicate: str, truth: str, expected: list[tuple[Requirement, ...]]
) -> None:
    assert requirements(kb.program, predicate, truth) == expected


def test_alternatives_multiply_out_through_sub_conditions(kb: KnowledgeBase) -> None:
    """GE3 passes with HBsAg negative or with HBV DNA ≤ 1000 (and the other three tests negative)."""
    alternatives = requirements(kb.program, "chronic_viral_or_syphilis_infection", "no")
    assert len(alternatives) == 2
    assert req("obs_cat", "hbsag", "=", "negative") in alternatives[0]
    assert req("obs_num", "hbv_dna", "<=", "1000") in alternatives[1]
    assert all(req("obs_cat", "hiv", "=", "negative") in alt for alt in alternatives)


def test_a_snapshot_says_met_unmet_or_missing(kb: KnowledgeBase, demo: Dataset) -> None:
    base = build_facts(demo.patient("P061"), kb, resolve_assumptions())  # platelets 42
    snapshot = Snapshot.of(base)
    assert snapshot.state(req("obs_num", "platelets", ">=", "50")) == "unmet"
    assert snapshot.state(req("obs_num", "anc", ">=", "1.0")) == "met"
    assert snapshot.state(req("obs_num", "hbv_dna", "<=", "1000")) == "missing"
    assert snapshot.state(req("reviewed", "vaccinations", ">=", "enrolment")) == "met"
