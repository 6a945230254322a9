"""`kb`: the command-line front end. A thin wrapper: every answer comes from the library.

Exit codes: 0 answered, 1 the answer is a failure the user asked about (lint errors),
2 bad usage or input. A user's mistake is one clear line on stderr, never a stack trace.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Sequence
from datetime import date
from pathlib import Path
from typing import Any

from kb.api import (
    MAX_QUESTION_CHARS,
    RULES_DIR,
    Answer,
    Assessment,
    AssumptionSet,
    Dataset,
    EngineError,
    KbError,
    KnowledgeBase,
    Patient,
    Problem,
    Verdict,
    WhatIf,
    ask,
    assess,
    assessment_text,
    assume,
    check_coverage,
    criterion,
    lint,
    load_data,
    load_knowledge,
    profiles,
    repair,
    repair_text,
    review_markdown,
    review_protocol,
    screen,
    trace_dot,
    trace_text,
    what_if,
    why,
)
from kb.presentation.export import write_screening
from kb.presentation.render import coverage_text
from kb.presentation.report import PatientReport, report_markdown
from kb.quality.coverage import PROTOCOL_ITEMS

__all__ = ["main"]

EXAMPLES = {
    "patients": "example:\n  kb patients\n  kb --facts clinic_export/ patients --json",
    "check": "example:\n  kb check P001\n  kb --as-of 2026-12-01 --assume lab_lookback_days=14 check P007 --json",
    "why": "example:\n  kb why P011            (the blocking and unknown criteria)\n"
    "  kb why P001 GE4.2      (one criterion, even when it passes)\n"
    "  kb why P011 GI6 --format dot | dot -Tpng > gi6.png",
    "criteria": "example:\n  kb criteria\n  kb criteria GE4.2",
    "lint": "example:\n  kb lint                 (the shipped rules)\n  kb lint my_rules/new_block.dl",
    "whatif": "example:\n  kb whatif P002 platelets=80\n  kb whatif P006 enrolment=2026-11-26\n"
    "  kb whatif P011 stop:rituximab@2026-10-01 assume:ge4_3_scope=listed --json\n"
    "changes: ITEM=VALUE[@DATE], enrolment=DATE (screening, apheresis), stop:DRUG@DATE,\n"
    "         remove:ITEM, assume:ID=VALUE",
    "repair": "example:\n  kb repair P062          (the smallest changes that make P062 eligible, and from when)\n"
    "  kb repair P064 --max 2 --json",
    "screen": "example:\n  kb screen\n  kb screen --facts my_site/ --out report.xlsx\n  kb screen --dates --json",
    "ask": 'example:\n  kb ask "why is P11 not eligible?"\n  kb ask "what if p2\'s platelets were 80"\n'
    '  kb ask "what would make P062 eligible"\n  kb ask "explain the steroid rule"',
    "review": "example:\n  kb review                 (findings and the impact on the vignettes)\n"
    "  kb review --format md > review.md\n"
    "  kb review --assume ge4_7_window_days=28 --json   (impact under another reading too)",
    "coverage": "example:\n  kb coverage             (protocol items -> criteria -> rules -> vignettes)\n"
    "  kb coverage --mutate    (shift every threshold and window; list the mutants no vignette notices)",
}


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        self.print_usage(sys.stderr)
        print(f"kb: {message}", file=sys.stderr)
        raise SystemExit(2)


def _date(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{text}' is not a date (use YYYY-MM-DD)") from None


def _global_options(for_subcommand: bool) -> argparse.ArgumentParser:
    """The global options, accepted before or after the command.

    A subcommand's copy leaves a value unset unless given, so that it cannot overwrite
    one given before the command (argparse would otherwise reset it to the default).
    """

    def default(value: object) -> object:
        return argparse.SUPPRESS if for_subcommand else value

    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--facts",
        type=Path,
        default=default(None),
        help="patient data: a folder, workbook, wide table, FHIR bundle or OMOP database (default: the demo patients)",
    )
    common.add_argument(
        "--input-format",
        default=default("auto"),
        choices=["auto", "csv", "parquet", "wide", "xlsx", "fhir", "omop"],
        help="format of --facts: the csv file set (a folder), parquet (that file set as .parquet files), xlsx "
        "(that file set as a workbook), wide (one row per patient, CSV or Excel), fhir (R4 bundles), omop (a "
        "DuckDB CDM database, or a folder of its tables as Parquet); auto recognises it",
    )
    common.add_argument(
        "--encoding",
        default=default(None),
        metavar="NAME",
        help="the encoding of CSV patient files that are not UTF-8 (e.g. gb18030, cp1252); UTF-8 with or "
        "without BOM is read without it, and a file that does not decode is set aside whole, located",
    )
    common.add_argument(
        "--as-of",
        type=_date,
        default=default(None),
        metavar="DATE",
        help="evaluate as if enrolling on DATE (sets the enrolment date)",
    )
    common.add_argument(
        "--assume",
        action="append",
        default=default([]),
        metavar="ID=VALUE",
        help="switch a named assumption (repeatable); see kb criteria --assumptions",
    )
    common.add_argument("--format", choices=["text", "json", "md", "dot"], default=default(None), help="output format")
    common.add_argument("--json", action="store_true", default=default(False), help="same as --format json")
    return common


def build_parser() -> argparse.ArgumentParser:
    common = _global_options(for_subcommand=False)
    sub_common = _global_options(for_subcommand=True)
    parser = _Parser(
        prog="kb",
        parents=[common],
        description="Explainable eligibility for trial NCT06420154 (anti-CD19 CAR-T, autoimmune disease).",
        epilog="Exit codes: 0 answered, 1 lint errors found, 2 bad usage or input.",
    )
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    def command(name: str, help_text: str) -> argparse.ArgumentParser:
        return sub.add_parser(
            name,
            parents=[sub_common],  # type: ignore[list-item]
            help=help_text,
            description=help_text,
            epilog=EXAMPLES[name],
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )

    command("patients", "List the patients: id, sex, age at enrolment, cohorts and data set.")
    check = command("check", "Evaluate every criterion for one patient: the verdict, per cohort, with messages.")
    check.add_argument("patient")
    why = command("why", "Proof trees of the blocking and unknown criteria of a patient, or of one criterion.")
    why.add_argument("patient")
    why.add_argument("criterion", nargs="?")
    criteria = command("criteria", "The criteria catalogue, or one criterion's texts, rules and provenance.")
    criteria.add_argument("criterion", nargs="?")
    criteria.add_argument("--assumptions", action="store_true", help="list the named assumptions instead")
    lint_cmd = command("lint", "Static checks of rule files; exit 1 with located messages if any fail.")
    lint_cmd.add_argument("path", nargs="?", type=Path, default=RULES_DIR)
    whatif = command("whatif", "Evaluate a patient under hypothetical changes: what changes, old and new.")
    whatif.add_argument("patient")
    whatif.add_argument("changes", nargs="+", metavar="CHANGE")
    repair = command("repair", "The minimal changes that make a patient eligible, each confirmed by the engine.")
    repair.add_argument("patient")
    repair.add_argument("--max", type=int, default=5, metavar="N", help="at most N repairs (default 5)")
    screen_cmd = command("screen", "Screen every patient of a data set: verdicts, blockers, the attrition funnel.")
    screen_cmd.add_argument(
        "--out", type=Path, metavar="FILE", help="also write the report: .csv, .xlsx, .json or .parquet"
    )
    screen_cmd.add_argument(
        "--dates", action="store_true", help="the earliest enrolment date when waiting is all it takes (slower)"
    )
    screen_cmd.add_argument(
        "--engine",
        choices=["duckdb", "sql", "spark", "pydatalog"],
        default="duckdb",
        help="duckdb (also called sql): all patients at once in DuckDB, both cores (default); spark: the same "
        "compiled rules on Apache Spark (pip install '.[spark]', Java 17; local[*] unless --spark-master); "
        "pydatalog: one patient at a time, the reference (same statuses, ~100x slower)",
    )
    screen_cmd.add_argument(
        "--omop-schema",
        metavar="SCHEMA",
        help="with --engine spark: read the patients from the OMOP CDM tables of this schema in the Spark "
        "session's catalog (person, measurement, condition_occurrence, drug_exposure ...) instead of --facts",
    )
    screen_cmd.add_argument(
        "--spark-scratch",
        type=Path,
        metavar="DIR",
        help="with --engine spark on a cluster of other hosts: a folder every executor sees at the same path "
        "(NFS, a Databricks volume), for the patients' facts as Parquet (default: this machine's temp folder)",
    )
    screen_cmd.add_argument(
        "--spark-master",
        metavar="URL",
        help="with --engine spark: the cluster to screen on (spark://host:7077, local[N]); default local[*], "
        "or Spark Connect at SPARK_REMOTE when set",
    )
    screen_cmd.add_argument(
        "--diagnoses-complete",
        action="store_true",
        help="assumption for OMOP and FHIR extracts: each patient's diagnosis list is complete, so no trial "
        "diagnosis code means no cohort (default off: COHORT stays unknown)",
    )
    ask = command("ask", "Ask a question in your own words (the chat's parser, deterministic, offline).")
    ask.add_argument("question", help=f"at most {MAX_QUESTION_CHARS:,} characters, as in the chat")
    command("review", "Review the protocol: contradictory, dead and redundant rules, each with a witness.")
    coverage = command(
        "coverage", "Every protocol item of section 2: its criterion, rules and the vignettes that exercise it."
    )
    coverage.add_argument("--mutate", action="store_true", help="also run the mutation check (a few minutes)")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help (0) or a usage error, already printed (2)
        return int(exc.code or 0)
    if args.json:
        args.format = "json"
    # Exit codes: 0 answered, 1 only for a failure the user asked about (lint problems,
    # coverage gaps, surviving mutants: returned by those commands), 2 for every error.
    try:
        return int(_dispatch(args))
    except EngineError as exc:  # a defect of the rule set, not of the user's input: still no stack trace
        print(f"kb: the rule engine failed: {exc}", file=sys.stderr)
        return 2
    except KbError as exc:
        print(f"kb: {exc}", file=sys.stderr)
        return 2
    except BrokenPipeError:
        return 0
    except OverflowError as exc:  # date arithmetic past year 9999 that no check caught
        print(f"kb: a date out of range ({exc}); dates are read from 1900-01-01 to 2200-12-31", file=sys.stderr)
        return 2
    except OSError as exc:  # a file or folder that cannot be read or written (--facts, --out)
        where = f"{exc.filename}: " if exc.filename else ""
        print(f"kb: {where}{exc.strerror or exc}", file=sys.stderr)
        return 2


def _dispatch(args: argparse.Namespace) -> int:
    handler: Callable[[argparse.Namespace], int] = COMMANDS[args.command]
    return handler(args)


def _data(args: argparse.Namespace) -> Dataset:
    return load_data(args.facts, args.input_format, encoding=args.encoding)


def _patient(args: argparse.Namespace) -> tuple[KnowledgeBase, AssumptionSet, Dataset, Patient]:
    """The knowledge, the assumptions, the data set and the patient a one-patient command is
    about, in the order their errors are reported (a bad assumption before a missing file)."""
    kb = load_knowledge()
    assumptions = assume(args.assume)
    dataset = _data(args)
    return kb, assumptions, dataset, dataset.patient(args.patient)


def _emit(text: str) -> None:
    sys.stdout.write(text if text.endswith("\n") else text + "\n")


def _json(value: Any) -> None:
    _emit(json.dumps(value, ensure_ascii=False, indent=2, default=str))


def _report_problems(problems: list[Problem], dataset_name: str, limit: int = 200) -> None:
    """Every problem on stderr, so that no answer hides what could not be read. A file set
    aside is named as such: its records count as unread (never as absent) for every patient."""
    if problems:
        whole = sum(1 for p in problems if p.patient_id is None)
        rest = " (the rest was read)" if not whole else f" ({whole} of them may concern every patient)"
        print(f"kb: {len(problems)} problem(s) reading {dataset_name}{rest}:", file=sys.stderr)
        for problem in problems[:limit]:
            print(f"  {problem}", file=sys.stderr)
        if len(problems) > limit:
            print(f"  … and {len(problems) - limit} more", file=sys.stderr)


def _patients(args: argparse.Namespace) -> int:
    kb = load_knowledge()
    assumptions = assume(args.assume)
    dataset = _data(args)
    rows = [p.as_dict() for p in profiles(dataset, kb, assumptions, args.as_of)]
    _report_problems(dataset.problems, dataset.name)
    if args.format == "json":
        problems = {"rejected_rows": [str(p) for p in dataset.problems]}
        _json({"patients": rows, **problems, "file_problems": [str(p) for p in dataset.file_problems]})
        return 0
    _emit(f"{'patient':<9}{'sex':<8}{'age':<5}{'cohorts':<12}{'data set':<10}story")
    for r in rows:
        age = "" if r["age"] is None else str(r["age"])
        listed = ",".join(r["cohorts"]) if isinstance(r["cohorts"], list) else ""
        _emit(f"{r['patient']:<9}{r['sex'] or '?':<8}{age:<5}{listed or '-':<12}{r['dataset']:<10}{r['story']}")
    return 0


def _check_command(args: argparse.Namespace) -> int:
    kb, assumptions, dataset, patient = _patient(args)
    return _check(args, assess(patient, kb, assumptions, args.as_of), dataset)


def _check(args: argparse.Namespace, assessment: Assessment, dataset: Dataset) -> int:
    _report_problems(dataset.problems_for(assessment.patient_id), "this patient's files")
    if args.format == "json":
        _json(assessment.as_dict() | dataset.problem_lists(assessment.patient_id))
    elif args.format == "md":
        _emit(report_markdown(PatientReport.of(assessment, dataset.stories.get(assessment.patient_id, ""))))
    else:
        _emit(assessment_text(assessment))
    return 0


def _why_command(args: argparse.Namespace) -> int:
    kb, assumptions, dataset, patient = _patient(args)
    explain = "all" if args.criterion else "decisive"  # a criterion that passed has a tree only then
    return _why(args, assess(patient, kb, assumptions, args.as_of, explain=explain), kb, dataset)


def _why(args: argparse.Namespace, assessment: Assessment, kb: KnowledgeBase, dataset: Dataset) -> int:
    _report_problems(dataset.problems_for(assessment.patient_id), "this patient's files")
    trees = why(assessment, args.criterion, kb)
    if args.format == "json":
        _json(
            {
                "patient": assessment.patient_id,
                "verdict": assessment.verdict,
                "trees": [{"criterion": cid, "tree": tree.as_dict()} for cid, tree in trees],
            }
            | dataset.problem_lists(assessment.patient_id)
        )
    elif args.format == "dot":
        _emit("\n".join(trace_dot(tree, f"{assessment.patient_id} {cid}") for cid, tree in trees))
    else:
        if not trees:
            _emit(f"{assessment.patient_id}: {assessment.verdict}; no criterion blocks or is unknown.")
        for _cid, tree in trees:
            _emit(trace_text(tree) + "\n")
    return 0


def _criteria(args: argparse.Namespace) -> int:
    kb = load_knowledge()
    if args.assumptions:
        items = [a.as_dict() for a in kb.assumptions.values()]
        if args.format == "json":
            _json(items)
        else:
            for a in items:
                _emit(
                    f"{a['id']} = {a['default']}  (allowed: {a['allowed']})\n  resolves: {a['resolves']}\n"
                    f"  reason: {a['reason']}\n"
                )
        return 0
    if args.criterion is None:
        if args.format == "json":
            _json([kb.criterion_dict(c.id) for c in kb.criteria])
        else:
            for c in kb.criteria:
                _emit(f"{c.id:<8} {c.kind:<10} {c.cohort:<8} {c.provenance:<16} {c.text}")
        return 0
    crit = criterion(args.criterion, kb)
    info = kb.criterion_dict(crit.id)
    if args.format == "json":
        _json(info)
        return 0
    _emit(f"{crit.id} ({crit.kind}, cohort {crit.cohort}, provenance {crit.provenance})")
    _emit(f"record text: {crit.record_text or '(lost from the record)'}")
    _emit(f"reading:     {crit.text}")
    if info["assumptions"]:
        _emit(f"assumptions: {', '.join(info['assumptions'])}")
    if crit.predicate:
        _emit(f"deciding predicate: {crit.predicate}(P, yes|no|na)\nrules:")
        for rule in info["rules"]:
            _emit(f"  {rule}")
    else:
        _emit("status: manual (verify by hand)")
    return 0


def _whatif(args: argparse.Namespace) -> int:
    kb, assumptions, dataset, patient = _patient(args)
    _report_problems(dataset.problems_for(patient.id), "this patient's files")
    answer = what_if(patient, args.changes, kb, assumptions, args.as_of)
    if args.format == "json":
        _json(answer.as_dict())
    else:
        _whatif_text(answer)
    return 0


def _whatif_text(answer: WhatIf) -> None:
    _emit(f"{answer.patient_id} what if: " + "; ".join(c.describe() for c in answer.changes))
    before, after = answer.before, answer.after
    via = f" (via {', '.join(after.eligible_via)})" if after.eligible_via else ""
    _emit(f"verdict: {before.verdict} → {after.verdict}{via}")
    if not answer.differences:
        _emit("no criterion changes status")
    for diff in answer.differences:
        _emit(f"  {diff.criterion:<8} {diff.before.status} → {diff.after.status}")
        _emit(f"    before: {diff.before.message}")
        _emit(f"    after:  {diff.after.message}")
        if diff.proof is not None:
            _emit(_indent(trace_text(diff.proof), "      "))
    still = [r.id for r in after.blocking]
    if still:
        _emit(f"still blocking: {', '.join(still)}")


def _repair(args: argparse.Namespace) -> int:
    kb, assumptions, dataset, patient = _patient(args)
    _report_problems(dataset.problems_for(patient.id), "this patient's files")
    if args.max < 1:
        raise KbError("--max must be at least 1")
    answer = repair(patient, kb, assumptions, args.as_of, args.max)
    if args.format == "json":
        _json(answer.as_dict())
    else:
        _emit(repair_text(answer))
    return 0


def _ask(args: argparse.Namespace) -> int:
    """One question in free wording: the chat's answer (kb.presentation.answers), shown with the CLI's renderers."""
    kb = load_knowledge()
    assumptions = assume(args.assume)
    dataset = _data(args)
    reply = ask(args.question, kb, dataset, assumptions, args.as_of)
    if reply.kind == "error":
        raise KbError(reply.headline)
    if reply.kind in ("clarify", "help"):
        if args.format == "json":
            _json(
                {"question": reply.text, "kind": reply.kind, "answer": reply.headline, "options": list(reply.options)}
            )
        else:
            _emit(reply.headline + "".join(f"\n  - {option}" for option in reply.options))
        return 0
    if reply.described is not None:  # a patient described in words: never a stored one
        _described_text(reply) if args.format != "json" else _json(
            {"question": reply.text, "kind": "described", "answer": reply.headline, **reply.described.as_dict()}
        )
        return 0
    question = reply.question
    assert question is not None
    if args.format != "json":
        _emit(reply.understood + "".join(f" ({note})" for note in question.notes))
    if reply.review is not None:
        _json(reply.review.as_dict()) if args.format == "json" else _emit(review_markdown(reply.review, kb))
    elif reply.kind == "criterion":
        _criteria(argparse.Namespace(**{**vars(args), "criterion": question.criterion, "assumptions": False}))
    elif reply.whatif is not None:
        _json(reply.whatif.as_dict()) if args.format == "json" else _whatif_text(reply.whatif)
    elif reply.repairs is not None:
        if reply.kind == "until" and reply.repairs.until is None:
            _emit(f"{question.patient} is not eligible now ({reply.repairs.verdict}); what would make it eligible:")
        _json(reply.repairs.as_dict()) if args.format == "json" else _emit(repair_text(reply.repairs))
    elif reply.kind == "protocol":  # kb.presentation.protocol_questions: the rule's numbers, no patient
        _json({"answer": reply.headline, "details": list(reply.details), "rows": list(reply.rows)}) if (
            args.format == "json"
        ) else _emit("\n".join([reply.headline, *(f"  {line}" for line in reply.details)]))
    elif reply.kind == "check" and reply.assessment is not None:
        _check(args, reply.assessment, dataset)
    elif reply.kind in ("blockers", "why") and reply.assessment is not None:
        _why(argparse.Namespace(**{**vars(args), "criterion": question.criterion}), reply.assessment, kb, dataset)
    else:  # screening, data to collect: a headline and a table
        _json({"answer": reply.headline, "rows": list(reply.rows)}) if args.format == "json" else _emit(
            "\n".join([reply.headline, *(_row_text(reply.kind, r) for r in reply.rows)])
        )
    return 0


def _described_text(reply: Answer) -> None:
    """What the words were read as, what blocks, what depends on a day, what is still open."""
    found = reply.described
    assert found is not None
    lines = [reply.understood, reply.headline, *(f"  {line}" for line in reply.details)]
    lines += [f"  {r.id} {r.status}: {r.message}" for r in found.blocking]
    opened = found.open
    if opened:
        lines.append("still open: " + ", ".join(r.id for r in opened))
    lines += [f"  to collect {g.item}: {g.detail}" for g in found.assessment.to_collect]
    _emit("\n".join(lines))


def _row_text(kind: str, row: dict[str, str]) -> str:
    if kind == "missing":
        return f"  {row['item']}: {row['detail']}"
    return f"  {row['patient']:<6} {row['verdict']:<11} {row['blocking']}"


def _screen(args: argparse.Namespace) -> int:
    """Every patient of the data set: verdict, cohorts, blockers, open criteria, the funnel.
    A CSV file set on disk is screened streamed, with the same rows and problems."""

    def progress(done: int, total: int) -> None:
        if sys.stderr.isatty():
            width = 30
            filled = width * done // max(total, 1)
            print(f"\r  screening [{'#' * filled}{'.' * (width - filled)}] {done}/{total}", end="", file=sys.stderr)

    kb = load_knowledge()
    assumptions = assume(args.assume)
    screening = screen(
        args.facts,
        kb,
        assumptions,
        args.as_of,
        input_format=args.input_format,
        encoding=args.encoding,
        engine=args.engine,
        spark_master=args.spark_master,
        spark_scratch=args.spark_scratch,
        omop_schema=args.omop_schema,
        dates=args.dates,
        diagnoses_complete=args.diagnoses_complete,
        progress=progress,
    )
    if sys.stderr.isatty():
        print(file=sys.stderr)
    _report_problems(screening.problems, screening.name)
    rows, stages = screening.rows, screening.funnel()
    if args.out is not None:
        write_screening(Path(args.out), rows, stages)
        print(f"kb: report written to {args.out}", file=sys.stderr)
    if args.format == "json":
        _json(screening.as_dict())
        return 0
    eligible = [r.patient for r in rows if r.verdict == Verdict.ELIGIBLE]
    _emit(f"{len(eligible)} of {len(rows)} eligible: {', '.join(eligible[:50]) or 'none'}")
    if len(eligible) > 50:
        _emit(f"  … and {len(eligible) - 50} more (the report lists them all: --out, --json)")
    counts = {v: sum(1 for r in rows if r.verdict == v) for v in Verdict}
    _emit("verdicts: " + ", ".join(f"{v} {n}" for v, n in counts.items() if n or v != Verdict.NOT_EVALUATED))
    for row in rows:
        if row.verdict == Verdict.NOT_EVALUATED:
            _emit(f"  {row.patient:<6} not_evaluated  {row.reason}")
        elif row.verdict != Verdict.ELIGIBLE:
            when = f"  (eligible from {row.earliest})" if row.earliest else ""
            listed = ", ".join(row.blocking) or "; ".join(
                part for part in ("unknown " + ", ".join(row.unknown[:6]) if row.unknown else "", row.reason) if part
            )
            _emit(f"  {row.patient:<6} {row.verdict:<11} {listed}{when}")
    # the last stage holds everyone not ruled out: say that it mixes eligible and needs-data
    held = f" ({counts[Verdict.ELIGIBLE]} eligible, {counts[Verdict.NEEDS_DATA]} need data)"
    _emit("attrition: " + " → ".join(f"{name} {n}" for name, n in stages) + held)
    return 0


def _review(args: argparse.Namespace) -> int:
    kb = load_knowledge()
    assumptions = assume(args.assume)
    result = review_protocol(kb, _data(args), assumptions)
    if args.format == "json":
        _json(result.as_dict())
    else:
        _emit(review_markdown(result, kb))
    return 0


def _indent(text: str, prefix: str) -> str:
    return "\n".join(prefix + line for line in text.splitlines())


def _coverage(args: argparse.Namespace) -> int:
    checked = check_coverage(load_knowledge(), args.facts, args.encoding, args.mutate)
    report, mutation, failing = checked.report, checked.mutation, checked.failing
    if args.format == "json":
        _json(checked.as_dict())
    else:
        _emit(coverage_text(report, len(checked.outcomes), len(PROTOCOL_ITEMS)))
        for o in failing:
            _emit(f"vignette {o.vignette.patient_id} does not get what its story says: {'; '.join(o.mismatches)}")
        if mutation is not None:
            _emit(
                f"mutation check: {mutation.total} mutants, {mutation.killed} killed, kill ratio {mutation.ratio:.1%}"
            )
            for mutant in mutation.survivors:
                _emit(f"  survived: {mutant.describe()}")
    return 0 if checked.ok else 1


def _lint(args: argparse.Namespace) -> int:
    problems = lint(args.path)
    shown = Path(args.path)
    if shown.is_absolute() and shown.is_relative_to(Path.cwd()):
        shown = shown.relative_to(Path.cwd())
    if args.format == "json":
        _json(
            {
                "problems": [
                    {"path": p.path, "line": p.row, "col": p.column, "message": p.message, "hint": p.hint}
                    for p in problems
                ]
            }
        )
    else:
        for problem in problems:
            _emit(str(problem))
        _emit(f"{len(problems)} problem(s) in {shown}" if problems else f"{shown}: no problems")
    return 1 if problems else 0


#: one handler per command: each reads its arguments, calls the library (`kb.api`), prints
COMMANDS: dict[str, Callable[[argparse.Namespace], int]] = {
    "patients": _patients,
    "check": _check_command,
    "why": _why_command,
    "criteria": _criteria,
    "lint": _lint,
    "whatif": _whatif,
    "repair": _repair,
    "screen": _screen,
    "ask": _ask,
    "review": _review,
    "coverage": _coverage,
}


if __name__ == "__main__":
    raise SystemExit(main())
