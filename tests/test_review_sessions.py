"""Many constructed patients in one engine session: the answers each gets alone, and rules
that are not patient-local evaluated one patient per session."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest

from kb.catalogue.assumptions import resolve_assumptions
from kb.catalogue.knowledge import KnowledgeBase
from kb.review.findings import synthetic_patient
from kb.review.sessions import _alone, patient_local, truths_many
from kb.review.windows import EVER, _event_kind, _named_agents, _time_criteria
from tests.review_rules import criterion, drug_window, rule_set

#: A rule that asks whether the vocabulary knows methotrexate's classes, whoever took it:
#: alone, a patient without methotrexate has no such fact; beside one who took it, it would.
ANY_MTX = """
.decl mtx_class(C: agent_class)
mtx_class(C) :- agent_class(methotrexate, C).
.decl mtx_known(P: patient, T: truth)
mtx_known(P, yes) :- patient(P), mtx_class(_).
"""

#: A rule that reads another patient's events.
OTHERS = """
.decl someone_on_mtx(P: patient, T: truth)
someone_on_mtx(P, yes) :- patient(P), event(Q, medication, methotrexate, _, _), Q != P.
"""


@pytest.mark.parametrize(
    ("rules", "predicate", "local"),
    [(drug_window("washout", "methotrexate", 7), "washout", True), (ANY_MTX, "mtx_known", False)],
)
def test_shared_sessions_give_each_patient_its_answer_alone(
    tmp_path: Path, rules: str, predicate: str, local: bool
) -> None:
    kb = rule_set(tmp_path, rules, [criterion("E1", "exclusion", predicate)])
    assumptions = resolve_assumptions()
    on_mtx = synthetic_patient("A", kb, events=[("medication", "methotrexate", 3, 3)])
    without = synthetic_patient("B", kb)
    assert patient_local(kb.program, [predicate]) is local
    together = truths_many(kb, assumptions, [(on_mtx, [predicate]), (without, [predicate])])
    alone = [_alone(kb, assumptions, p, [predicate]) for p in (on_mtx, without)]
    assert together == alone
    assert alone[0][predicate] == {"yes"}  # methotrexate 3 days ago: in the washout / known
    assert alone[1][predicate] == ({"no"} if local else set())  # reviewed, nothing taken / no fact at all


def test_a_rule_reading_another_patients_events_is_not_patient_local(tmp_path: Path) -> None:
    kb = rule_set(tmp_path, OTHERS, [criterion("E1", "exclusion", "someone_on_mtx")])
    assert not patient_local(kb.program, ["someone_on_mtx"])
    assumptions = resolve_assumptions()
    patients = [synthetic_patient("A", kb, events=[("medication", "methotrexate", 3, 3)]), synthetic_patient("B", kb)]
    together = truths_many(kb, assumptions, [(p, ["someone_on_mtx"]) for p in patients])
    assert together == [{"someone_on_mtx": frozenset()}, {"someone_on_mtx": frozenset()}]  # as alone


def test_the_real_rules_are_patient_local(kb: KnowledgeBase) -> None:
    assert patient_local(kb.program, [c.predicate for c in kb.criteria if c.predicate] + ["in_cohort"])


def test_real_probe_patients_get_their_answers_alone(kb: KnowledgeBase) -> None:
    """Single doses of every probed agent at three offsets, all time criteria: the statuses
    in one shared session are those of one session per patient (the path the review took)."""
    assumptions = resolve_assumptions()
    predicates = sorted({c.predicate for c in _time_criteria(kb) if c.predicate})
    agents = sorted(_named_agents(kb) | {"cyclophosphamide", "filgrastim", "bcg_vaccine", "rbc_transfusion"})
    patients = [
        synthetic_patient(
            f"W-{agent}",  # the same id at every offset, as the probes had
            kb,
            {"anc": Decimal("2.0"), "platelets": Decimal(150)},
            events=[(_event_kind(kb.vocabulary.agents[agent].classes), agent, offset, offset)],
        )
        for agent in agents
        for offset in (0, 14, EVER)
    ]
    together = truths_many(kb, assumptions, [(p, predicates) for p in patients])
    assert together == [_alone(kb, assumptions, p, predicates) for p in patients]
    assert any(t["recent_cytotoxic"] == {"yes"} for t in together)  # cyclophosphamide at 0 days
