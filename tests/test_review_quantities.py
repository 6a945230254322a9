"""Dead rules through related quantities, each planted in a small rule set (eGFR, clearance and
creatinine read like the real rules), found with a witness the engine confirms and absent from
the clean counterpart; then the real encoding's finding, AAV-E1 against GI6.7."""

from __future__ import annotations

import time
from decimal import Decimal
from pathlib import Path

import pytest

from kb.catalogue.assumptions import resolve_assumptions
from kb.catalogue.derived import ckd_epi_2021, cockcroft_gault
from kb.catalogue.knowledge import KnowledgeBase, load_knowledge
from kb.factbase.clearance import creatinine_for_clearance
from kb.review.findings import Finding, check_witness
from kb.review.logic import logic_findings
from kb.review.quantities import quantity_findings
from tests.review_rules import criterion, findings_of, rule_set

MG_DL = Decimal("88.4")
AGES = """
.decl age_ok(P: patient, T: truth)
age_ok(P, yes) :- age_at(P, enrolment, Age), Age >= 18, Age <= 65.
age_ok(P, no) :- age_at(P, enrolment, Age), Age < 18.
age_ok(P, no) :- age_at(P, enrolment, Age), Age > 65.
"""


def renal(clearance: str) -> str:
    """GI6.7's form: creatinine < 1.5 × ULN and clearance ≥ `clearance`."""
    return f"""
.decl renal_ok(P: patient, T: truth)
renal_ok(P, yes) :- xuln(P, creatinine, R), R < 1.5, crcl(P, C), C >= {clearance}.
renal_ok(P, no) :- xuln(P, creatinine, R), R >= 1.5.
renal_ok(P, no) :- crcl(P, C), C < {clearance}.
"""


def one_bound(name: str, atom: str, below: str, above: str) -> str:
    """`name` yes when the value of `atom` is `below`, no when it is `above` (e.g. '< 15', '>= 15')."""
    return f"""
.decl {name}(P: patient, T: truth)
{name}(P, yes) :- {atom}, V {below}.
{name}(P, no) :- {atom}, V {above}.
"""


def planted(tmp_path: Path, rules: str, *catalogue: tuple[str, str, str]) -> KnowledgeBase:
    entries = [criterion("I1", "inclusion", "age_ok"), *(criterion(*c) for c in catalogue)]
    return rule_set(tmp_path, AGES + rules, entries)


def confirmed(kb: KnowledgeBase, **overrides: str) -> list[Finding]:
    assumptions = resolve_assumptions(overrides)
    found = quantity_findings(kb, assumptions)
    for finding in found:
        assert finding.kind == "dead rule"
        assert check_witness(finding.witness, kb, assumptions) == [], finding
    return found


def lowest_creatinine(egfr_below: Decimal, age: int, female: bool) -> Decimal:
    """Stepping the fact base's CKD-EPI: the lowest creatinine (0.01 µmol/L) with eGFR below."""
    scr = Decimal(100)
    while ckd_epi_2021(Decimal(age), scr, female, MG_DL).value >= egfr_below:
        scr += 1
    while ckd_epi_2021(Decimal(age), scr - Decimal("0.01"), female, MG_DL).value < egfr_below:
        scr -= Decimal("0.01")
    return scr


def lightest_by_clearance_module(egfr_below: str, clearance: str, age: int, female: bool) -> int:
    """Independently, through kb.factbase.clearance: the lightest whole kg at which the highest creatinine
    whose clearance meets the bound reaches the creatinine eGFR < `egfr_below` needs."""
    needed = lowest_creatinine(Decimal(egfr_below), age, female)
    for kg in range(1, 401):
        top = creatinine_for_clearance(
            ">=",
            Decimal(clearance),
            age=Decimal(age),
            weight_kg=Decimal(kg),
            female=female,
            formula="cockcroft_gault_mg_dl",
            umol_per_mg_dl=MG_DL,
        )
        if top is not None and top >= needed:
            return kg
    return 401


