"""Tensions between what an inclusion requires and what another criterion forbids, each planted
in a small rule set with its clean counterpart, and those of the real encoding."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from kb.catalogue.assumptions import resolve_assumptions
from kb.catalogue.knowledge import RULES_DIR, KnowledgeBase, load_knowledge
from kb.review.findings import Finding, check_witness
from kb.review.reviewer import checked_findings
from kb.review.tensions import tension_findings
from tests.review_rules import criterion, drug_window, findings_of, rule_set


def _planted(tmp_path: Path, required: str, forbidding: str) -> list[Finding]:
    kb = rule_set(
        tmp_path,
        required + forbidding,
        [criterion("I1", "inclusion", "needed"), criterion("E1", "exclusion", "forbids")],
    )
    return findings_of(kb, "tension")  # every witness checked there


def _required(body: str, history: str = "medications") -> str:
    """I1: holds when `body` does; known not to when the history is reviewed and it does not."""
    return f"""
.decl needed(P: patient, T: truth)
.decl met(P: patient)
met(P) :- {body}.
needed(P, yes) :- met(P).
needed(P, no) :- reviewed(P, {history}, _), not met(P).
"""


def _window(body: str, history: str = "medications") -> str:
    """E1: excludes when `body` holds for a record it binds `A` (enrolment) for."""
    return f"""
