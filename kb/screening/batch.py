"""Set-at-a-time evaluation: every criterion for thousands of patients in one pass.

Per-patient pyDatalog pays for a fresh logic, the compiled rules and a query per criterion
for each patient (tens of milliseconds). For a clinic export the same checked rule AST is
compiled to SQL (`kb/language/sql.py`) and DuckDB derives each relation for a whole chunk of
patients in one join. The fact base is the one the engine reads (`build_facts`), so both
paths see the same facts, and the statuses become verdicts through the same function
(`evaluation.decide_statuses`). pyDatalog stays the reference: a patient with a number the SQL
columns cannot hold exactly is evaluated by it, and the tests prove both paths identical.

Chunks go to worker processes (both cores); messages and proof trees are not built here:
they come from the per-patient path when someone asks why.
"""

from __future__ import annotations

import gc
import multiprocessing
import os
import tempfile
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from functools import lru_cache
from multiprocessing.pool import AsyncResult
from pathlib import Path
from typing import Any, TypeVar

import duckdb
import pyarrow as pa

from kb.catalogue.assumptions import AssumptionSet
from kb.catalogue.knowledge import KnowledgeBase
from kb.factbase.build import assumption_facts, build_facts
from kb.language.engine import EngineError, Fact
from kb.language.sql import (
    DECIMAL_TYPES,
    SqlPlan,
    SqlUnsupported,
    column_type,
    compile_sql,
    fits_exactly,
    table_name,
)
from kb.reasoning.evaluation import (
    CohortVerdict,
    applicable_criteria,
    assess,
    decide_statuses,
    status_from_truth,
)
from kb.records.patients import Patient
from kb.records.units import warm_units
from kb.status import Status, Truth, Verdict

__all__ = [
    "CHUNK",
    "TRUTH_LETTER",
    "BatchVerdict",
    "ChunkFacts",
    "Decided",
    "Decider",
    "FactTables",
    "arrow_facts",
    "chunk_facts",
    "connect",
    "decide_chunk",
    "evaluate_loaded",
    "evaluate_many",
    "make_decider",
    "predicates",
    "reference_verdict",
    "sql_plan",
    "truth_key",
]

#: Patients per DuckDB pass, at most: each pass runs ~200 statements at ~2 ms each whatever
#: the chunk's size, so chunks are as large as this allows; it keeps a worker's facts to a
#: few hundred MB.
CHUNK = 5000


@dataclass(frozen=True)
class BatchVerdict:
    """One patient's verdict and every criterion's status, without messages or proofs."""

    patient_id: str
    verdict: Verdict
    cohorts: tuple[CohortVerdict, ...]
    #: every criterion's status, in catalogue order (`criteria` holds the ids, shared by all
    #: rows of a chunk: 100,000 patients do not need 100,000 dictionaries)
    status_codes: tuple[Status, ...]
    criteria: tuple[str, ...]
    engine: str  # "sql", or "pydatalog" for a patient the SQL path cannot hold exactly

    @property
    def statuses(self) -> dict[str, Status]:
        return dict(zip(self.criteria, self.status_codes, strict=True))


_PLANS: dict[int, tuple[KnowledgeBase, SqlPlan | None]] = {}
_DECIDERS: dict[tuple[int, int], tuple[KnowledgeBase, AssumptionSet, Decider]] = {}


def sql_plan(kb: KnowledgeBase) -> SqlPlan | None:
    """The SQL for every criterion of this knowledge base (compiled once per process), or
    None if a rule uses what SQL cannot evaluate exactly: then pyDatalog screens everyone."""
    cached = _PLANS.get(id(kb))
    if cached is None or cached[0] is not kb:
        try:
            plan: SqlPlan | None = compile_sql(kb.program, predicates(kb))
        except SqlUnsupported:
            plan = None
        cached = (kb, plan)
        _PLANS[id(kb)] = cached
    return cached[1]


def predicates(kb: KnowledgeBase) -> list[str]:
    return sorted({c.predicate for c in kb.criteria if c.predicate})


