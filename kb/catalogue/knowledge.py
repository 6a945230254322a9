"""The knowledge base: rule files, criteria catalogue, vocabulary and assumptions, checked.

Built once per process (it is immutable); every evaluation opens its own engine session
over it. Nothing malformed reaches the engine: `load_knowledge` raises with every problem
located, and `lint` reports them for `kb lint`.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from kb.catalogue.assumptions import Assumption, load_assumptions
from kb.catalogue.criteria import CATALOGUE_FILE, Criterion, check_catalogue, load_catalogue
from kb.catalogue.vocabulary import Vocabulary, load_vocabulary
from kb.errors import KbError, Problem
from kb.language.checks import check_program
from kb.language.engine import Engine
from kb.language.parser import RuleSyntaxError, parse_file
from kb.language.syntax import Program
from kb.paths import PACKAGE_DIR

__all__ = ["RULES_DIR", "KnowledgeBase", "lint", "load_knowledge"]

RULES_DIR = PACKAGE_DIR / "rules"
ANCHORS = frozenset({"screening", "enrolment", "apheresis"})


@dataclass(frozen=True)
class KnowledgeBase:
    program: Program
    criteria: tuple[Criterion, ...]
    vocabulary: Vocabulary
    assumptions: dict[str, Assumption]
    engine: Engine
    rules_hash: str

    def criterion(self, criterion_id: str) -> Criterion | None:
        wanted = criterion_id.strip().upper().replace(" ", "")
        return next((c for c in self.criteria if c.id.upper() == wanted), None)

    def criterion_dict(self, criterion_id: str) -> dict[str, Any]:
        """One criterion as `kb criteria --json` shows it: its texts and provenance, the rules
        that decide it (each located), and the assumptions that change its reading."""
        crit = self.criterion(criterion_id)
        if crit is None:
            raise KeyError(criterion_id)
        rules = [
            f"{rule.text}   % {rule.pos}"
            for name in (self.program.depends_on([crit.predicate]) if crit.predicate else [])
            for rule in self.program.rules_for(name)
        ]
        return {
            "id": crit.id,
            "kind": crit.kind,
            "cohort": crit.cohort,
            "provenance": crit.provenance,
            "record_text": crit.record_text,
            "text": crit.text,
            "predicate": crit.predicate,
            "rules": rules,
            "assumptions": [a.id for a in self.assumptions.values() if crit.id in a.used_by],
        }


def _rule_files(path: Path) -> list[Path]:
    return sorted(path.glob("*.dl")) if path.is_dir() else [path]


def _parse_all(files: list[Path]) -> tuple[Program, list[Problem]]:
    program = Program()
    problems: list[Problem] = []
    for file in files:
        try:
            program.extend(parse_file(file, _display(file)))
        except RuleSyntaxError as exc:
            problems.extend(exc.problems)
    return program, problems


def _display(file: Path) -> str:
    try:
        return str(file.resolve().relative_to(Path.cwd()))
    except ValueError:
        return str(file)


def lint(path: Path | str = RULES_DIR) -> list[Problem]:
    """Every static problem in the rule files at `path` (a folder or one `.dl` file).

    A single file is checked together with the shipped rule files (less any of the same
    name), so that a new or edited block can be linted before it goes into kb/rules/.
    """
    path = Path(path)
    if not path.exists():
        raise KbError(f"{path}: no such file or folder")
    files = _rule_files(path)
    if path.is_file():
        files = [f for f in _rule_files(RULES_DIR) if f.name != path.name] + [path]
    program, problems = _parse_all(files)
    vocabulary = load_vocabulary()
    known = {**vocabulary.known_constants(), "anchor": ANCHORS}
    problems.extend(check_program(program, known))
    if path.is_dir():
        criteria, catalogue_problems = load_catalogue(path / CATALOGUE_FILE.name)
        problems.extend(catalogue_problems)
        if not problems:
            allowed = {a.id: a.allowed for a in load_assumptions().values()}
            problems.extend(check_catalogue(criteria, program, assumptions=allowed))
    return problems


@lru_cache(maxsize=4)
def load_knowledge(rules_dir: Path = RULES_DIR) -> KnowledgeBase:
    problems = lint(rules_dir)
    if problems:
        raise KbError("the rule set has errors; nothing was loaded", problems)
    program, _ = _parse_all(_rule_files(rules_dir))
    criteria, _ = load_catalogue(rules_dir / CATALOGUE_FILE.name)
    digest = hashlib.sha256()
    for file in [
        *_rule_files(rules_dir),
        *(rules_dir / n for n in (CATALOGUE_FILE.name, "assumptions.toml", "instruments.toml")),
    ]:
        digest.update(file.name.encode())
        digest.update(file.read_bytes())
    return KnowledgeBase(
        program, tuple(criteria), load_vocabulary(), load_assumptions(), Engine(program), digest.hexdigest()[:16]
    )
