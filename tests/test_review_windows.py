"""Findings from engine-probed windows, each planted in a small rule set, and its clean
counterpart."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest

from kb.catalogue.assumptions import resolve_assumptions
from kb.catalogue.criteria import Criterion
from kb.catalogue.knowledge import KnowledgeBase
from kb.factbase.build import build_facts
from kb.reasoning.evaluation import criterion_status
from kb.records.patients import Patient
from kb.review.findings import synthetic_patient
from kb.review.windows import (
    _LABS,
    EVER,
    Window,
    _anchors,
    _event_kind,
    _exposed,
    _named_agents,
    _time_criteria,
    probe_windows,
)
from tests.review_rules import criterion, drug_window, findings_of, rule_set


@pytest.mark.parametrize(("other", "nested"), [("cyclophosphamide", True), ("bendamustine", False)])
def test_redundancy_in_two_windows_for_one_drug(tmp_path: Path, other: str, nested: bool) -> None:
    """Cyclophosphamide within 10 days, and `other` within 20 days: for one drug, the shorter
    window never blocks alone; for two different drugs nothing is redundant."""
    rules = drug_window("cyc_short", "cyclophosphamide", 10) + drug_window("cyc_long", other, 20)
    kb = rule_set(
        tmp_path, rules, [criterion("E1", "exclusion", "cyc_short"), criterion("E2", "exclusion", "cyc_long")]
    )
    found = findings_of(kb, "redundancy")
    assert [f.criteria for f in found] == ([("E1", "E2")] if nested else [])
    if nested:
        assert "within 10 days vs within 20 days" in found[0].explanation
        assert found[0].witness.cases[0].expected == {"E1": "fail", "E2": "fail"}


@pytest.mark.parametrize(("anchor", "apart"), [("apheresis", True), ("enrolment", False)])
def test_window_one_drug_two_reference_dates(tmp_path: Path, anchor: str, apart: bool) -> None:
    rules = drug_window("gcsf_a", "filgrastim", 5) + drug_window("gcsf_b", "filgrastim", 5, anchor)
    kb = rule_set(tmp_path, rules, [criterion("E1", "exclusion", "gcsf_a"), criterion("E2", "exclusion", "gcsf_b")])
    found = findings_of(kb, "boundary/window")
    assert bool(found) is apart
    if apart:
        assert set(found[0].witness.cases[0].expected.values()) == {"fail", "pass"}  # one dose, two answers


# ---- the probes, evaluated a level at a time in shared sessions, against one session per probe ----


def sequential_windows(kb: KnowledgeBase) -> list[Window]:
    """The windows as the review found them before it batched its probes: one engine session
    per probe patient, a bisection per agent and criterion (the reference)."""
    assumptions = resolve_assumptions()
    criteria = _time_criteria(kb)
    roots = frozenset(c.predicate for c in criteria if c.predicate)

    def statuses(patient: Patient) -> dict[str, str]:
        with kb.engine.session(build_facts(patient, kb, assumptions).facts, roots) as session:
            out = {}
            for crit in criteria:
                assert crit.predicate
                truths = {row[1] for row in session.ask(crit.predicate, [patient.id, None])}
                blocking = "yes" if crit.kind == "exclusion" else "no"
                out[crit.id] = "unknown" if not truths else "fail" if truths == {blocking} else "pass"
            return out

    def fails(agent: str, kind: str, offset: int, crit: Criterion) -> bool:
        return statuses(_exposed(kb, agent, kind, offset))[crit.id] == "fail"

    representatives: dict[tuple[str, ...], str] = {}
    for name in sorted(kb.vocabulary.agents):
        representatives.setdefault(kb.vocabulary.agents[name].classes, name)
    baseline = statuses(synthetic_patient("W-none", kb, dict[str, Decimal | str](_LABS)))
    criteria = [c for c in criteria if baseline[c.id] == "pass"]
    windows = []
    for agent in sorted(set(representatives.values()) | _named_agents(kb)):
        classes = kb.vocabulary.agents[agent].classes
        kind = _event_kind(classes)
        for crit in criteria:
            if not fails(agent, kind, 0, crit):
                continue
            low, high = 0, EVER
            if fails(agent, kind, EVER, crit):
                low = EVER
            while high - low > 1:
                middle = (low + high) // 2
                low, high = (middle, high) if fails(agent, kind, middle, crit) else (low, middle)
            assert crit.predicate
            windows.append(Window(crit.id, agent, classes, kind, low, _anchors(kb, crit.predicate)))
    return windows


def test_batched_probes_find_the_windows_one_session_per_probe_finds(tmp_path: Path) -> None:
    rules = (
        drug_window("cyc_short", "cyclophosphamide", 10)
        + drug_window("cyc_long", "cyclophosphamide", 20, "apheresis")
        + drug_window("gcsf", "filgrastim", 5)
    )
    kb = rule_set(
        tmp_path,
        rules,
        [criterion(f"E{n}", "exclusion", p) for n, p in enumerate(("cyc_short", "cyc_long", "gcsf"), 1)],
    )
    found = probe_windows(kb, resolve_assumptions())
    assert found == sequential_windows(kb)
    assert {(w.criterion, w.agent, w.days) for w in found} >= {
        ("E1", "cyclophosphamide", 10),
        ("E2", "cyclophosphamide", 20),
        ("E3", "filgrastim", 5),
    }


def test_each_real_window_ends_where_the_engine_says_alone(kb: KnowledgeBase) -> None:
    """At each window's last day the dose fails the criterion, a day later it passes, each
    patient evaluated on its own (`criterion_status`); a window of EVER fails at any time."""
    assumptions = resolve_assumptions()
    windows = probe_windows(kb, assumptions)
    assert ("GE4.5", "cyclophosphamide", 14) in {(w.criterion, w.agent, w.days) for w in windows}
    for w in windows:
        crit = kb.criterion(w.criterion)
        assert crit is not None
        last = min(w.days, EVER)
        assert criterion_status(_exposed(kb, w.agent, w.kind, last), crit, kb, assumptions) == "fail", w
        if w.days < EVER:
            assert criterion_status(_exposed(kb, w.agent, w.kind, last + 1), crit, kb, assumptions) != "fail", w


@pytest.mark.slow
def test_real_windows_are_those_of_one_session_per_probe(kb: KnowledgeBase) -> None:
    assert probe_windows(kb, resolve_assumptions()) == sequential_windows(kb)
