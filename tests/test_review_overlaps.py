"""One condition decided in two places, planted in small rule sets (found, with witnesses the
engine confirms, and absent from a clean counterpart), and the real protocol's findings."""

from __future__ import annotations

from pathlib import Path

import pytest

from kb.catalogue.assumptions import resolve_assumptions
from kb.catalogue.knowledge import KnowledgeBase
from kb.review.findings import Finding, check_witness
from kb.review.overlaps import overlap_findings
from tests.review_rules import criterion, exclusion_below, findings_of, rule_set


def block(cid: str, kind: str, predicate: str, cohort: str, text: str = "") -> str:
    """A catalogue entry of a disease block."""
    return criterion(cid, kind, predicate, text).replace('cohort = "general"', f'cohort = "{cohort}"')


def diagnosis_exclusion(name: str, reads: str) -> str:
    """An exclusion on a diagnosis (`reads`: the literals naming it, over the variable C)."""
    return f"""
.decl {name}_dx(P: patient)
.decl {name}(P: patient, T: truth)
{name}_dx(P) :- event(P, diagnosis, C, _, _), {reads}.
{name}(P, yes) :- {name}_dx(P).
{name}(P, no) :- ref_day(P, enrolment, E), reviewed(P, diagnoses, R), R >= E, not {name}_dx(P).
"""


def only(found: list[Finding], criteria: tuple[str, ...]) -> Finding:
    matching = [f for f in found if f.criteria == criteria]
    assert len(matching) == 1, [f.criteria for f in found]
    return matching[0]


# ---- class 4: the same condition excluded in two places ------------------------------------------


@pytest.mark.parametrize(("second", "found"), [("ttp_tma", True), ("liver_cirrhosis", False)])
def test_a_condition_excluded_in_two_blocks(tmp_path: Path, second: str, found: bool) -> None:
    """TTP/TMA excluded in the SLE block and (the same, or cirrhosis) in the APS block."""
    rules = diagnosis_exclusion("sle_ttp", "condition_class(C, ttp_tma)") + diagnosis_exclusion(
        "aps_dx", f"condition_class(C, {second})"
    )
    kb = rule_set(
        tmp_path,
        rules,
        [
            block("SLE-E9", "exclusion", "sle_ttp", "sle", "Thrombotic thrombocytopenic purpura"),
            block("APS-E9", "exclusion", "aps_dx", "aps"),
        ],
    )
    duplicates = findings_of(kb, "duplicate")
    if not found:
        assert duplicates == []
        return
    finding = only(duplicates, ("SLE-E9", "APS-E9"))
    # the shared condition, expanded through the vocabulary to its conditions and codes
    assert "thrombotic thrombocytopenic purpura" in finding.explanation and "M31.1" in finding.explanation
    assert "exclude exactly the same patients" in finding.explanation
    # what it means: the other cohorts' patients with it are excluded by neither
    assert "ANCA vasculitis" in finding.explanation and "excluded by neither" in finding.explanation
    case = finding.witness.cases[0]
    assert case.expected == {"SLE-E9": "fail", "APS-E9": "fail"}
    assert "SLE and APS cohorts" in case.note and "thrombotic thrombocytopenic purpura" in case.note


@pytest.mark.parametrize(("block_reads", "inside"), [("aplastic_anaemia", True), ("inclusion_body_myositis", False)])
def test_a_block_item_inside_a_general_one(tmp_path: Path, block_reads: str, inside: bool) -> None:
    """A pSS block excludes aplastic anaemia, a general criterion every marrow disorder."""
    rules = diagnosis_exclusion("pss_aa", f"C = {block_reads}") + diagnosis_exclusion(
        "marrow", "condition_class(C, marrow_disorder)"
    )
    kb = rule_set(
        tmp_path, rules, [criterion("GE9", "exclusion", "marrow"), block("PSS-E9", "exclusion", "pss_aa", "pss")]
    )
    duplicates = findings_of(kb, "duplicate")
    if not inside:
        assert duplicates == []
        return
    finding = only(duplicates, ("GE9", "PSS-E9"))
    assert "a diagnosis record of aplastic anaemia (ICD-10 D61)" in finding.explanation
    assert "PSS-E9 never decides alone: every patient it excludes, GE9 excludes too." in finding.explanation
    assert "the primary Sjögren's block's PSS-E9 adds nothing" in finding.explanation
    both, general_alone = finding.witness.cases
    assert both.expected == {"GE9": "fail", "PSS-E9": "fail"} and "aplastic anaemia" in both.note
    assert general_alone.expected == {"GE9": "fail", "PSS-E9": "pass"}  # another marrow disorder
    assert "chronic myeloid leukaemia" in general_alone.note  # the first other name, sorted


