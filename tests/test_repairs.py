"""Repairs: each kind on the vignette built for it, minimal, ranked, and every one confirmed
by applying it through `kb whatif`."""

from __future__ import annotations

import json
from datetime import date

import pytest

from kb.catalogue.assumptions import resolve_assumptions
from kb.catalogue.knowledge import KnowledgeBase
from kb.cli import main
from kb.quality.vignettes import load_vignettes
from kb.reasoning.repairs import Repair, RepairAnswer, find_repairs
from kb.reasoning.whatif import parse_change, what_if
from kb.records.patients import Dataset


def repairs_of(kb: KnowledgeBase, demo: Dataset, pid: str, **options: object) -> RepairAnswer:
    vignette = next(v for v in load_vignettes() if v.patient_id == pid)
    return find_repairs(demo.patient(pid), kb, resolve_assumptions(list(vignette.assume)), **options)  # type: ignore[arg-type]


def verdict_with(kb: KnowledgeBase, demo: Dataset, pid: str, texts: list[str] | tuple[str, ...]) -> str:
    answer = what_if(demo.patient(pid), [parse_change(t, kb.vocabulary) for t in texts], kb)
    return answer.after.verdict


def moved(texts: tuple[str, ...], old: date, new: date) -> list[str]:
    """The same repair with every date of the wait one day earlier (the stop date stays)."""
    return [t if t.startswith("stop:") else t.replace(old.isoformat(), new.isoformat()) for t in texts]


def kinds(repair: Repair) -> dict[str, tuple[str, str, str]]:
    return {c.item: (c.kind, c.current, c.target) for c in repair.primary}


def test_a_live_vaccine_is_waited_out_to_the_day(kb: KnowledgeBase, demo: Dataset) -> None:
    """MMR on 2026-11-20, 28-day window: enrol on or after 2026-12-19, and 12-18 still fails."""
    best = repairs_of(kb, demo, "P059").repairs[0]
    assert kinds(best) == {"enrolment": ("wait", "2026-11-24", "on or after 2026-12-19")}
    assert best.enrolment == date(2026, 12, 19) and best.cost == "wait"
    assert ("GE4.2", "fail", "pass") in best.flips
    assert verdict_with(kb, demo, "P059", best.whatif) == "eligible"
    day_before = moved(best.whatif, date(2026, 12, 19), date(2026, 12, 18))
    assert verdict_with(kb, demo, "P059", day_before) == "ineligible"


def test_an_ongoing_drug_is_stopped_and_its_washout_dated(kb: KnowledgeBase, demo: Dataset) -> None:
    """Tacrolimus stopped on 2026-11-24: 5 half-lives of 35 h = 8 days (rounded up) must end
    before apheresis, so enrolment (apheresis the same day) from 2026-12-03; 12-02 fails GE4.4."""
    best = repairs_of(kb, demo, "P060").repairs[0]
    stop = next(c for c in best.primary if c.kind == "stop")
    assert (stop.item, stop.target, stop.earliest_date) == ("tacrolimus", "stopped on 2026-11-24", date(2026, 12, 3))
    assert best.enrolment == date(2026, 12, 3) and best.cost == "stop"
    assert {"GE4.4", "GE4.7"} <= {c for c, before, after in best.flips if before == "fail" and after == "pass"}
    assert verdict_with(kb, demo, "P060", best.whatif) == "eligible"
    day_before = moved(best.whatif, date(2026, 12, 3), date(2026, 12, 2))
    after = what_if(demo.patient("P060"), [parse_change(t, kb.vocabulary) for t in day_before], kb).after
    assert after.verdict == "ineligible" and [r.id for r in after.blocking] == ["GE4.4"]


def test_a_lab_below_its_bound_is_changed_to_the_rule_bound(kb: KnowledgeBase, demo: Dataset) -> None:
    best = repairs_of(kb, demo, "P061").repairs[0]
    assert kinds(best) == {"platelets": ("change", "42 ×10^9/L", "≥ 50 ×10^9/L")}
    assert best.whatif == ("platelets=50@2026-11-24",)
    assert verdict_with(kb, demo, "P061", ["platelets=49"]) == "ineligible"  # the bound is the rule's


