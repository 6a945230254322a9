"""Patients described in words (issue 17): never a stored patient, the criteria the words
imply, vague times as ranges, and an unclear question asked back with choices.

The stories (three wordings each) live in benchmarks/chat.py, which times them; the 200
seeded descriptions are composed from disease names, ages, agents of the vocabulary by
class, relative times and results with units, and each expectation is computed from those
parts (the protocol's thresholds and windows), never from the engine.
"""

from __future__ import annotations

import json
import random
import re
from datetime import date

import pytest

from benchmarks.chat import DESCRIBED, DESCRIBED_TODAY
from kb.catalogue.assumptions import resolve_assumptions
from kb.catalogue.derived import age_in_years
from kb.catalogue.knowledge import KnowledgeBase
from kb.cli import main
from kb.presentation.answers import answer
from kb.presentation.described import assess_description
from kb.presentation.description import read_description
from kb.presentation.questions import Question, parse_question
from kb.records.patients import Dataset

STORED_ID = re.compile(r"\bP\d{3}\b")
WORDINGS = [(text, expected) for wordings, expected in DESCRIBED for text in wordings]


def test_the_stories_cover_the_six_diseases_in_three_wordings_each() -> None:
    assert len(DESCRIBED) >= 10 and all(len(set(wordings)) == 3 for wordings, _ in DESCRIBED)


@pytest.mark.parametrize(("text", "expected"), WORDINGS, ids=[t for t, _ in WORDINGS])
def test_a_described_patient_is_answered_with_the_criteria_its_words_imply(
    kb: KnowledgeBase, demo: Dataset, text: str, expected: dict[str, str]
) -> None:
    """With P001 selected: the answer is about the words, never about P001 or any stored patient."""
    reply = answer(text, kb, demo, current_patient="P001", today=DESCRIBED_TODAY)
    assert reply.kind == "described" and reply.described is not None and reply.assessment is not None
    statuses = {r.id: r.status for r in reply.assessment.criteria}
    assert {c: statuses[c] for c in expected} == expected
    assert reply.assessment.patient_id not in demo.patients
    shown = "\n".join([reply.understood, reply.headline, *reply.details, *(r.message for r in reply.results)])
    assert not STORED_ID.search(shown), shown
    assert reply.headline.startswith("A patient described in words (not stored)")
    assert "enrolment assumed on 2026-12-01 (today)" in shown  # the assumptions read into the words are shown
    assert not reply.described.description.unread  # every word that carries a fact was read
    failing = [c for c, status in expected.items() if status == "fail"]
    assert all(c in reply.headline for c in failing if c != "COHORT")  # what blocks comes first


def test_last_month_is_a_range_and_names_the_day_that_decides(kb: KnowledgeBase, demo: Dataset) -> None:
    """Rituximab "last month" (1-30 November) with enrolment on 1 December: GE4.3's 28-day
    window starts on 3 November, so the day decides; the criterion is unknown, not a guess."""
    text = "can my 45 year old lupus patient on rituximab last month enrol?"
    reply = answer(text, kb, demo, current_patient="P001", today=DESCRIBED_TODAY)
    assert reply.kind == "described" and reply.described is not None
    decision = next(d for d in reply.described.ranges if d.criterion == "GE4.3")
    assert (decision.early, decision.late, decision.deciding_day) == ("unknown", "fail", "2026-11-03")
    assert reply.assessment is not None and reply.assessment.result("GE4.3").status == "unknown"
    assert reply.assessment.verdict == "needs_data"
    assert "decided at 2026-11-03" in reply.headline and "P001" not in reply.headline
    assert "rituximab given on any day from 2026-11-01 to 2026-11-30 (last month)" in " ".join(reply.details)


