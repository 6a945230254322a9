"""The public API (`kb/api.py`, re-exported by `kb`): the README's five lines print what
`kb check P002` prints, and each call gives the vignettes' verdicts, criterion ids and values.

The knowledge base is `kb.load_knowledge()` here, not conftest's `kb` fixture: in this file
`kb` is the package, as a notebook user writes it.
"""

from __future__ import annotations

import os
import pkgutil
import re
import subprocess
import sys
from datetime import date
from pathlib import Path

import pytest

import kb
import kb.api
from tests.support import ROOT


def _readme_example() -> str:
    """The ```python block under the README's "Python API" heading, as it stands."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme.split("\n## Python API\n", 1)[1].split("\n## ", 1)[0]
    found = re.search(r"^```python\n(.*?)^```$", section, re.MULTILINE | re.DOTALL)
    assert found is not None, "the README's Python API section has no ```python block"
    return found.group(1)


def _python(*args: str) -> str:
    """stdout of this checkout's Python (the worktree first on the path), which must succeed."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    result = subprocess.run(
        [sys.executable, *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300, check=False
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_the_readme_example_prints_what_kb_check_prints() -> None:
    code = _readme_example()
    statements = [line for line in code.splitlines() if line.strip() and not line.lstrip().startswith("#")]
    assert len(statements) <= 5, code  # the promise of the README: five lines
    printed = _python("-c", code)
    assert printed.startswith("P002: INELIGIBLE\n")
    assert printed == _python("-m", "kb", "check", "P002")


def test_kb_reexports_the_api_and_nothing_is_missing() -> None:
    assert kb.__all__ == ["__version__", *kb.api.__all__]
    for name in kb.api.__all__:
        assert getattr(kb, name) is getattr(kb.api, name), name
    # no name of the API is a module's: importing that module would set it on the package
    modules = {m.name for m in pkgutil.iter_modules(kb.__path__)}
    assert not modules & set(kb.api.__all__)
    with pytest.raises(AttributeError, match="no attribute 'internal_thing'"):
        kb.internal_thing  # noqa: B018


def test_importing_one_module_does_not_load_the_api() -> None:
    """The re-export is lazy: `import kb.status` (which runs kb/__init__.py) loads no engine."""
    loaded = _python("-c", "import sys, kb.status; print('kb.api' in sys.modules, 'kb.language.engine' in sys.modules)")
    assert loaded.split() == ["False", "False"]


def test_load_data_defaults_to_the_demo_patients_and_says_what_it_cannot_read(tmp_path: Path) -> None:
    data = kb.load_data()
    assert data.name == "demo" and len(data.patients) == 78 and data.problems == []
    with pytest.raises(kb.KbError, match="no such file or folder"):
        kb.load_data(tmp_path / "nowhere")
    with pytest.raises(kb.UnknownPatientError, match="did you mean P003"):
        data.patient("P3")


@pytest.mark.parametrize(
    ("patient_id", "verdict", "via", "blocking"),
    [
        ("P001", kb.Verdict.ELIGIBLE, ["sle"], []),
        ("P002", kb.Verdict.INELIGIBLE, [], ["GI6.3", "GI8", "PSS-I1", "X-E1", "X-E2", "X-E3"]),
        ("P011", kb.Verdict.INELIGIBLE, [], ["GI6", "GI6.2", "GE4.3"]),
    ],
)
def test_assess_gives_the_vignettes_verdict(
    patient_id: str, verdict: kb.Verdict, via: list[str], blocking: list[str]
) -> None:
    assessment = kb.assess(kb.load_data().patient(patient_id))
    assert isinstance(assessment, kb.Assessment)
    assert (assessment.verdict, assessment.eligible_via) == (verdict, via)
    assert [r.id for r in assessment.blocking] == blocking
    assert assessment.reference.enrolment == date(2026, 11, 24)  # the files' enrolment date


def test_assess_reads_a_value_with_its_date() -> None:
    gi63 = kb.assess(kb.load_data().patient("P002")).result("GI6.3")
    assert isinstance(gi63, kb.CriterionResult)
    assert gi63.status == kb.Status.FAIL
    assert gi63.message == "Platelet count 49 ×10^9/L on 17 Nov 2026, below 50"


@pytest.mark.parametrize(
    "assumptions",
    [["lab_lookback_days=14"], {"lab_lookback_days": "14"}, kb.assume(["lab_lookback_days=14"])],
    ids=["list", "mapping", "set"],
)
def test_assess_moves_the_date_and_switches_an_assumption(assumptions: kb.api.Assumed) -> None:
    """As `kb --as-of 2026-12-20 --assume lab_lookback_days=14 check P001`: the platelets of
    17 Nov are older than 14 days by then, so GI6.3 waits for a new result."""
    patient = kb.load_data().patient("P001")
    assessment = kb.assess(patient, kb.load_knowledge(), assumptions, date(2026, 12, 20))
    assert assessment.reference.enrolment == date(2026, 12, 20)
    assert assessment.assumptions["lab_lookback_days"] == 14
    gi63 = assessment.result("GI6.3")
    assert (gi63.status, gi63.reason) == (kb.Status.UNKNOWN, "stale")


def test_an_unknown_assumption_is_a_kb_error() -> None:
    with pytest.raises(kb.KbError, match="unknown assumption 'lab_lookback'"):
        kb.assume(["lab_lookback=3"])


def test_why_gives_the_trees_of_the_blockers_or_of_one_criterion() -> None:
    knowledge = kb.load_knowledge()
    p011 = kb.load_data().patient("P011")
    trees = kb.why(kb.assess(p011, knowledge), kb=knowledge)
    assert [cid for cid, _ in trees] == ["GI6", "GI6.2", "GE4.3"]
    assert all(isinstance(tree, kb.Node) for _, tree in trees)
    assert kb.trace_text(trees[0][1]).startswith("GI6 fail")
    # one criterion that passes, asked for in loose spelling: its tree needs explain="all"
    p001 = kb.assess(kb.load_data().patient("P001"), knowledge, explain="all")
    [(cid, tree)] = kb.why(p001, "ge4.2", knowledge)
    assert cid == "GE4.2" and tree.children
    with pytest.raises(kb.KbError, match="no criterion XX9"):
        kb.why(p001, "XX9", knowledge)


def test_why_of_an_eligible_patient_is_empty() -> None:
    assert kb.why(kb.assess(kb.load_data().patient("P001"))) == []


def test_what_if_changes_one_status() -> None:
    answer = kb.what_if(kb.load_data().patient("P002"), ["platelets=80"])
    assert isinstance(answer, kb.WhatIf)
    assert (answer.before.verdict, answer.after.verdict) == (kb.Verdict.INELIGIBLE, kb.Verdict.INELIGIBLE)
    assert [(d.criterion, d.before.status, d.after.status) for d in answer.differences] == [
        ("GI6.3", kb.Status.FAIL, kb.Status.PASS)
    ]
    assert [r.id for r in answer.after.blocking] == ["GI8", "PSS-I1", "X-E1", "X-E2", "X-E3"]


def test_what_if_refuses_a_value_that_is_not_a_number() -> None:
    with pytest.raises(kb.KbError, match="'NaN' is not a number"):
        kb.what_if(kb.load_data().patient("P001"), ["platelets=NaN"])


def test_repair_finds_the_confirmed_change_and_the_date() -> None:
    answer = kb.repair(kb.load_data().patient("P062"), most=1)
    assert isinstance(answer, kb.RepairAnswer)
    [best] = answer.repairs
    assert isinstance(best, kb.Repair)
    assert best.enrolment == date(2026, 12, 19)
    assert [(c.kind, c.item, c.criteria) for c in best.changes][:2] == [
        ("change", "platelets", ("GI6.3",)),
        ("wait", "enrolment", ("GE4.2",)),
    ]
    with pytest.raises(kb.KbError, match="at least 1"):
        kb.repair(kb.load_data().patient("P062"), most=0)


def test_screen_agrees_with_assess_for_every_demo_patient() -> None:
    data = kb.load_data()
    screening = kb.screen(data)
    assert isinstance(screening, kb.Screening) and screening.name == "demo"
    verdicts = {r.patient: r.verdict for r in screening.rows}
    assert verdicts == {pid: kb.assess(p).verdict for pid, p in data.patients.items()}
    counts = {v: sum(1 for r in screening.rows if r.verdict == v) for v in kb.Verdict}
    funnel = screening.funnel()
    assert funnel[0] == ("all patients", 78)
    # the last stage holds everyone not ruled out: the eligible and those who need data
    assert funnel[-1][1] == counts[kb.Verdict.ELIGIBLE] + counts[kb.Verdict.NEEDS_DATA]
    assert screening.as_dict()["funnel"][0] == {"stage": "all patients", "patients": 78}


def test_screen_streams_a_file_set_on_disk_with_the_same_rows() -> None:
    """A folder given by its path is screened in chunks (`screen_folder`); a loaded data set
    whole: the rows are the same."""
    assert kb.screen(kb.DEMO_DATASET).rows == kb.screen(kb.load_data()).rows


def test_patients_lists_sex_age_and_cohorts() -> None:
    first = kb.profiles()[0]
    assert isinstance(first, kb.Profile)
    assert (first.patient, first.sex, first.age, first.cohorts, first.dataset) == (
        "P001",
        "female",
        50,
        ("sle",),
        "demo",
    )


def test_criterion_finds_an_id_in_loose_spelling() -> None:
    found = kb.criterion("ge4.2")
    assert isinstance(found, kb.Criterion) and found.id == "GE4.2"
    info = kb.load_knowledge().criterion_dict(found.id)
    assert info["id"] == "GE4.2" and info["rules"] and all("%" in rule for rule in info["rules"])
    with pytest.raises(kb.KbError, match="no criterion XX9; known: GI1, "):
        kb.criterion("XX9")


def test_ask_answers_as_the_chat() -> None:
    reply = kb.ask("why is P11 not eligible?")
    assert isinstance(reply, kb.Answer) and reply.assessment is not None
    assert reply.assessment.patient_id == "P011" and reply.assessment.verdict == kb.Verdict.INELIGIBLE


def test_review_counts_its_findings_and_impact() -> None:
    result = kb.review_protocol()
    assert isinstance(result, kb.Review)
    counts = result.as_dict()["counts"]
    assert counts["contradiction"] == 0 and counts["dead rule"] == 2
    assert all(isinstance(f, kb.Finding) for f in result.findings)
    assert result.switched is None and result.impact


def test_coverage_of_the_demo_vignettes_and_lint_of_the_shipped_rules() -> None:
    checked = kb.check_coverage()
    assert isinstance(checked, kb.CoverageCheck)
    assert checked.ok and checked.failing == [] and len(checked.outcomes) == 78 and checked.mutation is None
    assert kb.lint() == []