@pytest.mark.parametrize(("clearance", "dead"), [("70", True), ("30", False)])
def test_an_egfr_bound_reachable_only_above_a_weight(tmp_path: Path, clearance: str, dead: bool) -> None:
    """eGFR < 15 excludes; clearance ≥ 70 is required: only a patient over 200 kg is both."""
    rules = renal(clearance) + one_bound("egfr_low", "egfr(P, V)", "< 15", ">= 15")
    kb = planted(tmp_path, rules, ("I2", "inclusion", "renal_ok"), ("E1", "exclusion", "egfr_low"))
    found = confirmed(kb)
    assert bool(found) is dead
    if not dead:  # at clearance ≥ 30 the lightest such patient weighs ~88 kg: ordinary
        return
    (finding,) = found
    assert finding.criteria == ("E1", "I2", "I1")
    detail = finding.witness.detail
    assert detail["verdict"] == "heavy" and detail["at"] == "a woman of 18"
    x = Decimal(detail["weight_kg"])
    assert abs(x - lightest_by_clearance_module("15", clearance, 18, True)) <= 1
    for age, female in ((18, False), (65, True), (40, True)):  # the woman of 18 is the lightest
        assert x <= lightest_by_clearance_module("15", clearance, age, female)
    assert f"weighs at least {x} kg" in finding.explanation and "eGFR < 15 mL/min/1.73 m²" in finding.explanation
    lightest, below, measured = finding.witness.cases
    assert lightest.expected == {"E1": "fail", "I2": "pass", "I1": "pass"} and f"{x} kg" in lightest.note
    assert below.expected == {"E1": "fail", "I2": "fail", "I1": "pass"} and f"{x - Decimal('0.1')} kg" in below.note
    assert measured.expected == {"E1": "fail", "I2": "pass", "I1": "pass"}
    assert "measured clearance 70 mL/min" in measured.note


def test_the_review_reports_it(tmp_path: Path) -> None:
    """Wired into `kb review`: the dead-rule section holds it, its witness confirmed."""
    rules = renal("70") + one_bound("egfr_low", "egfr(P, V)", "< 15", ">= 15")
    kb = planted(tmp_path, rules, ("I2", "inclusion", "renal_ok"), ("E1", "exclusion", "egfr_low"))
    assert [f.criteria for f in findings_of(kb, "dead rule")] == [("E1", "I2", "I1")]


@pytest.mark.parametrize(("bound", "dead"), [("15", True), ("60", False)])
def test_an_inclusion_the_others_make_unfailable(tmp_path: Path, bound: str, dead: bool) -> None:
    """The second form: eGFR ≥ 15 as an inclusion fails only patients who fail I2 anyway (at
    clearance ≥ 70, unless over 200 kg); eGFR ≥ 60 fails a 60 kg patient I2 admits."""
    rules = renal("70") + one_bound("egfr_ok", "egfr(P, V)", f">= {bound}", f"< {bound}")
    kb = planted(tmp_path, rules, ("I2", "inclusion", "renal_ok"), ("I3", "inclusion", "egfr_ok"))
    found = [f for f in confirmed(kb) if f.criteria[0] == "I3"]
    assert [f.witness.detail["verdict"] for f in found] == (["heavy"] if dead else [])
    if dead:
        assert (
            found[0].criteria == ("I3", "I2", "I1") and "whoever I3 would fail already fails I2" in found[0].explanation
        )
        assert found[0].witness.cases[0].expected == {"I3": "fail", "I2": "pass", "I1": "pass"}


@pytest.mark.parametrize("method", ["measured_or_cockcroft_gault", "measured_only"])
def test_unreachable_by_the_formula_reachable_by_a_measured_clearance(tmp_path: Path, method: str) -> None:
    """Clearance ≥ 150 against eGFR < 15: no weight up to 400 kg gives it by Cockcroft–Gault, a
    measured clearance does (it wins over the formula); with measured clearances only, nothing
    ties the clearance to the creatinine, and there is no finding."""
    rules = renal("150") + one_bound("egfr_low", "egfr(P, V)", "< 15", ">= 15")
    kb = planted(tmp_path, rules, ("I2", "inclusion", "renal_ok"), ("E1", "exclusion", "egfr_low"))
    found = confirmed(kb, crcl_method=method)
    if method == "measured_only":
        assert found == []
        return
    (finding,) = found
    assert finding.witness.detail["verdict"] == "formula"
    assert finding.witness.detail["measured_clearance"] == "150 mL/min reaches it"
    assert "reachable only through a measured clearance that disagrees with the formula" in finding.explanation
    heaviest, measured = finding.witness.cases
    assert "400 kg" in heaviest.note and heaviest.expected == {"E1": "fail", "I2": "fail", "I1": "pass"}
    assert measured.expected == {"E1": "fail", "I2": "pass", "I1": "pass"}
    assert any(o.item == "crcl_measured" and o.value == 150 for o in measured.patient.observations)


@pytest.mark.parametrize(("creatinine", "dead"), [("250", True), ("500", False)])
def test_an_egfr_bound_unreachable_under_a_creatinine_bound(tmp_path: Path, creatinine: str, dead: bool) -> None:
    """eGFR < 15 needs creatinine ≥ ~290 µmol/L even at 65: creatinine < 250 leaves nobody, and
    no free datum helps (eGFR has no measured alternative)."""
    rules = one_bound("creat_ok", "obs_num(P, creatinine, V, _)", f"< {creatinine}", f">= {creatinine}")
    rules += one_bound("egfr_low", "egfr(P, V)", "< 15", ">= 15")
    kb = planted(tmp_path, rules, ("I2", "inclusion", "creat_ok"), ("E1", "exclusion", "egfr_low"))
    found = confirmed(kb)
    assert bool(found) is dead
    if dead:
        (finding,) = found
        assert finding.witness.detail == {"verdict": "unreachable"}
        assert "neither a measured clearance nor the laboratory's ULN" in finding.explanation
        (case,) = finding.witness.cases
        assert case.expected == {"E1": "fail", "I2": "fail", "I1": "pass"}


