"""`kb coverage`: every protocol item encoded or marked, every criterion driven both ways,
every id a rule names known; each failure is found when planted."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from kb.catalogue.knowledge import RULES_DIR, KnowledgeBase, load_knowledge
from kb.cli import main
from kb.quality.coverage import PROTOCOL_ITEMS, protocol_coverage
from kb.quality.vignettes import VignetteOutcome


def test_the_shipped_knowledge_base_is_fully_covered(
    kb: KnowledgeBase, vignette_outcomes: dict[str, VignetteOutcome]
) -> None:
    report = protocol_coverage(kb, list(vignette_outcomes.values()))
    assert report.problems == [] and report.notes == []
    assert len(PROTOCOL_ITEMS) == 84
    row = next(r for r in report.criteria if r.criterion.id == "GI6.3")
    assert "P001" in row.vignettes["pass"] and "P002" in row.vignettes["fail"] and "P007" in row.vignettes["unknown"]
    assert [where.rsplit("/", 1)[-1] for where in row.rules] == ["general_inclusion.dl:71", "general_inclusion.dl:72"]
    attestation_only = {r.criterion.id for r in report.criteria if r.attestation_only}
    assert {"GI4", "SLE-E1", "SSC-E8", "AAV-E3"} <= attestation_only and "GI6.3" not in attestation_only


def test_a_criterion_without_a_fail_vignette_is_a_problem(
    kb: KnowledgeBase, vignette_outcomes: dict[str, VignetteOutcome]
) -> None:
    only_p001 = [vignette_outcomes["P001"]]
    problems = protocol_coverage(kb, only_p001).problems
    assert "GI6.3: no vignette drives it to fail" in problems
    assert not any(p.startswith("GI1:") for p in problems)  # placeholders need no vignette


def test_a_lost_item_and_an_unknown_id_are_problems(
    tmp_path: Path, vignette_outcomes: dict[str, VignetteOutcome]
) -> None:
    rules = tmp_path / "rules"
    shutil.copytree(RULES_DIR, rules)
    catalogue = (rules / "criteria.toml").read_text(encoding="utf-8")
    start = catalogue.index('[[criterion]]\nid = "AAV-E4"')
    end = catalogue.index("[[criterion]]", start + 1)
    (rules / "criteria.toml").write_text(catalogue[:start] + catalogue[end:], encoding="utf-8")
    aav = (rules / "aav.dl").read_text(encoding="utf-8").replace("% AAV-E4: prior", "% AAV-E9: prior")
    (rules / "aav.dl").write_text(aav, encoding="utf-8")
    (rules / "aav.dl").write_text(aav.replace("prior_kidney_transplant(P, yes)", "kidney_transplant_gone(P, yes)"))
    (rules / "declarations.dl").write_text(
        (rules / "declarations.dl").read_text() + ".decl kidney_transplant_gone(P: patient, T: truth)\n"
    )
    kb = load_knowledge(rules)
    outcomes = [o for o in vignette_outcomes.values()]
    problems = protocol_coverage(kb, outcomes).problems
    assert "protocol item AAV-E4 has neither a rule nor a placeholder in the catalogue" in problems
    assert any(p.endswith("names AAV-E9, which is not in the criteria catalogue") for p in problems)


def test_kb_coverage_exits_0_and_prints_the_table(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["coverage"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("84 protocol items of section 2; 93 criteria in the catalogue (5 placeholders)")
    assert "coverage: complete" in out and "placeholders: GI1, GE1, IIM-I2, IIM-I3, IIM-I4" in out
