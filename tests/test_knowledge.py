"""The knowledge base loads only a clean rule set; `lint` reports every problem."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from kb.catalogue.knowledge import RULES_DIR, lint, load_knowledge
from kb.errors import KbError


def test_the_shipped_rules_are_clean(kb: object) -> None:
    assert lint() == []


def test_a_malformed_rule_file_never_reaches_the_engine(tmp_path: Path) -> None:
    rules = tmp_path / "rules"
    shutil.copytree(RULES_DIR, rules)
    bad = rules / "general_exclusion.dl"
    bad.write_text(bad.read_text().replace("agent_class(Agent, live_vaccine)", "agent_clas(Agent, live_vaccine)"))
    with pytest.raises(KbError) as caught:
        load_knowledge(rules)
    (problem,) = caught.value.problems
    assert problem.path.endswith("general_exclusion.dl") and problem.row is not None and problem.column is not None
    assert "undefined predicate 'agent_clas/2' (did you mean 'agent_class'?)" in str(problem)


def test_a_single_new_file_is_linted_with_the_shipped_declarations(tmp_path: Path) -> None:
    new = tmp_path / "new_block.dl"
    new.write_text(
        "% a new criterion\n.decl sle_i9(P: patient, T: truth)\nsle_i9(P, yes) :- obs_num(P, anc, V, _), V > W.\n"
    )
    (problem,) = lint(new)
    assert str(problem).startswith(f"{new}:3:46: unsafe variable W")
