"""The import contract `make lint` checks (pyproject.toml's [tool.importlinter]): kb's modules
follow the flow of a question in layers, no package's modules import each other in a cycle,
the app's pages sit over their shared parts, and the library never imports the app.

A contract that silently stopped checking would pass too, so each test plants one import in a
copy of the code and runs lint-imports on it: the contract it violates must break, and name
the import.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support import ROOT

LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")

LAYERS = "kb in layers along the flow of a question"
ACYCLIC = "no import cycles"
PAGES = "the Streamlit pages over their shared parts"
NO_APP = "the library never imports the app"
CONTRACTS = (LAYERS, ACYCLIC, PAGES, NO_APP)


def _lint(root: Path) -> tuple[int, dict[str, str], str]:
    """lint-imports over the code under `root`: exit code, each contract's KEPT or BROKEN, output."""
    result = subprocess.run(
        [str(LINT_IMPORTS), "--no-cache", "--config", "pyproject.toml"],
        cwd=root,
        env={**os.environ, "PYTHONPATH": str(root), "COLUMNS": "250"},  # this code, not the installed one
        capture_output=True,
        text=True,
        timeout=300,
    )
    verdicts = dict(re.findall(r"^(.+?) (KEPT|BROKEN)$", result.stdout, re.MULTILINE))
    return result.returncode, verdicts, result.stdout


def _only_python(folder: str, names: list[str]) -> set[str]:
    return {n for n in names if n == "__pycache__" or (Path(folder, n).is_file() and not n.endswith(".py"))}


@pytest.fixture
def copy(tmp_path: Path) -> Path:
    """The Python files of kb and ui and the contract, in a folder of their own."""
    for package in ("kb", "ui"):
        shutil.copytree(ROOT / package, tmp_path / package, ignore=_only_python)
    shutil.copy(ROOT / "pyproject.toml", tmp_path)
    return tmp_path


def test_the_code_keeps_every_contract() -> None:
    code, verdicts, out = _lint(ROOT)
    assert code == 0, out
    assert sorted(next(n for n in CONTRACTS if c.startswith(n)) for c in verdicts) == sorted(CONTRACTS)
    assert set(verdicts.values()) == {"KEPT"}


@pytest.mark.parametrize(
    ("module", "planted", "contract", "shown"),
    [
        # the quality checks reading the protocol review: an upward import, though no cycle
        ("kb/quality/coverage.py", "import kb.review.report", LAYERS, "kb.quality.coverage -> kb.review.report"),
        # two modules of one package importing each other
        ("kb/factbase/exposures.py", "import kb.factbase.build", ACYCLIC, "No cycles are allowed in kb.factbase.\n"),
        # a cycle inside a package, which the layers of kb's top level do not see
        ("kb/review/findings.py", "import kb.review.reviewer", ACYCLIC, "No cycles are allowed in kb.review.\n"),
        # a module no layer names: the layers are exhaustive, so a new module must be placed
        ("kb/unplaced.py", "import kb.errors", LAYERS, "kb.unplaced"),
        ("kb/reasoning/evaluation.py", "import streamlit", NO_APP, "kb.reasoning.evaluation -> streamlit"),
        # a shared part of the app reading a page (no cycle: the cohort page does not use it)
        ("ui/evidence.py", "import ui.cohort", PAGES, "ui.evidence -> ui.cohort"),
    ],
)
def test_a_planted_import_breaks_its_contract(copy: Path, module: str, planted: str, contract: str, shown: str) -> None:
    with (copy / module).open("a", encoding="utf-8") as fh:
        fh.write(f"\n{planted}  # planted\n")
    code, verdicts, out = _lint(copy)
    assert code == 1
    broken = [c for c, v in verdicts.items() if v == "BROKEN"]
    assert len(broken) == 1 and broken[0].startswith(contract), out
    assert shown in out
