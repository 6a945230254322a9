"""Three-valued evaluation: every status of every slice criterion on the demo vignettes,
Kleene's combination, exact boundaries, absence with and without a reviewed history."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from pathlib import Path

import pytest

from kb.catalogue.assumptions import resolve_assumptions
from kb.catalogue.knowledge import KnowledgeBase
from kb.quality.vignettes import VignetteOutcome
from kb.reasoning.evaluation import Assessment, assess, kleene_and
from kb.records.patients import Dataset, load_dataset
from tests.support import demo_files, set_value

# Every criterion that does not pass, per demo patient (GI1 and GE1 are always `manual`).
EXPECTED: dict[str, dict[str, str]] = {
    "P001": {},
    "P002": {"GI6.3": "fail", "GI8": "fail", "GI9": "not_applicable", "GE10": "not_applicable"},
    "P003": {"GI2": "fail", "GI9": "not_applicable", "GE10": "not_applicable"},
    "P004": {"GI9": "not_applicable", "GE10": "not_applicable"},
    "P005": {},
    "P006": {"GI2": "fail", "GI9": "not_applicable", "GE4.2": "fail", "GE10": "not_applicable"},
    "P007": {
        c: "unknown"
        for c in [
            "CONSENT",
            "GI2",
            "GI3",
            "GI4",
            "GI5",
            "GI6",
            "GI6.1",
            "GI6.2",
            "GI6.3",
            "GI6.4",
            "GI6.5",
            "GI6.6",
            "GI6.7",
            "GI7",
            "GI8",
            "GI9",
            "GE2",
            "GE3",
            "GE4.1",
            "GE4.2",
            "GE4.3",
            "GE4.4",
            "GE4.5",
            "GE4.6",
            "GE4.7",
            "GE5",
            "GE6",
            "GE7",
            "GE8",
            "GE9",
            "GE10",
            "GE11",
            "GE12",
            "GE13",
            "GE14",
        ]
    },
    "P008": {"GI9": "not_applicable", "GE4.1": "fail", "GE10": "not_applicable", "GE14": "fail"},
    "P009": {"GI9": "not_applicable", "GE3": "fail", "GE10": "not_applicable"},
    "P010": {"GE3": "unknown", "GE10": "unknown"},
    "P011": {"GI6": "fail", "GI6.2": "fail", "GE4.3": "fail"},
    "P012": {"GI9": "fail", "GE10": "fail"},
    "P013": {"COHORT": "fail", "GI9": "not_applicable", "GE10": "not_applicable"},
    "P014": {
        "CONSENT": "fail",
        "GI3": "fail",
        "GI6.1": "fail",
        "GI6.2": "fail",
        "GI6.4": "fail",
        "GI6.5": "fail",
        "GI6.6": "fail",
        "GI6.7": "fail",
        "GI7": "fail",
        "GI9": "not_applicable",
        "GE10": "not_applicable",
    },
    "P015": {
        "GI6": "unknown",
        "GI7": "unknown",
        "GE4.1": "unknown",
        "GE4.2": "unknown",
        "GE4.3": "unknown",
        "GE4.4": "unknown",
        "GE4.5": "unknown",
        "GE4.6": "unknown",
        "GE4.7": "unknown",
    },
    "P016": {
        "COHORT": "unknown",
        "GI9": "not_applicable",
        "GE4.7": "unknown",
        "GE6": "unknown",
        "GE10": "not_applicable",
    },
    "P017": {"GI9": "not_applicable", "GE10": "not_applicable"},
    "P018": {
        "GI3": "fail",
        "GI6": "fail",
        "GI6.1": "fail",
        "GI6.2": "fail",
        "GI6.3": "fail",
        "GI6.4": "fail",
        "GI6.5": "fail",
        "GI6.6": "fail",
        "GI6.7": "fail",
        "GI7": "fail",
        "GI8": "fail",
        "GI9": "not_applicable",
        "GE3": "fail",
        "GE4.3": "fail",
        "GE4.4": "fail",
        "GE4.5": "fail",
        "GE4.6": "fail",
        "GE4.7": "fail",
        "GE5": "fail",
        "GE7": "fail",
        "GE8": "fail",
        "GE9": "fail",
        "GE10": "not_applicable",
    },
    "P019": {"GE3": "fail", "GE4.3": "fail"},
    "P020": {"GI9": "not_applicable", "GE10": "not_applicable"},
    "P021": {"GI9": "not_applicable", "GE4.6": "fail", "GE10": "not_applicable"},
    "P022": {
        "GI4": "fail",
        "GI5": "fail",
        "GI9": "not_applicable",
        "GE2": "fail",
        "GE5": "fail",
        "GE6": "fail",
        "GE10": "not_applicable",
        "GE11": "fail",
        "GE12": "fail",
        "GE13": "fail",
    },
}


def statuses(assessment: Assessment) -> dict[str, str]:
    """The statuses of the general criteria (the disease blocks have their own tests)."""
    return {r.id: r.status for r in assessment.criteria if r.criterion.cohort == "general" and r.criterion.counted}


@pytest.mark.parametrize("patient_id", sorted(EXPECTED))
def test_every_status_of_every_criterion(demo_assessments: dict[str, Assessment], patient_id: str) -> None:
    got = statuses(demo_assessments[patient_id])
    want = {cid: "pass" for cid in got} | {"GI1": "manual", "GE1": "manual"} | EXPECTED[patient_id]
    assert got == want


def test_each_criterion_is_driven_to_pass_fail_and_unknown(vignette_outcomes: dict[str, VignetteOutcome]) -> None:
    seen: dict[str, set[str]] = {}
    for outcome in vignette_outcomes.values():
        for result in outcome.assessment.criteria:
            seen.setdefault(result.id, set()).add(result.status)
    for cid, found in seen.items():
        if cid in ("GI1", "GE1", "IIM-I2", "IIM-I3", "IIM-I4"):
            assert found - {"not_applicable"} == {"manual"}, cid
        else:
            assert {"pass", "fail", "unknown"} <= found, (cid, found)


@pytest.mark.parametrize("patient_id", sorted(EXPECTED))
def test_verdicts_match_the_vignettes(
    demo_assessments: dict[str, Assessment], stories: dict[str, dict[str, str]], patient_id: str
) -> None:
    assert demo_assessments[patient_id].verdict == stories[patient_id]["expected_verdict"]


def test_manual_items_are_listed_and_do_not_lower_the_verdict(demo_assessments: dict[str, Assessment]) -> None:
    p001 = demo_assessments["P001"]
    assert p001.verdict == "eligible" and p001.eligible_via == ["sle"]
    assert [r.id for r in p001.manual_checks] == ["GI1", "GE1"]
    assert p001.as_dict()["manual_checks"] == [
        "GI1: Text missing from the record: verify by hand",
        "GE1: Text missing from the record: verify by hand",
    ]


@pytest.mark.parametrize(
    ("patient_id", "criterion", "status", "message", "proof"),
    [
        (
            "P001",
            "GI6.3",
            "pass",
            "Platelet count 50 ×10^9/L on 17 Nov 2026, at least 50",
            "platelets 50 ×10^9/L on 2026-11-17 ≥ 50 required",
        ),
        (
            "P002",
            "GI6.3",
            "fail",
            "Platelet count 49 ×10^9/L on 17 Nov 2026, below 50",
            "platelets 49 ×10^9/L on 2026-11-17 < 50 required",
        ),
        (
            "P001",
            "GI8",
            "pass",
            "Oxygen saturation at rest breathing room air 93 % on 17 Nov 2026, above 92",
            "spo2 93 % on 2026-11-17 > 92 required",
        ),
        (
            "P002",
            "GI8",
            "fail",
            "Oxygen saturation at rest breathing room air 92 % on 17 Nov 2026, at most 92",
            "spo2 92 % on 2026-11-17 ≤ 92 required",
        ),
        ("P003", "GI2", "fail", "Age 66 years at enrolment, above 65", "age 66 years at enrolment > 65 required"),
        (
            "P004",
            "GI2",
            "pass",
            "Age 65 years at enrolment, at least 18 and at most 65",
            "age 65 years at enrolment ≥ 18 and ≤ 65 required",
        ),
        (
            "P005",
            "GI2",
            "pass",
            "Age 18 years at enrolment, at least 18 and at most 65",
            "age 18 years at enrolment ≥ 18 and ≤ 65 required",
        ),
        ("P006", "GI2", "fail", "Age 17 years at enrolment, below 18", "age 17 years at enrolment < 18 required"),
        (
            "P006",
            "GE4.2",
            "fail",
            "Vaccination: mmr vaccine (recorded as MMR) on 27 Oct 2026, within the window from 27 Oct 2026 "
            "(28 days before enrolment) to enrolment (24 Nov 2026)",
            "vaccination mmr_vaccine (recorded as MMR) 2026-10-27",
        ),
        ("P004", "GE4.2", "pass", "no live vaccine within 4 weeks before enrolment", "no live vaccine in window"),
        (
            "P001",
            "GI6.7",
            "pass",
            "creatinine clearance 70.44 mL/min (Cockcroft–Gault), at least 60",
            "creatinine clearance 70.44 mL/min (Cockcroft–Gault) ≥ 60 required",
        ),
        (
            "P014",
            "GI6.5",
            "fail",
            "Serum total bilirubin 1.62 ×ULN on 17 Nov 2026, above 1.5",
            "bilirubin_total 1.62 ×ULN on 2026-11-17 > 1.5 required",
        ),
    ],
)
def test_boundaries_and_messages(
    demo_assessments: dict[str, Assessment], patient_id: str, criterion: str, status: str, message: str, proof: str
) -> None:
    """The sentence a clinician reads (plain words, the bound it met or missed) and the formal proof beside it."""
    result = demo_assessments[patient_id].result(criterion)
    assert result.status == status
    assert message in result.message
    assert proof in result.proof


def test_moving_enrolment_moves_the_window(kb: KnowledgeBase, demo: Dataset) -> None:
    p006 = demo.patient("P006")
    later = assess(p006, kb, as_of=date(2026, 11, 25))  # the MMR is now 29 days before
    assert later.result("GE4.2").status == "unknown"  # ... but the review predates the new enrolment date
    assert later.result("GE4.2").missing[0].item == "reviewed:vaccinations"
    assert later.result("GI2").status == "pass"  # and he is 18 now


def test_kleene_conjunctive_exclusion(
    kb: KnowledgeBase, demo_assessments: dict[str, Assessment], write_dataset: Callable[..., Path]
) -> None:
    # HBsAg negative settles hepatitis B whatever the (missing) DNA: GE3 passes
    assert demo_assessments["P001"].result("GE3").status == "pass"
    # HBsAg positive, DNA unknown, the rest negative: GE3 is unknown, with the DNA to collect
    ge3 = demo_assessments["P010"].result("GE3")
    assert (ge3.status, ge3.reason, [g.item for g in ge3.missing]) == ("unknown", "missing", ["hbv_dna"])
    # HBsAg positive with DNA at 1000 or below: the conjunction is false, GE3 passes
    files = demo_files("P009")
    set_value(files["observations"], "hbv_dna", "1000")
    patient = load_dataset(write_dataset(**files)).patient("P009")
    assert assess(patient, kb).result("GE3").status == "pass"


def test_kleene_conjunctive_inclusion(kb: KnowledgeBase, write_dataset: Callable[..., Path]) -> None:
    files = demo_files("P001")
    files["observations"] = [r for r in files["observations"] if r["item"] != "alt"]
    unknown = assess(load_dataset(write_dataset(**files)).patient("P001"), kb)
    assert unknown.result("GI6.6").status == "unknown"  # AST passes, ALT unknown
    assert [g.item for g in unknown.result("GI6.6").missing] == ["alt"]  # AST is not asked for again
    set_value(files["observations"], "ast", "200", uln="40")
    failed = assess(load_dataset(write_dataset(**files)).patient("P001"), kb)
    assert failed.result("GI6.6").status == "fail"  # AST fails: ALT does not matter
    assert failed.verdict == "ineligible"


def test_kleene_and() -> None:
    assert kleene_and([True, True]) is True
    assert kleene_and([True, None]) is None
    assert kleene_and([None, False]) is False


@pytest.mark.parametrize(
    ("patient_id", "criterion", "reason", "items"),
    [
        ("P007", "GI6.1", "missing", ["anc"]),
        ("P007", "GI6.3", "stale", ["platelets"]),
        ("P007", "CONSENT", "not_attested", ["consent"]),
        ("P007", "GE4.2", "history_not_reviewed", ["reviewed:vaccinations"]),
        ("P007", "GE4.1", "history_not_reviewed", ["reviewed:medications", "reviewed:cell_gene_therapy"]),
        ("P015", "GE4.2", "unknown_term", ["vaccination:Foovax"]),
        ("P015", "GI7", "missing", ["ecg"]),
        ("P016", "COHORT", "history_not_reviewed", ["reviewed:diagnoses"]),
        ("P007", "GI2", "missing", ["birth_date"]),
    ],
)
def test_unknown_says_why_and_what_to_collect(
    demo_assessments: dict[str, Assessment], patient_id: str, criterion: str, reason: str, items: list[str]
) -> None:
    result = demo_assessments[patient_id].result(criterion)
    assert (result.status, result.reason) == ("unknown", reason)
    assert [g.item for g in result.missing] == items


def test_absence_needs_a_review_that_covers_the_window(kb: KnowledgeBase, write_dataset: Callable[..., Path]) -> None:
    files = demo_files("P001")
    for row in files["attestations"]:
        if row["item"] == "reviewed:vaccinations":
            row["date"] = "2026-11-20"  # reviewed before enrolment (2026-11-24): the last days are not covered
    result = assess(load_dataset(write_dataset(**files)).patient("P001"), kb).result("GE4.2")
    assert (result.status, result.reason) == ("unknown", "history_not_reviewed")
    assert "reviewed 2026-11-20, before enrolment 2026-11-24" in result.missing[0].detail
    files["attestations"] = [r for r in files["attestations"] if r["item"] != "reviewed:vaccinations"]
    assert assess(load_dataset(write_dataset(**files)).patient("P001"), kb).result("GE4.2").status == "unknown"


def test_a_live_vaccine_blocks_even_without_a_review(
    demo_assessments: dict[str, Assessment], kb: KnowledgeBase, write_dataset: Callable[..., Path]
) -> None:
    files = demo_files("P006")
    files["attestations"] = [r for r in files["attestations"] if not r["item"].startswith("reviewed:")]
    assert assess(load_dataset(write_dataset(**files)).patient("P006"), kb).result("GE4.2").status == "fail"


def test_missing_uln_leaves_the_ratio_unknown(kb: KnowledgeBase, write_dataset: Callable[..., Path]) -> None:
    files = demo_files("P001")
    set_value(files["observations"], "bilirubin_total", "12", uln="")
    result = assess(load_dataset(write_dataset(**files)).patient("P001"), kb).result("GI6.5")
    assert (result.status, [g.item for g in result.missing]) == ("unknown", ["uln:bilirubin_total"])


def test_assumptions_switch_readings(kb: KnowledgeBase, write_dataset: Callable[..., Path]) -> None:
    files = demo_files("P001")
    template = files["events"][0]
    files["events"].append(
        {
            **template,
            "kind": "medication",
            "name": "Benlysta",
            "code": "",
            "start_date": "2026-11-10",
            "end_date": "2026-11-10",
        }
    )
    files["events"].append(
        {
            **template,
            "kind": "medication",
            "name": "EPO",
            "code": "",
            "start_date": "2026-11-15",
            "end_date": "2026-11-15",
        }
    )
    patient = load_dataset(write_dataset(**files)).patient("P001")
    default = assess(patient, kb)
    assert default.result("GE4.3").status == "fail"  # belimumab counts by default
    assert default.result("GI6").status == "pass"  # EPO is not a myeloid growth factor
    other = assess(patient, kb, resolve_assumptions(["ge4_3_scope=listed", "gi6_growth_factors=all"]))
    assert other.result("GE4.3").status == "pass"
    assert other.result("GI6").status == "fail"
    assert other.assumptions["ge4_3_scope"] == "listed"
    assert other.stamp["assumptions"] != default.stamp["assumptions"]
    assert other.stamp["rules"] == default.stamp["rules"]


def test_no_cohort_is_ineligible_only_when_diagnoses_are_reviewed(demo_assessments: dict[str, Assessment]) -> None:
    assert demo_assessments["P013"].verdict == "ineligible" and demo_assessments["P013"].cohorts == ()
    assert demo_assessments["P016"].verdict == "needs_data"


def test_the_stamp_is_reproducible(kb: KnowledgeBase, demo: Dataset) -> None:
    first = assess(demo.patient("P011"), kb)
    second = assess(demo.patient("P011"), kb)
    assert first.stamp == second.stamp
    assert set(first.stamp) == {"rules", "assumptions", "facts", "as_of"}


def test_json_answer_has_the_contract_fields(demo_assessments: dict[str, Assessment]) -> None:
    answer = demo_assessments["P011"].as_dict()
    assert {
        "patient",
        "verdict",
        "cohorts",
        "eligible_via",
        "reference_dates",
        "assumptions",
        "stamp",
        "manual_checks",
        "criteria",
    } <= set(answer)
    assert answer["cohorts"] == [
        {"cohort": "sle", "verdict": "ineligible", "blocking": ["GI6", "GI6.2", "GE4.3"], "unknown": [], "note": ""}
    ]
    ge43 = next(c for c in answer["criteria"] if c["id"] == "GE4.3")
    assert set(ge43) == {"id", "kind", "cohort", "status", "reason", "message", "missing"}
    assert ge43["kind"] == "exclusion" and ge43["status"] == "fail"


@pytest.mark.parametrize(
    ("criterion", "to_collect"),
    [
        # the refractory definition reads the medication history and the attested course only;
        # it once listed every unreviewed history (cardiac events, infections ...)
        ("DEF-RR", {"rr_course", "reviewed:medications"}),
        ("SLE-I4", {"rr_course", "reviewed:medications"}),
        ("GE7", {"reviewed:thrombosis", "reviewed:medications"}),
    ],
)
def test_an_unknown_names_only_the_histories_its_criterion_reads(
    demo_assessments: dict[str, Assessment], criterion: str, to_collect: set[str]
) -> None:
    result = demo_assessments["P007"].result(criterion)  # a referral letter: nothing reviewed
    assert result.status == "unknown"
    assert {g.item for g in result.missing} == to_collect


def _set_aside(folder: Path, file: str) -> Path:
    """P001's files (eligible as they are) with one of them not readable as UTF-8."""
    from kb.records.patients import DEMO_DATASET

    folder.mkdir()
    for name in ("patients.csv", "observations.csv", "events.csv", "attestations.csv"):
        lines = (DEMO_DATASET / name).read_text(encoding="utf-8").splitlines(keepends=True)
        content = "".join([lines[0], *(line for line in lines[1:] if line.startswith("P001,"))]).encode()
        (folder / name).write_bytes(content + (b"P001,\xe9\n" if name == file else b""))
    return folder


