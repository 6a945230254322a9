"""The public API: what the CLI, the app and a notebook call, and the types they get back.

Everything else in `kb` is an internal module that may move. A caller needs five steps, each
one function here: load the knowledge (the rules, checked and compiled), load the data (the
demo patients, a folder, a workbook or an EHR extract), assess a patient, ask why, and ask
what would change it (`what_if`, `repair`); and for many patients or for the protocol
itself, `screen` and `review_protocol`. The defaults are the CLI's: the demo data set, the
default assumptions, and the enrolment date the patient's files give (or today).

`kb` re-exports this module, so `import kb; kb.assess(...)` works. No name here is also a
module's (`kb.reasoning.repairs`, `kb.review`, `kb.records.patients` and `kb.quality.coverage` are modules): importing
that module would set it on the package, over the function. In five lines::

    import kb

    knowledge = kb.load_knowledge()
    patient = kb.load_data().patient("P002")
    print(kb.assessment_text(kb.assess(patient, knowledge)))
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import replace
from datetime import date
from pathlib import Path

from kb.catalogue.assumptions import Assumption, AssumptionSet, resolve_assumptions
from kb.catalogue.criteria import Criterion
from kb.catalogue.knowledge import RULES_DIR, KnowledgeBase, lint, load_knowledge
from kb.catalogue.vocabulary import load_vocabulary
from kb.errors import KbError, Problem, UnknownPatientError
from kb.factbase.build import Profile
from kb.factbase.build import profiles as _profiles
from kb.language.engine import EngineError
from kb.presentation.answers import Answer, answer
from kb.presentation.questions import MAX_QUESTION_CHARS, check_length
from kb.presentation.render import repair_text, trace_dot, trace_text
from kb.presentation.report import assessment_text
from kb.quality.coverage import CoverageCheck
from kb.quality.coverage import check_coverage as _check_coverage
from kb.reasoning.evaluation import Assessment, CohortVerdict, CriterionResult
from kb.reasoning.evaluation import assess as _assess
from kb.reasoning.repairs import Repair, RepairAnswer, RepairChange, find_repairs
from kb.reasoning.trace import Node
from kb.reasoning.whatif import Change, WhatIf, parse_change
from kb.reasoning.whatif import what_if as _what_if
from kb.records import importers
from kb.records.patients import DEMO_DATASET, Dataset, Patient, load_dataset
from kb.review.findings import Finding
from kb.review.impact import population_impact
from kb.review.report import review_markdown
from kb.review.reviewer import Review
from kb.review.reviewer import review as _review
from kb.screening.screen import Screening, ScreenRow, earliest_dates, screen_folder, streamable
from kb.screening.screen import screen as _screen
from kb.status import Cohort, Status, Truth, Verdict

__all__ = [
    "DEMO_DATASET",
    "MAX_QUESTION_CHARS",
    "RULES_DIR",
    "Answer",
    "Assessment",
    "Assumed",
    "Assumption",
    "AssumptionSet",
    "Change",
    "Cohort",
    "CohortVerdict",
    "CoverageCheck",
    "Criterion",
    "CriterionResult",
    "Dataset",
    "EngineError",
    "Finding",
    "KbError",
    "KnowledgeBase",
    "Node",
    "Patient",
    "Problem",
    "Profile",
    "Repair",
    "RepairAnswer",
    "RepairChange",
    "Review",
    "ScreenRow",
    "Screening",
    "Status",
    "Truth",
    "UnknownPatientError",
    "Verdict",
    "WhatIf",
    "ask",
    "assess",
    "assessment_text",
    "assume",
    "check_coverage",
    "criterion",
    "lint",
    "load_data",
    "load_knowledge",
    "profiles",
    "repair",
    "repair_text",
    "review_markdown",
    "review_protocol",
    "screen",
    "trace_dot",
    "trace_text",
    "what_if",
    "why",
]

#: the assumptions of an answer: a resolved set, or the overrides (`["lab_lookback_days=14"]`,
#: `{"lab_lookback_days": "14"}`) to apply to the defaults; None for the defaults
Assumed = AssumptionSet | Iterable[str] | Mapping[str, str] | None


def assume(overrides: Assumed = None) -> AssumptionSet:
    """The assumptions in force: the defaults of kb/rules/assumptions.toml with `overrides`
    (each checked: an unknown id or a value out of range is a KbError naming what is allowed)."""
    if isinstance(overrides, AssumptionSet):
        return overrides
    return resolve_assumptions(overrides or ())


def load_data(
    path: Path | str | None = None,
    input_format: str = "auto",
    *,
    encoding: str | None = None,
    diagnoses_complete: date | None = None,
) -> Dataset:
    """The patients at `path` (default: the demo data set with its vignettes): a folder of the
    CSV file set, a workbook, a wide table, FHIR bundles or an OMOP database, recognised from
    the content unless `input_format` says. Rows that cannot be read are not dropped silently:
    they are the data set's `problems`, located. `diagnoses_complete` (FHIR, OMOP): declare
    every diagnosis list complete up to that date, so no trial diagnosis means no cohort."""
    where = path if path is not None else DEMO_DATASET
    return importers.load_data(where, input_format, diagnoses_complete=diagnoses_complete, encoding=encoding)


def criterion(criterion_id: str, kb: KnowledgeBase | None = None) -> Criterion:
    """The criterion with this id (case and spaces aside), or a KbError listing the ids."""
    kb = kb or load_knowledge()
    found = kb.criterion(criterion_id)
    if found is None:
        raise KbError(f"no criterion {criterion_id}; known: {', '.join(c.id for c in kb.criteria)}")
    return found


def profiles(
    data: Dataset | None = None, kb: KnowledgeBase | None = None, assumptions: Assumed = None, as_of: date | None = None
) -> list[Profile]:
    """Each patient's sex, age and cohorts at the enrolment date (as the criteria see them)."""
    return _profiles(data if data is not None else load_data(), kb or load_knowledge(), assume(assumptions), as_of)