def make_decider(kb: KnowledgeBase, assumptions: AssumptionSet) -> Decider:
    cached = _DECIDERS.get((id(kb), id(assumptions)))
    if cached is None or cached[0] is not kb or cached[1] is not assumptions:
        if len(_DECIDERS) > 16:  # an app session tries many assumption sets: keep the recent ones
            _DECIDERS.clear()
        cached = (kb, assumptions, Decider(kb, assumptions))
        _DECIDERS[(id(kb), id(assumptions))] = cached
    return cached[2]


@lru_cache(maxsize=200_000)
def _exact_text(value: object) -> str | None:
    """A number as decimal text DuckDB casts exactly, or None if DECIMAL(38, 28) cannot hold it.

    Remembered by value (results repeat): equal numbers such as 1.0 and 1 share a text,
    which casts to the same DECIMAL."""
    number = Decimal(value) if isinstance(value, int) else value
    return format(number, "f") if isinstance(number, Decimal) and fits_exactly(number) else None


class FactTables:
    """The input facts of a chunk, relation by relation, ready to become DuckDB tables."""

    def __init__(self, plan: SqlPlan) -> None:
        self.plan = plan
        self.types = {name: [t for _, t in decl.params] for name, decl in plan.inputs.items()}
        self.rows: dict[str, list[tuple[object, ...]]] = {name: [] for name in self.types}

    def add(self, facts: Iterable[Fact]) -> None:
        rows, selective = self.rows, self.plan.selective
        for relation, args in facts:
            target = rows.get(relation)
            if target is None:
                continue  # a relation no criterion needs
            wanted = selective.get(relation)
            if wanted is None or args[1] in wanted:  # else no rule can match it
                target.append(args)

    def misfits(self) -> set[str]:
        """Patients with a number DECIMAL(38, 28) cannot hold exactly (their rows are dropped,
        for the reference engine to decide); a reference fact that does not fit drops all."""
        out: set[str] = set()
        for relation, types in self.types.items():
            for i, type_name in enumerate(types):
                if type_name not in DECIMAL_TYPES:
                    continue
                texts = [_exact_text(row[i]) for row in self.rows[relation]]
                if None in texts:
                    if types[0] != "patient":
                        raise _NotExact(relation)
                    out.update(
                        str(row[0]) for row, text in zip(self.rows[relation], texts, strict=True) if text is None
                    )
        if out:
            for relation, types in self.types.items():
                if types and types[0] == "patient":
                    self.rows[relation] = [row for row in self.rows[relation] if row[0] not in out]
        return out

    def arrow(self, relation: str) -> pa.Table | None:
        """One input relation as Arrow columns c0, c1 … (None when it holds no fact)."""
        found = self.rows[relation]
        types = self.types[relation]
        if types and types[0] != "patient":
            found = list(set(found))  # reference facts: every patient repeats them
        return arrow_facts(types, found)

    def load(self, con: duckdb.DuckDBPyConnection) -> None:
        """One table per input relation (Arrow columns; numbers cast from exact decimal text)."""
        for relation in self.types:
            con.execute(self.plan.empty_table(relation))
        self.insert(con)

    def insert(self, con: duckdb.DuckDBPyConnection) -> None:
        """Add the facts to the input tables already in `con` (some filled set-at-a-time)."""
        for relation, types in self.types.items():
            table = self.arrow(relation)
            if table is None:
                continue
            con.register("incoming", table)
            casts = ", ".join(f"CAST(c{i} AS {column_type(t)})" for i, t in enumerate(types))
            con.execute(f"INSERT INTO {table_name(relation)} SELECT {casts} FROM incoming")
            con.unregister("incoming")


def arrow_facts(types: Sequence[str], rows: Sequence[tuple[object, ...]]) -> pa.Table | None:
    """Facts of one relation as Arrow columns: a day as int64, a number as its exact decimal
    text (each SQL engine casts it to DECIMAL(38, 28): no float ever holds it), the rest as
    text. None when there is no fact."""
    if not rows:
        return None
    columns = []
    for i, column in enumerate(zip(*rows, strict=True)):
        if types[i] in DECIMAL_TYPES:
            columns.append(pa.array([_exact_text(v) for v in column], pa.string()))
        else:
            columns.append(pa.array(column, pa.int64() if types[i] == "day" else pa.string()))
    return pa.table({f"c{i}": col for i, col in enumerate(columns)})