@pytest.mark.parametrize(
    ("file", "unknown"),
    [
        ("events.csv", {"COHORT", "GE4.1", "GE4.2", "GE5", "GE8"}),
        ("observations.csv", {"GI3", "GI6.3", "GI7", "GI8", "GE3"}),
        ("attestations.csv", {"CONSENT", "GI4", "GE2", "GE4.1", "GE5"}),
    ],
)
def test_a_file_set_aside_leaves_every_criterion_reading_it_unknown_never_absent(
    kb: KnowledgeBase, tmp_path: Path, file: str, unknown: set[str]
) -> None:
    """P001 is eligible with every file read; with one file unreadable nothing of it counts as
    absent: needs_data (never eligible, never "no cohort"), the file named, in both engines."""
    from kb.screening.screen import screen

    dataset = load_dataset(_set_aside(tmp_path / "set", file))
    result = assess(dataset.patient("P001"), kb)
    assert result.verdict == "needs_data" and not result.blocking
    statuses = {r.id: (r.status, r.reason) for r in result.criteria}
    assert {c: statuses[c] for c in unknown} == {c: ("unknown", "unreadable_source") for c in unknown}
    assert all(f"{file} could not be read (line " in message for message in _messages(result, unknown))
    for engine in ("sql", "pydatalog"):
        (row,) = screen(kb, dataset, resolve_assumptions(), engine=engine)
        assert row.verdict == "needs_data" and not row.blocking, engine


def _messages(result: Assessment, ids: set[str]) -> list[str]:
    return [r.message for r in result.criteria if r.id in ids]


def test_an_unreadable_diagnosis_row_is_not_no_cohort(kb: KnowledgeBase, write_dataset: Callable[..., Path]) -> None:
    """P013's only diagnosis is no trial disease and the list is reviewed ("no cohort"); a
    diagnosis row that could not be read may be the qualifying one."""
    files = demo_files("P013")
    files["events"].append({**files["events"][0], "code": "M32.1", "start_date": "2019-13-01"})
    result = assess(load_dataset(write_dataset(**files)).patient("P013"), kb)
    cohort = result.result("COHORT")
    assert (result.verdict, cohort.status, cohort.reason) == ("needs_data", "unknown", "unreadable_source")
    assert "events.csv row 3 could not be read (column start_date" in cohort.message
