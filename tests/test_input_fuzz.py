"""Bad input never becomes a silent wrong answer (generated cases: tests/input_fuzz.py).

For every damaged file set, table, bundle, database, change and question: no traceback (only
a `KbError`, which the CLI turns into exit 2), every problem located (file, row or entry,
column), every row the damage did not touch kept, and no patient whose records may be
incomplete reported `eligible`. A rejected row is unknown, not absent: a patient with one is
eligible only if the patient is eligible both without the row and with the row as it was
(the two ends of what the row could have said). FUZZ picks the size (fast in `make test`,
ci in `make fuzz`, deep by hand); a red case names its seed and number.
"""

from __future__ import annotations

import contextlib
import io
import json
import time
from collections.abc import Iterable
from dataclasses import replace
from datetime import date
from functools import cache
from pathlib import Path

import duckdb
import pytest

from kb.catalogue.assumptions import resolve_assumptions
from kb.catalogue.knowledge import KnowledgeBase, load_knowledge
from kb.cli import main
from kb.errors import KbError, Problem
from kb.presentation.answers import Answer, answer
from kb.presentation.questions import parse_question
from kb.reasoning.whatif import parse_change, what_if
from kb.records.importers import load_files
from kb.records.importers.omop import read_omop
from kb.records.importers.wide import read_wide
from kb.records.patients import DEMO_DATASET, Dataset, Patient, Source, load_dataset, load_uploaded
from kb.screening.batch import evaluate_many
from tests.fhir_bundles import bundle
from tests.input_fuzz import (
    DEMO_IDS,
    HOSTILE,
    SEED,
    FileSet,
    counts,
    csv_file_set,
    fhir_document,
    hostile_change,
    hostile_question,
    rng,
)
from tests.test_importers_omop import build_omop

pytestmark = pytest.mark.fuzz

TODAY = date(2026, 12, 1)
SHARDS = 4  # the file-set suite in parts, so that the workers share it


@cache
def knowledge() -> KnowledgeBase:
    return load_knowledge()


@cache
def demo() -> Dataset:
    return load_dataset(DEMO_DATASET, knowledge().vocabulary, TODAY)


@cache
def demo_verdicts() -> dict[str, str]:
    return verdicts(demo().patients.values())


def verdicts(patients: Iterable[Patient]) -> dict[str, str]:
    assumptions = resolve_assumptions()
    return {
        v.patient_id: v.verdict for v in evaluate_many(list(patients), knowledge(), assumptions, workers=1, today=TODAY)
    }


def located(problem: Problem) -> bool:
    """A file and a row, entry or column in it (an import names its entry after the file:
    'site.duckdb measurement (measurement_id 5)', 'bundle.json (Observation/abc)')."""
    entry = problem.path.endswith(")") and " (" in problem.path
    return bool(problem.path) and (problem.row is not None or problem.column is not None or entry)


def file_level(problem: Problem) -> bool:
    """A problem that may hide rows of any patient (the file, or its header, could not be read),
    as opposed to one row's (a row of no patient id is one row, if anyone's), or a column read
    as empty."""
    return (
        problem.patient_id is None
        and "read as empty" not in problem.hint
        and not (problem.column == "patient_id" and isinstance(problem.row, int) and problem.row >= 2)
    )


def anyones(problem: Problem) -> bool:
    """A row with no patient id (or one too long to read): it may be any patient's."""
    return problem.patient_id is None and isinstance(problem.row, int) and problem.row >= 2 and not file_level(problem)


def sources(patient: Patient) -> set[Source]:
    kept = {o.source for o in patient.observations} | {e.source for e in patient.events}
    kept |= {a.source for a in patient.attestations} | {u.source for u in patient.unreadable}
    return kept | ({patient.source} if patient.source else set())


def _load(files: dict[str, bytes]) -> Dataset | KbError:
    try:
        return load_uploaded(files, knowledge().vocabulary, TODAY)
    except KbError as exc:
        return exc


# -- the CSV file set -------------------------------------------------------------------------


@pytest.mark.parametrize("shard", range(SHARDS))
def test_damaged_file_sets_keep_the_rest_and_never_pass_a_patient_they_hide(shard: int, tmp_path: Path) -> None:
    failures: list[str] = []
    loaded: list[tuple[FileSet, Dataset]] = []
    for number in range(shard, counts("csv"), SHARDS):
        case = csv_file_set(number)
        try:
            found = _load(case.files())
        except Exception as exc:
            failures.append(f"{case.describe()}: {type(exc).__name__}: {exc!s:.200}")
            continue
        if isinstance(found, KbError):
            if "patients.csv" not in case.lost and not any(f == "patients.csv" for f, _ in case.changed):
                failures.append(f"{case.describe()}: the whole set was refused ({found!s:.200})")
            continue
        failures += [f"{case.describe()}: not located: {p}" for p in found.problems if not located(p)]
        failures += _rows_kept(case, found)
        loaded.append((case, found))
    failures += _no_false_eligible(loaded)
    if shard == 0:
        failures += _through_the_cli(loaded[:3], tmp_path)
    assert not failures, f"{len(failures)} failure(s); the first:\n" + "\n".join(failures[:8])


