"""Scores and classification criteria from item facts: ranges over unrecorded items, domain
maxima and caps, negative weights, grade counts; and every score decides both ways."""

from __future__ import annotations

from decimal import Decimal

import pytest

from kb.catalogue.assumptions import load_assumptions, resolve_assumptions
from kb.catalogue.instruments import load_instruments, measure_instrument
from kb.catalogue.knowledge import KnowledgeBase
from kb.factbase.build import build_facts
from kb.quality.vignettes import load_vignettes
from kb.records.patients import Dataset

INSTRUMENTS = load_instruments()


def record(instrument: str, present: list[str], complete: bool = True) -> dict[str, str]:
    """Item values: `present` present, every other item absent (or unrecorded)."""
    values = {f"{instrument}.{p}": "present" for p in present}
    if complete:
        for item in INSTRUMENTS[instrument].items:
            values.setdefault(f"{instrument}.{item.name}", "absent")
    return values


def ranges(instrument: str, values: dict[str, str], major: str = "stone_2001") -> dict[str, tuple[Decimal, Decimal]]:
    return {m.measure: (m.low, m.high) for m in measure_instrument(INSTRUMENTS[instrument], values, major)}


@pytest.mark.parametrize(
    ("instrument", "present", "measure", "expected"),
    [
        ("sledai", ["arthritis", "rash", "fever"], "total", 7),
        ("sledai", ["seizure", "psychosis", "leukopenia"], "total", 17),
        # only the highest item of a domain counts (complement: 3 or 4, not 7)
        ("sle_2019", ["ana", "low_c3_or_c4", "low_c3_and_c4", "joint_involvement"], "total", 10),
        ("sle_2019", ["ana", "joint_involvement"], "clinical", 1),
        ("sle_2019", ["ana"], "entry", 1),
        # BVAS: chest 4 + 3 capped at 6, renal 6 + 4 + 4 = 14 capped at 12
        ("bvas", ["infiltrate", "nodules_cavities", "haematuria", "proteinuria", "hypertension"], "total", 18),
        ("bvas", ["proteinuria", "haematuria"], "renal", 2),
        ("bvas", ["gangrene", "myalgia"], "major", 1),
        ("bvas", ["gangrene", "myalgia"], "minor", 1),
        ("aav_2022", ["small_medium_vessel_vasculitis", "canca_or_pr3", "panca_or_mpo"], "gpa", 4),
        ("aav_2022", ["small_medium_vessel_vasculitis", "canca_or_pr3", "panca_or_mpo"], "mpa", 5),
        ("aav_2022", ["eosinophils_ge_1", "mononeuritis_multiplex"], "egpa", 6),
        ("iim_2017", ["onset_18_to_40", "gottron_sign", "proximal_legs_weaker"], "without_biopsy", Decimal("5.5")),
        ("iim_2017", ["anti_jo1", "endomysial_infiltrate", "perimysial_infiltrate"], "with_biopsy", Decimal("6.7")),
        ("iim_2017", ["anti_jo1", "endomysial_infiltrate"], "without_biopsy", Decimal("3.9")),  # biopsy items: - / w
        ("ssc_2013", ["puffy_fingers", "sclerodactyly", "raynaud"], "total", 7),  # fingers: 4, not 6
        ("ssc_2013", ["skin_proximal_to_mcp"], "total", 9),
        ("aecg_2002", ["ocular_signs", "histopathology", "salivary_involvement"], "objective", 3),
        ("caps", ["three_organs", "within_one_week", "small_vessel_occlusion", "apl_positive"], "total", 4),
        ("sydney_2006", ["vascular_thrombosis", "lupus_anticoagulant"], "clinical", 1),
    ],
)
def test_a_fully_recorded_instrument_has_one_value(
    instrument: str, present: list[str], measure: str, expected: int | Decimal
) -> None:
    assert ranges(instrument, record(instrument, present))[measure] == (Decimal(expected), Decimal(expected))


def test_unrecorded_items_widen_the_range_worst_then_best() -> None:
    # GPA: cANCA recorded; the negative items (pANCA -1, eosinophils -4) unrecorded lower the floor
    low, high = ranges("aav_2022", {"aav_2022.canca_or_pr3": "present"})["gpa"]
    assert (low, high) == (Decimal(0), Decimal(5 + 3 + 2 + 1 + 2 + 2 + 1 + 1))
    low, high = ranges("sledai", {"sledai.arthritis": "present"})["total"]
    assert (low, high) == (Decimal(4), Decimal(105))
    assert ranges("sledai", {}) == {}  # nothing recorded: no measure at all


def test_bilag_counts_grades() -> None:
    values = {f"bilag.{i.name}": "c" for i in INSTRUMENTS["bilag"].items}
    values |= {"bilag.renal": "a", "bilag.haematological": "b"}
    got = ranges("bilag", values)
    assert got["grade_a"] == (1, 1) and got["grade_b"] == (1, 1)
    del values["bilag.ophthalmic"]
    assert ranges("bilag", values)["grade_b"] == (1, 2)


def test_the_major_item_set_is_an_assumption() -> None:
    # the named sets and the assumption's allowed values are one list written in two files
    assert set(INSTRUMENTS["bvas"].sets) == set(load_assumptions()["bvas_major_items"].allowed)
    values = record("bvas", ["creatinine_rise"])
    assert ranges("bvas", values, "stone_2001")["major"] == (1, 1)
    assert ranges("bvas", values, "stone_2001_no_renal")["major"] == (0, 0)


# Every score and classification criterion, as the rules decide it from item facts.
DECIDED_FROM_ITEMS = [
    "sle_2019_items",
    "sledai_active",
    "bilag_active",
    "pss_2016_items",
    "aecg_2002_items",
    "aav_2022_items",
    "bvas_active",
    "bvas_items_adequate",
    "sydney_2006_items",
    "caps_items",
    "ssc_2013_items",
    "skin_progression",
    "lung_progression",
    "iim_probable_items",
    "iim_definite_items",
    "apl_persistent",
]


def test_every_score_and_classification_passes_and_fails_from_item_data_in_the_vignettes(
    kb: KnowledgeBase, demo: Dataset
) -> None:
    seen: dict[str, set[str]] = {name: set() for name in DECIDED_FROM_ITEMS}
    for vignette in load_vignettes():
        base = build_facts(demo.patients[vignette.patient_id], kb, resolve_assumptions(vignette.assume))
        with kb.engine.session(base.facts) as session:
            for name in DECIDED_FROM_ITEMS:
                seen[name] |= {str(row[1]) for row in session.ask(name, [vignette.patient_id, None])}
    assert {name: found for name, found in seen.items() if found != {"yes", "no"}} == {}
