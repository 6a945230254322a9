"""The JSON contracts of the CLI, pinned: `kb check --json` for every vignette, `kb review
--json`, and `kb why`/`whatif`/`repair`/`screen --json` for a few patients, each compared with
a golden file written before the layout refactor of issue 19 (stamps aside: they hash the
rule files' text, which a refactor may touch without changing a verdict; an unsat core
as whether it is unsatisfiable, not its text). A refactor that
changes any answer a user or a script relies on fails here.

`KB_WRITE_GOLDEN=1 python -m pytest tests/test_contracts.py` rewrites the files; do that
only for an intended change of a contract, and say so in the commit.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
from pathlib import Path
from typing import Any

import pytest

from kb.cli import main
from kb.records.patients import load_dataset
from kb.review.findings import core_is_unsat

GOLDEN = Path(__file__).parent / "golden"
WRITE = os.environ.get("KB_WRITE_GOLDEN") == "1"


def _json_of(argv: list[str]) -> Any:
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        code = main(argv)
    assert code in (0, 1), f"kb {' '.join(argv)} exited {code}"
    return _unstamped(json.loads(out.getvalue()))


def _unstamped(value: Any) -> Any:
    """The JSON without its stamps, and with each unsat core (SMT-LIB text whose order of
    declarations z3 chooses by its own term ids, so it varies with what the process solved
    before) replaced by whether it re-solves unsatisfiable."""
    if isinstance(value, dict):
        return {
            k: (core_is_unsat(tuple(v)) if k == "core" else _unstamped(v)) for k, v in value.items() if k != "stamp"
        }
    if isinstance(value, list):
        return [_unstamped(v) for v in value]
    return value


def _compare(name: str, actual: Any) -> None:
    path = GOLDEN / f"{name}.json"
    if WRITE:
        path.write_text(json.dumps(actual, indent=1, sort_keys=True, ensure_ascii=False) + "\n", encoding="utf-8")
    expected = json.loads(path.read_text(encoding="utf-8"))
    assert actual == expected, f"the JSON of {name} changed: compare with {path}"


def test_kb_check_json_of_every_vignette_is_unchanged() -> None:
    ids = sorted(load_dataset().patients)
    assert len(ids) >= 64
    _compare("check", {pid: _json_of(["check", pid, "--json"]) for pid in ids})


@pytest.mark.parametrize(
    ("name", "argv"),
    [
        ("review", ["review", "--json"]),
        ("why_P002", ["why", "P002", "--json"]),
        ("whatif_P002", ["whatif", "P002", "platelets=80", "--json"]),
        ("repair_P065", ["repair", "P065", "--json"]),
        ("screen", ["screen", "--json"]),
    ],
)
def test_cli_json_contract_is_unchanged(name: str, argv: list[str]) -> None:
    _compare(name, _json_of(argv))