def _rows_kept(case: FileSet, found: Dataset) -> list[str]:
    """Every row the damage did not touch is in the data set (read, or kept as unreadable)."""
    lost: list[str] = []
    broken = {p.path for p in found.problems if file_level(p)}
    for file, rows in case.original.items():
        if file in case.lost or file not in case.headers or file in broken:
            continue
        for i in range(len(rows)):
            number = i + 2
            at = case.headers[file].index("patient_id") if "patient_id" in case.headers[file] else -1
            if (
                at < 0
                or (file, number) in case.changed
                or ("patients.csv", _patient_row(case, rows[i][at])) in case.changed
            ):
                continue
            pid = rows[i][at]
            patient = found.patients.get(pid)
            if patient is None or Source(file, number) not in sources(patient):
                lost.append(f"{file} row {number} of {pid}")
    return [f"{case.describe()}: lost {len(lost)} untouched row(s): {', '.join(lost[:4])}"] if lost else []


def _patient_row(case: FileSet, pid: str) -> int:
    header = case.headers["patients.csv"]
    at = header.index("patient_id") if "patient_id" in header else 0
    for i, row in enumerate(case.original["patients.csv"]):
        if row and row[at] == pid:
            return i + 2
    return 0


def _no_false_eligible(loaded: list[tuple[FileSet, Dataset]]) -> list[str]:
    """A patient whose records may be incomplete is never eligible: not after a file-level
    problem, and after a rejected row only if both completions of the row are eligible."""
    out: list[str] = []
    renamed = [replace(p, id=f"{case.number}|{p.id}") for case, found in loaded for p in found.patients.values()]
    after = verdicts(renamed)
    completions: list[Patient] = []
    owed: list[tuple[str, str]] = []  # (completion id, what it checks)
    for case, found in loaded:
        broken = [p for p in found.problems if file_level(p)]
        for pid in found.patients:
            if after[f"{case.number}|{pid}"] != "eligible":
                continue
            if broken:
                out.append(f"{case.describe()}: {pid} eligible although {broken[0]}")
                continue
            rejected: dict[str, set[int]] = {}  # rows set aside: the completions leave them out or restore them
            emptied: dict[str, set[int]] = {}  # rows kept with a field read as empty: restored only
            for p in found.problems:
                mine = p.patient_id == pid or anyones(p)
                if mine and isinstance(p.row, int) and p.row >= 2 and p.path in case.headers:
                    (emptied if "read as empty" in p.hint else rejected).setdefault(p.path, set()).add(p.row)
            if not rejected and not emptied:
                continue
            touched = {f: rejected.get(f, set()) | emptied.get(f, set()) for f in {*rejected, *emptied}}
            ends = [("as it was", case.files(restore=touched))]
            if rejected:
                ends.append(("without", case.files(without=rejected, restore=emptied)))
            for label, files in ends:
                other = _load(files)
                if isinstance(other, KbError) or pid not in other.patients:
                    out.append(f"{case.describe()}: {pid} eligible with rejected rows {touched}; {label}: not loaded")
                    continue
                key = f"{case.number}|{pid}|{label}"
                completions.append(replace(other.patients[pid], id=key))
                owed.append((key, f"{case.describe()}: {pid} eligible with rejected rows {touched}"))
    if completions:
        decided = verdicts(completions)
        out += [
            f"{what}, but not eligible {key.rsplit('|', 1)[1]} ({decided[key]})"
            for key, what in owed
            if decided[key] != "eligible"
        ]
    return out


def _through_the_cli(loaded: list[tuple[FileSet, Dataset]], tmp_path: Path) -> list[str]:
    """The same files on disk through `kb check` and `kb screen`: exit 0 or 2, no traceback,
    and the verdicts of the library."""
    out = []
    for case, found in loaded:
        folder = tmp_path / str(case.number)
        folder.mkdir()
        for file, data in case.files().items():
            (folder / file).write_bytes(data)
        for argv in (
            ["screen", "--facts", str(folder), "--json"],
            *(["check", pid, "--facts", str(folder), "--json"] for pid in found.patients),
        ):
            stdout, stderr = io.StringIO(), io.StringIO()
            with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
                code = main(argv)
            if code not in (0, 2) or "Traceback" in stderr.getvalue():
                out.append(f"{case.describe()}: kb {' '.join(argv[:2])} exit {code}: {stderr.getvalue()[-300:]}")
    return out


