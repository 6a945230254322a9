"""The protocol review of the real encoding: each kind found, every witness proved, findings
that follow edits of the rules, the population impact, and `kb review`."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from kb.catalogue.assumptions import resolve_assumptions
from kb.catalogue.knowledge import RULES_DIR, KnowledgeBase, load_knowledge
from kb.cli import main
from kb.records.patients import Dataset
from kb.review.findings import KINDS, check_witness
from kb.review.reviewer import Review, review
from tests.review_rules import findings_of

# ---- the real encoding -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def real_review(kb: KnowledgeBase, demo: Dataset) -> Review:
    return review(kb, resolve_assumptions(), demo)  # its time is benchmarks/review.py's business


def test_the_real_protocol_has_each_kind_and_every_witness_holds(kb: KnowledgeBase, real_review: Review) -> None:
    result = real_review
    for kind in ("dead rule", "redundancy", "tension", "boundary/window", "vocabulary"):
        assert result.of_kind(kind), kind
    assert result.unconfirmed == {}
    for finding in result.findings:
        assert check_witness(finding.witness, kb, resolve_assumptions()) == []


def test_the_real_findings_say_what_the_protocol_does(real_review: Review) -> None:
    result = real_review
    by_criteria = {(f.kind, f.criteria[:2]) for f in result.findings}
    assert ("dead rule", ("SSC-E6", "GI6.7")) in by_criteria  # clearance < 40 vs ≥ 60
    assert ("redundancy", ("GE4.7", "GE4.5")) in by_criteria  # cyclophosphamide: 4 days inside 14
    assert ("redundancy", ("GE14", "GE4.1")) in by_criteria  # CD19 CAR-T in two blocks
    assert ("boundary/window", ("GE4.6", "GI6")) in by_criteria  # G-CSF: apheresis vs the blood count
    tension = next(f for f in result.of_kind("tension") if f.explanation.startswith("cyclophosphamide"))
    assert "15 or more days" in tension.explanation
    vocabulary = next(f for f in result.findings if f.kind == "vocabulary")
    assert vocabulary.witness.detail["term"] == "clotrexate" and "methotrexate" in vocabulary.explanation


def test_population_impact_counts_blocking_alone_and_gained(real_review: Review) -> None:
    result = real_review
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


def test_findings_are_worked_out_once_per_rule_set_and_assumptions(kb: KnowledgeBase, real_review: Review) -> None:
    # the chat, the review page and the CLI share them: the same objects, not a second run
    first = review(kb, resolve_assumptions())
    assert first.findings == real_review.findings
    assert review(kb, resolve_assumptions()).findings is first.findings
    longer = review(kb, resolve_assumptions(["ge4_7_window_days=28"]))
    assert longer.findings is not real_review.findings
    pairs = {f.criteria[:2] for f in longer.of_kind("redundancy")}
    assert ("GE4.7", "GE4.5") in {f.criteria[:2] for f in real_review.of_kind("redundancy")}
    assert ("GE4.7", "GE4.5") not in pairs  # a 28-day GE4.7 window no longer lies inside GE4.5's 14 days
