"""The protocol review: each kind of finding planted in a small rule set is found with a
witness the engine confirms, a clean rule set yields none of that kind, findings follow
edits of the real rules, and the real encoding's findings are all proved."""

from __future__ import annotations

import json
import re
import shutil
import time
from pathlib import Path

import pytest

from kb.assumptions import resolve_assumptions
from kb.cli import main
from kb.knowledge import RULES_DIR, KnowledgeBase, load_knowledge
from kb.patients import Dataset
from kb.review.findings import KINDS, Finding, check_witness
from kb.review.reviewer import Review, review

HEADER = "\n".join(
    line
    for line in (RULES_DIR / "declarations.dl").read_text().splitlines()
    if re.match(r"^\.decl .*\) (input|computed)", line)
)


def criterion(cid: str, kind: str, predicate: str, text: str = "") -> str:
    return (
        f'[[criterion]]\nid = "{cid}"\nkind = "{kind}"\ncohort = "general"\nprovenance = "REC"\n'
        f'predicate = "{predicate}"\nrecord_text = "{text or cid}"\ntext = "{text or cid}"\n'
    )


def rule_set(tmp_path: Path, rules: str, catalogue: list[str]) -> KnowledgeBase:
    folder = tmp_path / "rules"
    folder.mkdir()
    (folder / "declarations.dl").write_text(HEADER + "\n", encoding="utf-8")
    (folder / "planted.dl").write_text(rules, encoding="utf-8")
    (folder / "criteria.toml").write_text("\n".join(catalogue), encoding="utf-8")
    for shared in ("assumptions.toml", "instruments.toml"):  # the readings and scores stay the real ones
        shutil.copy(RULES_DIR / shared, folder / shared)
    return load_knowledge(folder)


def findings_of(kb: KnowledgeBase, kind: str) -> list[Finding]:
    result = review(kb, resolve_assumptions())
    found = result.of_kind(kind)
    for finding in found:  # every witness must really show it
        assert check_witness(finding.witness, kb, resolve_assumptions()) == [], finding
    return found


PLATELETS_100 = """
.decl plt_high(P: patient, T: truth)
plt_high(P, yes) :- obs_num(P, platelets, C, _), C >= 100.
plt_high(P, no) :- obs_num(P, platelets, C, _), C < 100.
"""


def exclusion_below(name: str, item: str, bound: str) -> str:
    return f"""
.decl {name}(P: patient, T: truth)
{name}(P, yes) :- obs_num(P, {item}, C, _), C < {bound}.
{name}(P, no) :- obs_num(P, {item}, C, _), C >= {bound}.
"""


def drug_window(name: str, drug: str, days: int, anchor: str = "enrolment") -> str:
    return f"""
.decl {name}_exposed(P: patient)
.decl {name}(P: patient, T: truth)
{name}_exposed(P) :- ref_day(P, {anchor}, A), event(P, medication, {drug}, Start, End), End >= A - {days}, Start <= A.
{name}(P, yes) :- {name}_exposed(P).
{name}(P, no) :- ref_day(P, {anchor}, A), reviewed(P, medications, R), R >= A, not {name}_exposed(P).
"""


# ---- each kind planted, and its clean counterpart -------------------------------------------


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
    found = findings_of(kb, "dead rule")
    assert bool(found) is dead
    if dead:
        assert found[0].criteria == ("E1", "A1")
        case = found[0].witness.cases[0]  # platelets 79: excluded, and already failing A1
        assert case.expected == {"E1": "fail", "A1": "fail"} and "platelets 79" in case.note


@pytest.mark.parametrize(("bound", "redundant"), [("0.5", True), ("2.0", False)])
def test_redundancy_an_exclusion_inside_another(tmp_path: Path, bound: str, redundant: bool) -> None:
    rules = exclusion_below("anc_low", "anc", bound) + exclusion_below("anc_lower", "anc", "1.0")
    kb = rule_set(tmp_path, rules, [criterion("E1", "exclusion", "anc_low"), criterion("E2", "exclusion", "anc_lower")])
    found = [f for f in findings_of(kb, "redundancy") if f.criteria[0] == "E1"]
    assert bool(found) is redundant
    if redundant:
        assert found[0].criteria == ("E1", "E2")


