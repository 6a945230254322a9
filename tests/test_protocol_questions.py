"""Protocol questions (issue 17): thresholds, windows, drugs, cohorts and rules answered from the
rules themselves, with criterion ids, numbers and the assumptions that set them; never about
the patient selected in the sidebar. Each kind in three wordings, through kb.presentation.answers.answer
and `kb ask --json`. Before kb/presentation/protocol_questions.py every one of these fell to the help
menu ("understood: help · P001")."""

from __future__ import annotations

import dataclasses
import json
from datetime import date
from decimal import Decimal

import pytest

from kb.catalogue.assumptions import resolve_assumptions
from kb.catalogue.knowledge import KnowledgeBase
from kb.cli import main
from kb.language.syntax import Comparison, Const, Program
from kb.presentation.answers import Answer, answer
from kb.presentation.protocol_questions import answer_protocol
from kb.records.patients import Dataset

TODAY = date(2026, 11, 24)

#: (wordings, criterion ids that must be named, texts the headline must hold)
THRESHOLDS = [
    (("what is the platelet threshold?", "minimum platelet count?", "how low can plts be"), ["GI6.3"], ["≥ 50 ×10⁹/L"]),
    (
        ("haemoglobin threshold", "what hemoglobin is required?", "lowest Hb allowed"),
        ["GI6.2"],
        ["≥ 60 g/L", "no red blood cell transfusion within 14 days (2 weeks) before the haemoglobin sample"],
    ),
    (("neutrophil cut-off?", "minimum ANC", "what neutrophil count is needed"), ["GI6.1"], ["≥ 1 ×10⁹/L"]),
    (
        ("creatinine clearance limit", "what crcl is required?", "kidney function threshold"),
        ["GI6.7", "SSC-E6"],
        ["≥ 60 mL/min", "< 40 mL/min"],
    ),
    (("eGFR threshold", "what is the gfr limit", "minimum egfr?"), ["AAV-E1"], ["< 15 mL/min/1.73 m²"]),
    (("ALT/AST limits", "transaminase threshold", "upper limit for AST?"), ["GI6.6"], ["≤ 2.5 × ULN"]),
    (("bilirubin limit", "maximum total bilirubin", "what bilirubin is allowed"), ["GI6.5"], ["≤ 1.5 × ULN"]),
    (("ejection fraction threshold", "minimum LVEF?", "what EF is required"), ["GI7"], ["≥ 45 %"]),
    (("SpO2 threshold", "minimum oxygen saturation", "what sats are required?"), ["GI8"], ["> 92 %"]),
    (("age limit", "how old can patients be?", "what is the age range"), ["GI2"], ["≥ 18 and ≤ 65 years"]),
    (("HBV DNA limit", "hbv viral load threshold", "what HBV DNA is allowed"), ["GE3"], ["> 1000 copies/mL"]),
    (("SLEDAI threshold", "minimum sledai?", "what SLEDAI is required"), ["SLE-I2"], ["> 6 points"]),
]
WINDOWS = [
    (
        (
            "how long after rituximab can a patient enrol?",
            "rituximab washout?",
            "how soon after rituximab can patients join",
        ),
        ["GE4.3"],
        ["within 28 days (4 weeks) before enrolment", "day 29 after the last dose"],
    ),
    (
        ("how long after tacrolimus can a patient enrol?", "tacrolimus washout", "how long to wait after FK506"),
        ["GE4.4", "GE4.7"],
        ["washout of 5 half-lives (8 days)", "apheresis on day 9", "within 4 days before enrolment"],
    ),
    (
        ("live vaccine window", "how long after a live vaccine?", "how long to wait after MMR vaccine"),
        ["GE4.2"],
        ["28 days (4 weeks) before enrolment"],
    ),
]
DRUGS = [
    (
        ("does prednisone 20 mg daily exclude?", "is prednisone 20mg a day allowed?", "would 20 mg prednisone exclude"),
        ["GE4.7"],
        ["within 4 days before enrolment: prednisone 20 mg/day is 20 mg/day prednisone-equivalent, above GE4.7's 10"],
    ),
    (
        ("does prednisone 5 mg daily exclude?", "is prednisone 5 mg allowed?", "would 5mg of prednisone exclude"),
        ["GE4.7"],
        ["prednisone 5 mg/day is 5 mg/day prednisone-equivalent, not above GE4.7's 10 mg/day"],
    ),
    (
        ("is hydroxychloroquine allowed?", "is HCQ permitted?", "does hydroxychloroquine exclude?"),
        [],
        ["hydroxychloroquine is allowed", "ge4_7_antimalarials were counted; it is not_counted", "GE1, lost"],
    ),
]
COHORTS = [
    (
        ("which diseases can enter?", "what cohorts are there?", "which conditions can be included"),
        ["SLE-I1", "PSS-I1", "SSC-I1", "IIM-I1", "AAV-I1", "APS-I1"],
        ["6 diseases can enter", "systemic lupus erythematosus", "antiphospholipid syndrome"],
    ),
    (
        ("what makes lupus refractory here?", "how is refractory SLE defined?", "what counts as relapsed lupus"),
        ["DEF-RR", "SLE-I4"],
        ["≥ 183 days", "≥ 1 mg/kg/day prednisone-equivalent", "cyclophosphamide"],
    ),
    (
        ("what makes APS refractory?", "refractory antiphospholipid syndrome definition", "when is APS refractory"),
        ["DEF-APS-RR", "DEF-CAPS", "APS-I3", "APS-I4"],
        ["CAPS total ≥ 4 points"],
    ),
]
RULES = [
    (
        ("show me the steroid rule", "what is the steroid rule?", "show the corticosteroid criterion"),
        ["GE4.7"],
        ["GE4.7: excluded if glucocorticoid dose > 10 mg/day prednisone-equivalent", "within 4 days before enrolment"],
    ),
    (
        ("show me the platelet rule", "what is the platelet rule", "show me the platelet criterion"),
        ["GI6.3"],
        ["GI6.3: platelet count must be ≥ 50 ×10⁹/L"],
    ),
    (
        ("show me the vaccine rule", "what's the live vaccine rule?", "display the vaccination rule"),
        ["GE4.2"],
        ["A live vaccine within 4 weeks (28 days) before enrolment"],
    ),
]
CASES = [
    pytest.param(wording, ids, texts, id=wording)
    for group in (THRESHOLDS, WINDOWS, DRUGS, COHORTS, RULES)
    for wordings, ids, texts in group
    for wording in wordings
]


