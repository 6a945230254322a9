"""What-if: hypothetical changes on a copy of the patient, the difference they make, and a
clear refusal of changes that cannot be understood or cannot be true."""

from __future__ import annotations

import json
from datetime import date

import pytest

from kb.catalogue.knowledge import KnowledgeBase
from kb.cli import main
from kb.errors import KbError
from kb.reasoning.evaluation import assess
from kb.reasoning.whatif import Change, change_text, moved_enrolment, parse_change, setting, stopping, what_if
from kb.records.patients import Dataset


def run(kb: KnowledgeBase, demo: Dataset, pid: str, *texts: str) -> dict[str, tuple[str, str]]:
    answer = what_if(demo.patient(pid), [parse_change(t, kb.vocabulary) for t in texts], kb)
    return {d.criterion: (d.before.status, d.after.status) for d in answer.differences}


@pytest.mark.parametrize(
    ("pid", "changes", "expected"),
    [
        ("P002", ["platelets=80"], {"GI6.3": ("fail", "pass")}),
        ("P001", ["platelets=49"], {"GI6.3": ("pass", "fail")}),
        ("P001", ["hemoglobin=5.9 g/dL"], {"GI6.2": ("pass", "fail")}),  # converted: 59 g/L
        (
            "P060",
            ["stop:tacrolimus@2026-11-10"],
            {"GE4": ("fail", "pass"), "GE4.4": ("fail", "pass"), "GE4.7": ("fail", "pass")},
        ),
        ("P010", ["hbv_dna=900", "breastfeeding=no"], {"GE3": ("unknown", "pass"), "GE10": ("unknown", "pass")}),
        ("P036", ["assume:iim_entry=probable"], {"IIM-I1": ("manual", "pass")}),
        ("P001", ["remove:platelets"], {"GI6.3": ("pass", "unknown")}),
        ("P017", ["assume:ge4_7_window_days=28"], {"GE4": ("pass", "fail"), "GE4.7": ("pass", "fail")}),
    ],
)
def test_a_change_flips_exactly_the_criteria_it_should(
    kb: KnowledgeBase, demo: Dataset, pid: str, changes: list[str], expected: dict[str, tuple[str, str]]
) -> None:
    assert run(kb, demo, pid, *changes) == expected


@pytest.mark.parametrize(
    ("pid", "change", "message"),
    [
        # a stop before the only dose would erase a dose already given (GE4.3 would pass)
        ("P011", "stop:rituximab@2026-10-01", "rituximab is recorded as given on 2026-11-03"),
        # a drug that ended before the stop date: nothing to stop
        ("P001", "stop:prednisone@2026-11-01", "prednisone is not being taken on 2026-11-01"),
        # a single infusion (frequency once) ends on its day: nothing to stop either
        ("P066", "stop:obinutuzumab@2026-11-01", "obinutuzumab is not being taken on 2026-11-01"),
    ],
)
def test_a_stop_that_cannot_happen_is_refused_with_the_reason(
    kb: KnowledgeBase, demo: Dataset, pid: str, change: str, message: str
) -> None:
    with pytest.raises(KbError, match=message):
        run(kb, demo, pid, change)


def test_moving_enrolment_moves_age_and_windows(kb: KnowledgeBase, demo: Dataset) -> None:
    answer = what_if(demo.patient("P006"), [parse_change("enrolment=2026-11-25", kb.vocabulary)], kb)
    after = answer.after
    assert after.reference.enrolment == date(2026, 11, 25)
    assert after.result("GI2").status == "pass"  # the 18th birthday
    assert after.result("GE4.2").status == "unknown"  # vaccinations reviewed only up to 2026-11-24
    assert answer.before.result("GI2").status == "fail"


def test_the_stored_patient_is_never_changed(kb: KnowledgeBase, demo: Dataset) -> None:
    patient = demo.patient("P002")
    count = len(patient.observations)
    what_if(
        patient, [parse_change("platelets=80", kb.vocabulary), parse_change("remove:hemoglobin", kb.vocabulary)], kb
    )
    assert len(patient.observations) == count
    assert what_if(patient, [], kb).after.result("GI6.3").status == "fail"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("plt=80", "unknown item 'plt'"),
        ("platelets=-5", "platelets=-5: platelets -5 ×10.9/L is outside the plausible range 0-3000"),
        ("platelets=eighty", "'eighty' is not a number"),
        ("platelets=80@1900-01-01", "before the patient's birth"),
        ("enrolment=tomorrow", "'tomorrow' in enrolment=tomorrow is not a date"),
        ("stop:zorblax@2026-01-01", "unknown drug 'zorblax'"),
        ("stop:tacrolimus@2026-01-01", "P002 has no medication record of tacrolimus"),
        ("assume:ge4_7_window_days=many", "whole number of days"),
        ("consent=maybe", "consent cannot be 'maybe'; allowed: yes, no"),
        ("platelets", "accepted forms"),
    ],
)
def test_bad_changes_are_refused_with_the_accepted_forms(
    kb: KnowledgeBase, demo: Dataset, text: str, message: str
) -> None:
    with pytest.raises(KbError, match=message.replace("(", r"\(")):
        what_if(demo.patient("P002"), [parse_change(text, kb.vocabulary)], kb)