def test_a_dose_in_the_range_s_safe_part_still_blocks(kb: KnowledgeBase, demo: Dataset) -> None:
    """Two weeks ago lies inside the window whatever the day: no range, a plain fail."""
    reply = answer("lupus, rituximab 2 weeks ago", kb, demo, today=DESCRIBED_TODAY)
    assert reply.described is not None and not reply.described.ranges
    assert reply.assessment is not None and reply.assessment.result("GE4.3").status == "fail"


@pytest.mark.parametrize(
    "text", ["tell me a joke", "hmm", "what about the thing from before", "is eligible?", "which criteria block?"]
)
def test_an_unclear_question_gets_choices_never_another_patient(kb: KnowledgeBase, demo: Dataset, text: str) -> None:
    reply = answer(text, kb, demo, current_patient="P001", today=DESCRIBED_TODAY)
    assert reply.kind == "clarify" and reply.question is None and reply.assessment is None
    assert len(reply.options) >= 3
    assert reply.headline.startswith(("I did not understand", "Which patient do you mean?"))


@pytest.mark.parametrize("text", ["is she eligible?", "is this patient eligible", "which criteria block her?"])
def test_a_question_pointing_at_the_selected_patient_says_so_first(kb: KnowledgeBase, demo: Dataset, text: str) -> None:
    reply = answer(text, kb, demo, current_patient="P011", today=DESCRIBED_TODAY)
    assert reply.headline.startswith("About P011, selected in the sidebar: ineligible")  # GI6, GE4.3 …
    assert reply.understood.startswith(
        ("understood: check · P011 (selected)", "understood: blockers · P011 (selected)")
    )


def test_help_is_given_only_when_asked_for(kb: KnowledgeBase, demo: Dataset) -> None:
    assert answer("help", kb, demo, current_patient="P001").kind == "help"
    assert answer("no idea", kb, demo, current_patient="P001").kind == "clarify"


def test_a_number_of_weeks_after_patient_is_not_a_patient_id(kb: KnowledgeBase, demo: Dataset) -> None:
    """ "patient 2 weeks after rituximab" once read as P002."""
    parsed = parse_question("is my patient 2 weeks after rituximab eligible?", kb, sorted(demo.patients), "P001",
                            DESCRIBED_TODAY)  # fmt: skip
    assert isinstance(parsed, Question) and parsed.intent == "described" and parsed.patient is None
    assert parsed.description is not None and parsed.description.summary() == ("rituximab 2026-11-17 (2 weeks after)",)


@pytest.mark.parametrize(
    "text", ["what makes lupus refractory here?", "does prednisone 20 mg daily exclude?", "is lupus a cohort?"]
)
def test_a_protocol_question_naming_a_disease_or_drug_describes_no_patient(
    kb: KnowledgeBase, demo: Dataset, text: str
) -> None:
    """A disease or a drug named in a question about the protocol is not a patient, and not P001."""
    reply = answer(text, kb, demo, current_patient="P001", today=DESCRIBED_TODAY)
    assert reply.kind != "described" and "P001:" not in reply.headline
    assert reply.question is None or reply.question.patient is None


#: every story in all its wordings, as the chat reads them
CLI_WORDINGS = WORDINGS


@pytest.mark.parametrize(("text", "expected"), CLI_WORDINGS, ids=[t for t, _ in CLI_WORDINGS])
def test_kb_ask_json_answers_a_described_patient(
    capsys: pytest.CaptureFixture[str], text: str, expected: dict[str, str]
) -> None:
    assert main(["--as-of", DESCRIBED_TODAY.isoformat(), "ask", text, "--json"]) == 0
    out = capsys.readouterr().out
    reply = json.loads(out)
    assert reply["kind"] == "described" and not STORED_ID.search(out)
    statuses = {r["id"]: r["status"] for r in reply["blocking"] + reply["open"]}
    for criterion, status in expected.items():
        if status != "pass":
            assert statuses[criterion] == status
        else:
            assert criterion not in statuses
    assert reply["assumptions"][0] == "enrolment assumed on 2026-12-01 (today), screening and apheresis the same day"


