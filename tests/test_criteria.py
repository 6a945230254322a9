"""The criteria catalogue: ids, texts and deciding predicates, checked against the rules."""

from __future__ import annotations

from pathlib import Path

from kb.catalogue.criteria import check_catalogue, load_catalogue
from kb.catalogue.knowledge import KnowledgeBase


def numbered(prefix: str, count: int) -> list[str]:
    return [f"{prefix}{n}" for n in range(1, count + 1)]


# The 84 numbered items and sub-items of section 2 of the protocol file, parents included.
NUMBERED = (
    numbered("GI", 9)
    + numbered("GI6.", 7)
    + numbered("GE", 14)
    + numbered("GE4.", 7)
    + numbered("SLE-I", 4)
    + numbered("PSS-I", 2)
    + numbered("SSC-I", 2)
    + numbered("IIM-I", 5)
    + numbered("AAV-I", 5)
    + numbered("APS-I", 4)
    + numbered("SLE-E", 2)
    + numbered("X-E", 4)
    + numbered("SSC-E", 9)
    + numbered("IIM-E", 3)
    + numbered("AAV-E", 4)
    + numbered("APS-E", 3)
)
DEFINITIONS = ["DEF-RR", "DEF-APS-RR", "DEF-CAPS"]
# Criteria the record implies without numbering them (each documented in criteria.toml).
IMPLIED = ["CONSENT", "COHORT", "SSC-DC", "SSC-CLASS", "SSC-RR", "IIM-RR"]
LOST = ["GI1", "GE1", "IIM-I2", "IIM-I3", "IIM-I4"]


def test_the_catalogue_holds_the_84_numbered_items_and_the_definitions(kb: KnowledgeBase) -> None:
    ids = [c.id for c in kb.criteria]
    assert len(NUMBERED) == 84
    assert sorted(ids) == sorted(NUMBERED + DEFINITIONS + IMPLIED)
    for crit in kb.criteria:
        assert crit.text
        if crit.provenance == "REC":
            assert crit.record_text, crit.id
    assert [c.id for c in kb.criteria if c.placeholder] == ["GI1", "GE1", "IIM-I2", "IIM-I3", "IIM-I4"]
    assert [c.id for c in kb.criteria if c.kind == "definition"] == DEFINITIONS
    assert kb.criterion("IIM-I1").manual_unless == "iim_entry"  # lost, but an assumption may read it
    assert {c.id for c in kb.criteria if c.provenance == "MISSING"} == set(LOST) | {"IIM-I1"}
    assert kb.criterion("ge 4.2") is kb.criterion("GE4.2")


def test_alternatives_and_headings_are_marked(kb: KnowledgeBase) -> None:
    groups: dict[str, list[str]] = {}
    for crit in kb.criteria:
        if crit.group:
            groups.setdefault(crit.group, []).append(crit.id)
    assert groups == {
        "ssc-course": ["SSC-I1", "SSC-I2", "SSC-RR"],
        "iim-course": ["IIM-I5", "IIM-RR"],
        "aps-course": ["APS-I3", "APS-I4"],
    }
    assert [c.id for c in kb.criteria if c.summary] == ["GE4"]
    assert {c.id for c in kb.criteria if c.cohort == "x"} == {"X-E1", "X-E2", "X-E3", "X-E4"}


def test_duplicate_ids_and_bad_fields_are_located(tmp_path: Path) -> None:
    path = tmp_path / "criteria.toml"
    entry = '[[criterion]]\nid = "GI2"\nkind = "{kind}"\ncohort = "general"\nprovenance = "REC"\ntext = "t"\n\n'
    path.write_text(entry.format(kind="inclusion") + entry.format(kind="inclusion") + entry.format(kind="inklusion"))
    criteria, problems = load_catalogue(path)
    assert [c.id for c in criteria] == ["GI2"]
    assert [str(p) for p in problems] == [
        "criteria.toml:8 column id: duplicate criterion id GI2 (first defined at line 1)",
        "criteria.toml:15 column id: duplicate criterion id GI2 (first defined at line 1)",
    ]


def test_a_deciding_predicate_must_exist_with_the_truth_signature(kb: KnowledgeBase, tmp_path: Path) -> None:
    path = tmp_path / "criteria.toml"
    path.write_text(
        '[[criterion]]\nid = "GI3"\nkind = "inclusion"\ncohort = "general"\nprovenance = "REC"\n'
        'predicate = "ecog_adequat"\ntext = "t"\n\n[[criterion]]\nid = "GI4"\nkind = "inclusion"\n'
        'cohort = "general"\nprovenance = "REC"\npredicate = "in_cohort"\ntext = "t"\n'
    )
    criteria, _ = load_catalogue(path)
    problems = [str(p) for p in check_catalogue(criteria, kb.program)]
    assert problems == [
        "criteria.toml:1 column predicate: GI3: deciding predicate 'ecog_adequat' has no rules",
        "criteria.toml:9 column predicate: GI4: 'in_cohort' must be declared (P: patient, T: truth)",
    ]


def test_a_group_across_cohorts_and_a_bad_manual_unless_are_located(kb: KnowledgeBase, tmp_path: Path) -> None:
    path = tmp_path / "criteria.toml"
    entry = (
        '[[criterion]]\nid = "{id}"\nkind = "inclusion"\ncohort = "{cohort}"\nprovenance = "REC"\n'
        'predicate = "relapsed_refractory"\ngroup = "course"\nrecord_text = "r"\ntext = "t"\n{extra}\n'
    )
    path.write_text(
        entry.format(id="SLE-I4", cohort="sle", extra="")
        + entry.format(id="AAV-I5", cohort="aav", extra='manual_unless = "lab_lookback_days"\n')
    )
    criteria, problems = load_catalogue(path)
    assert problems == []
    allowed = {a.id: a.allowed for a in kb.assumptions.values()}
    assert [str(p) for p in check_catalogue(criteria, kb.program, path.name, allowed)] == [
        "criteria.toml:11 column group: AAV-I5: group course spans two cohorts",
        "criteria.toml:11 column manual_unless: AAV-I5: manual_unless must name an assumption with the value none",
    ]