@pytest.mark.parametrize(("short", "nested"), [(10, True), (30, False)])
def test_redundancy_in_two_windows_for_one_drug(tmp_path: Path, short: int, nested: bool) -> None:
    rules = drug_window("cyc_short", "cyclophosphamide", short) + drug_window("cyc_long", "cyclophosphamide", 20)
    kb = rule_set(
        tmp_path, rules, [criterion("E1", "exclusion", "cyc_short"), criterion("E2", "exclusion", "cyc_long")]
    )
    found = findings_of(kb, "redundancy")
    inner = ("E1", "E2") if nested else ("E2", "E1")
    assert [f.criteria for f in found] == [inner]  # the shorter window is the redundant one
    assert "within 10 days vs within 20 days" in found[0].explanation or not nested


@pytest.mark.parametrize(("forbidden", "tension"), [("methotrexate", True), ("cyclophosphamide", False)])
def test_tension_a_required_drug_in_a_washout(tmp_path: Path, forbidden: str, tension: bool) -> None:
    rules = """
.decl mtx_given(P: patient, T: truth)
mtx_given(P, yes) :- event(P, medication, methotrexate, _, _).
mtx_given(P, no) :- reviewed(P, medications, _), not mtx_ever(P).
.decl mtx_ever(P: patient)
mtx_ever(P) :- event(P, medication, methotrexate, _, _).
""" + drug_window("washout", forbidden, 7)
    kb = rule_set(tmp_path, rules, [criterion("I1", "inclusion", "mtx_given"), criterion("E1", "exclusion", "washout")])
    found = findings_of(kb, "tension")
    assert bool(found) is tension
    if tension:
        assert found[0].criteria == ("I1", "E1") and "8 or more days before enrolment" in found[0].explanation
        assert [c.expected for c in found[0].witness.cases] == [{"E1": "fail"}, {"E1": "pass"}]


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


@pytest.mark.parametrize(("anchor", "apart"), [("apheresis", True), ("enrolment", False)])
def test_window_one_drug_two_reference_dates(tmp_path: Path, anchor: str, apart: bool) -> None:
    rules = drug_window("gcsf_a", "filgrastim", 5) + drug_window("gcsf_b", "filgrastim", 5, anchor)
    kb = rule_set(tmp_path, rules, [criterion("E1", "exclusion", "gcsf_a"), criterion("E2", "exclusion", "gcsf_b")])
    found = findings_of(kb, "boundary/window")
    assert bool(found) is apart
    if apart:
        assert set(found[0].witness.cases[0].expected.values()) == {"fail", "pass"}  # one dose, two answers


@pytest.mark.parametrize(("word", "unknown"), [("zorbalimab", True), ("cyclophosphamide", False)])
def test_vocabulary_a_drug_the_lists_do_not_know(tmp_path: Path, word: str, unknown: bool) -> None:
    kb = rule_set(tmp_path, PLATELETS_100, [criterion("A1", "inclusion", "plt_high", f"No {word} within 4 weeks")])
    found = findings_of(kb, "vocabulary")
    assert [f.witness.detail["term"] for f in found] == ([word] if unknown else [])


# ---- the real encoding -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def real_review(kb: KnowledgeBase, demo: Dataset) -> tuple[Review, float]:
    start = time.perf_counter()
    result = review(kb, resolve_assumptions(), demo)
    return result, time.perf_counter() - start


def test_the_real_protocol_has_each_kind_and_every_witness_holds(
    kb: KnowledgeBase, real_review: tuple[Review, float]
) -> None:
    result, seconds = real_review
    for kind in ("dead rule", "redundancy", "tension", "boundary/window", "vocabulary"):
        assert result.of_kind(kind), kind
    assert result.unconfirmed == {}
    for finding in result.findings:
        assert check_witness(finding.witness, kb, resolve_assumptions()) == []
    assert seconds < 30