@pytest.mark.parametrize(("item", "found"), [("fvc_pct", True), ("dlco_pct", False)])
def test_a_result_bound_in_two_blocks(tmp_path: Path, item: str, found: bool) -> None:
    """FVC < 45% excludes from the SSc block, `item` < 50% from the myositis block."""
    rules = exclusion_below("ssc_fvc", "fvc_pct", "45") + exclusion_below("iim_low", item, "50")
    kb = rule_set(
        tmp_path,
        rules,
        [block("SSC-E9", "exclusion", "ssc_fvc", "ssc"), block("IIM-E9", "exclusion", "iim_low", "iim")],
    )
    duplicates = findings_of(kb, "duplicate")
    if not found:
        assert duplicates == []
        return
    finding = only(duplicates, ("SSC-E9", "IIM-E9"))
    assert "exclude the same condition: fvc pct < 45 (SSC-E9) and fvc pct < 50 (IIM-E9)." in finding.explanation
    assert "SSC-E9 never decides alone: every patient it excludes, IIM-E9 excludes too." in finding.explanation
    assert "excluded by neither" in finding.explanation  # the AAV, APS ... patients with it
    cases = {tuple(sorted(c.expected.items())): c.note for c in finding.witness.cases}
    assert cases[(("IIM-E9", "fail"), ("SSC-E9", "fail"))] == "a patient with fvc pct 0"
    assert cases[(("IIM-E9", "fail"), ("SSC-E9", "pass"))] == "a patient with fvc pct 45"  # between the bounds


# ---- class 7: an exclusion repeating an inclusion's failure; an inclusion the others imply --------

NEGATIVE_TEST = """
.decl negative_test(P: patient, T: truth)
negative_test(P, na) :- sex(P, male).
negative_test(P, yes) :- sex(P, female), obs_cat(P, pregnancy_test, negative, _).
negative_test(P, no) :- sex(P, female), obs_cat(P, pregnancy_test, positive, _).
"""


def pregnant(breastfeeding_too: bool, reads_the_test: bool = True) -> str:
    test = "positive_test(P)" if reads_the_test else "attested(P, breastfeeding, yes)"
    no = "obs_cat(P, pregnancy_test, negative, _)" if reads_the_test else "attested(P, breastfeeding, no)"
    return f"""
.decl positive_test(P: patient)
.decl pregnant(P: patient, T: truth)
positive_test(P) :- obs_cat(P, pregnancy_test, positive, _).
pregnant(P, na) :- sex(P, male).
pregnant(P, yes) :- sex(P, female), {test}.
pregnant(P, no) :- sex(P, female), {no}{", attested(P, breastfeeding, no)" if breastfeeding_too else ""}.
""" + ("pregnant(P, yes) :- sex(P, female), attested(P, breastfeeding, yes).\n" if breastfeeding_too else "")


def test_an_exclusion_equal_to_an_inclusions_negation(tmp_path: Path) -> None:
    kb = rule_set(
        tmp_path,
        NEGATIVE_TEST + pregnant(False),
        [criterion("I1", "inclusion", "negative_test"), criterion("E1", "exclusion", "pregnant")],
    )
    finding = only(findings_of(kb, "duplicate"), ("E1", "I1"))
    assert "fails for (a woman, pregnancy test positive)" in finding.explanation
    assert "E1 blocks exactly the patients I1 fails: one of them is enough." in finding.explanation
    assert [c.expected for c in finding.witness.cases] == [{"E1": "fail", "I1": "fail"}]
    # I1 is then implied by E1: one finding, its proof (I1 fails ∧ E1 can pass: unsat) in the witness
    assert finding.witness.kind == "unsat_core" and finding.witness.core
    assert findings_of(kb, "dead rule") == []


def test_an_exclusion_covering_an_inclusions_failure_and_more(tmp_path: Path) -> None:
    """GE10's reading: pregnant (a positive test) or breastfeeding, beside GI9's negative test."""
    kb = rule_set(
        tmp_path,
        NEGATIVE_TEST + pregnant(True),
        [criterion("I1", "inclusion", "negative_test"), criterion("E1", "exclusion", "pregnant")],
    )
    finding = only(findings_of(kb, "duplicate"), ("E1", "I1"))
    assert "Every way I1 fails, E1 blocks too: I1 never decides alone." in finding.explanation
    assert "E1 also blocks where I1 does not: a woman, breastfeeding yes." in finding.explanation
    both, breastfeeding = finding.witness.cases
    assert both.expected == {"E1": "fail", "I1": "fail"} and "pregnancy test positive" in both.note
    assert breastfeeding.expected == {"E1": "fail", "I1": "pass"} and "breastfeeding yes" in breastfeeding.note


def test_no_duplicate_when_the_exclusion_reads_something_else(tmp_path: Path) -> None:
    kb = rule_set(
        tmp_path,
        NEGATIVE_TEST + pregnant(False, reads_the_test=False),
        [criterion("I1", "inclusion", "negative_test"), criterion("E1", "exclusion", "pregnant")],
    )
    assert findings_of(kb, "duplicate") == [] and findings_of(kb, "dead rule") == []