def test_missing_data_is_collected_in_the_ranges_the_rules_need(kb: KnowledgeBase, demo: Dataset) -> None:
    answer = repairs_of(kb, demo, "P064")
    assert answer.verdict == "needs_data"
    best = answer.repairs[0]
    assert best.cost == "collect" and best.verdict == "eligible"
    assert kinds(best) == {
        "platelets": ("collect", "missing", "≥ 50 ×10^9/L"),
        "hbsag": ("collect", "missing", "= negative"),
    }
    # HBsAg positive with HBV DNA ≤ 1000 copies/mL also passes GE3: the other way to settle it
    assert any(set(kinds(r)) == {"platelets", "hbv_dna"} for r in answer.repairs)


def test_a_clearance_is_repaired_on_creatinine_or_on_a_measured_clearance(kb: KnowledgeBase, demo: Dataset) -> None:
    """P033: Cockcroft–Gault 39.9 mL/min, creatinine 1.67 × ULN. z3 finds the creatinine that
    meets both bounds of GI6.7 (and SSC-E6's clearance ≥ 40) together; or a measured clearance
    of 60 with a creatinine below 1.5 × ULN. Each is confirmed, and one step past fails."""
    answer = repairs_of(kb, demo, "P033")
    by_creatinine = next(r for r in answer.repairs if set(kinds(r)) == {"creatinine"})
    assert kinds(by_creatinine)["creatinine"][1:] == (
        "176.8 µmol/L",
        "≤ 117 µmol/L (clearance ≥ 60 mL/min by cockcroft_gault_mg_dl)",
    )
    assert verdict_with(kb, demo, "P033", by_creatinine.whatif) == "eligible"
    assert verdict_with(kb, demo, "P033", ["creatinine=118"]) == "ineligible"
    measured = next(r for r in answer.repairs if "crcl_measured" in kinds(r))
    assert set(kinds(measured)) == {"crcl_measured", "creatinine"}
    assert verdict_with(kb, demo, "P033", measured.whatif) == "eligible"
    assert by_creatinine.rank() < measured.rank()  # fewer changes first


def test_two_independent_blockers_are_both_in_the_repair(kb: KnowledgeBase, demo: Dataset) -> None:
    best = repairs_of(kb, demo, "P062").repairs[0]
    assert {c.item: c.kind for c in best.primary} == {"platelets": "change", "enrolment": "wait"}
    assert best.enrolment == date(2026, 12, 19)
    # minimal: without either change the patient stays ineligible
    without_wait = [t for t in best.whatif if t.startswith("platelets=")]
    assert verdict_with(kb, demo, "P062", without_wait) == "ineligible"
    without_platelets = [t for t in best.whatif if not t.startswith("platelets=")] + ["platelets=42@2026-12-19"]
    assert verdict_with(kb, demo, "P062", without_platelets) == "ineligible"
    # enrolment moves by 25 days: every history is re-confirmed and stale results repeated
    implied = {c.item for c in best.changes if c.implied}
    assert "reviewed histories" in implied and {"anc", "hbsag", "lvef"} <= implied


def test_a_minor_waits_for_the_18th_birthday(kb: KnowledgeBase, demo: Dataset) -> None:
    best = repairs_of(kb, demo, "P063").repairs[0]
    assert kinds(best) == {"enrolment": ("wait", "2026-11-24", "on or after 2027-01-15")}
    assert verdict_with(kb, demo, "P063", moved(best.whatif, date(2027, 1, 15), date(2027, 1, 14))) == "ineligible"