def ask(question: str, kb: KnowledgeBase, demo: Dataset, **assumed: str | int) -> Answer:
    assumptions = resolve_assumptions({k: str(v) for k, v in assumed.items()}) if assumed else None
    return answer(question, kb, demo, assumptions, current_patient="P001", today=TODAY)


def named(reply: Answer) -> set[str]:
    return {r["criterion"] for r in reply.rows if r.get("what") == "criterion"} | {
        c for r in reply.rows if r.get("what") == "cohort" for c in r["inclusion"].split()
    }


@pytest.mark.parametrize(("question", "ids", "texts"), CASES)
def test_a_protocol_question_is_answered_from_the_rules(
    kb: KnowledgeBase, demo: Dataset, question: str, ids: list[str], texts: list[str]
) -> None:
    reply = ask(question, kb, demo)
    assert (reply.kind, reply.understood) == ("protocol", "understood: protocol"), (reply.kind, reply.headline)
    assert set(ids) <= named(reply) and all(i in reply.headline or i in named(reply) for i in ids)
    for text in texts:
        assert text in reply.headline, (text, reply.headline)
    shown = " ".join((reply.headline, *reply.details, json.dumps(reply.rows)))
    assert "P001" not in shown  # the selected patient plays no part


def test_numbers_come_with_the_protocol_sentence_and_assumptions(kb: KnowledgeBase, demo: Dataset) -> None:
    reply = ask("what is the platelet threshold?", kb, demo)
    assert "GI6.3 protocol: 3. Platelets ≥50×10^9/L;" in reply.details  # the record's sentence, unescaped
    assert any(line.startswith("Assumption lab_lookback_days = 28") for line in reply.details)
    bound = next(r for r in reply.rows if r["what"] == "threshold")
    assert (bound["criterion"], bound["comparison"], bound["value"], bound["unit"]) == ("GI6.3", "≥", "50", "×10⁹/L")


def test_a_window_set_by_an_assumption_moves_with_it(kb: KnowledgeBase, demo: Dataset) -> None:
    """GE4.7's 4 days are assumption ge4_7_window_days: the answer reads the value in force."""
    four = ask("does prednisone 20 mg daily exclude?", kb, demo)
    weeks = ask("does prednisone 20 mg daily exclude?", kb, demo, ge4_7_window_days=28)
    assert "within 4 days before enrolment" in four.headline
    assert "within 28 days (4 weeks) before enrolment" in weeks.headline
    window = next(r for r in weeks.rows if r["what"] == "window" and r["criterion"] == "GE4.7")
    assert (window["value"], window["unit"], window["assumption"]) == ("28", "days", "ge4_7_window_days")