@pytest.mark.parametrize("text", ["tell me a joke", "is eligible?", "what now"])
def test_kb_ask_json_asks_back_with_choices(capsys: pytest.CaptureFixture[str], text: str) -> None:
    assert main(["ask", text, "--json"]) == 0
    reply = json.loads(capsys.readouterr().out)
    assert reply["kind"] == "clarify" and len(reply["options"]) >= 3


# --- 200 seeded descriptions, composed from the vocabularies -------------------------------

DISEASES = {
    "sle": ["lupus", "SLE", "systemic lupus erythematosus"],
    "pss": ["Sjögren's", "primary Sjogren syndrome", "pSS"],
    "ssc": ["systemic sclerosis", "scleroderma", "SSc"],
    "iim": ["dermatomyositis", "polymyositis", "inflammatory myopathy"],
    "aav": ["ANCA vasculitis", "GPA", "microscopic polyangiitis"],
    "aps": ["antiphospholipid syndrome", "APS"],
}
#: agent class → (criterion, window in days before enrolment: a dose on or after enrolment − window blocks)
WINDOWS = {"anti_cd20": ("GE4.3", 28), "live_vaccine": ("GE4.2", 28), "systemic_cytotoxic": ("GE4.5", 14)}
#: item → (criterion, wordings, [(value as written, unit as written, value in the canonical unit)], passes)
LABS = {
    "platelets": ("GI6.3", ["platelets", "plt", "platelet count"],
                  [("40", "", 40), ("49", "x10^9/L", 49), ("50", "×10^9/L", 50), ("80", "10^9/L", 80),
                   ("150", "", 150)], lambda v: v >= 50),
    "anc": ("GI6.1", ["neutrophils", "ANC"], [("0.5", "x10^9/L", 0.5), ("0.9", "", 0.9), ("1.0", "x10^9/L", 1.0),
                                              ("2.5", "", 2.5)], lambda v: v >= 1.0),
    "spo2": ("GI8", ["SpO2", "sats", "oxygen saturation"], [("90", "%", 90), ("92", "%", 92), ("93", "%", 93),
                                                              ("97", "", 97)], lambda v: v > 92),
    "hemoglobin": ("GI6.2", ["hb", "haemoglobin"], [("50", "g/L", 50), ("5.5", "g/dL", 55), ("59", "g/l", 59)],
                   lambda v: v >= 60),
}  # fmt: skip


def _compose(rng: random.Random, kb: KnowledgeBase) -> tuple[str, dict[str, str], dict[str, str]]:
    """A description and the statuses its parts imply: {criterion: status} and {criterion: "not fail"}."""
    cohort = rng.choice(sorted(DISEASES))
    age = rng.choice([16, 17, 18, 19, 30, 45, 64, 65, 66, 70, 80])
    klass = rng.choice(sorted(WINDOWS))
    agent = rng.choice(sorted(a.name for a in kb.vocabulary.agents.values() if klass in a.classes))
    days = rng.choice([1, 3, 7, 13, 14, 15, 21, 27, 28, 29, 35, 42, 60])
    when = f"{days // 7} weeks ago" if days % 7 == 0 and rng.random() < 0.5 else f"{days} days ago"
    item = rng.choice(sorted(LABS))
    criterion, names, values, passes = LABS[item]
    written, unit, value = rng.choice(values)
    sex = rng.choice(["woman", "man"])
    age_words = rng.choice([f"{age}-year-old", f"{age} year old", f"{age} yo"])
    template = rng.choice(
        [
            "a {age} {sex} with {disease}, {agent} {when}, {lab} {value}",
            "can my {age} {disease} patient enrol? {agent} {when}; {lab} {value}",
            "{disease}, {age} {sex}, {lab} {value}, {agent} {when}",
        ]
    )
    text = template.format(
        age=age_words, sex=sex, disease=rng.choice(DISEASES[cohort]), agent=agent.replace("_", " "),
        when=when, lab=rng.choice(names), value=f"{written} {unit}".strip(),
    )  # fmt: skip
    window_criterion, window = WINDOWS[klass]
    expected = {"GI2": "pass" if 18 <= age <= 65 else "fail", "COHORT": "pass", f"cohort:{cohort}": "yes"}
    if not passes(value):
        expected[criterion] = "fail"
    if days <= window:
        expected[window_criterion] = "fail"
    not_failing = {c: "not fail" for c in (criterion, window_criterion) if c not in expected}
    return text, expected, not_failing


