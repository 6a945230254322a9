"""Reference vocabularies: cohorts from codes (never names), agents by any of their names."""

from __future__ import annotations

from decimal import Decimal

import pytest

from kb.catalogue.vocabulary import load_vocabulary
from kb.factbase.build import WASHOUT_CLASSES

VOCAB = load_vocabulary()


@pytest.mark.parametrize(
    ("system", "code", "cohort"),
    [
        ("icd10", "M32.1", "sle"),
        ("icd10", "M32", "sle"),
        ("icd10", "M32.0", None),  # drug-induced lupus
        ("icd10", "M35.0", "pss"),
        ("icd10", "M34.0", "ssc"),
        ("icd10", "M34.1", None),
        ("icd10", "M34.2", None),
        ("icd10", "M33.1", "iim"),
        ("icd10", "M31.3", "aav"),
        ("icd10", "M31.7", "aav"),
        ("icd10", "M30.1", "aav"),
        ("icd10", "D68.6", "aps"),
        ("icd10cm", "D68.61", "aps"),
        ("icd10cm", "D68.62", None),
        ("icd10", "I25.1", None),
        ("snomed", "55464009", "sle"),
        ("icd10", "m321", "sle"),
    ],
)
def test_cohort_of_a_diagnosis_code(system: str, code: str, cohort: str | None) -> None:
    assert VOCAB.cohort_of(system, code) == cohort


@pytest.mark.parametrize(
    ("name", "agent"),
    [
        ("SHINGRIX", "zoster_vaccine_recombinant"),
        ("非格司亭", "filgrastim"),
        ("non-Gestin", "filgrastim"),
        ("tatacept", "telitacicept"),
        ("泰它西普", "telitacicept"),
        ("Plexafor", "plerixafor"),
        ("relma-cel", "relmacabtagene_autoleucel"),
        ("  packed   red cells ", "rbc_transfusion"),
        ("Foovax", None),
    ],
)
def test_agents_are_matched_case_insensitively_on_any_name(name: str, agent: str | None) -> None:
    found = VOCAB.agent(name)
    assert (found.name if found else None) == agent


def test_classes_the_slice_relies_on() -> None:
    assert "live_vaccine" in VOCAB.agents["mmr_vaccine"].classes
    assert "live_vaccine" not in VOCAB.agents["zoster_vaccine_recombinant"].classes
    assert {"cd19_directed", "car_t"} <= set(VOCAB.agents["tisagenlecleucel"].classes)
    assert "anti_cd20" in VOCAB.agents["rituximab"].classes
    assert "long_acting_gcsf" in VOCAB.agents["pegfilgrastim"].classes


def test_every_history_category_has_a_review_attestation() -> None:
    for category in VOCAB.categories:
        assert f"reviewed:{category}" in VOCAB.attestation_items
    assert "consent" in VOCAB.attestation_items
    assert VOCAB.items["platelets"].unit == "10*9/L" and VOCAB.items["hbsag"].allowed_values == ("positive", "negative")


@pytest.mark.parametrize(
    ("name", "condition"),
    [
        ("MI", "myocardial_infarction"),
        ("心梗", "myocardial_infarction"),
        ("Kosterman syndrome", "kostmann_syndrome"),
        ("Swachmann-Diamond syndrome", "shwachman_diamond_syndrome"),
        ("DCIS", "breast_carcinoma_in_situ"),
        ("Hypertension", "hypertension"),  # recognised: no criterion reads it
        ("arterial thrombosis", "arterial_thrombosis"),
        ("Living-donor kidney transplantation", "kidney_transplant"),
        ("Zorblax syndrome", None),
    ],
)
def test_conditions_by_any_name(name: str, condition: str | None) -> None:
    found = VOCAB.condition(name)
    assert (found.name if found else None) == condition


def test_agents_that_criteria_need_attributes_of_have_them() -> None:
    for agent in VOCAB.agents.values():
        if WASHOUT_CLASSES & set(agent.classes):  # GE4.4 counts its window in half-lives
            assert agent.half_life_hours is not None, agent.name
        if "glucocorticoid" in agent.classes:  # GE4.7 counts prednisone-equivalents
            assert agent.prednisone_factor is not None, agent.name
    assert VOCAB.agents["dexamethasone"].prednisone_factor == Decimal(5) / Decimal("0.75")  # as the table says
    assert VOCAB.agent("non-Gestin").name == "filgrastim"  # type: ignore[union-attr]
    assert VOCAB.agent("苯丁酸氮芥").name == "chlorambucil"  # type: ignore[union-attr]