def test_the_assumption_that_decides_a_drug_decides_the_answer(kb: KnowledgeBase, demo: Dataset) -> None:
    counted = ask("is hydroxychloroquine allowed?", kb, demo, ge4_7_antimalarials="counted")
    assert counted.headline.startswith("Not within the window: GE4.7: hydroxychloroquine")
    assert "within 4 days before enrolment" in counted.headline
    assert any(line.startswith("Assumption ge4_7_antimalarials = counted") for line in counted.details)


def test_a_washout_follows_the_half_life_assumption(kb: KnowledgeBase, demo: Dataset) -> None:
    """Tacrolimus: 5 × 35 h = 7.3 days, rounded up to 8 by default; 5 × 12 h = 2.5, so 3."""
    assert "washout of 5 half-lives (8 days)" in ask("tacrolimus washout", kb, demo).headline
    short = ask("tacrolimus washout", kb, demo, tacrolimus_half_life_hours="12")
    assert "washout of 5 half-lives (3 days) excludes, so apheresis on day 4" in short.headline
    assert ask("how long after hydroxychloroquine can a patient enrol?", kb, demo).headline.startswith("No wait:")


def test_thresholds_are_read_from_the_rule_ast_not_typed(kb: KnowledgeBase) -> None:
    """A rule set whose platelet bound is 75 answers 75: the number comes from the rules."""

    def moved(comparison: object) -> object:
        if isinstance(comparison, Comparison) and isinstance(comparison.right, Const) and comparison.right.value == 50:
            return dataclasses.replace(comparison, right=dataclasses.replace(comparison.right, value=Decimal(75)))
        return comparison

    rules = [
        dataclasses.replace(r, body=tuple(moved(lit) for lit in r.body))
        if r.head.predicate == "platelets_adequate"
        else r
        for r in kb.program.rules
    ]
    changed = dataclasses.replace(kb, program=Program(kb.program.declarations, rules))
    found = answer_protocol("what is the platelet threshold?", changed, resolve_assumptions())
    assert found is not None and found.headline == "GI6.3: platelet count must be ≥ 75 ×10⁹/L"


@pytest.mark.parametrize(
    ("question", "kind"),
    [
        ("is P003 eligible", "check"),
        ("what is the platelet threshold for P003?", "clarify"),  # names a patient: not a protocol question
        ("is she eligible?", "check"),
        ("can my 45 year old lupus patient on rituximab last month enrol?", "described"),
        ("can a patient with systemic lupus and plt 40 enrol?", "described"),  # a result: a patient
        ("explain the steroid rule", "criterion"),
        ("show the rule for SLE-I2", "criterion"),
        ("what if the steroid window were 4 weeks for P017", "whatif"),
    ],
)
def test_questions_about_patients_keep_their_intent(kb: KnowledgeBase, demo: Dataset, question: str, kind: str) -> None:
    assert ask(question, kb, demo).kind == kind


@pytest.mark.parametrize(
    ("question", "start"),
    [
        ("does prednisone 20 mg daily exclude?", "Yes, if taken within 4 days before enrolment:"),
        ("is prednisone 20 mg daily allowed?", "Not within 4 days before enrolment:"),
        ("does prednisone 10 mg daily exclude?", "No: prednisone 10 mg/day"),  # not above 10: the bound is strict
        ("is prednisone 10 mg daily allowed?", "Yes: prednisone 10 mg/day"),
        ("is dexamethasone 2 mg allowed?", "Not within 4 days before enrolment: dexamethasone 2 mg/day is 13.333 mg"),
        ("does dexamethasone 1.5 mg exclude?", "No: dexamethasone 1.5 mg/day is 10 mg/day"),  # 0.75 mg = 5 mg exactly
        ("is CAR-T allowed?", "No: GE14: CAR-T cells taken at any time before enrolment excludes"),
    ],
)
def test_yes_and_no_answer_the_question_as_asked(kb: KnowledgeBase, demo: Dataset, question: str, start: str) -> None:
    """'Allowed?' and 'excludes?' are opposite questions: the first word answers the one asked."""
    assert ask(question, kb, demo).headline.startswith(start)


