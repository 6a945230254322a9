"""Statuses, verdicts, truths and cohorts as types: each member is the string the answers
always carried (JSON, text, CSV), every status has one mark of its own, and the cohorts are
the catalogue's."""

from __future__ import annotations

import csv
import io
import json
import tomllib
from enum import Enum

import pytest

from kb.catalogue.criteria import CATALOGUE_FILE, X_BLOCK
from kb.language.checks import TRUTH_VALUES
from kb.presentation.render import criterion_text
from kb.reasoning.evaluation import Assessment
from kb.status import COHORTS, MARKS, Cohort, Status, Truth, Verdict

#: every member with the string the JSON contracts held before the types existed
FORMER = [
    (Status.PASS, "pass"),
    (Status.FAIL, "fail"),
    (Status.UNKNOWN, "unknown"),
    (Status.NOT_APPLICABLE, "not_applicable"),
    (Status.MANUAL, "manual"),
    (Verdict.ELIGIBLE, "eligible"),
    (Verdict.NEEDS_DATA, "needs_data"),
    (Verdict.INELIGIBLE, "ineligible"),
    (Verdict.NOT_EVALUATED, "not_evaluated"),
    (Truth.YES, "yes"),
    (Truth.NO, "no"),
    (Truth.NA, "na"),
    (Cohort.SLE, "sle"),
    (Cohort.PSS, "pss"),
    (Cohort.SSC, "ssc"),
    (Cohort.IIM, "iim"),
    (Cohort.AAV, "aav"),
    (Cohort.APS, "aps"),
]


@pytest.mark.parametrize(("member", "former"), FORMER)
def test_a_member_is_written_as_its_former_string_everywhere(member: Enum, former: str) -> None:
    """A script reading `kb check --json`, the text answers or an exported CSV sees the same
    strings as before, and a dict keyed by the string finds the member (and back)."""
    assert json.dumps(member) == json.dumps(former)
    assert json.dumps({member: [member]}, indent=1) == json.dumps({former: [former]}, indent=1)
    assert f"{member}" == str(member) == former
    assert f"{member:<16}|" == f"{former:<16}|"
    assert member == former and hash(member) == hash(former)
    assert {former: 1}[member] == 1 and {member: 1}[former] == 1
    out = io.StringIO()
    csv.writer(out).writerow([member])
    assert out.getvalue().strip() == former


@pytest.mark.parametrize("kind", [Status, Verdict, Truth, Cohort])
def test_the_members_are_all_listed_above(kind: type[Enum]) -> None:
    """A new member must say here which string it writes."""
    assert set(kind) == {m for m, _ in FORMER if isinstance(m, kind)}


def test_every_status_has_one_mark_of_its_own() -> None:
    assert set(MARKS) == set(Status)
    assert len(set(MARKS.values())) == len(MARKS)
    assert all(len(mark) == 1 and not mark.isspace() for mark in MARKS.values())


def test_the_cli_line_of_a_criterion_leads_with_its_mark(demo_assessments: dict[str, Assessment]) -> None:
    results = [r for a in demo_assessments.values() for r in a.criteria]
    seen = {r.status for r in results}
    assert seen == set(Status)  # the demo patients show every status
    for result in results:
        assert criterion_text(result).startswith(f"{MARKS[result.status]} {result.id} ")


def test_a_patients_verdict_is_the_best_of_their_cohorts_verdicts() -> None:
    ranked = sorted([Verdict.INELIGIBLE, Verdict.ELIGIBLE, Verdict.NEEDS_DATA], key=lambda v: v.rank)
    assert ranked == [Verdict.INELIGIBLE, Verdict.NEEDS_DATA, Verdict.ELIGIBLE]


def test_the_truths_are_the_rule_languages_truth_constants() -> None:
    assert set(Truth) == TRUTH_VALUES


def test_the_cohorts_are_those_of_the_criteria_catalogue_in_its_order() -> None:
    entries = tomllib.loads(CATALOGUE_FILE.read_text(encoding="utf-8"))["criterion"]
    named = [e["cohort"] for e in entries if e["cohort"] not in ("general", X_BLOCK)]
    assert list(dict.fromkeys(named)) == list(COHORTS) == list(Cohort)
    # each disease block's ids carry its cohort's name (SLE-I1, PSS-E2, ...)
    for entry in entries:
        if entry["cohort"] in COHORTS and entry["kind"] != "definition":
            assert entry["id"].startswith(entry["cohort"].upper() + "-"), entry["id"]


def test_each_cohort_has_a_short_and_a_full_name_of_its_own() -> None:
    assert len({c.label for c in Cohort}) == len({c.disease for c in Cohort}) == len(Cohort)
    assert Cohort("pss").label == "primary Sjögren's"
    assert Cohort.AAV.disease == "ANCA-associated vasculitis"