# -- wide tables, FHIR, OMOP ------------------------------------------------------------------

_WIDE = (
    "patient_id,sex,birth_date,enrolment_date,weight_kg,Platelets [10^9/L],Creatinine [umol/L],"
    "Creatinine ULN [umol/L],HBsAg,HBsAg date,diagnosis codes\n"
    "W1,female,1985-03-03,2026-11-24,60,120,80,97,negative,2026-11-17,M32.1\n"
    "W2,male,1970-01-01,2026-11-24,80,45,120,97,negative,2026-11-17,M34.1\n"
    "W3,female,1990-06-30,2026-11-24,55,210,60,97,positive,2026-11-17,M35.0\n"
)


def test_damaged_wide_tables_are_read_or_refused_with_a_location() -> None:
    failures = []
    lines = _WIDE.splitlines()
    for number in range(counts("wide")):
        r = rng("wide", number)
        cells = [line.split(",") for line in lines]
        steps = []
        for _ in range(r.randint(1, 3)):
            row, column = r.randrange(len(cells)), r.randrange(len(cells[0]))
            value = r.choice(HOSTILE).replace(",", ";").replace("\n", " ")
            cells[row][column] = value
            steps.append(f"line {row + 1} column {column + 1} := {value[:30]!r}")
        data = "\n".join(",".join(c) for c in cells).encode()
        if r.random() < 0.2:
            cut = r.randrange(len(data))
            data = data[:cut] + b"\xff" + data[cut:]
            steps.append(f"byte 0xff at {cut}")
        what = f"wide table {number} (FUZZ_SEED={SEED}): " + "; ".join(steps)
        try:
            found = read_wide(data, "clinic.csv", knowledge().vocabulary).dataset(knowledge().vocabulary, TODAY)
        except KbError:
            continue
        except Exception as exc:
            failures.append(f"{what}: {type(exc).__name__}: {exc!s:.200}")
            continue
        failures += [f"{what}: not located: {p}" for p in found.problems if not located(p)]
    assert not failures, f"{len(failures)} failure(s); the first:\n" + "\n".join(failures[:8])


@cache
def _demo_bundle() -> dict[str, object]:
    patients = [demo().patients[pid] for pid in DEMO_IDS[:5]]
    return bundle(patients, knowledge().vocabulary)


def test_damaged_fhir_bundles_are_read_or_refused_with_a_location() -> None:
    failures = []
    for number in range(counts("fhir")):
        data, steps, _touched = fhir_document(number, _demo_bundle())
        what = f"FHIR bundle {number} (FUZZ_SEED={SEED}): " + "; ".join(steps)
        try:
            found = load_files({"bundle.json": data}, knowledge().vocabulary, TODAY)
        except KbError:
            continue
        except Exception as exc:
            failures.append(f"{what}: {type(exc).__name__}: {exc!s:.200}")
            continue
        failures += [f"{what}: not located: {p}" for p in found.problems if not located(p)]
    assert not failures, f"{len(failures)} failure(s); the first:\n" + "\n".join(failures[:8])


_OMOP_DAMAGE = (
    "ALTER TABLE person DROP COLUMN year_of_birth",
    "ALTER TABLE person ALTER COLUMN year_of_birth TYPE VARCHAR; UPDATE person SET year_of_birth = 'nineteen'",
    "ALTER TABLE measurement ALTER COLUMN measurement_id DROP NOT NULL; UPDATE measurement SET measurement_id = NULL",
    "ALTER TABLE measurement DROP COLUMN value_as_number",
    "ALTER TABLE measurement DROP COLUMN measurement_date",
    "UPDATE measurement SET value_as_number = 1e300",
    "UPDATE measurement SET value_as_number = 0",
    "UPDATE measurement SET measurement_date = DATE '0001-01-01'",
    "UPDATE measurement SET range_high = 1e-300",
    "UPDATE person SET year_of_birth = 99999",
    "UPDATE person SET person_id = NULL",
    "UPDATE condition_occurrence SET condition_source_value = '=HYPERLINK(\"x\")'",
    "DROP TABLE drug_exposure",
    "DROP TABLE person; CREATE VIEW person AS SELECT 1 AS person_id, 8532 AS gender_concept_id, 1985 AS year_of_birth,"
    " 1 AS month_of_birth, 1 AS day_of_birth, NULL::DATE AS birth_datetime",
    "ALTER TABLE drug_exposure ALTER COLUMN drug_exposure_start_date TYPE VARCHAR;"
    " UPDATE drug_exposure SET drug_exposure_start_date = 'soon'",
    "INSERT INTO measurement VALUES (9, 1, 3024929, DATE '9999-12-31', -5, NULL, 9444, NULL, NULL, NULL)",
)