def test_the_real_findings_say_what_the_protocol_does(real_review: tuple[Review, float]) -> None:
    result, _ = real_review
    by_criteria = {(f.kind, f.criteria[:2]) for f in result.findings}
    assert ("dead rule", ("SSC-E6", "GI6.7")) in by_criteria  # clearance < 40 vs ≥ 60
    assert ("redundancy", ("GE4.7", "GE4.5")) in by_criteria  # cyclophosphamide: 4 days inside 14
    assert ("redundancy", ("GE14", "GE4.1")) in by_criteria  # CD19 CAR-T in two blocks
    assert ("boundary/window", ("GE4.6", "GI6")) in by_criteria  # G-CSF: apheresis vs the blood count
    tension = next(f for f in result.findings if f.kind == "tension")
    assert "cyclophosphamide" in tension.explanation and "15 or more days" in tension.explanation
    vocabulary = next(f for f in result.findings if f.kind == "vocabulary")
    assert vocabulary.witness.detail["term"] == "clotrexate" and "methotrexate" in vocabulary.explanation


def test_population_impact_counts_blocking_alone_and_gained(real_review: tuple[Review, float]) -> None:
    result, _ = real_review
    rows = {r.criterion: r for r in result.impact}
    assert rows["GI6.3"].blocks_alone >= 1 and rows["GI6.3"].gained >= 1  # P061: platelets 42 alone
    assert rows["GE4.2"].blocks >= 2  # P059 and P062
    assert all(r.blocks >= r.blocks_alone and r.blocks >= r.gained for r in rows.values())


# ---- computed, not listed: edits of the real rules move the findings -------------------------------


def edited_rules(tmp_path: Path, file: str, old: str, new: str) -> KnowledgeBase:
    folder = tmp_path / "rules"
    shutil.copytree(RULES_DIR, folder)
    text = (folder / file).read_text(encoding="utf-8")
    assert old in text
    (folder / file).write_text(text.replace(old, new), encoding="utf-8")
    return load_knowledge(folder)


def test_raising_the_ssc_clearance_bound_above_60_revives_the_rule(tmp_path: Path) -> None:
    kb = edited_rules(
        tmp_path,
        "ssc.dl",
        "haematuria_or_low_clearance(P, yes) :- crcl(P, Clearance), Clearance < 40.",
        "haematuria_or_low_clearance(P, yes) :- crcl(P, Clearance), Clearance < 70.",
    )
    assert not [f for f in findings_of(kb, "dead rule") if f.criteria[0] == "SSC-E6"]


def test_a_ge4_5_window_shorter_than_ge4_7_turns_the_redundancy_round(tmp_path: Path) -> None:
    kb = edited_rules(tmp_path, "general_exclusion.dl", "From = Enrolment - 14.", "From = Enrolment - 2.")
    pairs = [f.criteria for f in findings_of(kb, "redundancy")]
    assert ("GE4.5", "GE4.7") in pairs and ("GE4.7", "GE4.5") not in pairs


# ---- the CLI -------------------------------------------------------------------------------------


def test_kb_review_json_and_markdown(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["review", "--json"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert {f["kind"] for f in shown["findings"]} >= set(KINDS) - {"contradiction"}
    assert all(set(f) >= {"kind", "criteria", "explanation", "witness"} for f in shown["findings"])
    assert shown["impact"] and all(f["witness_confirmed"] for f in shown["findings"])
    assert main(["review", "--format", "md"]) == 0
    report = capsys.readouterr().out
    assert report.startswith("# Protocol review of NCT06420154")
    assert "> **GE4.5**: 5. Have used systemic cytotoxic drugs" in report  # the protocol quoted
    assert "| criterion | blocks | blocks alone | eligible without it |" in report


def test_kb_review_under_a_switched_assumption(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["review", "--json", "--assume", "ge4_7_window_days=28"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["switched_assumptions"] == {"ge4_7_window_days": 28}
    before = {r["criterion"]: r["blocks"] for r in shown["impact"]}
    after = {r["criterion"]: r["blocks"] for r in shown["impact_switched"]}
    assert after.get("GE4.7", 0) > before.get("GE4.7", 0)  # a 28-day window blocks more patients