class _NotExact(Exception):
    """A reference fact (no patient column) holds a number SQL cannot hold exactly."""


#: a derived truth as one letter: yes, no, not applicable
TRUTH_LETTER = {Truth.YES: "y", Truth.NO: "n", Truth.NA: "a"}


def _truths(con: duckdb.DuckDBPyConnection, predicates: list[str]) -> Iterator[tuple[str, dict[str, str]]]:
    """Each patient's derived truths: predicate key (one character per predicate) → letter.

    One grouped query packs them into a string per patient, read with C-speed slicing:
    reading every table row by row would cost more than deriving them. The pairs are packed
    in no particular order (sorting them took eight times as long as the rest of the query).
    A predicate with two truths for one patient is a defect of the rules and is reported."""
    letters = " ".join(f"WHEN '{truth}' THEN '{letter}'" for truth, letter in TRUTH_LETTER.items())
    union = " UNION ALL ".join(
        f"SELECT '{truth_key(k)}' AS k, c0, CASE c1 {letters} ELSE '?' END AS t FROM {table_name(p)}"
        for k, p in enumerate(predicates)
    )
    query = f"SELECT c0, string_agg(k || t, '') FROM ({union}) GROUP BY c0"
    for pid, packed in con.execute(query).fetchall():
        found = dict(zip(packed[0::2], packed[1::2], strict=True))
        if len(found) * 2 != len(packed):
            keys = packed[0::2]
            twice = sorted({predicates[ord(k) - _BASE] for k in keys if keys.count(k) > 1})
            raise EngineError(f"the rules derive two truths for {', '.join(twice)}({pid}, _)")
        yield pid, found


_BASE = 0x100  # keys are characters from here on: clear of quotes and of the letters


def truth_key(k: int) -> str:
    return chr(_BASE + k)


def _run(con: duckdb.DuckDBPyConnection, plan: SqlPlan) -> None:
    for step in plan.steps:
        for statement in step.create:
            con.execute(statement)
        while step.repeat:  # a recursive component: insert until nothing is new
            before = _count(con, step.relations)
            for statement in step.repeat:
                con.execute(statement)
            if _count(con, step.relations) == before:
                break


def _count(con: duckdb.DuckDBPyConnection, relations: tuple[str, ...]) -> int:
    total = 0
    for relation in relations:
        row = con.execute(f"SELECT count(*) FROM {table_name(relation)}").fetchone()
        total += int(row[0]) if row else 0
    return total


class Decider:
    """Statuses and verdicts from the truths the SQL derived, as `assess` decides them.

    What does not depend on the truths (which criteria apply to a set of cohorts, the
    not-applicable and manual statuses) is worked out once per set of cohorts, and a
    verdict once per distinct list of statuses.
    """

    def __init__(self, kb: KnowledgeBase, assumptions: AssumptionSet) -> None:
        self.kb, self.assumptions = kb, assumptions
        self.ids = tuple(c.id for c in kb.criteria)
        self._index = {p: truth_key(k) for k, p in enumerate(predicates(kb))}
        self._templates: dict[tuple[str, ...], tuple[list[Status], list[tuple[int, str, dict[str, Status]]]]] = {}
        self._verdicts: dict[tuple[tuple[str, ...], tuple[Status, ...]], tuple[Verdict, tuple[CohortVerdict, ...]]] = {}

    def _template(self, cohorts: tuple[str, ...]) -> tuple[list[Status], list[tuple[int, str, dict[str, Status]]]]:
        """The fixed statuses for these cohorts, and (position, predicate key, truth letter →
        status) of those the rules decide."""
        if cohorts not in self._templates:
            applicable = applicable_criteria(self.kb, list(cohorts), self.assumptions)
            fixed: list[Status] = []
            decided = []
            for n, crit in enumerate(self.kb.criteria):
                if crit.id not in applicable:
                    fixed.append(Status.NOT_APPLICABLE)
                elif crit.predicate is None or (crit.manual_unless and self.assumptions[crit.manual_unless] == "none"):
                    fixed.append(Status.MANUAL)
                else:
                    fixed.append(Status.UNKNOWN)  # unless a truth is derived
                    statuses = {letter: status_from_truth(crit, truth) for truth, letter in TRUTH_LETTER.items()}
                    decided.append((n, self._index[crit.predicate], statuses))
            self._templates[cohorts] = (fixed, decided)
        return self._templates[cohorts]

    def __call__(self, patient_id: str, cohorts: tuple[str, ...], truths: dict[str, str]) -> BatchVerdict:
        fixed, decided = self._template(cohorts)
        codes = list(fixed)
        for n, key, statuses_of in decided:
            letter = truths.get(key)
            if letter is not None:
                codes[n] = statuses_of[letter]
        statuses = tuple(codes)
        if (cohorts, statuses) not in self._verdicts:
            if len(self._verdicts) > 100_000:
                self._verdicts.clear()
            self._verdicts[cohorts, statuses] = decide_statuses(cohorts, self.kb.criteria, statuses, self.assumptions)
        verdict, verdicts = self._verdicts[cohorts, statuses]
        return BatchVerdict(patient_id, verdict, verdicts, statuses, self.ids, "sql")


