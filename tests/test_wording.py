"""Status messages in plain clinical language: every message of every vignette, checked for leaks.

A clinician reads `GE4.3 fail: <message>`: the message must not repeat the status, name the
rules' internal predicates (`ge4_4_exposure`, or humanised: "ge4 4 exposure"), lowercase a
criterion id ("ge4 4"), or open with the rules' algebra ("From = Enrolment − 28 = …",
"End ≥ From"). The formal proof stays on the result (`proof`) for the evidence expander.
The vignettes are assessed once per session, each under its own assumptions (the
`vignette_outcomes` fixture, as the Training page does).
"""

from __future__ import annotations

import re

import pytest

from kb.catalogue.knowledge import KnowledgeBase
from kb.presentation.render import criterion_text
from kb.quality.vignettes import VignetteOutcome
from kb.reasoning.evaluation import assess
from kb.records.patients import Dataset

STATUS_WORDS = re.compile(r"^\s*(pass|fail|unknown|not[ _]applicable|manual)\b\s*:", re.IGNORECASE)
#: predicates named as a clinician would say it: their words are fine, their snake_case is not
CLINICAL_PHRASES = frozenset(
    {"months_before", "malignancy_within_5_years", "haematology_sample", "kidney_transplant", "liver_cirrhosis",
     "positive_pregnancy_test", "inclusion_body_myositis"}
)  # fmt: skip
DOUBLED = re.compile(r"\b(pass|fail|unknown|not.applicable|manual)\b(?: \(\w+\))?: \1\b", re.IGNORECASE)
#: rule algebra: a variable assigned, or two capitalised rule variables compared ("End ≥ From")
FORMULA = re.compile(r"^\w+ = |\b[A-Z][a-z]* [≥≤<>=≠] [A-Z][a-z]*(?: [−+] [A-Z][a-z]*)?\b")


def _leaks(message: str, names: re.Pattern[str], ids: list[str]) -> list[str]:
    found = []
    if STATUS_WORDS.search(message):
        found.append("status repeated")
    if FORMULA.search(message):
        found.append("formula")
    found += [f"predicate {m.group(0)!r}" for m in names.finditer(message)]
    found += [f"criterion id {i!r}" for i in ids if i in message]
    return found


@pytest.fixture(scope="module")
def internal_names(kb: KnowledgeBase) -> tuple[re.Pattern[str], list[str]]:
    """The rules' multi-word predicate names (snake_case and with spaces), and the criterion
    ids lowercased as a humanised predicate shows them ("ge4 4", "ge4_4")."""
    names = []
    for name in kb.program.declarations:
        if "_" not in name:
            continue  # one-word predicates (hiv, syphilis, sex) are ordinary words too
        for form in (name,) if name in CLINICAL_PHRASES else (name, name.replace("_", " ")):
            names.append(re.escape(form))
    ids = []
    for crit in kb.criteria:
        low = crit.id.lower()
        if "." in low:
            ids += [low.replace(".", " "), low.replace(".", "_")]
    # one pattern for all (longest first, so "ge4_4_exposure" is named, not a shorter name inside it)
    return re.compile(rf"(?<![\w-])(?:{'|'.join(sorted(names, key=len, reverse=True))})(?![\w-])"), ids


def test_every_status_message_of_every_vignette_is_plain(
    vignette_outcomes: dict[str, VignetteOutcome], internal_names: tuple[re.Pattern[str], list[str]]
) -> None:
    names, ids = internal_names
    bad = []
    for pid, outcome in vignette_outcomes.items():
        for result in outcome.assessment.criteria:
            leaks = _leaks(result.message, names, ids)
            if not result.message.strip():
                leaks.append("empty")
            if DOUBLED.search(criterion_text(result)):
                leaks.append("doubled status in the CLI line")
            if leaks:
                bad.append(f"{pid} {result.id} {result.status}: {leaks}: {result.message[:160]}")
    assert not bad, f"{len(bad)} messages leak:\n" + "\n".join(bad[:400])


def test_the_formal_proof_is_kept_beside_the_sentence(kb: KnowledgeBase, demo: Dataset) -> None:
    result = assess(demo.patient("P002"), kb, explain="none").result("GI6.3")
    assert result.status == "fail"
    assert result.message == "Platelet count 49 ×10^9/L on 17 Nov 2026, below 50"
    assert result.proof == "platelets 49 ×10^9/L on 2026-11-17 < 50 required"


def test_a_drug_in_its_window_reads_as_a_clinician_writes_it(vignette_outcomes: dict[str, VignetteOutcome]) -> None:
    """The canonical drug name first, the recorded one after; the window with its dates, not its algebra."""
    result = vignette_outcomes["P011"].assessment.result("GE4.3")
    assert result.status == "fail"
    assert result.message == (
        "Rituximab (recorded as 利妥昔单抗) on 3 Nov 2026, within the window from 27 Oct 2026 "
        "(28 days before enrolment) to enrolment (24 Nov 2026)"
    )
    assert "From = Enrolment − 28 = 2026-10-27" in result.proof


def test_unknown_and_not_applicable_say_it_once(vignette_outcomes: dict[str, VignetteOutcome]) -> None:
    p007 = vignette_outcomes["P007"].assessment
    ge5 = p007.result("GE5")
    assert ge5.status == "unknown"
    assert ge5.message == (
        "Other clinically significant heart disease within 12 months before enrolment (GE5): not attested; "
        "cardiac event history not declared reviewed"
    )
    assert criterion_text(ge5).startswith("? GE5      unknown (not_attested): Other clinically")