def assess(
    patient: Patient,
    kb: KnowledgeBase | None = None,
    assumptions: Assumed = None,
    as_of: date | None = None,
    *,
    explain: str = "decisive",
) -> Assessment:
    """Is `patient` eligible, as of `as_of` (default: the enrolment date of their files, or
    today)? Every criterion's status and message, the verdict per cohort, and proof trees for
    what decides it (`explain="all"`: for every criterion, as `why` of one criterion needs)."""
    return _assess(patient, kb or load_knowledge(), assume(assumptions), as_of, explain=explain)


def why(
    assessment: Assessment, criterion_id: str | None = None, kb: KnowledgeBase | None = None
) -> list[tuple[str, Node]]:
    """The proof trees of what keeps the patient from eligibility (the blocking and unknown
    criteria), or of one criterion: (criterion id, tree) pairs, for `trace_text` or `trace_dot`.
    A criterion that passed has its tree only in an assessment made with `explain="all"`."""
    if not criterion_id:
        return assessment.proofs()
    found = (kb or load_knowledge()).criterion(criterion_id)
    if found is None:
        raise KbError(f"no criterion {criterion_id}; see `kb criteria`")
    return assessment.proofs(found.id)


def what_if(
    patient: Patient,
    changes: Sequence[Change | str],
    kb: KnowledgeBase | None = None,
    assumptions: Assumed = None,
    as_of: date | None = None,
) -> WhatIf:
    """The patient assessed before and after hypothetical changes (`"platelets=80"`,
    `"enrolment=2026-11-26"`, `"stop:rituximab@2026-10-01"`, `"assume:ge4_3_scope=listed"`, or
    `Change` objects): what changes status, with a proof of each new status. The patient's
    files are not touched."""
    kb = kb or load_knowledge()
    parsed = [c if isinstance(c, Change) else parse_change(c, kb.vocabulary) for c in changes]
    return _what_if(patient, parsed, kb, assume(assumptions), as_of)


def repair(
    patient: Patient,
    kb: KnowledgeBase | None = None,
    assumptions: Assumed = None,
    as_of: date | None = None,
    most: int = 5,
) -> RepairAnswer:
    """What would make the patient eligible: at most `most` minimal sets of changes (collect a
    result, wait, stop a drug, change a value), each confirmed by the engine, cheapest first,
    with the date from which it holds."""
    if most < 1:
        raise KbError(f"repairs: most must be at least 1, not {most}")
    return find_repairs(patient, kb or load_knowledge(), assume(assumptions), as_of, most)


