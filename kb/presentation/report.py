"""The eligibility report: one model of the answer, rendered as text, Markdown and HTML.

An investigator files what the tool said and on what basis: the verdict per cohort, every
criterion with its status and one-line reason, the data still to collect, the criteria to
verify by hand, the reference dates, the assumptions in force and the stamp (rules,
assumptions, facts), so the answer can be reproduced. `PatientReport` holds exactly that,
once; `kb check` (text, Markdown), the report downloads and the patient page all read it,
so the four renderings can no longer drift apart.

The templates are in kb/presentation/templates/. HTML is autoescaped (no scripts, no markup from a
file); Markdown goes through the `md` filter, which is `kb.presentation.render.escape_markdown`: a
patient id or drug name such as `![b](http://host/x.png)<img src=x>` shows as text, never
as an image, a link or markup in the reader's viewer. Text is written as it is.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import cache

from jinja2 import Environment, PackageLoader, select_autoescape

from kb.factbase.fact_types import Gap
from kb.presentation.render import escape_markdown
from kb.reasoning.evaluation import Assessment, CohortVerdict, CriterionResult
from kb.status import MARKS, Status, Verdict

__all__ = [
    "CriterionRow",
    "PatientReport",
    "assessment_text",
    "report_html",
    "report_markdown",
    "report_text",
]


@dataclass(frozen=True)
class CriterionRow:
    """One criterion as every rendering shows it: mark, id, kind, status (and why), message."""

    id: str
    kind: str
    status: Status
    reason: str  # why it is unknown (missing, stale, …), or ""
    message: str  # the plain-language reason a clinician reads beside the status
    missing: tuple[str, ...]  # the data items it waits for
    text: str  # the protocol's text of the criterion (what to verify by hand)

    @property
    def mark(self) -> str:
        return MARKS[self.status]

    @classmethod
    def of(cls, result: CriterionResult) -> CriterionRow:
        return cls(
            result.id,
            result.criterion.kind,
            result.status,
            result.reason or "",
            result.message,
            tuple(g.item for g in result.missing),
            result.criterion.text,
        )


@dataclass(frozen=True)
class PatientReport:
    """What a report of one patient's answer says, whatever it is rendered as."""

    patient: str
    verdict: Verdict
    eligible_via: tuple[str, ...]
    scope: str
    cohorts: tuple[CohortVerdict, ...]
    dates: Mapping[str, str]  # the reference dates by name (screening, enrolment, apheresis)
    date_notes: tuple[str, ...]  # how a date was obtained when it was not in the file
    criteria: tuple[CriterionRow, ...]  # this patient's criteria: other cohorts' are left out
    elsewhere: tuple[str, ...]  # other cohorts' criteria and the definitions only they use
    to_collect: tuple[Gap, ...]
    manual: tuple[CriterionRow, ...]  # the criteria to verify by hand
    assumptions: Mapping[str, int | str]
    stamp: Mapping[str, str]
    story: str = ""  # the vignette's story, when the data set has one

    @classmethod
    def of(cls, assessment: Assessment, story: str = "") -> PatientReport:
        a = assessment
        elsewhere = tuple(r.id for r in a.elsewhere)
        return cls(
            patient=a.patient_id,
            verdict=a.verdict,
            eligible_via=tuple(a.eligible_via),
            scope=a.scope,
            cohorts=a.cohorts,
            dates=a.reference.as_dict(),
            date_notes=tuple(a.reference.notes),
            criteria=tuple(CriterionRow.of(r) for r in a.criteria if r.id not in elsewhere),
            elsewhere=elsewhere,
            to_collect=tuple(a.to_collect),
            manual=tuple(CriterionRow.of(r) for r in a.manual_checks),
            assumptions=dict(a.assumptions),
            stamp=dict(a.stamp),
            story=story,
        )

    def rows(self, statuses: Iterable[Status] | None = None) -> list[CriterionRow]:
        """This patient's criteria, only those with one of `statuses` when given."""
        wanted = None if statuses is None else set(statuses)
        return [r for r in self.criteria if wanted is None or r.status in wanted]


def _pairs(mapping: Mapping[str, object], separator: str = " ") -> str:
    """`screening 2026-11-17, enrolment …`: a mapping on one line, as every rendering writes it."""
    return ", ".join(f"{key}{separator}{value}" for key, value in mapping.items())


def _cell(text: str) -> str:
    """One Markdown table cell: escaped (| included) and on one line."""
    return escape_markdown(text.replace("\n", " "))


@cache
def _environment() -> Environment:
    env = Environment(
        loader=PackageLoader("kb.presentation", "templates"),
        autoescape=select_autoescape(["html"]),
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["md"] = escape_markdown
    env.filters["cell"] = _cell
    env.filters["pairs"] = _pairs
    return env


def _render(name: str, report: PatientReport, **extra: object) -> str:
    return _environment().get_template(name).render(r=report, **extra)


def report_text(report: PatientReport, show_all: bool = True) -> str:
    """The answer as `kb check` prints it; `show_all=False` lists only the failed and unknown criteria."""
    rows = report.criteria if show_all else report.rows((Status.FAIL, Status.UNKNOWN))
    return _render("report.txt", report, rows=rows)


def report_markdown(report: PatientReport) -> str:
    """The report for the trial file, in Markdown (`kb check --format md`, the patient page's download)."""
    return _render("report.md", report)


def report_html(report: PatientReport) -> str:
    """The report as one HTML page (escaped, no scripts) for a browser or a printer."""
    return _render("report.html", report)


def assessment_text(assessment: Assessment, show_all: bool = True) -> str:
    """The answer as `kb check` prints it."""
    return report_text(PatientReport.of(assessment), show_all)