@pytest.mark.parametrize(("clearance", "dead"), [("25", True), ("40", False)])
def test_a_clearance_bound_reachable_only_below_a_weight(tmp_path: Path, clearance: str, dead: bool) -> None:
    """Clearance < 25 excludes; eGFR ≥ 60 is required: only a patient under ~32 kg is both."""
    rules = one_bound("crcl_low", "crcl(P, V)", f"< {clearance}", f">= {clearance}")
    rules += one_bound("egfr_ok", "egfr(P, V)", ">= 60", "< 60")
    kb = planted(tmp_path, rules, ("I2", "inclusion", "egfr_ok"), ("E1", "exclusion", "crcl_low"))
    found = confirmed(kb)
    assert bool(found) is dead
    if not dead:
        return
    detail = found[0].witness.detail
    assert detail["verdict"] == "light" and detail["at"] == "a man of 65"
    scr = Decimal(detail["creatinine_umol_l"])  # the highest creatinine eGFR ≥ 60 allows at 65
    assert ckd_epi_2021(Decimal(65), scr, False, MG_DL).value >= 60
    assert ckd_epi_2021(Decimal(65), scr + Decimal("0.01"), False, MG_DL).value < 60
    heaviest = next(
        kg for kg in range(60, 0, -1) if cockcroft_gault(Decimal(65), Decimal(kg), scr, False, MG_DL).value < 25
    )
    assert abs(Decimal(detail["weight_kg"]) - heaviest) <= 1
    at, past, measured = found[0].witness.cases
    assert at.expected == {"E1": "fail", "I2": "pass", "I1": "pass"}
    assert past.expected == {"E1": "fail", "I2": "fail", "I1": "pass"}  # heavier: excluded only with eGFR < 60
    assert "measured clearance 24 mL/min" in measured.note


def test_one_relation_pairs_are_left_to_the_solver(tmp_path: Path) -> None:
    """Clearance < 40 against clearance ≥ 60 (SSC-E6 against GI6.7) is the solver's finding."""
    rules = renal("60") + one_bound("crcl_low", "crcl(P, V)", "< 40", ">= 40")
    kb = planted(tmp_path, rules, ("I2", "inclusion", "renal_ok"), ("E1", "exclusion", "crcl_low"))
    assert confirmed(kb) == []
    assert [f.criteria for f in logic_findings(kb, resolve_assumptions()) if f.kind == "dead rule"] == [("E1", "I2")]


def test_real_encoding_aav_e1_against_gi6_7() -> None:
    """AAV-E1's eGFR < 15 excludes, within GI6.7's clearance ≥ 60, only a patient of at least
    ~175 kg (an 18-year-old woman; men ~190 kg), or through a measured clearance that disagrees
    with the formula. SSC-E6's clearance < 40 is left to the solver."""
    kb, assumptions = load_knowledge(), resolve_assumptions()
    started = time.perf_counter()
    found = quantity_findings(kb, assumptions)
    assert time.perf_counter() - started < 1.0
    assert [f.criteria for f in found] == [("AAV-E1", "GI6.7", "GI2")]
    (finding,) = found
    assert check_witness(finding.witness, kb, assumptions) == []
    detail = finding.witness.detail
    assert detail["verdict"] == "heavy" and detail["at"] == "a woman of 18"
    assert abs(Decimal(detail["weight_kg"]) - lightest_by_clearance_module("15", "60", 18, True)) <= 1
    assert detail["measured_clearance"] == "60 mL/min reaches it"
    for crit in ("AAV-E1", "GI6.7"):
        record = kb.criterion(crit)
        assert record is not None and record.record_text in finding.explanation
    assert "men from 189.5 kg" in finding.explanation and "ULN above 247.7 µmol/L" in finding.explanation
    assert [c.expected for c in finding.witness.cases] == [
        {"AAV-E1": "fail", "GI6.7": "pass", "GI2": "pass"},
        {"AAV-E1": "fail", "GI6.7": "fail", "GI2": "pass"},
        {"AAV-E1": "fail", "GI6.7": "pass", "GI2": "pass"},
    ]
    assert quantity_findings(kb, resolve_assumptions({"crcl_method": "measured_only"})) == []