def test_damaged_omop_databases_are_read_or_refused_with_a_location(tmp_path: Path) -> None:
    failures = []
    for number in range(counts("omop")):
        r = rng("omop", number)
        steps = r.sample(_OMOP_DAMAGE, r.randint(1, 2))
        path = build_omop(tmp_path / f"omop{number}.duckdb")
        con = duckdb.connect(str(path))
        try:
            for statement in steps:
                try:
                    con.execute(statement)
                except duckdb.Error:
                    continue
        finally:
            con.close()
        what = f"OMOP database {number} (FUZZ_SEED={SEED}): " + "; ".join(steps)
        try:
            found = read_omop(path, knowledge().vocabulary).dataset(knowledge().vocabulary, TODAY)
        except KbError:
            continue
        except Exception as exc:
            failures.append(f"{what}: {type(exc).__name__}: {exc!s:.200}")
            continue
        failures += [f"{what}: not located: {p}" for p in found.problems if not located(p)]
    assert not failures, f"{len(failures)} failure(s); the first:\n" + "\n".join(failures[:8])


# -- what-if changes and chat questions -------------------------------------------------------


def test_hostile_what_if_changes_are_refused_by_name_or_answered() -> None:
    failures = []
    patient = demo().patients["P001"]
    applied = 0
    for number in range(counts("changes")):
        text = hostile_change(rng("changes", number))
        try:
            change = parse_change(text, knowledge().vocabulary)
        except KbError:
            continue
        except Exception as exc:
            failures.append(f"change {text[:80]!r}: {type(exc).__name__}: {exc!s:.200}")
            continue
        if applied >= counts("whatifs"):
            continue
        applied += 1
        try:
            what_if(patient, [change], knowledge(), resolve_assumptions())
        except KbError:
            continue
        except Exception as exc:
            failures.append(f"what if {text[:80]!r}: {type(exc).__name__}: {exc!s:.200}")
    assert not failures, f"{len(failures)} failure(s); the first:\n" + "\n".join(failures[:8])


def test_hostile_questions_are_parsed_and_answered_without_a_traceback() -> None:
    failures = []
    ids = tuple(demo().patients)
    slowest = (0.0, "")
    for number in range(counts("parsed")):
        text, _named = hostile_question(rng("question", number), ids)
        started = time.perf_counter()
        try:
            parse_question(text, knowledge(), ids, "P001", TODAY)
        except KbError:
            pass
        except Exception as exc:
            failures.append(f"question {text[:80]!r}: {type(exc).__name__}: {exc!s:.200}")
        slowest = max(slowest, (time.perf_counter() - started, text[:60]))
    assert not failures, f"{len(failures)} failure(s); the first:\n" + "\n".join(failures[:8])
    # a guard against catastrophic backtracking (seconds to hours), not a speed target: loose
    # enough for a loaded 2-core machine, where ordinary parsing has taken 4 s
    assert slowest[0] < 10.0, f"parsing took {slowest[0]:.1f} s: {slowest[1]!r}"


def test_hostile_questions_get_an_answer_about_the_patient_they_name() -> None:
    failures = []
    ids = tuple(demo().patients)
    for number in range(counts("answered")):
        text, named = hostile_question(rng("answer", number), ids)
        if "review" in text.casefold() or "would make" in text.casefold():
            text = text.replace("eview", "ead").replace("would make", "makes")  # the slow intents are tested elsewhere
        try:
            reply = answer(text, knowledge(), demo(), current_patient="P001", today=TODAY)
        except Exception as exc:
            failures.append(f"question {text[:80]!r}: {type(exc).__name__}: {exc!s:.200}")
            continue
        if not isinstance(reply, Answer) or not reply.headline:
            failures.append(f"question {text[:80]!r}: no headline")
        patient = reply.question.patient if reply.question else None
        if named and patient not in (None, named):
            failures.append(f"question {text[:80]!r} names {named} but was answered about {patient}")
    assert not failures, f"{len(failures)} failure(s); the first:\n" + "\n".join(failures[:8])


def test_the_generated_cases_are_the_seeded_ones() -> None:
    """A red case is reproduced from its seed and number alone."""
    assert csv_file_set(7).files() == csv_file_set(7).files()
    assert json.dumps(_demo_bundle()) and fhir_document(3, _demo_bundle()) == fhir_document(3, _demo_bundle())
