"""Witnesses checked in one batch: the statuses each constructed patient gets alone."""

from __future__ import annotations

from dataclasses import replace

from kb.catalogue.assumptions import resolve_assumptions
from kb.catalogue.knowledge import KnowledgeBase
from kb.reasoning.evaluation import criterion_status
from kb.review.findings import Case, Witness, check_witness, check_witnesses
from kb.review.windows import _exposed, _time_criteria


def test_a_batch_of_witnesses_is_checked_as_each_patient_alone(kb: KnowledgeBase) -> None:
    """Expected statuses taken from `criterion_status` (one patient, one criterion, one
    session) hold in the batch; a wrong expectation is reported with the status it has."""
    assumptions = resolve_assumptions()
    criteria = [c for c in _time_criteria(kb)] + [kb.criteria[0]]
    patients = [
        ("cyclophosphamide 3 days before", _exposed(kb, "cyclophosphamide", "medication", 3)),
        ("cyclophosphamide 30 days before", _exposed(kb, "cyclophosphamide", "medication", 30)),
        ("filgrastim 2 days before", _exposed(kb, "filgrastim", "medication", 2)),
    ]
    cases = tuple(
        Case(patient, {c.id: criterion_status(patient, c, kb, assumptions) for c in criteria}, note)
        for note, patient in patients
    )
    assert cases[0].expected["GE4.5"] == "fail" and cases[1].expected["GE4.5"] == "pass"
    witnesses = [Witness("patient", "alone", (case,)) for case in cases]
    assert check_witnesses(witnesses, kb, assumptions) == [[], [], []]
    wrong = replace(cases[0], expected={"GE4.5": "pass", "GI6": cases[0].expected["GI6"], "NOPE": "pass"})
    problems = check_witness(Witness("patient", "wrong", (wrong,)), kb, assumptions)
    assert problems == [
        "cyclophosphamide 3 days before: GE4.5 is fail, not pass",
        "cyclophosphamide 3 days before: no criterion NOPE",
    ]