def test_a_drug_the_vocabulary_does_not_know_is_never_called_allowed(kb: KnowledgeBase, demo: Dataset) -> None:
    """Only the rules can allow a drug: an unknown name gets the choices, not a "yes"."""
    reply = ask("is foobarumab allowed?", kb, demo)
    assert reply.kind == "clarify" and "allowed" not in reply.headline


def test_a_protocol_question_without_a_subject_offers_choices(kb: KnowledgeBase, demo: Dataset) -> None:
    reply = ask("what is the threshold?", kb, demo)
    assert reply.kind == "clarify" and "What is the platelet threshold?" in reply.options
    assert "P001" not in reply.headline


CLI_CASES = [
    pytest.param(wordings[n], ids, texts, id=f"{wordings[n]}")
    for group in (THRESHOLDS[:1], WINDOWS[:1], DRUGS[:1], DRUGS[2:3], COHORTS[:2], RULES[:1])
    for wordings, ids, texts in group
    for n in range(3)
]


@pytest.mark.parametrize(("question", "ids", "texts"), CLI_CASES)
def test_kb_ask_json_answers_protocol_questions(
    capsys: pytest.CaptureFixture[str], question: str, ids: list[str], texts: list[str]
) -> None:
    assert main(["ask", "--json", "--as-of", TODAY.isoformat(), question]) == 0
    shown = json.loads(capsys.readouterr().out)
    for text in texts:
        assert text in shown["answer"]
    rows = shown["rows"]
    named = {r["criterion"] for r in rows if r.get("what") == "criterion"}
    named |= {c for r in rows if r.get("what") == "cohort" for c in r["inclusion"].split()}
    assert set(ids) <= named
    assert all(isinstance(line, str) for line in shown["details"])


def test_the_chat_answers_a_protocol_question_without_the_selected_patient() -> None:
    """Issue 17: with P001 selected, "what is the platelet threshold?" was "understood: help · P001"."""
    from streamlit.testing.v1 import AppTest

    from tests.support import ROOT

    app = AppTest.from_file(str(ROOT / "app.py"), default_timeout=120).run()
    app.chat_input(key="ask").set_value("what is the platelet threshold?").run()
    assert not app.exception
    reply = app.chat_message[-1]
    texts = [c.value for c in reply.caption] + [m.value for m in reply.markdown]
    shown = "\n".join(str(t) for t in texts)
    assert "understood: protocol" in shown
    assert "GI6.3" in shown and "50" in shown and "×10⁹/L" in shown
    assert "P001" not in shown


@pytest.mark.parametrize(
    ("wordings", "ids", "texts"),
    [THRESHOLDS[0], WINDOWS[0], DRUGS[0], COHORTS[0], RULES[0]],
    ids=["threshold", "window", "drug", "cohort", "rule"],
)
def test_the_chat_answers_each_kind_of_protocol_question_in_three_wordings(
    wordings: tuple[str, ...], ids: list[str], texts: list[str]
) -> None:
    """Each kind, three wordings, in the chat with P001 selected: the criterion ids and numbers
    shown (headline, details or the table), and never the selected patient."""
    from streamlit.testing.v1 import AppTest

    from tests.support import ROOT

    app = AppTest.from_file(str(ROOT / "app.py"), default_timeout=120).run()
    for question in wordings:
        app.session_state["chat"] = []  # one turn at a time: each answer read on its own
        app.chat_input(key="ask").set_value(question).run()
        assert not app.exception
        reply = app.chat_message[-1]
        shown = "\n".join(
            [str(c.value) for c in reply.caption] + [str(m.value) for m in reply.markdown]
            + [df.value.to_csv() for df in reply.dataframe]
        )  # fmt: skip
        assert "understood: protocol" in shown, (question, shown[:300])
        assert all(i in shown for i in ids) and all(s in shown for s in texts), (question, shown[:600])
        assert "P001" not in shown


@pytest.mark.parametrize(
    ("question", "intent"),
    [
        ("what data are still needed for her?", "missing"),  # about the selected patient, as before
        ("why is she excluded?", "blockers"),
        ("what hemoglobin is required?", "protocol"),
        ("what is the platelet requirement", "protocol"),
    ],
)
def test_needed_and_why_keep_their_patient_intents(kb: KnowledgeBase, question: str, intent: str) -> None:
    from kb.presentation.questions import Question, parse_question

    parsed = parse_question(question, kb, ["P001", "P002"], "P001")
    assert isinstance(parsed, Question) and parsed.intent == intent
