"""The review kept per rule set, assumption set and data set: computed once, shared by the
chat and the review page, recomputed for another reading or other patients."""

from __future__ import annotations

import gc
import threading
import time
from pathlib import Path

import pytest

from kb.catalogue.assumptions import resolve_assumptions
from kb.catalogue.knowledge import KnowledgeBase
from kb.presentation.answers import answer
from kb.records.patients import Dataset
from kb.review import reviewer
from kb.review.cache import Memo
from kb.review.findings import synthetic_patient
from kb.review.reviewer import clear_caches, review
from tests.review_rules import criterion, drug_window, rule_set


@pytest.fixture
def planted(tmp_path: Path) -> tuple[KnowledgeBase, Dataset]:
    """Cyclophosphamide within 10 days (E1) and within 20 (E2): one redundancy; two patients."""
    rules = drug_window("cyc_short", "cyclophosphamide", 10) + drug_window("cyc_long", "cyclophosphamide", 20)
    catalogue = [criterion("E1", "exclusion", "cyc_short"), criterion("E2", "exclusion", "cyc_long")]
    kb = rule_set(tmp_path, rules, catalogue)
    patients = [
        synthetic_patient("P1", kb, events=[("medication", "cyclophosphamide", 15, 15)]),
        synthetic_patient("P2", kb),
    ]
    return kb, Dataset("planted", "", {p.id: p for p in patients}, [])


def test_a_second_review_is_the_same_object_without_recomputation(planted: tuple[KnowledgeBase, Dataset]) -> None:
    kb, patients = planted
    first = review(kb, resolve_assumptions(), patients)
    assert [f.criteria for f in first.of_kind("redundancy")] == [("E1", "E2")]
    assert [(i.criterion, i.blocks, i.blocks_alone) for i in first.impact] == [("E2", 1, 1)]  # P1: day 15
    computed = (reviewer._FINDINGS.computed, reviewer._IMPACTS.computed, reviewer._REVIEWS.computed)
    again = review(kb, resolve_assumptions(), patients)  # a new but equal assumption set
    assert again is first
    assert (reviewer._FINDINGS.computed, reviewer._IMPACTS.computed, reviewer._REVIEWS.computed) == computed


def test_another_reading_or_other_patients_recompute(planted: tuple[KnowledgeBase, Dataset]) -> None:
    kb, patients = planted
    first = review(kb, resolve_assumptions(), patients)
    findings = reviewer._FINDINGS.computed
    apheresis_later = review(kb, resolve_assumptions(["apheresis_offset_days=30"]), patients)
    assert apheresis_later is not first and reviewer._FINDINGS.computed == findings + 1
    others = Dataset("other", "", {"P2": patients.patients["P2"]}, [])
    fewer = review(kb, resolve_assumptions(), others)
    assert fewer.findings is first.findings  # the findings depend on the rules and reading only
    assert fewer.impact == () and first.impact != ()  # P2 took nothing: nobody blocked
    clear_caches()
    assert review(kb, resolve_assumptions(), patients) is not first


def test_the_chat_and_the_page_share_one_review(planted: tuple[KnowledgeBase, Dataset]) -> None:
    kb, patients = planted
    asked = answer("which rules contradict each other?", kb, patients)
    assert asked.kind == "review" and asked.review is not None
    assert review(kb, resolve_assumptions(), patients) is asked.review  # what the page shows
    again = answer("which rules contradict each other?", kb, patients)
    assert again.review is asked.review  # from the cache, not computed again (benchmarks/review.py times it)


def test_threads_asking_at_once_work_it_out_once() -> None:
    memo: Memo[list[int]] = Memo(keep=2)
    calls = []

    def slow() -> list[int]:
        calls.append(1)
        time.sleep(0.2)
        return [len(calls)]

    got: list[list[int]] = []
    threads = [threading.Thread(target=lambda: got.append(memo.get("k", slow))) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(calls) == 1 and all(g is got[0] for g in got)


def test_an_entry_whose_data_set_is_gone_no_longer_matches() -> None:
    """Keys hold ids; a data set is held weakly, so another object under a reused id is not
    given the dropped one's answer (and the cache does not keep an upload alive)."""
    memo: Memo[str] = Memo(keep=4)

    class Data:
        pass

    old = Data()
    assert memo.get("id", lambda: "old", weak=(old,)) == "old"
    assert memo.get("id", lambda: "again", weak=(old,)) == "old"
    del old
    gc.collect()
    assert memo.get("id", lambda: "new", weak=(Data(),)) == "new"
    assert memo.get("first", lambda: "1") == "1" and memo.computed == 3
    for n in range(5):  # only the last `keep` are kept
        memo.get(n, lambda: "x")
    assert memo.get("first", lambda: "recomputed") == "recomputed"
