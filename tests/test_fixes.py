"""Each fix-finder on the vignette built for its kind of repair: the changes it offers, with
their dates, values and the what-if changes that simulate them."""

from __future__ import annotations

from datetime import date

import pytest

from kb.catalogue.assumptions import resolve_assumptions
from kb.catalogue.knowledge import KnowledgeBase
from kb.quality.vignettes import load_vignettes
from kb.reasoning.evaluation import CriterionResult
from kb.reasoning.fixes import Baseline, Fix, GapFixes, RangeFixes, RepairChange, StopFixes, WaitFixes
from kb.reasoning.requirements import requirements
from kb.reasoning.whatif import Change, stopping
from kb.records.patients import Dataset
from kb.status import Truth

TODAY = date(2026, 11, 24)  # the demo's enrolment day: a drug can be stopped from then


def baseline_of(kb: KnowledgeBase, demo: Dataset, pid: str) -> Baseline:
    vignette = next(v for v in load_vignettes() if v.patient_id == pid)
    return Baseline.of(demo.patient(pid), kb, resolve_assumptions(list(vignette.assume)), None, TODAY)


def result_of(baseline: Baseline, criterion: str) -> CriterionResult:
    return next(r for r in baseline.before.criteria if r.id == criterion)


def range_fixes(kb: KnowledgeBase, baseline: Baseline, criterion: str) -> list[Fix]:
    """The fixes of every alternative of the criterion, as the search asks for them."""
    crit = result_of(baseline, criterion).criterion
    assert crit.predicate is not None
    truth = Truth.YES if crit.kind in ("inclusion", "definition") else Truth.NO
    finder = RangeFixes(baseline)
    return [
        f for alternative in requirements(kb.program, crit.predicate, truth) for f in finder.fixes(alternative, crit.id)
    ]


def summary(change: RepairChange) -> tuple[str, str, str, str, tuple[tuple[str, str], ...]]:
    return (change.kind, change.item, change.current, change.target, change.witness)


def test_the_baseline_is_the_patient_as_recorded(kb: KnowledgeBase, demo: Dataset) -> None:
    baseline = baseline_of(kb, demo, "P061")
    assert baseline.start == date(2026, 11, 24) and baseline.now == TODAY
    assert baseline.current("obs_num", "platelets") == "42 ×10^9/L"
    assert baseline.latest(["platelets"]) == [("platelets", "42", date(2026, 11, 17))]


def test_a_lab_below_its_bound_is_changed_to_the_bound(kb: KnowledgeBase, demo: Dataset) -> None:
    fixes = range_fixes(kb, baseline_of(kb, demo, "P061"), "GI6.3")
    assert [tuple(summary(c) for c in f) for f in fixes] == [
        (("change", "platelets", "42 ×10^9/L", "≥ 50 ×10^9/L", (("platelets", "50"),)),)
    ]


def test_missing_data_is_collected_in_the_range_each_alternative_needs(kb: KnowledgeBase, demo: Dataset) -> None:
    baseline = baseline_of(kb, demo, "P064")
    assert [tuple(summary(c) for c in f) for f in range_fixes(kb, baseline, "GI6.3")] == [
        (("collect", "platelets", "missing", "≥ 50 ×10^9/L", (("platelets", "50"),)),)
    ]
    hbv = {tuple(c.item for c in f) for f in range_fixes(kb, baseline, "GE3")}
    assert ("hbsag",) in hbv and any("hbv_dna" in items for items in hbv)
    negative = next(f for f in range_fixes(kb, baseline, "GE3") if [c.item for c in f] == ["hbsag"])
    assert summary(negative[0]) == ("collect", "hbsag", "missing", "= negative", (("hbsag", "negative"),))


def test_a_clearance_is_mended_by_a_measured_clearance_or_by_the_creatinine(kb: KnowledgeBase, demo: Dataset) -> None:
    """P033: Cockcroft–Gault 39.9 mL/min from creatinine 176.8 µmol/L. z3 finds the creatinine
    that gives a clearance of 60 (GI6.7) and stays under 1.5 × ULN: 117 µmol/L."""
    changes = {c.item: c for f in range_fixes(kb, baseline_of(kb, demo, "P033"), "GI6.7") for c in f}
    creatinine = changes["creatinine"]
    assert summary(creatinine) == (
        "change",
        "creatinine",
        "176.8 µmol/L",
        "≤ 117 µmol/L (clearance ≥ 60 mL/min by cockcroft_gault_mg_dl)",
        (("creatinine", "117"),),
    )
    assert creatinine.coupled and creatinine.criteria == ("GI6.7",)
    measured = changes["crcl_measured"]
    assert (measured.kind, measured.target, measured.witness) == (
        "change",
        "measured clearance ≥ 60 mL/min",
        (("crcl_measured", "60"),),
    )


