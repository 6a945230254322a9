"""The criteria catalogue: ids, texts and deciding predicates, checked against the rules."""

from __future__ import annotations

from pathlib import Path

from kb.criteria import check_catalogue, load_catalogue
from kb.knowledge import KnowledgeBase

GENERAL = [
    "GI1",
    "CONSENT",
    "COHORT",
    "GI2",
    "GI3",
    "GI4",
    "GI5",
    "GI6",
    "GI6.1",
    "GI6.2",
    "GI6.3",
    "GI6.4",
    "GI6.5",
    "GI6.6",
    "GI6.7",
    "GI7",
    "GI8",
    "GI9",
    "GE1",
    "GE2",
    "GE3",
    "GE4.1",
    "GE4.2",
    "GE4.3",
    "GE4.4",
    "GE4.5",
    "GE4.6",
    "GE4.7",
    "GE5",
    "GE6",
    "GE7",
    "GE8",
    "GE9",
    "GE10",
    "GE11",
    "GE12",
    "GE13",
    "GE14",
]


def test_every_general_criterion_is_in_the_catalogue_with_its_texts(kb: KnowledgeBase) -> None:
    assert [c.id for c in kb.criteria] == GENERAL
    for crit in kb.criteria:
        assert crit.text
        if crit.provenance == "REC":
            assert crit.record_text, crit.id
    placeholders = [c.id for c in kb.criteria if c.placeholder]
    assert placeholders == ["GI1", "GE1"]
    assert kb.criterion("ge 4.2") is kb.criterion("GE4.2")


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