.decl forbids(P: patient, T: truth)
.decl recent(P: patient)
recent(P) :- ref_day(P, enrolment, A), {body}.
forbids(P, yes) :- recent(P).
forbids(P, no) :- ref_day(P, enrolment, A), reviewed(P, {history}, R), R >= A, not recent(P).
"""


@pytest.mark.parametrize(("forbidden", "tension"), [("methotrexate", True), ("cyclophosphamide", False)])
def test_a_required_drug_in_a_washout(tmp_path: Path, forbidden: str, tension: bool) -> None:
    """A named drug required, forbidden within 7 days: its last dose 8 or more days before."""
    found = _planted(
        tmp_path,
        _required("event(P, medication, methotrexate, _, _)"),
        drug_window("forbids", forbidden, 7),
    )
    assert bool(found) is tension
    if tension:
        (finding,) = found
        assert finding.criteria == ("I1", "E1")
        assert "E1 within 7 days before enrolment" in finding.explanation
        assert "last dose 8 or more days before enrolment" in finding.explanation
        assert [c.expected for c in finding.witness.cases] == [
            {"I1": "pass", "E1": "fail"},  # the required drug 7 days before
            {"I1": "pass", "E1": "pass"},  # 8 days before: both hold
        ]


@pytest.mark.parametrize(
    ("forbidden", "tension", "free"),
    [("hydroxychloroquine", True, True), ("chloroquine", True, True), ("bendamustine", False, False)],
)
def test_a_required_class_with_one_agent_forbidden(tmp_path: Path, forbidden: str, tension: bool, free: bool) -> None:
    """Any antimalarial required; one of the two forbidden: the other may continue."""
    found = _planted(
        tmp_path,
        _required("event(P, medication, Agent, _, _), agent_class(Agent, antimalarial)"),
        drug_window("forbids", forbidden, 10),
    )
    assert bool(found) is tension
    if tension:
        (finding,) = found
        other = ({"hydroxychloroquine", "chloroquine"} - {forbidden}).pop()
        assert finding.explanation.startswith("an agent of class antimalarial is required by I1")
        assert f"{forbidden}: E1 within 10 days before enrolment — last dose 11 or more days" in finding.explanation
        assert f"{other} meet it with no criterion against them" in finding.explanation
        inside, outside, continuing = finding.witness.cases
        assert (inside.expected, outside.expected) == ({"I1": "pass", "E1": "fail"}, {"I1": "pass", "E1": "pass"})
        assert continuing.expected == {"I1": "pass", "E1": "pass"} and f"{other} ongoing" in continuing.note


def test_a_required_class_every_agent_forbidden(tmp_path: Path) -> None:
    found = _planted(
        tmp_path,
        _required("event(P, medication, Agent, _, _), agent_class(Agent, antimalarial)"),
        _window("event(P, medication, G, S, E), agent_class(G, antimalarial), E >= A - 10, S <= A"),
    )
    (finding,) = found
    every = "For every agent that meets it (chloroquine and hydroxychloroquine): E1 within 10 days"
    assert every in finding.explanation
    assert "no criterion against them" not in finding.explanation and len(finding.witness.cases) == 2


_GC_DOSE = "pred_mg_per_kg(P, _, _, D), D >= 1"


@pytest.mark.parametrize(("bound", "tension"), [(10, True), (100, False)])
def test_a_required_dose_above_a_forbidden_one(tmp_path: Path, bound: int, tension: bool) -> None:
    """≥ 1 mg/kg/day required (60 mg/day at 60 kg); more than `bound` mg/day forbidden within
    4 days: above 60 the required dose itself is never forbidden."""
    found = _planted(
        tmp_path,
        _required(_GC_DOSE),
        _window(f"event(P, medication, G, S, E), pred_equivalent(P, G, S, Dose), Dose > {bound}, E >= A - 4, S <= A"),
    )
    assert bool(found) is tension
    if tension:
        (finding,) = found
        assert finding.explanation.startswith("a glucocorticoid dose ≥ 1 mg/kg/day prednisone-equivalent")
        assert "last dose at that level 5 or more days before enrolment" in finding.explanation
        assert "(60 mg/day prednisone-equivalent at 60 kg) must be tapered to 10 mg/day or less" in finding.explanation
        inside, outside, tapered = finding.witness.cases
        assert inside.expected == {"I1": "pass", "E1": "fail"} and "60 mg/day 4 days before" in inside.note
        assert outside.expected == tapered.expected == {"I1": "pass", "E1": "pass"}
        assert "10 mg/day from 4 days before enrolment, ongoing" in tapered.note  # on 10 mg/day up to enrolment


@pytest.mark.parametrize(("forbidden", "tension"), [("methotrexate", True), ("bendamustine", False)])
def test_a_required_course_of_a_forbidden_drug(tmp_path: Path, forbidden: str, tension: bool) -> None:
    """A 90-day immunomodulator course required; methotrexate forbidden within 14 days: a
    methotrexate course must have begun 90 + 15 days before enrolment."""
    found = _planted(
        tmp_path,
        _required("course(P, Agent, _, _, L), agent_class(Agent, conventional_immunomodulator), L >= 90"),
        drug_window("forbids", forbidden, 14),
    )
    assert bool(found) is tension
    if tension:
        (finding,) = found
        assert "a course of ≥ 90 days of an agent of class conventional_immunomodulator" in finding.explanation
        assert (
            "methotrexate: E1 within 14 days before enrolment — last dose 15 or more days before enrolment, so the "
            "course must have begun 105 or more days before enrolment" in finding.explanation
        )
        assert "hydroxychloroquine" in finding.explanation.split("meet it with no criterion")[0]  # may continue
        inside, outside, _ = finding.witness.cases
        assert "methotrexate from 104 to 14 days before enrolment" in inside.note
        assert (inside.expected, outside.expected) == ({"I1": "pass", "E1": "fail"}, {"I1": "pass", "E1": "pass"})


_CLOT = "event(P, _, C, _, _), condition_class(C, aps_thrombotic_event)"


@pytest.mark.parametrize(
    ("forbidden", "within", "tension"),
    [("dvt_pe", "D >= A - 90, ", True), ("cns_event", "", True), ("malignancy", "D >= A - 90, ", False)],
)
def test_a_required_event_of_a_forbidden_kind(tmp_path: Path, forbidden: str, within: str, tension: bool) -> None:
    """A thrombotic event required; DVT/PE forbidden within 90 days (or a CNS event at any
    time): the pair leaves the other kinds, and DVT/PE only longer ago. A malignancy window
    reads no thrombotic event."""
    found = _planted(
        tmp_path,
        _required(_CLOT, "thrombosis"),
        _window(f"event(P, _, C, D, _), condition_class(C, {forbidden}), {within}D <= A", "thrombosis"),
    )
    assert bool(found) is tension
    if not tension:
        return
    (finding,) = found
    assert finding.explanation.startswith("I1 (“I1”) is met only with an event of class aps_thrombotic_event")
    assert "arterial thrombosis" in finding.explanation.split("The pair leaves")[1]  # free at any time
    cases = finding.witness.cases
    if forbidden == "dvt_pe":
        clot = "deep vein thrombosis or pulmonary embolism"
        assert f"if it is {clot} within 90 days before enrolment" in finding.explanation
        assert f"or {clot} more than 90 days before enrolment" in finding.explanation
        assert [c.expected for c in cases] == [
            {"I1": "pass", "E1": "fail"},  # a DVT 90 days before
            {"I1": "pass", "E1": "pass"},  # 91 days before
            {"I1": "pass", "E1": "pass"},  # an arterial thrombosis a month before
        ]
        assert "deep vein thrombosis 90 days before enrolment (" in cases[0].note
    else:
        assert "if it is cerebral venous thrombosis or ischaemic stroke at any time" in finding.explanation
        assert "; never cerebral venous thrombosis or ischaemic stroke" in finding.explanation
        assert [c.expected["E1"] for c in cases] == ["fail", "fail", "pass"]  # CVT and stroke long ago, free


# ---- the real encoding --------------------------------------------------------------------------


def _real(kb: KnowledgeBase) -> dict[tuple[str, ...], Finding]:
    findings, _ = checked_findings(kb, resolve_assumptions())  # shared with the other review tests
    return {f.criteria: f for f in findings if f.kind == "tension"}


RR = ("DEF-RR", "SLE-I4", "PSS-I2", "SSC-RR", "IIM-RR", "AAV-I5")


def test_the_real_tensions(kb: KnowledgeBase) -> None:
    found = _real(kb)
    assert set(found) == {
        (*RR, "GE4.7"),  # glucocorticoids ≥ 1 mg/kg/day
        (*RR, "GE4.5", "GE4.7"),  # cyclophosphamide
        (*RR, "GE4.1", "GE4.3", "GE4.4", "GE4.7"),  # the immunomodulator course
        ("DEF-APS-RR", "APS-I3", "GE4.5", "GE4.7"),  # cyclophosphamide
        ("DEF-APS-RR", "APS-I3", "GE5", "GE7", "APS-E3"),  # the recurrence
    }
    dose = found[(*RR, "GE4.7")].explanation
    assert "tapered to 10 mg/day or less prednisone-equivalent at least 5 days before enrolment" in dose
    assert "SLE-I2 (“2. In the moderate to severe active stage of the disease, SELENA-SLEDAI score >6;”)" in dose
    assert "AAV-I3" in dose
    for cyclophosphamide in (found[(*RR, "GE4.5", "GE4.7")], found[("DEF-APS-RR", "APS-I3", "GE4.5", "GE4.7")]):
        assert "GE4.5 within 14 days before enrolment, GE4.7 within 4 days before enrolment — last dose 15 or more" in (
            cyclophosphamide.explanation
        )
    course = found[(*RR, "GE4.1", "GE4.3", "GE4.4", "GE4.7")].explanation
    assert "inebilizumab and obexelimab: GE4.1 at any time, GE4.3 within 28 days before enrolment — never" in course
    assert "rituximab" in course and "course must have begun 212 or more days before enrolment" in course
    assert (
        "tacrolimus: GE4.4 within 8 days before apheresis, GE4.7 within 4 days before enrolment — last dose 9" in course
    )
    assert "chloroquine and hydroxychloroquine meet it with no criterion against them" in course
    recurrence = found[("DEF-APS-RR", "APS-I3", "GE5", "GE7", "APS-E3")].explanation
    assert "myocardial infarction within 365 days before enrolment" in recurrence
    assert "deep vein thrombosis or pulmonary embolism within 182 days before enrolment" in recurrence
    assert "never cerebral venous thrombosis or ischaemic stroke" in recurrence
    for finding in found.values():
        assert check_witness(finding.witness, kb, resolve_assumptions()) == []


def test_a_required_drug_that_no_criterion_forbids_is_no_tension(kb: KnowledgeBase) -> None:
    """DEF-APS-RR's anticoagulant and its glucocorticoid (any dose: 1 mg/day is not forbidden)."""
    explanations = " ".join(f.explanation for f in _real(kb).values())
    assert "vka or lmwh" not in explanations and "class glucocorticoid is required" not in explanations