@pytest.mark.parametrize("chunk", range(4))  # 4 × 50: spread over the test workers
def test_two_hundred_seeded_descriptions_imply_their_criteria(kb: KnowledgeBase, demo: Dataset, chunk: int) -> None:
    rng = random.Random(17 + chunk)
    assumptions = resolve_assumptions()
    ids = sorted(demo.patients)
    checked = 0
    for _ in range(50):
        text, expected, not_failing = _compose(rng, kb)
        parsed = parse_question(text, kb, ids, "P001", DESCRIBED_TODAY)
        assert isinstance(parsed, Question) and parsed.intent == "described", (text, parsed)
        assert parsed.description is not None and not parsed.description.unread, (text, parsed.description.unread)
        found = assess_description(parsed.description, kb, assumptions, explain="status")
        statuses = {r.id: r.status for r in found.assessment.criteria}
        cohorts = {f"cohort:{c.cohort}": "yes" for c in found.assessment.cohorts}
        assert {c: {**statuses, **cohorts}.get(c) for c in expected} == expected, text
        assert all(statuses[c] != "fail" for c in not_failing), (text, not_failing)
        assert found.assessment.verdict != "eligible"  # nothing attested: never eligible from words
        checked += 1
    assert checked == 50


def test_a_described_patient_is_never_stored(kb: KnowledgeBase, demo: Dataset) -> None:
    before = sorted(demo.patients)
    answer("a 45-year-old woman with lupus, rituximab 2 weeks ago", kb, demo, today=date(2026, 12, 1))
    assert sorted(demo.patients) == before


@pytest.mark.parametrize(
    ("question", "said"),
    [
        ("2026-13-01", "'2026-13-01' is not a day in the calendar"),
        ("SLE, rituximab on 2026-02-30", "'2026-02-30' is not a day in the calendar"),
        ("lupus, rituximab 99999999 days ago", "'99999999 days ago' is not a day in the calendar"),
        ("lupus, rituximab 500 years ago", "'500 years ago' is 1526-01-01, outside the dates accepted"),
        ("lupus, rituximab on 1899-12-31", "'1899-12-31' is 1899-12-31, outside the dates accepted"),
    ],
)
def test_a_time_that_is_no_day_is_an_error_answer_naming_it(
    kb: KnowledgeBase, demo: Dataset, question: str, said: str
) -> None:
    """Found by the input fuzz suite: a month 13 or a 30 February raised ValueError from the
    description reader (a traceback in the chat), and a time far back left the calendar."""
    got = answer(question, kb, demo, current_patient="P001", today=DESCRIBED_TODAY)
    assert got.kind == "error" and got.headline.startswith(said)
    assert "P001" not in got.headline


@pytest.mark.parametrize(
    ("text", "ruled_out", "still_open"),
    [
        ("50F with APS and SLE", "aps cohort ruled out by APS-E2", "sle still open"),
        ("50F SSc and dermatomyositis overlap, FVC 40%", "ssc cohort ruled out by SSC-E3", "iim still open"),
    ],
)
def test_a_cohort_ruled_out_while_another_is_open_is_not_called_not_eligible(
    kb: KnowledgeBase, demo: Dataset, text: str, ruled_out: str, still_open: str
) -> None:
    """Red-team: two diseases, one cohort blocked, the other open, were headlined "not eligible,
    blocked by APS-E2" while the verdict was needs_data (a patient enters through any cohort)."""
    reply = answer(text, kb, demo, current_patient="P001", today=DESCRIBED_TODAY)
    assert reply.assessment is not None and reply.assessment.verdict == "needs_data"
    assert reply.headline.startswith("A patient described in words (not stored): not decided")
    assert f"; {ruled_out}, {still_open}" in reply.headline and "not eligible" not in reply.headline


