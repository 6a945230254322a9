"""The set-at-a-time path gives every patient exactly what per-patient pyDatalog gives."""

from __future__ import annotations

import shutil
from dataclasses import replace
from decimal import Decimal
from pathlib import Path

import pytest

from kb.catalogue.assumptions import resolve_assumptions
from kb.catalogue.knowledge import RULES_DIR, KnowledgeBase, load_knowledge
from kb.quality.synthetic import SyntheticCohort
from kb.quality.vignettes import load_vignettes
from kb.reasoning.evaluation import Assessment, assess
from kb.records.patients import Dataset, Patient
from kb.screening.batch import BatchVerdict, evaluate_many
from tests.support import deep


def _same(fast: BatchVerdict, reference: Assessment) -> list[str]:
    """What differs between the two answers (empty when they agree on everything)."""
    out = []
    if fast.verdict != reference.verdict:
        out.append(f"verdict {fast.verdict} vs {reference.verdict}")
    if fast.cohorts != reference.cohorts:
        out.append(f"cohorts {fast.cohorts} vs {reference.cohorts}")
    for result in reference.criteria:
        if fast.statuses[result.id] != result.status:
            out.append(f"{result.id} {fast.statuses[result.id]} vs {result.status}")
    return out


def test_every_vignette_under_its_own_assumptions(kb: KnowledgeBase, demo: Dataset) -> None:
    by_setting: dict[tuple[str, ...], list[str]] = {}
    for vignette in load_vignettes():
        by_setting.setdefault(vignette.assume, []).append(vignette.patient_id)
    assert len(by_setting) > 1  # some vignettes are about an assumption's other reading
    checked = 0
    for assume, ids in by_setting.items():
        assumptions = resolve_assumptions(assume)
        patients = [demo.patients[pid] for pid in ids]
        for patient, fast in zip(patients, evaluate_many(patients, kb, assumptions, workers=1), strict=True):
            assert fast.engine == "sql"
            assert _same(fast, assess(patient, kb, assumptions, explain="status")) == [], patient.id
            checked += 1
    assert checked == len(demo.patients) == 78


def test_every_vignette_under_the_defaults_keeps_the_input_order(kb: KnowledgeBase, demo: Dataset) -> None:
    assumptions = resolve_assumptions()
    patients = list(demo.patients.values())[::-1]
    rows = list(evaluate_many(patients, kb, assumptions, workers=2, chunk=20))  # four chunks, two workers
    assert [r.patient_id for r in rows] == [p.id for p in patients]
    verdicts = [r.verdict for r in rows]
    assert (verdicts.count("eligible"), verdicts.count("needs_data"), verdicts.count("ineligible")) == (17, 12, 49)
    for patient, fast in zip(patients, rows, strict=True):
        assert _same(fast, assess(patient, kb, assumptions, explain="status")) == [], patient.id


@pytest.mark.slow
def test_synthetic_patients_get_the_same_answers_from_both_engines(kb: KnowledgeBase, demo: Dataset) -> None:
    """2,000 in CI's slow profile; 20,000 in the deep run by hand (FUZZ=deep, about 12 minutes)."""
    size = deep(2_000, 20_000)
    assumptions = resolve_assumptions()
    cohort = SyntheticCohort.from_vignettes(demo, kb, assumptions, seed=3)
    patients = cohort.sequence(size)
    rows = list(evaluate_many(patients, kb, assumptions))
    assert len(rows) == size
    verdicts = {r.verdict for r in rows}
    assert verdicts == {"eligible", "needs_data", "ineligible"}
    differ = {}
    for patient, fast in zip(patients, rows, strict=True):
        found = _same(fast, assess(patient, kb, assumptions, explain="status"))
        if found:
            differ[patient.id] = found
    assert differ == {}


def test_a_number_the_sql_columns_cannot_hold_goes_to_pydatalog(kb: KnowledgeBase, demo: Dataset) -> None:
    patient = demo.patients["P023"]
    huge = [replace(o, value=Decimal("12345678901.5")) if o.item == "platelets" else o for o in patient.observations]
    assert huge != patient.observations
    odd = replace(patient, id="HUGE", observations=huge)
    assumptions = resolve_assumptions()
    normal, fallback = evaluate_many([patient, odd], kb, assumptions, workers=1)
    assert (normal.engine, fallback.engine) == ("sql", "pydatalog")
    assert _same(fallback, assess(odd, kb, assumptions, explain="status")) == []


def _with_new_criterion(tmp_path: Path) -> KnowledgeBase:
    folder = tmp_path / "rules"
    shutil.copytree(RULES_DIR, folder)
    (folder / "extra.dl").write_text(
        "% a new general inclusion, written once: platelets of at least 100\n"
        ".decl platelets_100(P: patient, T: truth)\n"
        "platelets_100(P, yes) :- obs_num(P, platelets, C, _), C >= 100.\n"
        "platelets_100(P, no) :- obs_num(P, platelets, C, _), C < 100.\n",
        encoding="utf-8",
    )
    with (folder / "criteria.toml").open("a", encoding="utf-8") as fh:
        fh.write(
            '\n[[criterion]]\nid = "GI99"\nkind = "inclusion"\ncohort = "general"\nprovenance = "REC"\n'
            'predicate = "platelets_100"\nrecord_text = "Platelets ≥100×10^9/L"\ntext = "Platelets ≥ 100."\n'
        )
    return load_knowledge(folder)


