"""Every general criterion at its bounds and window edges (vignettes P017 and P018), and
every named assumption changing at least one demo patient's status."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from kb.catalogue.assumptions import load_assumptions, resolve_assumptions
from kb.catalogue.knowledge import KnowledgeBase
from kb.reasoning.evaluation import Assessment, assess
from kb.records.patients import Dataset, load_dataset
from tests.support import demo_files

# (criterion, what P017 shows on the passing side of the bound or day N+1 of the window,
#  what P018 shows one resolution step across or on day N)
EDGES = [
    ("GI3", "ecog 2 on 2026-11-17 ≤ 2 required", "ecog 3 on 2026-11-17 > 2 required"),
    ("GI6.1", "anc 1 ×10^9/L on 2026-11-17 ≥ 1 required", "anc 0.99 ×10^9/L on 2026-11-17 < 1 required"),
    ("GI6.2", "hemoglobin 60 g/L on 2026-11-17 ≥ 60 required", "hemoglobin 59 g/L on 2026-11-17 < 60 required"),
    ("GI6.3", "platelets 50 ×10^9/L", "platelets 49 ×10^9/L"),
    ("GI6.4", "alc 0.5 ×10^9/L on 2026-11-17 ≥ 0.5 required", "alc 0.49 ×10^9/L on 2026-11-17 < 0.5 required"),
    (
        "GI6.5",
        "bilirubin_total 1.50 ×ULN on 2026-11-17 ≤ 1.5 required",
        "bilirubin_total 1.50 ×ULN on 2026-11-17 > 1.5",
    ),
    ("GI6.6", "ast 2.50 ×ULN on 2026-11-17 ≤ 2.5 required", "ast 2.52 ×ULN on 2026-11-17 > 2.5 required"),
    ("GI6.7", "creatinine 1.49 ×ULN on 2026-11-17 < 1.5 required", "creatinine 1.50 ×ULN on 2026-11-17 ≥ 1.5"),
    ("GI7", "lvef 45 % on 2026-11-17 ≥ 45 required", "lvef 44 % on 2026-11-17 < 45 required"),
    ("GE3", "hbv_dna 1000 copies/mL on 2026-11-17 ≤ 1000 required", "hbv_dna 1001 copies/mL on 2026-11-17 > 1000"),
    ("GI6", "", "medication filgrastim 2026-11-10; End ≥ Sample − Days (2026-11-10 ≥ 2026-11-10)"),
    (
        "GE4.3",
        "",
        "From = Enrolment − 28 = 2026-10-27; medication rituximab 2026-10-27; End ≥ From (2026-10-27 ≥ 2026-10-27)",
    ),
    ("GE4.4", "", "5 half-lives = 8 days; Until = Last + Days = 2026-11-24; Until ≥ Apheresis (2026-11-24 ≥"),
    (
        "GE4.5",
        "",
        "From = Enrolment − 14 = 2026-11-10; medication cyclophosphamide 2026-11-10; "
        "End ≥ From (2026-11-10 ≥ 2026-11-10)",
    ),
    ("GE4.6", "", "medication filgrastim 2026-11-19; End ≥ Apheresis − Days (2026-11-19 ≥ 2026-11-19)"),
    ("GE4.7", "", "10.067 mg/day prednisone-equivalent > 10 required"),
    (
        "GE5",
        "",
        "cardiac_event myocardial infarction 2025-11-24; Day ≥ From (2025-11-24 ≥ 2025-11-24)",
    ),
    ("GE7", "", "thrombosis pulmonary embolism 2026-05-24"),
    (
        "GE8",
        "",
        "malignancy breast cancer 2015-03-01 to 2021-11-24; End ≥ From (2021-11-24 ≥ 2021-11-24)",
    ),
    ("GE9", "", "investigational_product ABC-123 (phase 2 trial) 2026-09-01 to 2026-10-18; End ≥ Screening − 30"),
]


@pytest.mark.parametrize(("criterion", "passing", "failing"), EDGES)
def test_both_sides_of_every_bound_and_window(
    demo_assessments: dict[str, Assessment], criterion: str, passing: str, failing: str
) -> None:
    inside, across = demo_assessments["P017"].result(criterion), demo_assessments["P018"].result(criterion)
    assert inside.status == "pass", inside.message
    assert across.status == "fail", across.message
    assert passing in inside.proof  # the formal proof: the rule's own bound and window arithmetic
    assert failing in across.proof


@pytest.mark.parametrize(
    ("criterion", "status"),
    [
        ("GI4", "fail"),
        ("GI5", "fail"),
        ("GE2", "fail"),
        ("GE5", "fail"),
        ("GE6", "fail"),
        ("GE11", "fail"),
        ("GE12", "fail"),
        ("GE13", "fail"),
    ],
)
def test_investigator_judgements(demo_assessments: dict[str, Assessment], criterion: str, status: str) -> None:
    assert demo_assessments["P022"].result(criterion).status == status
    assert demo_assessments["P001"].result(criterion).status == "pass"
    unknown = demo_assessments["P007"].result(criterion)
    assert unknown.status == "unknown" and unknown.reason in ("not_attested", "history_not_reviewed")


def test_an_undosed_glucocorticoid_leaves_ge47_unknown(demo_assessments: dict[str, Assessment]) -> None:
    result = demo_assessments["P016"].result("GE4.7")
    assert (result.status, result.reason) == ("unknown", "missing")
    assert [g.item for g in result.missing] == ["dose:prednisone 2026-11-01"]


# (assumption, value, patient, criterion, status by default, status with the value)
FLIPS = [
    ("lab_lookback_days", "60", "P007", "GI6.3", "unknown", "pass"),
    ("apheresis_offset_days", "3", "P021", "GE4.6", "fail", "unknown"),
    ("default_code_system", "icd10cm", "P005", "COHORT", "pass", "fail"),
    ("gi6_growth_factors", "all", "P019", "GI6", "pass", "fail"),
    ("ge4_3_scope", "listed", "P019", "GE4.3", "fail", "pass"),
    ("crcl_method", "measured_only", "P001", "GI6.7", "pass", "unknown"),
    ("crcl_formula", "cockcroft_gault_si", "P020", "GI6.7", "pass", "fail"),
    ("ge4_7_window_days", "28", "P017", "GE4.7", "pass", "fail"),
    ("ge4_7_antimalarials", "counted", "P001", "GE4.7", "pass", "fail"),
    ("clotrexate_reading", "methotrexate", "P017", "GE4.5", "pass", "fail"),
    ("tacrolimus_half_life_hours", "12", "P018", "GE4.4", "fail", "pass"),
    ("washout_rounding", "nearest", "P018", "GE4.4", "fail", "pass"),
    ("month_length", "30", "P018", "GE5", "fail", "pass"),
    ("hbv_copies_per_iu", "5.26", "P019", "GE3", "fail", "pass"),
    ("x_block_owner", "itp_separate", "P002", "X-E1", "fail", "not_applicable"),
    ("iim_entry", "probable", "P036", "IIM-I1", "manual", "pass"),
    ("ssc_entry", "diagnosis_only", "P031", "SSC-CLASS", "pass", "not_applicable"),
    ("bvas_major_items", "stone_2001_no_renal", "P046", "AAV-I4", "pass", "fail"),
    ("rr_gc_dose_bound", "strict", "P017", "SLE-I4", "pass", "fail"),
    ("rr_course_days", "400", "P020", "PSS-I2", "pass", "fail"),
    ("progression_window_days", "300", "P031", "SSC-I1", "pass", "unknown"),
    ("fvc_decline_mode", "absolute", "P033", "SSC-I2", "pass", "fail"),
    ("apl_tests_reading", "more_than_two", "P005", "APS-I2", "pass", "fail"),
    ("apl_window_days", "85", "P005", "APS-I2", "pass", "fail"),
    ("apl_timing", "within_window", "P073", "APS-I2", "pass", "fail"),
    ("aps_rr_treatment_order", "any_time", "P069", "APS-I3", "fail", "pass"),
    ("pss_primary", "as_coded", "P072", "PSS-I1", "fail", "pass"),
    ("ge4_4_scope", "listed", "P074", "GE4.4", "fail", "pass"),
    ("course_gap_days", "5", "P067", "SLE-I4", "pass", "fail"),
    ("aps_anticoagulation_days", "0", "P078", "APS-I3", "fail", "pass"),
    ("obstetric_aps_scope", "any_obstetric", "P005", "APS-E1", "pass", "fail"),
]


@pytest.mark.parametrize(("assumption", "value", "patient_id", "criterion", "before", "after"), FLIPS)
def test_flipping_an_assumption_changes_a_demo_status(
    kb: KnowledgeBase,
    demo: Dataset,
    assumption: str,
    value: str,
    patient_id: str,
    criterion: str,
    before: str,
    after: str,
) -> None:
    patient = demo.patient(patient_id)
    assert assess(patient, kb).result(criterion).status == before
    switched = assess(patient, kb, resolve_assumptions([f"{assumption}={value}"]))
    assert switched.result(criterion).status == after
    assert switched.assumptions[assumption] == load_assumptions()[assumption].parse(value)


def test_no_assumption_is_decorative() -> None:
    assert {f[0] for f in FLIPS} == set(load_assumptions())


def test_the_iu_conversion_is_shown_in_the_trace(kb: KnowledgeBase, demo: Dataset) -> None:
    result = assess(demo.patient("P019"), kb).result("GE3")
    assert "hbv_dna 1001.04 copies/mL (172 IU/mL × 5.82 (assumption hbv_copies_per_iu))" in result.proof
    assert (
        "Hepatitis B virus DNA 1001.04 copies/mL (172 IU/mL × 5.82 (assumption hbv_copies_per_iu)) on 17 Nov 2026"
        in result.message
    )


def test_an_unknown_drug_name_is_reported_and_leaves_its_criteria_unknown(
    kb: KnowledgeBase, write_dataset: Callable[..., Path]
) -> None:
    files = demo_files("P001")
    template = files["events"][0]
    files["events"].append(
        {
            **template,
            "kind": "medication",
            "name": "Zorblax",
            "code": "",
            "start_date": "2026-11-20",
            "end_date": "2026-11-20",
        }
    )
    result = assess(load_dataset(write_dataset(**files)).patient("P001"), kb)
    for criterion in ("GE4.1", "GE4.3", "GE4.4", "GE4.5", "GE4.6", "GE4.7"):
        found = result.result(criterion)
        assert (found.status, found.reason) == ("unknown", "unknown_term"), criterion
        assert [g.item for g in found.missing] == ["medication:Zorblax"]
    assert result.verdict == "needs_data"
    assert result.result("GI6").status == "pass"  # after the screening sample: not in GI6's window


# Under the defaults in the fast profile; under each of the 31 other readings (about 12 s each:
# every vignette assessed again) in the slow profile, which CI also runs.
@pytest.mark.parametrize(
    "flip",
    [None, *(pytest.param(flip, marks=pytest.mark.slow) for flip in FLIPS)],
    ids=lambda f: "defaults" if f is None else f"{f[0]}={f[1]}",
)
def test_every_unknown_says_what_to_collect(
    kb: KnowledgeBase, demo: Dataset, flip: tuple[str, str, str, str, str, str] | None
) -> None:
    # an unknown with nothing to collect would be a hole in the rules, not missing data
    assumptions = resolve_assumptions([f"{flip[0]}={flip[1]}"] if flip else [])
    for patient in demo.patients.values():
        for result in assess(patient, kb, assumptions, explain="none").unknown:
            assert result.missing, (patient.id, result.id, result.message)


def test_a_later_apheresis_asks_for_a_review_that_covers_it(kb: KnowledgeBase, demo: Dataset) -> None:
    result = assess(demo.patient("P021"), kb, resolve_assumptions(["apheresis_offset_days=3"])).result("GE4.6")
    assert (result.status, result.reason) == ("unknown", "history_not_reviewed")
    assert result.missing[0].detail == "medications history reviewed 2026-11-24, before apheresis 2026-11-27"


@pytest.mark.parametrize(
    ("kind", "name", "code", "criteria"),
    [
        # a diagnosis understood neither by name nor by code: every exclusion reading the list is open
        ("diagnosis", "Zorblax syndrome", "", ("X-E1", "X-E2", "X-E4", "GE6")),
        ("diagnosis", "Zorblax syndrome", "snomed:999999999", ("X-E1", "X-E2", "X-E4", "GE6")),
        ("procedure", "Zorblax procedure", "", ()),  # no pSS criterion reads procedures
    ],
)
def test_a_record_not_understood_leaves_the_exclusions_reading_its_history_unknown(
    kb: KnowledgeBase, write_dataset: Callable[..., Path], kind: str, name: str, code: str, criteria: tuple[str, ...]
) -> None:
    files = demo_files("P020")  # primary Sjögren's, eligible, every history reviewed
    files["events"].append({**files["events"][0], "kind": kind, "name": name, "code": code, "start_date": "2024-01-01"})
    result = assess(load_dataset(write_dataset(**files)).patient("P020"), kb)
    for criterion in criteria:
        found = result.result(criterion)
        assert (found.status, found.reason) == ("unknown", "unknown_term"), criterion
        assert [g.item for g in found.missing] == [f"{kind}:{name}"]
        assert "events.csv row" in found.missing[0].detail
    assert result.verdict == ("needs_data" if criteria else "eligible")


def test_a_code_alone_is_understood_and_unknown_words_never_pass(
    kb: KnowledgeBase, write_dataset: Callable[..., Path]
) -> None:
    files = demo_files("P020")
    template = files["events"][0]
    files["events"] += [
        {**template, "kind": "diagnosis", "name": "", "code": "I10"},  # a code alone: not one of the conditions
        {**template, "kind": "diagnosis", "name": "MDS with ring sideroblasts", "code": "icd10:D46.1"},
    ]
    result = assess(load_dataset(write_dataset(**files)).patient("P020"), kb)
    assert result.result("X-E2").status == "fail"  # D46: a myelodysplastic syndrome, whatever the words
    assert result.result("X-E2").proof.startswith(
        "diagnosis MDS with ring sideroblasts (icd10:D46.1: myelodysplastic syndrome) 2019-03-01"
    )
    assert result.result("X-E2").message.startswith(
        "Diagnosis: MDS with ring sideroblasts (icd10:D46.1: myelodysplastic syndrome) on 1 Mar 2019"
    )
    # the words are not understood: they may say more than the code, so no absence is known
    cirrhosis = result.result("X-E1")
    assert (cirrhosis.status, cirrhosis.reason) == ("unknown", "unknown_term")
    assert "its code icd10:D46.1 reads as myelodysplastic syndrome" in cirrhosis.missing[0].detail


@pytest.mark.parametrize(
    ("kind", "name", "code", "criterion", "status"),
    [
        # a DVT recorded as a diagnosis is still a DVT (GE7 reads every kind of record)
        ("diagnosis", "deep vein thrombosis", "", "GE7", "fail"),
        # a malignancy recorded as a diagnosis, by its code alone
        ("diagnosis", "", "C50.9", "GE8", "fail"),
        # a code that does not say enough (deep or superficial?) leaves GE7 open
        ("thrombosis", "", "I80.3", "GE7", "unknown"),
        # words the vocabulary does not know, under a code it does not list: open, never a pass
        ("thrombosis", "左下肢静脉血栓", "I80.3", "GE7", "unknown"),
        ("cardiac_event", "不稳定心绞痛", "I20.0", "GE5", "fail"),  # the code names unstable angina
        # Sjögren's said to be secondary is not primary
        ("diagnosis", "secondary Sjögren's syndrome", "M35.0", "PSS-I1", "fail"),
        ("diagnosis", "Secondary Sjögren's syndrome (rheumatoid arthritis)", "M35.0", "PSS-I1", "unknown"),
    ],
)
def test_conditions_are_read_from_any_record_and_code_and_never_pass_unread(
    kb: KnowledgeBase,
    write_dataset: Callable[..., Path],
    kind: str,
    name: str,
    code: str,
    criterion: str,
    status: str,
) -> None:
    files = demo_files("P020")  # primary Sjögren's, eligible, every history reviewed
    template = files["events"][0]
    files["events"] += [
        {**template, "kind": kind, "name": name, "code": code, "start_date": "2026-10-01"},
        {**template, "kind": "medication", "name": "rivaroxaban", "code": "", "start_date": "2026-10-01"},
    ]
    result = assess(load_dataset(write_dataset(**files)).patient("P020"), kb)
    assert result.result(criterion).status == status
    assert result.verdict != "eligible"


@pytest.mark.parametrize(
    ("file", "row", "criteria"),
    [
        # a medication row that cannot be read: the drug is not absent, the history is open
        (
            "events",
            {"kind": "medication", "name": "tacrolimus", "start_date": "2025-01-01", "end_date": "ongoing"},
            ("GE4.4", "GE4.7"),
        ),
        (
            "events",
            {"kind": "medication", "name": "tacrolimus", "start_date": "2026-11-20", "end_date": "2025-11-30"},
            ("GE4.4", "GE4.7"),
        ),
        # a newer platelet count that cannot be read hides the older one
        ("observations", {"item": "platelets", "value": "4O", "unit": "10*9/L", "date": "2026-11-20"}, ("GI6.3",)),
        # a newer attestation that cannot be read hides the older one
        ("attestations", {"item": "uncontrolled_infection", "value": "nope", "date": "2026-11-20"}, ("GE2",)),
    ],
)
def test_a_row_that_could_not_be_read_never_counts_as_absent(
    kb: KnowledgeBase, write_dataset: Callable[..., Path], file: str, row: dict[str, str], criteria: tuple[str, ...]
) -> None:
    files = demo_files("P001")  # eligible
    files[file].append({**files[file][0], **row})
    dataset = load_dataset(write_dataset(**files))
    assert [p.patient_id for p in dataset.problems] == ["P001"]  # reported, with the row
    result = assess(dataset.patient("P001"), kb)
    for criterion in criteria:
        found = result.result(criterion)
        assert (found.status, found.reason) == ("unknown", "unreadable_source"), criterion
        assert f"{file}.csv row" in found.missing[0].detail and "could not be read" in found.missing[0].detail
    assert result.verdict == "needs_data"