@pytest.mark.parametrize(
    ("text", "criterion", "status"),
    [
        ("45F SLE ANC 1,500/uL", "GI6.1", "pass"),  # 1.5 ×10^9/L: read as 1 and 500 before (0.5, a fail)
        ("45F SLE ANC 800/uL", "GI6.1", "fail"),
        ("45F SLE platelets 150,000/uL", "GI6.3", "pass"),
        ("45F SLE platelets 45,000/uL", "GI6.3", "fail"),
    ],
)
def test_a_number_with_thousands_separators_is_one_number(
    kb: KnowledgeBase, demo: Dataset, text: str, criterion: str, status: str
) -> None:
    reply = answer(text, kb, demo, current_patient="P001", today=DESCRIBED_TODAY)
    assert reply.described is not None and not reply.described.description.unread
    assert reply.assessment is not None and reply.assessment.result(criterion).status == status


@pytest.mark.parametrize(
    ("text", "by_hand"),
    [("45F SLE ANC 1,500/uL", "GI1, GE1"), ("50F dermatomyositis", "GI1, GE1, IIM-I1, IIM-I2, IIM-I3, IIM-I4")],
)
def test_a_described_patient_names_what_is_checked_by_hand(
    kb: KnowledgeBase, demo: Dataset, text: str, by_hand: str
) -> None:
    """Red-team: the items lost from the record (GI1, GE1, IIM-I1..I4) were silently left out of a
    described patient's answer, where a stored patient's shows them as manual."""
    reply = answer(text, kb, demo, current_patient="P001", today=DESCRIBED_TODAY)
    assert f"To verify by hand (text lost from the record): {by_hand}" in reply.details


@pytest.mark.parametrize(
    ("text", "statuses"),
    [
        ("45F SLE, prior CD19 CAR-T", {"GE14": "fail", "GE4.1": "fail"}),  # any time: decided whatever the day
        ("45F SLE, previous rituximab", {"GE4.3": "unknown"}),  # a window: the day decides, and it is named
        ("40 yo man with lupus, past tisagenlecleucel", {"GE14": "fail"}),
    ],
)
def test_a_prior_treatment_is_a_range_of_days_not_an_unread_word(
    kb: KnowledgeBase, demo: Dataset, text: str, statuses: dict[str, str]
) -> None:
    """Red-team: "prior CAR-T" was dropped without a word (GE14, any prior CAR-T, left open)."""
    reply = answer(text, kb, demo, current_patient="P001", today=DESCRIBED_TODAY)
    assert reply.assessment is not None and reply.described is not None
    assert {c: reply.assessment.result(c).status for c in statuses} == statuses
    assert any("prior: some day before today" in note for note in reply.described.description.assumptions)
    if "GE4.3" in statuses:
        assert "decided at 2026-11-03" in reply.headline  # 28 days before enrolment on 1 Dec