@pytest.mark.parametrize(
    ("pid", "criterion", "words"),
    [
        ("P003", "GI2", "not modifiable"),  # 66 on the enrolment day: a birthday only moves one way
        ("P008", "GE4.1", "not modifiable"),  # prior CD19 CAR-T: lifetime history
        ("P024", "SLE-I4", "the disease itself"),
    ],
)
def test_what_cannot_change_is_never_offered_and_is_named(
    kb: KnowledgeBase, demo: Dataset, pid: str, criterion: str, words: str
) -> None:
    answer = repairs_of(kb, demo, pid)
    assert answer.repairs == ()
    obstacle = next(o for o in answer.obstacles if o.criterion == criterion)
    assert words in obstacle.reason


def test_an_entry_criterion_lost_from_the_record_is_a_note_not_a_repair(kb: KnowledgeBase, demo: Dataset) -> None:
    answer = repairs_of(kb, demo, "P006")  # IIM under iim_entry = none
    assert answer.repairs == () and any("IIM-I1" in n for n in answer.notes)


def test_an_eligible_patient_gets_when_it_lapses_instead_of_repairs(kb: KnowledgeBase, demo: Dataset) -> None:
    answer = repairs_of(kb, demo, "P004")
    assert answer.repairs == () and answer.until is not None and answer.until.lapses_on == date(2026, 11, 25)


def test_a_repair_says_until_when_it_holds(kb: KnowledgeBase, demo: Dataset) -> None:
    best = repairs_of(kb, demo, "P061").repairs[0]
    assert best.until is not None and best.until.lapses_on == date(2026, 12, 16)  # results of 11-17 go stale
    waited = repairs_of(kb, demo, "P059").repairs[0]
    assert waited.until is not None and waited.until.lapses_on == date(2027, 1, 17)  # repeated on 12-19


def test_max_limits_the_repairs_and_they_come_cheapest_first(kb: KnowledgeBase, demo: Dataset) -> None:
    answer = repairs_of(kb, demo, "P064", max_repairs=2)
    assert len(answer.repairs) == 2
    ranks = [r.rank() for r in repairs_of(kb, demo, "P064").repairs]
    assert ranks == sorted(ranks)


def test_every_repair_of_every_vignette_holds_through_kb_whatif(
    kb: KnowledgeBase, demo: Dataset, capsys: pytest.CaptureFixture[str]
) -> None:
    """The promise of a repair is checked the way a user would: `kb whatif` with its changes."""
    checked = 0
    for vignette in load_vignettes():
        if vignette.expected_verdict == "eligible":
            continue
        answer = repairs_of(kb, demo, vignette.patient_id)
        assume = [a for pair in vignette.assume for a in ("--assume", pair)]
        for repair in answer.repairs:
            assert main(["whatif", vignette.patient_id, *repair.whatif, *assume, "--json"]) == 0
            shown = json.loads(capsys.readouterr().out)
            assert shown["verdict_after"] == repair.verdict == "eligible", (vignette.patient_id, repair.whatif)
            checked += 1
    assert checked >= 12


def test_kb_repair_text_and_json(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["repair", "P062"]) == 0
    text = capsys.readouterr().out
    assert "change   platelets: 42 ×10^9/L → ≥ 50 ×10^9/L  [GI6.3]" in text
    assert "wait     enrolment: 2026-11-24 → on or after 2026-12-19  [GE4.2]" in text
    assert "check it: kb whatif P062 " in text
    assert main(["repair", "P060", "--json", "--max", "1"]) == 0
    shown = json.loads(capsys.readouterr().out)
    change = shown["repairs"][0]["changes"][0]
    assert (change["kind"], change["item"], change["from"], change["earliest_date"]) == (
        "stop",
        "tacrolimus",
        "ongoing since 2026-06-01",
        "2026-12-03",
    )
    assert shown["repairs"][0]["verdict_after"] == "eligible"
    assert {"criterion": "GE4.7", "before": "fail", "after": "pass"} in shown["repairs"][0]["flips"]
    assert main(["repair", "P008"]) == 0
    assert "ruled out (sle) by GE4.1" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("argv", "message"), [(["repair", "P999"], "P999"), (["repair", "P001", "--max", "0"], "--max")]
)
def test_kb_repair_bad_input(argv: list[str], message: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