# ---- computed, not listed: edits of the real rules move the tensions ---------------------------------


def _edited(tmp_path: Path, file: str, old: str, new: str) -> list[Finding]:
    folder = tmp_path / "rules"
    shutil.copytree(RULES_DIR, folder)
    text = (folder / file).read_text(encoding="utf-8")
    assert old in text
    (folder / file).write_text(text.replace(old, new), encoding="utf-8")
    kb = load_knowledge(folder)
    found = tension_findings(kb, resolve_assumptions(), [])  # no representatives' windows: all probed here
    for finding in found:
        assert check_witness(finding.witness, kb, resolve_assumptions()) == []
    return found


def test_a_dose_requirement_below_the_forbidden_dose_is_no_tension(tmp_path: Path) -> None:
    """≥ 0.1 mg/kg/day (6 mg/day at 60 kg) is under GE4.7's 10 mg/day: only cyclophosphamide
    and the course stay."""
    found = _edited(tmp_path, "definitions.dl", "MgPerKg >= 1.", "MgPerKg >= 0.1.")
    assert not [f for f in found if "glucocorticoid dose" in f.explanation]
    assert sum(f.explanation.startswith("cyclophosphamide") for f in found) == 2


def test_a_shorter_thrombosis_window_leaves_more_recurrences(tmp_path: Path) -> None:
    found = _edited(
        tmp_path, "general_exclusion.dl", "months_before(P, enrolment, 6, From)", "months_before(P, enrolment, 3, From)"
    )
    (recurrence,) = [f for f in found if "GE7" in f.criteria]
    assert "deep vein thrombosis or pulmonary embolism within 92 days before enrolment" in recurrence.explanation