@pytest.mark.parametrize(("item", "implied"), [("platelets", True), ("anc", False)])
def test_an_inclusion_the_others_imply(tmp_path: Path, item: str, implied: bool) -> None:
    """An exclusion of platelets < 100 beside an inclusion of `item` ≥ 50: with platelets, no
    patient who passes the exclusion can fail the inclusion."""
    rules = f"""
.decl low_platelets(P: patient, T: truth)
low_platelets(P, yes) :- obs_num(P, platelets, C, _), C < 100.
low_platelets(P, no) :- obs_num(P, platelets, C, _), C >= 100.
.decl enough(P: patient, T: truth)
enough(P, yes) :- obs_num(P, {item}, C, _), C >= 50.
enough(P, no) :- obs_num(P, {item}, C, _), C < 50.
"""
    kb = rule_set(
        tmp_path, rules, [criterion("I1", "inclusion", "enough"), criterion("E1", "exclusion", "low_platelets")]
    )
    dead = findings_of(kb, "dead rule")
    assert [f.criteria for f in dead] == ([("I1", "E1")] if implied else [])
    if implied:
        finding = dead[0]
        assert "I1 (“I1”) never decides: for any patient, it fails only when platelets < 50" in finding.explanation
        assert finding.witness.kind == "unsat_core"  # re-solved by check_witness
        case = finding.witness.cases[0]  # passing E1 (platelets ≥ 100) passes I1 too
        assert case.expected == {"E1": "pass", "I1": "pass"} and "platelets 100" in case.note


# ---- the real protocol ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def real(kb: KnowledgeBase) -> list[Finding]:
    return overlap_findings(kb, resolve_assumptions())


def test_the_real_duplicates(kb: KnowledgeBase, real: list[Finding]) -> None:
    assert sorted(f.criteria for f in real) == [
        ("GE10", "GI9"),  # a positive pregnancy test: GE10 blocks and GI9 fails
        ("GE6", "X-E2"),  # Fanconi anaemia: a genetic marrow failure and an aplastic anaemia
        ("GE8", "IIM-E3"),  # a malignancy, and the myositis it preceded
        ("GE8", "X-E2"),  # chronic myeloid leukaemia: a malignancy and a myeloproliferative disease
        ("SLE-E2", "X-E4"),  # TTP/TMA in the SLE and pSS blocks
    ]
    assert {f.kind for f in real} == {"duplicate"}  # no inclusion is implied, GI9's case aside
    for finding in real:
        assert check_witness(finding.witness, kb, resolve_assumptions()) == [], finding.criteria
    by = {f.criteria: f for f in real}
    ttp = by[("SLE-E2", "X-E4")]
    assert "M31.1" in ttp.explanation and "both are decided by one rule, ttp_or_tma" in ttp.explanation
    assert "inflammatory myopathy, ANCA vasculitis, APS) with it is excluded by neither" in ttp.explanation
    fanconi = by[("GE6", "X-E2")]
    assert "fanconi anaemia (ICD-10 D61.0)" in fanconi.explanation
    # acquired aplastic anaemia excludes only a pSS patient: the block item may have been meant for all
    assert "a patient of another cohort with a diagnosis record of aplastic anaemia is excluded by neither" in (
        fanconi.explanation
    )
    assert [c.expected for c in fanconi.witness.cases] == [
        {"GE6": "fail", "X-E2": "fail"},
        {"GE6": "fail", "X-E2": "pass"},  # Diamond-Blackfan: GE6 alone
        {"GE6": "pass", "X-E2": "fail"},  # acquired aplastic anaemia: X-E2 alone
    ]
    tumour = by[("GE8", "IIM-E3")]
    assert "IIM-E3 alone excludes" in tumour.explanation and "basal cell carcinoma" in tumour.explanation
    assert "GE8 alone excludes" in tumour.explanation and "1500 days before enrolment" in tumour.explanation
    assert "basal cell carcinoma skin, which GE8 excepts" in tumour.explanation  # no "other cohort" advice here
    pregnancy = by[("GE10", "GI9")]
    assert "Every way GI9 fails, GE10 blocks too: GI9 never decides alone." in pregnancy.explanation
    assert "breastfeeding yes" in pregnancy.explanation and pregnancy.witness.kind == "unsat_core"


def test_block_x_applied_to_nobody_drops_its_duplicates(kb: KnowledgeBase) -> None:
    found = overlap_findings(kb, resolve_assumptions(["x_block_owner=itp_separate"]))
    assert not [f for f in found if any(c.startswith("X-") for c in f.criteria)]
    assert ("GE8", "IIM-E3") in {f.criteria for f in found}
