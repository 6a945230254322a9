"""The criteria catalogue: id, kind, cohort, protocol texts, provenance, deciding predicate.

One machine-readable source (`kb/rules/criteria.toml`), checked against the rules: ids are
unique, each deciding predicate exists with the `(patient, truth)` signature.
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from kb.errors import Problem
from kb.language.syntax import Program
from kb.paths import PACKAGE_DIR
from kb.status import COHORTS

__all__ = ["CATALOGUE_FILE", "X_BLOCK", "Criterion", "check_catalogue", "load_catalogue"]

CATALOGUE_FILE = PACKAGE_DIR / "rules" / "criteria.toml"
KINDS = ("inclusion", "exclusion", "definition")
#: the unlabelled exclusion block: its cohort is the assumption x_block_owner
X_BLOCK = "x"
PROVENANCE = ("REC", "INFERRED-STRONG", "INFERRED-WEAK", "MISSING", "EXT")


@dataclass(frozen=True)
class Criterion:
    id: str
    kind: str
    cohort: str
    provenance: str
    predicate: str | None  # None: a placeholder for text lost from the record (status manual)
    record_text: str
    text: str
    line: int  # where the entry starts in criteria.toml, for messages
    #: criteria of one cohort sharing a group are alternatives: the group holds if any holds
    group: str = ""
    #: a heading over sub-items (GE4): shown, but the verdict counts the sub-items
    summary: bool = False
    #: a lost item that an assumption can supply a reading for: manual while it is `none`
    manual_unless: str = ""

    @property
    def placeholder(self) -> bool:
        return self.predicate is None

    @property
    def counted(self) -> bool:
        """Whether the criterion takes part in a verdict (definitions and headings do not)."""
        return self.kind != "definition" and not self.summary


def load_catalogue(path: Path = CATALOGUE_FILE) -> tuple[list[Criterion], list[Problem]]:
    """The criteria in file order, and the problems found in the file itself."""
    text = path.read_text(encoding="utf-8")
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        return [], [Problem(path.name, getattr(exc, "lineno", None), getattr(exc, "colno", None), str(exc))]
    starts = [n for n, line in enumerate(text.splitlines(), start=1) if line.strip() == "[[criterion]]"]
    criteria: list[Criterion] = []
    problems: list[Problem] = []
    seen: dict[str, int] = {}
    for entry, line in zip(data.get("criterion", []), starts, strict=False):
        missing = [k for k in ("id", "kind", "cohort", "provenance", "text") if k not in entry]
        if missing:
            problems.append(Problem(path.name, line, None, f"criterion entry lacks {', '.join(missing)}"))
            continue
        crit = Criterion(
            entry["id"],
            entry["kind"],
            entry["cohort"],
            entry["provenance"],
            entry.get("predicate"),
            entry.get("record_text", ""),
            entry["text"],
            line,
            entry.get("group", ""),
            bool(entry.get("summary", False)),
            entry.get("manual_unless", ""),
        )
        if crit.id in seen:
            problems.append(
                Problem(
                    path.name, line, "id", f"duplicate criterion id {crit.id}", f"first defined at line {seen[crit.id]}"
                )
            )
            continue
        seen[crit.id] = line
        if crit.kind not in KINDS:
            problems.append(
                Problem(path.name, line, "kind", f"{crit.id}: kind must be inclusion, exclusion or definition")
            )
        if crit.cohort not in ("general", X_BLOCK, *COHORTS):
            problems.append(Problem(path.name, line, "cohort", f"{crit.id}: unknown cohort '{crit.cohort}'"))
        if crit.provenance not in PROVENANCE:
            problems.append(Problem(path.name, line, "provenance", f"{crit.id}: unknown provenance tag"))
        criteria.append(crit)
    return criteria, problems


def check_catalogue(
    criteria: list[Criterion],
    program: Program,
    path: str = CATALOGUE_FILE.name,
    assumptions: Mapping[str, tuple[str, ...]] | None = None,
) -> list[Problem]:
    """Every deciding predicate must be defined by rules as `name(patient, truth)`; the
    alternatives of a group belong to one cohort; `manual_unless` names a choice assumption
    that can be `none` (given `assumptions`: id -> allowed values)."""
    problems = []
    group_cohorts: dict[str, str] = {}
    for crit in criteria:
        if crit.group and group_cohorts.setdefault(crit.group, crit.cohort) != crit.cohort:
            problems.append(Problem(path, crit.line, "group", f"{crit.id}: group {crit.group} spans two cohorts"))
        if crit.manual_unless and assumptions is not None and "none" not in assumptions.get(crit.manual_unless, ()):
            problems.append(
                Problem(
                    path,
                    crit.line,
                    "manual_unless",
                    f"{crit.id}: manual_unless must name an assumption with the value none",
                )
            )
    for crit in criteria:
        if crit.predicate is None:
            continue
        decl = program.declarations.get(crit.predicate)
        if decl is None or not program.rules_for(crit.predicate):
            problems.append(
                Problem(path, crit.line, "predicate", f"{crit.id}: deciding predicate '{crit.predicate}' has no rules")
            )
        elif [t for _, t in decl.params] != ["patient", "truth"]:
            problems.append(
                Problem(
                    path,
                    crit.line,
                    "predicate",
                    f"{crit.id}: '{crit.predicate}' must be declared (P: patient, T: truth)",
                )
            )
    return problems
