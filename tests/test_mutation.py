"""The mutation check: constants shifted by their own resolution, mutants killed by the
vignettes that watch them, survivors named."""

from __future__ import annotations

from decimal import Decimal

import pytest

from kb.catalogue.knowledge import KnowledgeBase
from kb.quality.mutation import Mutant, mutants, run_mutation_check
from kb.quality.vignettes import VignetteOutcome, load_vignettes
from kb.records.patients import Dataset


def test_each_constant_moves_one_step_of_its_own_resolution_both_ways(kb: KnowledgeBase) -> None:
    found = {
        (m.where.rsplit(":", 2)[0], m.rule_text.split(" :-")[0], m.original, m.mutated) for m, _ in mutants(kb.program)
    }
    assert ("kb/rules/general_inclusion.dl", "platelets_adequate(P, yes)", Decimal(50), Decimal(51)) in found
    assert ("kb/rules/general_inclusion.dl", "platelets_adequate(P, yes)", Decimal(50), Decimal(49)) in found
    assert ("kb/rules/general_inclusion.dl", "bilirubin_adequate(P, yes)", Decimal("1.5"), Decimal("1.6")) in found
    assert ("kb/rules/iim.dl", "iim_probable_items(P, yes)", Decimal("5.5"), Decimal("5.4")) in found
    assert ("kb/rules/general_exclusion.dl", "ge4_6_window(mobiliser, 5).", Decimal(5), Decimal(4)) in found


def test_the_mutant_program_differs_in_that_constant_only(kb: KnowledgeBase) -> None:
    for mutant, program in mutants(kb.program):
        changed = [i for i, (a, b) in enumerate(zip(kb.program.rules, program.rules, strict=True)) if a != b]
        assert changed == [mutant.rule_index]
        break


def test_boundary_vignettes_kill_the_platelet_mutants(
    kb: KnowledgeBase, demo: Dataset, vignette_outcomes: dict[str, VignetteOutcome]
) -> None:
    def platelets(m: Mutant) -> bool:
        return m.head == "platelets_adequate"

    report = run_mutation_check(kb, demo, load_vignettes(), list(vignette_outcomes.values()), only=platelets)
    assert report.total == 4 and report.killed == 4 and report.survivors == []


def test_a_mutant_no_vignette_watches_survives_and_is_named(
    kb: KnowledgeBase, demo: Dataset, vignette_outcomes: dict[str, VignetteOutcome]
) -> None:
    only_p001 = [vignette_outcomes["P001"]]  # P001 sits on the platelet bound from above only

    def platelets(m: Mutant) -> bool:
        return m.head == "platelets_adequate"

    report = run_mutation_check(kb, demo, load_vignettes(), only_p001, only=platelets, workers=1)
    assert report.killed == 2 and len(report.survivors) == 2
    assert all("platelets_adequate" in m.describe() for m in report.survivors)
    assert 0 < report.ratio < 1


@pytest.mark.slow
def test_the_vignettes_kill_every_mutant_of_the_shipped_rules(
    kb: KnowledgeBase, demo: Dataset, vignette_outcomes: dict[str, VignetteOutcome]
) -> None:
    """The whole check (a few minutes on two cores): every threshold and window of the rules
    has a vignette on each side of it."""
    report = run_mutation_check(kb, demo, load_vignettes(), list(vignette_outcomes.values()))
    assert report.total > 250
    assert [m.describe() for m in report.survivors] == []
    assert report.ratio == 1.0