def test_kb_whatif_text_and_json(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["whatif", "P002", "platelets=80"]) == 0
    out = capsys.readouterr().out
    assert "verdict: ineligible → ineligible" in out and "GI6.3    fail → pass" in out
    assert "platelets 80 ×10^9/L on 2026-11-24" in out and "still blocking: GI8" in out
    assert "by rule platelets_adequate(P, yes) :- obs_num(P, platelets, Count, _), Count >= 50." in out
    assert "[source: what-if (hypothetical)]" in out  # the hypothetical fact says so in the proof
    assert main(["whatif", "P036", "assume:iim_entry=probable", "--json"]) == 0
    answer = json.loads(capsys.readouterr().out)
    assert answer["verdict_before"] == "needs_data" and answer["verdict_after"] == "eligible"
    assert answer["changed"][0]["criterion"] == "IIM-I1" and answer["eligible_via_after"] == ["iim"]
    assert main(["whatif", "P002", "plt=80"]) == 2
    assert "unknown item 'plt'" in capsys.readouterr().err


def test_concurrent_what_ifs_match_a_sequential_run_and_leave_the_facts_alone(kb: KnowledgeBase, demo: Dataset) -> None:
    """Eight threads, each its own hypothetical: answers as in a sequential run, nothing leaks
    between them and the stored patients are unchanged."""
    import copy
    from concurrent.futures import ThreadPoolExecutor

    jobs = [
        ("P061", ["platelets=80"]),
        ("P059", ["enrolment=2026-12-19"]),
        ("P060", ["stop:tacrolimus@2026-11-24", "enrolment=2026-12-03"]),
        ("P062", ["platelets=50"]),
        ("P064", ["platelets=60", "hbsag=negative"]),
        ("P033", ["creatinine=117"]),
        ("P001", ["remove:platelets"]),
        ("P017", ["assume:ge4_7_window_days=28"]),
    ]
    stored = {pid: copy.deepcopy(demo.patient(pid)) for pid, _ in jobs}

    def answer(job: tuple[str, list[str]]) -> tuple[str, dict[str, tuple[str, str]]]:
        pid, texts = job
        result = what_if(demo.patient(pid), [parse_change(t, kb.vocabulary) for t in texts], kb)
        return result.after.verdict, {d.criterion: (d.before.status, d.after.status) for d in result.differences}

    sequential = [answer(job) for job in jobs]
    with ThreadPoolExecutor(max_workers=8) as pool:
        concurrent = list(pool.map(answer, jobs * 2))
    assert concurrent == sequential * 2
    assert [v for v, _ in sequential] == [
        "eligible",
        "needs_data",
        "needs_data",
        "ineligible",
        "eligible",
        "eligible",
        "needs_data",
        "ineligible",
    ]  # moving enrolment without re-reviewing the histories leaves their windows open
    assert all(demo.patient(pid) == stored[pid] for pid in stored)


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ("birth_date=1960-01-01", {"GI2": ("pass", "fail")}),
        ("weight_kg=40", {"GI6.7": ("pass", "fail")}),
        ("ast=30 U/L ULN 10", {"GI6.6": ("pass", "fail")}),
    ],
)
def test_patient_fields_and_a_result_with_its_limit(
    kb: KnowledgeBase, demo: Dataset, change: str, expected: dict[str, tuple[str, str]]
) -> None:
    differences = run(kb, demo, "P023", change)
    assert {k: v for k, v in differences.items() if k in expected} == expected