@contextmanager
def _collector_paused() -> Iterator[None]:
    """A chunk allocates a million small tuples and frees them together: the cyclic collector
    would walk them again and again (a third of the time), and they hold no cycles."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


@dataclass
class ChunkFacts:
    """A chunk's input facts as tables, and who the SQL cannot decide.

    `cohorts`: each patient the SQL decides → its trial diagnoses; `reference`: the patients
    with a number the SQL columns cannot hold exactly (pyDatalog decides them)."""

    tables: FactTables | None  # None: the rules themselves need the reference engine
    cohorts: dict[str, tuple[str, ...]]
    reference: list[Patient]


def chunk_facts(
    patients: Sequence[Patient],
    kb: KnowledgeBase,
    assumptions: AssumptionSet,
    as_of: date | None,
    today: date | None,
    reference_facts: bool = True,
) -> ChunkFacts:
    """The facts of a chunk of patients, as every SQL engine (DuckDB, Spark) reads them
    (without the assumptions' facts if not `reference_facts`: the tables already hold them)."""
    plan = sql_plan(kb)
    if plan is None:
        return ChunkFacts(None, {}, list(patients))
    tables = FactTables(plan)
    if reference_facts:
        tables.add(assumption_facts(assumptions))
    cohorts: dict[str, tuple[str, ...]] = {}
    for patient in patients:
        base = build_facts(patient, kb, assumptions, as_of, today, lean=True, wanted=plan.selective)
        tables.add(base.facts)
        cohorts[patient.id] = tuple(sorted({str(a[1]) for r, a in base.facts if r == "cohort_diagnosis"}))
    try:
        misfits = tables.misfits()  # a number DECIMAL(38, 28) cannot hold: the reference engine decides
    except _NotExact:
        return ChunkFacts(None, {}, list(patients))
    for pid in misfits:
        del cohorts[pid]
    return ChunkFacts(tables, cohorts, [p for p in patients if p.id in misfits])


def _evaluate_chunk(
    patients: list[Patient],
    kb: KnowledgeBase,
    assumptions: AssumptionSet,
    as_of: date | None,
    today: date | None,
) -> list[BatchVerdict]:
    """The chunk's verdicts, in its order. It empties `patients` once their facts are built,
    and the facts once DuckDB holds them: a worker's patients (a hundred megabytes for a
    chunk read from disk) and its fact rows are not kept through the SQL as well."""
    facts = chunk_facts(patients, kb, assumptions, as_of, today)
    order = [p.id for p in patients]
    patients.clear()  # the reference patients are kept in `facts.reference`
    plan = sql_plan(kb)
    con = connect()
    try:
        if facts.cohorts and facts.tables is not None and plan is not None:
            facts.tables.load(con)
            facts.tables.rows.clear()
        return decide_chunk(con, facts.cohorts, facts.reference, order, kb, assumptions, as_of, today)
    finally:
        con.close()


def connect() -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB for one worker's chunk: one thread (a worker per core), and what
    it spills to disk under the system's temporary folder (DuckDB's default is `.tmp` in the
    working directory, the user's folder)."""
    spill = Path(tempfile.gettempdir()) / "kb-duckdb-spill"
    return duckdb.connect(config={"threads": 1, "temp_directory": str(spill)})


def decide_chunk(
    con: duckdb.DuckDBPyConnection,
    cohorts: dict[str, tuple[str, ...]],
    reference: Sequence[Patient],
    order: Sequence[str],
    kb: KnowledgeBase,
    assumptions: AssumptionSet,
    as_of: date | None,
    today: date | None,
) -> list[BatchVerdict]:
    """The verdicts of a chunk whose input tables `con` holds (for the patients of `cohorts`;
    nothing to derive when it holds none), `reference`'s by pyDatalog, in `order`."""
    plan = sql_plan(kb)
    decider = make_decider(kb, assumptions)
    out: dict[str, BatchVerdict] = {}
    if cohorts and plan is not None:
        _run(con, plan)
        for pid, found in _truths(con, predicates(kb)):
            out[pid] = decider(pid, cohorts[pid], found)
    for pid in cohorts.keys() - out.keys():  # no criterion derived anything: every one unknown
        out[pid] = decider(pid, cohorts[pid], {})
    for patient in reference:
        out[patient.id] = reference_verdict(patient, kb, assumptions, as_of, today)
    return [out[pid] for pid in order]


def reference_verdict(
    patient: Patient, kb: KnowledgeBase, assumptions: AssumptionSet, as_of: date | None, today: date | None
) -> BatchVerdict:
    result = assess(patient, kb, assumptions, as_of, explain="status", today=today)
    ids = tuple(c.id for c in kb.criteria)
    return BatchVerdict(
        patient.id, result.verdict, result.cohorts, tuple(r.status for r in result.criteria), ids, "pydatalog"
    )


class Decided(list[BatchVerdict]):
    """A chunk's verdicts, decided by its loader (`evaluate_loaded`): a chunk read and
    screened set-at-a-time from its files never becomes `Patient` objects at all."""


#: what a worker needs besides its job: the patients (a sequence the workers slice) or a
#: loader of chunks, and the rest
_Shared = tuple[
    Sequence[Patient] | None,
    Callable[[Any], tuple[Sequence[Patient] | Decided, Any]] | None,
    KnowledgeBase,
    AssumptionSet,
    date | None,
    date | None,
]
#: set just before the fork (inherited, never pickled), taken off right after it
_SHARED: list[_Shared] = []


#: a BatchVerdict as plain tuples, which unpickle several times faster than dataclasses
#: (the parent reads every worker's results on its own)
_Plain = tuple[
    str, Verdict, tuple[tuple[str, Verdict, tuple[str, ...], tuple[str, ...], str], ...], tuple[Status, ...], str
]
#: what a worker sends back: what its loader said of the chunk, the criteria ids, the rows
_Result = tuple[Any, tuple[str, ...], list[_Plain]]


def _worker(job: object) -> _Result:
    return _work(_SHARED[-1], job)


def _work(shared: _Shared, job: object) -> _Result:
    patients, load, kb, assumptions, as_of, today = shared
    extra: Any = None
    if load is not None:  # the worker reads its own chunk (from disk): the parent never holds it
        chunk, extra = load(job)
        if isinstance(chunk, Decided):  # read and decided set-at-a-time by the loader itself
            return extra, tuple(c.id for c in kb.criteria), [_flat(r) for r in chunk]
        job = list(chunk)
        del chunk  # `_evaluate_chunk` lets the patients go once their facts are built
    elif isinstance(job, tuple):  # bounds into the inherited sequence
        assert patients is not None
        job = list(patients[job[0] : job[1]])
    assert isinstance(job, list)
    with _collector_paused():
        rows = _evaluate_chunk(job, kb, assumptions, as_of, today)
    return extra, tuple(c.id for c in kb.criteria), [_flat(r) for r in rows]


def _flat(r: BatchVerdict) -> _Plain:
    return (r.patient_id, r.verdict, tuple(_plain(c) for c in r.cohorts), r.status_codes, r.engine)


def _plain(c: CohortVerdict) -> tuple[str, Verdict, tuple[str, ...], tuple[str, ...], str]:
    return (c.cohort, c.verdict, c.blocking, c.unknown, c.note)


def _unpack(result: _Result) -> list[BatchVerdict]:
    _, ids, plain = result
    return [
        BatchVerdict(pid, verdict, tuple(CohortVerdict(*c) for c in cohorts), codes, ids, engine)
        for pid, verdict, cohorts, codes, engine in plain
    ]


def _jobs(patients: Iterable[Patient], size: int) -> Iterator[tuple[int, int] | list[Patient]]:
    if isinstance(patients, Sequence):
        for start in range(0, len(patients), size):
            yield (start, min(start + size, len(patients)))
        return
    chunk: list[Patient] = []
    for patient in patients:
        chunk.append(patient)
        if len(chunk) == size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def _results(jobs: Iterable[object], workers: int, shared: _Shared) -> Iterator[_Result]:
    """Each job's result, in the jobs' order: in this process, or from `workers` forked
    processes with at most two jobs each in flight."""
    if workers <= 1 or "fork" not in multiprocessing.get_all_start_methods():
        for job in jobs:
            yield _work(shared, job)
        return
    sql_plan(shared[2])  # compiled before the fork, so that every worker inherits it
    warm_units()  # the unit registry too (a second or more per process otherwise)
    _SHARED.append(shared)
    try:
        pool = multiprocessing.get_context("fork").Pool(workers)
    finally:
        _SHARED.pop()
    with pool:
        pending: deque[AsyncResult[_Result]] = deque()
        for job in jobs:
            pending.append(pool.apply_async(_worker, (job,)))
            if len(pending) >= 2 * workers:
                yield pending.popleft().get()
        while pending:
            yield pending.popleft().get()


def evaluate_many(
    patients: Iterable[Patient],
    kb: KnowledgeBase,
    assumptions: AssumptionSet,
    as_of: date | None = None,
    today: date | None = None,
    workers: int | None = None,
    chunk: int = CHUNK,
    progress: Callable[[int], None] | None = None,
) -> Iterator[BatchVerdict]:
    """Every patient's verdict and statuses, in input order, as `kb check` would give them.

    A sequence is shared with the workers by the fork (they take their chunks themselves);
    any other iterable is read as it is needed, never held whole. At most two chunks per
    worker are in flight. `workers`: processes (default: the cores, at most 2 here; 1 runs
    in this process). `progress(done)` after each chunk.
    """
    workers = workers if workers is not None else min(2, os.cpu_count() or 1)
    if isinstance(patients, Sequence):  # an even share per worker, up to `chunk`
        chunk = max(1, min(chunk, -(-len(patients) // max(workers, 1))))
    done = 0
    shared = (patients if isinstance(patients, Sequence) else None, None, kb, assumptions, as_of, today)
    for result in _results(_jobs(patients, chunk), workers, shared):
        rows = _unpack(result)
        done += len(rows)
        yield from rows
        if progress is not None:
            progress(done)


_J = TypeVar("_J")
_T = TypeVar("_T")


def evaluate_loaded(
    jobs: Sequence[_J],
    load: Callable[[_J], tuple[Sequence[Patient] | Decided, _T]],
    kb: KnowledgeBase,
    assumptions: AssumptionSet,
    as_of: date | None = None,
    today: date | None = None,
    workers: int | None = None,
) -> Iterator[tuple[_T, list[BatchVerdict]]]:
    """For each job, in order, what `load(job)` said of its chunk and its patients' verdicts.

    Each worker loads its own chunks (`load` is inherited by the fork, never pickled; what
    it returns beside the patients must pickle): reading files is most of a screening's
    work, and done in the parent it left one core idle and every patient pickled twice.
    A loader that screened its chunk itself (set-at-a-time from the files) returns its
    verdicts as `Decided` instead of patients."""
    workers = workers if workers is not None else min(2, os.cpu_count() or 1)
    for result in _results(jobs, workers, (None, load, kb, assumptions, as_of, today)):
        yield result[0], _unpack(result)