def test_a_criterion_added_in_a_rule_file_is_screened(tmp_path: Path, demo: Dataset) -> None:
    kb = _with_new_criterion(tmp_path)
    assumptions = resolve_assumptions()
    patients = list(demo.patients.values())
    rows = {r.patient_id: r for r in evaluate_many(patients, kb, assumptions, workers=1)}
    platelets = {
        p.id: max((o for o in p.observations if o.item == "platelets"), key=lambda o: o.date).value
        for p in patients
        if any(o.item == "platelets" for o in p.observations)
    }
    p001 = rows["P001"]  # eligible by the real rules with platelets of exactly 50
    assert platelets["P001"] == Decimal(50)
    assert p001.statuses["GI99"] == "fail"
    assert p001.verdict == "ineligible" and "GI99" in p001.cohorts[0].blocking
    assert {pid for pid, r in rows.items() if r.statuses["GI99"] == "pass"}  # and some pass it
    for patient in patients:
        assert _same(rows[patient.id], assess(patient, kb, assumptions, explain="status")) == [], patient.id


def test_a_patient_with_no_facts_but_its_id(kb: KnowledgeBase) -> None:
    bare = Patient("BARE")
    (row,) = evaluate_many([bare], kb, resolve_assumptions(), workers=1)
    reference = assess(bare, kb, explain="status")
    assert _same(row, reference) == []
    assert row.verdict == "needs_data"


@pytest.mark.parametrize("workers", [1, 2])
def test_a_generator_is_read_as_it_goes(kb: KnowledgeBase, demo: Dataset, workers: int) -> None:
    seen = []

    def patients():  # type: ignore[no-untyped-def]
        for patient in demo.patients.values():
            seen.append(patient.id)
            yield patient

    done: list[int] = []
    rows = evaluate_many(patients(), kb, resolve_assumptions(), workers=workers, chunk=8, progress=done.append)
    first = next(rows)
    assert first.patient_id == "P001"
    assert len(seen) < 78  # not read whole before the first answer
    assert len([first, *rows]) == 78
    assert done[-1] == 78


def test_rules_sql_cannot_hold_exactly_are_screened_by_pydatalog(tmp_path: Path, demo: Dataset) -> None:
    from tests.review_rules import criterion, rule_set

    rules = """
.decl dose_doubled(P: patient, T: truth)
dose_doubled(P, yes) :- obs_num(P, platelets, C, _), D = C * 2, D >= 100.
dose_doubled(P, no) :- obs_num(P, platelets, C, _), D = C * 2, D < 100.
"""
    kb = rule_set(tmp_path, rules, [criterion("GI1", "inclusion", "dose_doubled")])
    patients = [demo.patients["P001"], demo.patients["P061"]]  # platelets 50 and 42
    rows = list(evaluate_many(patients, kb, resolve_assumptions(), workers=1))
    assert [r.engine for r in rows] == ["pydatalog", "pydatalog"]
    assert [r.statuses["GI1"] for r in rows] == ["pass", "fail"]


def test_the_synthetic_cohort_is_seeded_and_a_third_complete(kb: KnowledgeBase, demo: Dataset) -> None:
    assumptions = resolve_assumptions()
    cohort = SyntheticCohort.from_vignettes(demo, kb, assumptions, seed=5)
    assert cohort.patient(17) == cohort.patient(17) == cohort.sequence(20)[17]
    assert cohort.patient(17) != cohort.patient(18)
    share = sum(cohort.complete(n) for n in range(2000)) / 2000
    assert 0.30 <= share <= 0.40
    complete = [cohort.patient(n) for n in range(200) if cohort.complete(n)]
    rows = list(evaluate_many(complete, kb, assumptions, workers=1))
    assert all(r.cohorts for r in rows)  # every complete one keeps a trial diagnosis
    everyone = list(evaluate_many(cohort.sequence(300), kb, assumptions, workers=1))
    assert {c.cohort for r in everyone for c in r.cohorts} == {"sle", "pss", "ssc", "iim", "aav", "aps"}


def test_synthetic_results_stay_within_each_items_plausible_range(kb: KnowledgeBase, demo: Dataset) -> None:
    """Moved by up to 30 % or set on a rule's bound, a result stays where the loader would
    accept it: no SpO2 of 121 % (items.csv min and max)."""
    cohort = SyntheticCohort.from_vignettes(demo, kb, resolve_assumptions(), seed=0)
    items = kb.vocabulary.items
    outside = [
        (n, o.item, o.value)
        for n in range(400)
        for o in cohort.patient(n).observations
        if isinstance(o.value, Decimal)
        and (
            (items[o.item].minimum is not None and o.value < items[o.item].minimum)
            or (items[o.item].maximum is not None and o.value > items[o.item].maximum)
        )
    ]
    assert outside == []
    assert max(o.value for n in range(400) for o in cohort.patient(n).observations if o.item == "spo2") <= 100