def test_what_treatment_cannot_move_is_not_offered(kb: KnowledgeBase, demo: Dataset) -> None:
    """P003 is 66 on the enrolment day: no range fix changes an age."""
    assert range_fixes(kb, baseline_of(kb, demo, "P003"), "GI2") == []


def test_an_open_criterion_collects_the_data_it_waits_for(kb: KnowledgeBase, demo: Dataset) -> None:
    """P007, a referral letter: platelets from October are stale, nothing has been reviewed."""
    baseline = baseline_of(kb, demo, "P007")
    gaps = GapFixes(baseline)
    [stale] = gaps.fixes(result_of(baseline, "GI6.3"))
    assert [summary(c) for c in stale] == [
        ("collect", "platelets", "150 on 2026-10-01 (stale)", "repeated", (("platelets", "150"),))
    ]
    assert stale[0].repeat
    [histories] = gaps.fixes(result_of(baseline, "GE7"))
    assert [(c.item, c.target, c.witness) for c in histories] == [
        ("reviewed:thrombosis", "history reviewed", (("reviewed:thrombosis", "yes"),)),
        ("reviewed:medications", "history reviewed", (("reviewed:medications", "yes"),)),
    ]


@pytest.mark.parametrize(
    ("pid", "criterion", "day"),
    [
        ("P059", "GE4.2", date(2026, 12, 19)),  # MMR on 2026-11-20, a 28-day window
        ("P063", "GI2", date(2027, 1, 15)),  # the 18th birthday
    ],
)
def test_a_wait_is_the_first_day_the_criterion_passes(
    kb: KnowledgeBase, demo: Dataset, pid: str, criterion: str, day: date
) -> None:
    baseline = baseline_of(kb, demo, pid)
    [fix] = WaitFixes(baseline).fixes(result_of(baseline, criterion))
    wait = fix[0]
    assert (wait.kind, wait.item, wait.current, wait.target) == (
        "wait",
        "enrolment",
        "2026-11-24",
        f"on or after {day.isoformat()}",
    )
    assert wait.earliest_date == day and wait.criteria == (criterion,)


def test_a_criterion_that_fails_at_the_horizon_has_no_wait(kb: KnowledgeBase, demo: Dataset) -> None:
    baseline = baseline_of(kb, demo, "P008")  # a prior CD19 CAR-T: a lifetime history
    assert WaitFixes(baseline).fixes(result_of(baseline, "GE4.1")) == []


def test_an_ongoing_drug_is_stopped_today_and_its_washout_waited(kb: KnowledgeBase, demo: Dataset) -> None:
    """Tacrolimus stopped on 2026-11-24: five half-lives of 35 h end before an enrolment (and
    apheresis) on 2026-12-03."""
    baseline = baseline_of(kb, demo, "P060")
    [fix] = StopFixes(baseline, WaitFixes(baseline)).fixes(result_of(baseline, "GE4.4"))
    stop = fix[0]
    assert (stop.kind, stop.item, stop.target, stop.earliest_date) == (
        "stop",
        "tacrolimus",
        "stopped on 2026-11-24",
        date(2026, 12, 3),
    )
    assert stop.current.startswith("ongoing since ") and stop.criteria == ("GE4.4",)
    assert stop.stop == stopping("tacrolimus", kb.vocabulary, date(2026, 11, 24))
    assert stop.stop == Change("stop", "tacrolimus", when=date(2026, 11, 24))
    assert all(c.kind != "wait" for c in fix)  # the wait is the stop's own earliest date


def test_no_drug_no_stop(kb: KnowledgeBase, demo: Dataset) -> None:
    baseline = baseline_of(kb, demo, "P059")  # a vaccine given, not a drug being taken
    assert StopFixes(baseline, WaitFixes(baseline)).fixes(result_of(baseline, "GE4.2")) == []