@pytest.mark.parametrize(
    ("text", "weight", "status"),
    [
        ("70 yo man with GPA, creatinine 2.1 mg/dL, weight 60 kg", "60", "fail"),  # (140-70)*60/(72*2.1) = 27.8
        # 97.2 mL/min passes; GI6.7's creatinine < 1.5 × ULN still needs the lab's ULN
        ("70 yo man with GPA, creatinine 0.8 mg/dL, wt 80kg", "80", "unknown"),
        ("70 yo man with GPA, creatinine 2.1 mg/dL, weighing 132 lb", "59.9", "fail"),
    ],
)
def test_a_described_weight_feeds_the_cockcroft_gault_clearance(
    kb: KnowledgeBase, demo: Dataset, text: str, weight: str, status: str
) -> None:
    """Red-team: 'weight 60 kg' was 'the number 60 (what does it measure?)', so GI6.7 stayed open
    where the clearance fails it."""
    reply = answer(text, kb, demo, current_patient="P001", today=DESCRIBED_TODAY)
    assert reply.described is not None and not reply.described.description.unread
    assert f"{weight} kg" in reply.described.description.summary()
    assert reply.assessment is not None and reply.assessment.result("GI6.7").status == status
    assert "Cockcroft–Gault lacks inputs" not in reply.assessment.result("GI6.7").message


@pytest.mark.parametrize(
    ("text", "status"), [("45F SLE platelets 0.15 x10^12/L", "pass"), ("SLE, plt 0.04 ×10^12/L", "fail")]
)
def test_a_count_per_10_12_per_litre_is_converted_not_replaced(
    kb: KnowledgeBase, demo: Dataset, text: str, status: str
) -> None:
    """Red-team: '0.15 x10^12/L' became 0.15 ×10^9/L ('unit ×10^9/L assumed'), a GI6.3 fail for 150."""
    reply = answer(text, kb, demo, current_patient="P001", today=DESCRIBED_TODAY)
    assert reply.described is not None
    assert not any("assumed)" in n and "unit" in n for n in reply.described.description.assumptions)
    assert reply.assessment is not None and reply.assessment.result("GI6.3").status == status


@pytest.mark.parametrize(
    ("text", "status"),
    [
        ("45F SLE pregnant", "fail"),
        ("a woman with lupus who is breastfeeding", "fail"),
        ("35 year old with SLE, lactating", "fail"),
        ("45F SLE, not pregnant, not breastfeeding", "pass"),
        ("30 year old woman with lupus, pregnancy test negative", "unknown"),  # breastfeeding not said
    ],
)
def test_pregnancy_and_breastfeeding_in_words_decide_ge10(
    kb: KnowledgeBase, demo: Dataset, text: str, status: str
) -> None:
    """Red-team: "pregnant" and "breastfeeding" were dropped without a word, leaving GE10 open."""
    reply = answer(text, kb, demo, current_patient="P001", today=DESCRIBED_TODAY)
    assert reply.described is not None and not reply.described.description.unread
    assert reply.assessment is not None and reply.assessment.result("GE10").status == status


@pytest.mark.parametrize(
    ("words", "today", "first", "last"),
    [
        ("rituximab 1 month ago", "2024-03-31", "2024-02-01", "2024-02-29"),  # that calendar month, leap day included
        ("rituximab 1 month ago", "2023-03-31", "2023-02-01", "2023-02-28"),
        ("rituximab 2 months ago", "2026-01-15", "2025-11-01", "2025-11-30"),
        ("rituximab 12 months ago", "2024-02-29", "2023-02-01", "2023-02-28"),
    ],
)
def test_months_ago_is_that_calendar_month(kb: KnowledgeBase, words: str, today: str, first: str, last: str) -> None:
    described = read_description(words, kb.vocabulary, date.fromisoformat(today))
    (drug,) = described.drugs
    assert (drug.start.first.isoformat(), drug.start.last.isoformat()) == (first, last)


@pytest.mark.parametrize("today", ["2024-02-29", "2026-03-01", "2026-12-31"])
def test_a_described_age_is_the_age_on_enrolment(kb: KnowledgeBase, today: str) -> None:
    """The birth date made up for "a 45-year-old" gives 45 on enrolment, a 29 February too."""
    enrolment = date.fromisoformat(today)
    patient = read_description("a 45-year-old woman with lupus", kb.vocabulary, enrolment).patient()
    assert patient.birth_date is not None
    assert age_in_years(patient.birth_date, enrolment).value == 45
