"""The words an answer is made of: a criterion's status, a verdict, a rule's truth, a cohort.

Each is a `StrEnum`: a member *is* its string (`Status.PASS == "pass"`, with the same hash),
so the JSON of every answer, the engine's truth constants, SQL text, CSV cells and dicts
keyed by them stay exactly as they were, while mypy catches a misspelt status. They are
defined here once, with what the reader sees of them (a status's mark, a cohort's name),
so that the CLI, the reports and the app cannot drift apart.

This module imports nothing from `kb`: every layer may use it.
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum

__all__ = ["COHORTS", "MARKS", "Cohort", "Status", "Truth", "Verdict"]


class Status(StrEnum):
    """A criterion's status for one patient (the contract in the design's "Statuses")."""

    PASS = "pass"  # does not block
    FAIL = "fail"  # blocks
    UNKNOWN = "unknown"  # data missing, stale, unattested, unreviewed or not understood
    NOT_APPLICABLE = "not_applicable"  # another cohort's criterion, or one that cannot apply
    MANUAL = "manual"  # the record lost its text: verify by hand; does not lower the verdict


#: the one-character mark beside each status, the same in the CLI and the app: plain marks
#: rather than emoji, which render in every font, a terminal's and a headless browser's included
MARKS: Mapping[Status, str] = {
    Status.PASS: "✓",
    Status.FAIL: "✗",
    Status.UNKNOWN: "?",
    Status.NOT_APPLICABLE: "–",
    Status.MANUAL: "✎",
}


class Verdict(StrEnum):
    """A cohort's or a patient's verdict, the Kleene value of the criteria combined."""

    ELIGIBLE = "eligible"  # true: nothing blocks (manual checks listed)
    NEEDS_DATA = "needs_data"  # undecided: nothing blocks, something is unknown
    INELIGIBLE = "ineligible"  # false: some criterion blocks
    #: a screening row of a patient none of whose rows could be loaded (never from `assess`)
    NOT_EVALUATED = "not_evaluated"

    @property
    def rank(self) -> int:
        """Better verdicts rank higher: a patient's verdict is the best over their cohorts."""
        return _RANKS[self]


_RANKS = {Verdict.NOT_EVALUATED: -1, Verdict.INELIGIBLE: 0, Verdict.NEEDS_DATA: 1, Verdict.ELIGIBLE: 2}


class Truth(StrEnum):
    """The second argument of a deciding predicate `name(patient, truth)`: what the rules
    derived. None derived means unknown; a criterion's status follows from its kind."""

    YES = "yes"
    NO = "no"
    NA = "na"  # the criterion cannot apply to this patient


class Cohort(StrEnum):
    """The disease cohorts of the protocol (criteria of `general` apply to all of them)."""

    SLE = "sle"
    PSS = "pss"
    SSC = "ssc"
    IIM = "iim"
    AAV = "aav"
    APS = "aps"

    @property
    def label(self) -> str:
        """The short name an answer uses ("a criterion of the SLE cohort")."""
        return _NAMES[self][0]

    @property
    def disease(self) -> str:
        """The disease's full name, as the protocol's answers spell it out."""
        return _NAMES[self][1]


_NAMES = {
    Cohort.SLE: ("SLE", "systemic lupus erythematosus"),
    Cohort.PSS: ("primary Sjögren's", "primary Sjögren's syndrome"),
    Cohort.SSC: ("diffuse SSc", "diffuse cutaneous systemic sclerosis"),
    Cohort.IIM: ("inflammatory myopathy", "idiopathic inflammatory myopathy"),
    Cohort.AAV: ("ANCA vasculitis", "ANCA-associated vasculitis"),
    Cohort.APS: ("APS", "antiphospholipid syndrome"),
}

#: the cohorts in the protocol's order (a string's membership test: `"sle" in COHORTS`, which
#: `"sle" in Cohort` is not before Python 3.12)
COHORTS: tuple[Cohort, ...] = tuple(Cohort)