def screen(
    data: Dataset | Path | str | None = None,
    kb: KnowledgeBase | None = None,
    assumptions: Assumed = None,
    as_of: date | None = None,
    *,
    input_format: str = "auto",
    encoding: str | None = None,
    engine: str = "duckdb",
    spark_master: str | None = None,
    spark_scratch: Path | None = None,
    omop_schema: str | None = None,
    dates: bool = False,
    diagnoses_complete: bool = False,
    progress: Callable[[int, int], None] | None = None,
) -> Screening:
    """Every patient of a data set (default: the demo one): verdict, blockers, open criteria
    and the attrition funnel. A CSV file set given by its path is screened in chunks, never
    held whole; `dates` adds, for each patient whom waiting alone makes eligible, the date
    (a repair search per ineligible patient: slower). `engine="spark"` runs the same compiled
    rules on Apache Spark (local[*], or `spark_master`; `spark_scratch`: a folder every
    executor sees, for the facts as Parquet), and then `omop_schema` reads the
    patients from the OMOP CDM tables of that schema in the session's catalog instead of
    `data`; `engine="pydatalog"` is the reference
    path, one patient at a time (same statuses). `diagnoses_complete` (FHIR, OMOP): each
    diagnosis list is complete up to the later of `as_of` and today."""
    kb = kb or load_knowledge()
    in_force = assume(assumptions)
    if omop_schema is not None:
        data = _catalog_dataset(omop_schema, engine, spark_master, as_of, diagnoses_complete)
    if not isinstance(data, Dataset):
        path = Path(data if data is not None else DEMO_DATASET)
        if not dates and streamable(path, input_format, engine, encoding):
            screened = screen_folder(
                kb,
                path,
                in_force,
                as_of,
                progress,
                engine=engine,
                spark_master=spark_master,
                spark_scratch=spark_scratch,
            )
            return Screening(screened.rows, screened.problems, path.name)
        complete = max(as_of or date.today(), date.today()) if diagnoses_complete else None
        data = load_data(path, input_format, encoding=encoding, diagnoses_complete=complete)
    rows = _screen(
        kb, data, in_force, as_of, progress, engine=engine, spark_master=spark_master, spark_scratch=spark_scratch
    )
    if dates:
        rows = earliest_dates(rows, kb, data, in_force, as_of)
    return Screening(rows, data.problems, data.name)


def _catalog_dataset(
    schema: str, engine: str, spark_master: str | None, as_of: date | None, diagnoses_complete: bool
) -> Dataset:
    """The patients of an OMOP CDM schema in a Spark session's catalog (`--omop-schema`)."""
    if engine != "spark":
        raise KbError(f"--omop-schema {schema}: the tables of a Spark catalog are read with --engine spark")
    from kb.records.importers.omop import read_omop_tables
    from kb.screening.spark import catalog_omop_tables, check_schema_name, spark_session

    check_schema_name(schema)
    tables = catalog_omop_tables(spark_session(spark_master), schema)
    complete = max(as_of or date.today(), date.today()) if diagnoses_complete else None
    vocab = load_vocabulary()
    return read_omop_tables(tables, vocab, complete, name=schema, place="{name}.{table}").dataset(vocab)


def review_protocol(
    kb: KnowledgeBase | None = None, data: Dataset | None = None, assumptions: Assumed = None
) -> Review:
    """The review of the protocol as encoded: contradictory, dead and redundant rules, each with
    a witness patient checked by the engine, and the impact of each on `data` (default: the
    demo patients). Under assumptions other than the defaults, the impact is given under both
    readings, the defaults' first."""
    kb = kb or load_knowledge()
    data = data if data is not None else load_data()
    in_force = assume(assumptions)
    switched = in_force if in_force.changed() else None
    result = _review(kb, in_force, data, switched)
    if switched is not None:
        result = replace(result, impact=tuple(population_impact(kb, data, resolve_assumptions())))
    return result


def ask(
    question: str,
    kb: KnowledgeBase | None = None,
    data: Dataset | None = None,
    assumptions: Assumed = None,
    as_of: date | None = None,
) -> Answer:
    """A question in plain words, answered as the chat answers it (deterministic, offline): a
    user's mistake comes back as an answer of kind "error", a question over the chat's limit
    is a KbError."""
    check_length(question)
    data = data if data is not None else load_data()
    return answer(question, kb or load_knowledge(), data, assume(assumptions), None, as_of)


def check_coverage(
    kb: KnowledgeBase | None = None, path: Path | str | None = None, encoding: str | None = None, mutate: bool = False
) -> CoverageCheck:
    """Every protocol item → criterion → rules → the vignettes stored with the file set at
    `path` (default: the demo one) that drive it to pass, fail and unknown; with `mutate`, the
    mutation check too (every threshold and window shifted: the mutants no vignette notices)."""
    data = load_dataset(path if path is not None else DEMO_DATASET, encoding=encoding)
    return _check_coverage(kb or load_knowledge(), data, mutate)