@pytest.mark.parametrize("bad", ["weight_kg=5", "sex=unknown", "birth_date=soon", "ast=30 ULN 0"])
def test_impossible_patient_fields_are_refused(kb: KnowledgeBase, bad: str, demo: Dataset) -> None:
    with pytest.raises(KbError):
        what_if(demo.patient("P023"), [parse_change(bad, kb.vocabulary)], kb)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("platelets=NaN", "platelets=NaN: 'NaN' is not a number (a finite number is needed)"),
        ("platelets=sNaN", "'sNaN' is not a number"),
        ("platelets=-Infinity", "'-Infinity' is not a number"),
        ("weight_kg=NaN", "weight_kg=NaN: 'NaN' is not a weight in kg (a finite number is needed)"),
        ("weight_kg=sNaN", "'sNaN' is not a weight in kg"),
        ("creatinine=0", "creatinine 0 µmol/L is outside the plausible range 10-3000 µmol/L"),
        ("hemoglobin=1e30 g/dL", "hemoglobin 1e30 g/dL is outside the plausible range 10-250 g/L"),
        ("platelets=50 10*308/L", "outside the plausible range 0-3000"),
        ("alt=30 U/L ULN 1e-31", "the limit is implausible"),
        ("alt=30 U/L ULN 1e-999999999", "the limit is implausible"),
        ("enrolment=0001-01-01", "the date 0001-01-01 is outside the dates accepted (1900-01-01 to 2200-12-31)"),
        ("screening=9999-12-31", "outside the dates accepted"),
        ("platelets=80@9999-12-31", "outside the dates accepted"),
        ("birth_date=0001-01-01", "outside the dates accepted"),
    ],
)
def test_an_edge_value_in_a_change_is_refused_not_raised(
    kb: KnowledgeBase, demo: Dataset, capsys: pytest.CaptureFixture[str], text: str, message: str
) -> None:
    """Issue 16.2: NaN compared with nothing (InvalidOperation), sNaN raised on sight, a
    creatinine of 0 divided by zero, a date near year 1 or 9999 left the calendar: each is
    now a KbError from parsing or applying the change, and `kb whatif` exits 2 with it."""
    with pytest.raises(KbError, match=message.replace("(", r"\(").replace(")", r"\)")):
        what_if(demo.patient("P001"), [parse_change(text, kb.vocabulary)], kb)
    assert main(["whatif", "P001", text]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


WRITTEN = [
    ("result", "platelets=80"),
    ("result", "hemoglobin=9.5 g/dL@2026-11-20"),
    ("result", "ast=30 U/L ULN 40"),
    ("attest", "consent=yes"),
    ("attest", "reviewed:medications=yes@2026-11-24"),
    ("date", "enrolment=2026-12-01"),
    ("date", "apheresis=2026-12-05"),
    ("patient", "birth_date=1980-01-02"),
    ("patient", "birth_date=1986-11-24@2026-11-24"),  # as a repair collects it, dated
    ("patient", "weight_kg=70"),
    ("patient", "sex=female"),
    ("stop", "stop:tacrolimus@2026-11-24"),
    ("stop", "stop:tacrolimus"),
    ("remove", "remove:platelets"),
    ("assume", "assume:iim_entry=probable"),
]


@pytest.mark.parametrize(("kind", "text"), WRITTEN)
def test_change_text_writes_back_what_parse_change_reads(kb: KnowledgeBase, kind: str, text: str) -> None:
    change = parse_change(text, kb.vocabulary)
    assert change.kind == kind
    assert change_text(change) == text
    assert parse_change(change_text(change), kb.vocabulary) == change


def test_every_kind_of_change_has_its_written_form() -> None:
    assert {kind for kind, _ in WRITTEN} == {"result", "attest", "date", "patient", "stop", "remove", "assume"}


@pytest.mark.parametrize(
    ("name", "value", "when", "expected"),
    [
        ("platelets", "50", date(2026, 11, 24), Change("result", "platelets", "50", date(2026, 11, 24))),
        ("hbsag", "negative", None, Change("result", "hbsag", "negative")),
        (
            "reviewed:vaccinations",
            "yes",
            date(2026, 12, 19),
            Change("attest", "reviewed:vaccinations", "yes", date(2026, 12, 19)),
        ),
        ("enrolment", "2026-12-19", None, Change("date", "enrolment", "2026-12-19")),
        (
            "birth_date",
            "1986-11-24",
            date(2026, 11, 24),
            Change("patient", "birth_date", "1986-11-24", date(2026, 11, 24)),
        ),
    ],
)
def test_setting_is_the_change_its_text_parses_to(
    kb: KnowledgeBase, name: str, value: str, when: date | None, expected: Change
) -> None:
    change = setting(name, value, kb.vocabulary, when)
    assert change == expected
    assert change == parse_change(change_text(change), kb.vocabulary) and change.text == change_text(change)


def test_stopping_names_the_drug_as_the_vocabulary_does(kb: KnowledgeBase) -> None:
    stop = stopping("tacrolimus", kb.vocabulary, date(2026, 11, 24))
    assert stop == Change("stop", "tacrolimus", when=date(2026, 11, 24))
    assert stop.text == "stop:tacrolimus@2026-11-24"
    with pytest.raises(KbError, match="unknown drug 'no-such-drug'"):
        stopping("no-such-drug", kb.vocabulary)


@pytest.mark.parametrize(
    ("name", "value", "words"),
    [
        ("plt", "80", "unknown item 'plt'"),
        ("consent", "maybe", "consent cannot be 'maybe'"),
        ("enrolment", "soon", "not a date"),
    ],
)
def test_setting_refuses_what_parse_change_refuses(kb: KnowledgeBase, name: str, value: str, words: str) -> None:
    with pytest.raises(KbError, match=words):
        setting(name, value, kb.vocabulary)


def test_moved_enrolment_moves_apheresis_and_reconfirms_every_history(kb: KnowledgeBase, demo: Dataset) -> None:
    """P059 enrolled on 2026-12-19 instead of 2026-11-24: apheresis moves by as many days, and
    each reviewed history is re-confirmed up to the later of the two."""
    patient = demo.patient("P059")
    reference = assess(patient, kb).reference
    day = date(2026, 12, 19)
    moved = moved_enrolment(patient, reference, day, kb.vocabulary)
    assert moved[0] == Change("date", "enrolment", "2026-12-19")
    apheresis = reference.apheresis + (day - reference.enrolment)
    reviews = [c for c in moved if c.kind == "attest"]
    assert reviews and all(c.target.startswith("reviewed:") for c in reviews)
    assert {(c.value, c.when) for c in reviews} == {("yes", max(day, apheresis))}
