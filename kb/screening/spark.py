"""Screening on Apache Spark: the same compiled rules, for cohorts beyond one machine.

The checked rule AST is compiled once more by `kb/language/sql.py`, in its Spark dialect,
to the very SELECTs DuckDB runs; nothing here knows a criterion, so a rule in a new `.dl`
file reaches Spark as it reaches DuckDB and pyDatalog. The facts are the ones DuckDB reads,
built by local worker processes a part at a time into DuckDB's input tables (patients
already read: `build_facts` per patient; a CSV file set: set-at-a-time from its records,
kb/screening/spark_files.py) and written from there as Parquet, one folder per input
relation, read by the session as tables: on a cluster, every partition is a slice of
patients and the joins are distributed by patient.

Spark inlines a view into every query that reads it, so a plan over 225 derived relations
would grow with each one: a relation two queries read, and every predicate, is materialised
(`localCheckpoint`) as soon as it is derived, the relations of one dependency level
concurrently; one read by a single query stays a view (`_stored`); a recursive component is
iterated to its fixpoint with each iteration materialised. Arithmetic stays exact as in
DuckDB: `number` columns are DECIMAL(38, 28) with precision loss switched off (a sum that
does not fit is an error, never a rounded value), days are integers, ANSI mode on. A patient
with a number those columns cannot hold is screened by pyDatalog, as in DuckDB.

`pyspark` is an optional extra (`pip install .[spark]`, Java 17): importing this module
without it is fine; screening with it says what to install.
"""

from __future__ import annotations

import multiprocessing
import os
import re
import shutil
import tempfile
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Any

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq

from kb.catalogue.assumptions import AssumptionSet
from kb.catalogue.knowledge import KnowledgeBase
from kb.errors import KbError
from kb.language.engine import EngineError
from kb.language.sql import DECIMAL_TYPES, NUMBER_SCALE, SPARK, SqlPlan, SqlUnsupported, compile_sql, table_name
from kb.language.syntax import Declaration
from kb.records.importers.omop import COLUMNS, OMOP_TABLES
from kb.records.patients import Patient
from kb.screening.batch import (
    CHUNK,
    TRUTH_LETTER,
    BatchVerdict,
    arrow_facts,
    chunk_facts,
    connect,
    make_decider,
    predicates,
    reference_verdict,
    sql_plan,
    truth_key,
)

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

__all__ = [
    "SparkPart",
    "SparkUnavailable",
    "catalog_omop_tables",
    "check_schema_name",
    "evaluate_spark",
    "evaluate_spark_parts",
    "patients_part",
    "spark_available",
    "spark_plan",
    "spark_session",
    "write_tables",
]

#: what the session must hold for the rules' arithmetic to be DuckDB's, exactly
_EXACT = {
    "spark.sql.ansi.enabled": "true",  # an overflow or a bad cast is an error, not a NULL
    "spark.sql.decimalOperations.allowPrecisionLoss": "false",  # DECIMAL sums keep 28 places
    "spark.sql.session.timeZone": "UTC",
}


class SparkUnavailable(KbError):
    """Spark cannot run here: pyspark or Java is missing, or the master cannot be reached."""


def spark_available() -> bool:
    """Whether pyspark is installed and a Java runtime is on the PATH (or JAVA_HOME)."""
    try:
        import pyspark  # noqa: F401
    except ImportError:
        return False
    java_home = os.environ.get("JAVA_HOME")
    return bool(shutil.which("java") or (java_home and (Path(java_home) / "bin" / "java").exists()))


def spark_session(master: str | None = None) -> SparkSession:
    """The session that screens: `master` (spark://host:7077, local[N]) or, when none is
    given, Spark Connect at SPARK_REMOTE if set, else local[*] over this machine's cores.
    An existing session is reused (starting one costs seconds), with the exact-arithmetic
    settings applied to it."""
    if not spark_available():
        raise SparkUnavailable(
            "the Spark engine needs pyspark and Java 17: pip install '.[spark]' and a JRE "
            "(Debian: apt-get install openjdk-17-jre-headless)"
        )
    from pyspark.sql import SparkSession

    builder = SparkSession.builder.appName("kb screen")
    remote = os.environ.get("SPARK_REMOTE")
    if master is None and remote:
        builder = builder.remote(remote)
    else:
        builder = builder.master(master or "local[*]")
        builder = builder.config("spark.ui.enabled", "false").config("spark.ui.showConsoleProgress", "false")
        builder = builder.config("spark.driver.memory", os.environ.get("KB_SPARK_DRIVER_MEMORY", "2g"))
    for key, value in _EXACT.items():
        builder = builder.config(key, value)
    try:
        session = builder.getOrCreate()
    except Exception as exc:  # the JVM did not start, or the master refused us
        raise SparkUnavailable(f"Spark could not start a session at {master or remote or 'local[*]'}: {exc}") from exc
    if master is not None and session.sparkContext.master != master:
        raise SparkUnavailable(
            f"a Spark session at {session.sparkContext.master} is already running in this process; "
            f"stop it before screening on {master}"
        )
    for key, value in _EXACT.items():
        session.conf.set(key, value)
    session.sparkContext.setLogLevel("ERROR")
    return session


_PLANS: dict[int, tuple[KnowledgeBase, SqlPlan | None]] = {}


def spark_plan(kb: KnowledgeBase) -> SqlPlan | None:
    """The rules compiled to Spark SQL (once per process), or None if SQL cannot hold them."""
    cached = _PLANS.get(id(kb))
    if cached is None or cached[0] is not kb:
        try:
            plan: SqlPlan | None = compile_sql(kb.program, predicates(kb), SPARK)
        except SqlUnsupported:
            plan = None
        cached = (kb, plan)
        _PLANS[id(kb)] = cached
    return cached[1]


@dataclass
class SparkPart:
    """What a worker returns for one part of the patients, its facts written as Parquet:
    its patients in order, those the SQL decides with their cohorts, the verdicts of those
    pyDatalog decided (a number SQL cannot hold, or rules it cannot), the facts with no
    patient column (the assumptions: the same in every part), and what the part reports
    (`problems`, passed on to the caller as they are)."""

    order: list[str]
    cohorts: list[tuple[str, tuple[str, ...]]]
    reference: list[BatchVerdict]
    shared: dict[str, list[tuple[object, ...]]]
    problems: list[Any] = field(default_factory=list)


#: how the workers write a part (set before the fork, inherited, never pickled)
_CONTEXT: list[tuple[Callable[[Any, Path], SparkPart], Path]] = []


def _build(job: Any) -> SparkPart:
    write, scratch = _CONTEXT[-1]
    return write(job, scratch)


def write_tables(
    con: duckdb.DuckDBPyConnection, plan: SqlPlan, scratch: Path, part: int
) -> dict[str, list[tuple[object, ...]]]:
    """The input tables of one part, as DuckDB holds them (`plan.inputs`), written as one
    Parquet file per relation under scratch/<relation>/ (numbers as DECIMAL(38, 28), days as
    integers: exact, as the tables are); the relations with no patient column are returned
    instead, to be written once for all parts."""
    shared: dict[str, list[tuple[object, ...]]] = {}
    for relation, decl in plan.inputs.items():
        table = table_name(relation)
        if decl.params and decl.params[0][1] != "patient":
            shared[relation] = con.execute(f"SELECT DISTINCT * FROM {table}").fetchall()
            continue
        found = con.execute(f"SELECT count(*) FROM {table}").fetchone()
        if not found or not found[0]:
            continue
        folder = scratch / relation
        folder.mkdir(exist_ok=True)
        target = str(folder / f"part-{part:06d}.parquet").replace("'", "''")  # a path is a literal
        con.execute(f"COPY {table} TO '{target}' (FORMAT parquet)")
    return shared


def patients_part(
    patients: Sequence[Patient],
    part: int,
    scratch: Path,
    kb: KnowledgeBase,
    assumptions: AssumptionSet,
    as_of: date | None,
    today: date | None,
) -> SparkPart:
    """A part of patients already read: their facts by `build_facts` (`chunk_facts`), put in
    DuckDB's input tables and written from there, as every part is."""
    facts = chunk_facts(patients, kb, assumptions, as_of, today)
    reference = [reference_verdict(p, kb, assumptions, as_of, today) for p in facts.reference]
    plan = sql_plan(kb)
    shared: dict[str, list[tuple[object, ...]]] = {}
    if facts.tables is not None and plan is not None and facts.cohorts:
        con = connect()
        try:
            facts.tables.load(con)
            shared = write_tables(con, plan, scratch, part)
        finally:
            con.close()
    return SparkPart([p.id for p in patients], list(facts.cohorts.items()), reference, shared)


def _chunks(patients: Iterable[Patient], size: int) -> Iterator[tuple[int, list[Patient]]]:
    chunk: list[Patient] = []
    n = 0
    for patient in patients:
        chunk.append(patient)
        if len(chunk) == size:
            yield n, chunk
            n, chunk = n + 1, []
    if chunk:
        yield n, chunk


def _built(
    jobs: Iterable[Any], workers: int, write: Callable[[Any, Path], SparkPart], target: Path
) -> Iterator[SparkPart]:
    """Each part's facts, built by `workers` processes (one: in this one, by `write` itself,
    so that two screenings in one process never share it), in order."""
    if workers <= 1 or "fork" not in multiprocessing.get_all_start_methods():
        for job in jobs:
            yield write(job, target)
        return
    _CONTEXT.append((write, target))  # what the forked workers inherit, read by `_build`
    try:
        with multiprocessing.get_context("fork").Pool(workers) as pool:
            yield from pool.imap(_build, jobs)
    finally:
        _CONTEXT.pop()


def _spark_type(type_name: str) -> Any:
    from pyspark.sql import types as T

    if type_name == "day":
        return T.LongType()
    if type_name in DECIMAL_TYPES:
        return T.DecimalType(38, NUMBER_SCALE)
    return T.StringType()


def _schema(decl: Declaration) -> Any:
    from pyspark.sql import types as T

    return T.StructType([T.StructField(f"c{i}", _spark_type(t)) for i, (_, t) in enumerate(decl.params)])


def _view(frame: DataFrame, relation: str) -> None:
    frame.createOrReplaceTempView(f"r_{relation}")


def _load_inputs(session: SparkSession, plan: SqlPlan, scratch: Path) -> None:
    """Each input relation as a view over its Parquet folder, numbers cast exactly from
    their decimal text (an empty relation: an empty frame of its types)."""
    from pyspark.sql import functions as F

    for relation, decl in plan.inputs.items():
        folder = scratch / relation
        if not folder.exists():
            _view(session.createDataFrame([], _schema(decl)), relation)
            continue
        frame = session.read.parquet(str(folder))
        casts = [F.col(f"c{i}").cast(_spark_type(t)).alias(f"c{i}") for i, (_, t) in enumerate(decl.params)]
        _view(frame.select(*casts), relation)


def _named(plan: SqlPlan) -> dict[int, dict[int, int]]:
    """Each step's earlier steps it reads, with how many times its SQL names each (by the
    relations' quoted table names: `r_x` never matches inside `r_x_y`)."""
    produced = {relation: n for n, step in enumerate(plan.steps) for relation in step.relations}
    out: dict[int, dict[int, int]] = {}
    for n, step in enumerate(plan.steps):
        text = " ".join(sql for _, selects in step.selects for sql in selects)
        found: dict[int, int] = {}
        for name, m in produced.items():
            times = text.count(table_name(name, SPARK)) if m < n else 0
            if times:
                found[m] = found.get(m, 0) + times
        out[n] = found
    return out


def _reads(plan: SqlPlan) -> dict[int, set[int]]:
    """Each step's earlier steps it reads."""
    return {n: set(found) for n, found in _named(plan).items()}


def _levels(plan: SqlPlan) -> list[list[int]]:
    """The steps grouped by dependency depth: a level reads only earlier levels, so its
    relations are derived concurrently (Spark runs jobs from several threads)."""
    reads = _reads(plan)
    depth: list[int] = []
    for n in range(len(plan.steps)):
        depth.append(1 + max((depth[r] for r in reads[n]), default=-1))
    levels: list[list[int]] = [[] for _ in range(max(depth, default=-1) + 1)]
    for n, d in enumerate(depth):
        levels[d].append(n)
    return levels


def _stored(plan: SqlPlan, names: Iterable[str]) -> set[int]:
    """The steps whose rows are stored: a predicate (the final query of truths reads them
    all), a relation named twice or more in the queries after it (by two queries, or twice
    in one: an inlined view would be computed each time), a recursive component. A relation
    named once is left a view, which Spark inlines where it is read: computed once either
    way, without a job and stored rows of its own. Measured on 100,000 patients read from
    files: storing every relation took as long (113 s against 112 s deriving); leaving the
    predicates views too made the final query 11 times slower (78 s against 7 s on 10,000)."""
    named: dict[int, int] = {}
    for found in _named(plan).values():
        for m, times in found.items():
            named[m] = named.get(m, 0) + times
    truths = set(names)
    return {
        n
        for n, step in enumerate(plan.steps)
        if step.recursive or named.get(n, 0) >= 2 or any(name in truths for name in step.relations)
    }


def _derive(
    session: SparkSession, plan: SqlPlan, decls: dict[str, Declaration], names: Iterable[str]
) -> list[DataFrame]:
    """Every derived relation registered as a view, one dependency level at a time. One that
    two queries read is materialised as it is derived (`localCheckpoint`: its rows stored,
    its plan cut), so that no plan grows with the relations before it and nothing is
    computed twice; the relations of a level are derived concurrently (Spark runs jobs from
    several threads). One read once stays a view, inlined where it is read (`_stored`). A
    recursive component goes to its fixpoint, each iteration materialised. The frames, to
    free."""
    frames: list[DataFrame] = []
    stored = _stored(plan, names)

    def derive(n: int) -> None:
        step = plan.steps[n]
        if step.recursive:
            frames.extend(_fixpoint(session, step.selects, decls))
            return
        for name, selects in step.selects:
            if not selects:
                frame = session.createDataFrame([], _schema(decls[name]))
            else:  # UNION: set semantics, as in Datalog
                frame = session.sql(" UNION ".join(selects))
                if n in stored:
                    frame = frame.localCheckpoint()
                    frames.append(frame)
            _view(frame, name)

    with ThreadPoolExecutor(max_workers=_THREADS) as pool:
        for level in _levels(plan):
            list(pool.map(derive, level))
    return frames


#: jobs submitted at once: enough to keep the cores busy while the driver plans the next
_THREADS = 4


def _fixpoint(
    session: SparkSession, selects: tuple[tuple[str, tuple[str, ...]], ...], decls: dict[str, Declaration]
) -> list[DataFrame]:
    """A recursive component to its fixpoint (naive, as DuckDB's inserts until nothing is
    new), each iteration materialised."""
    frames: list[DataFrame] = []
    current = {name: session.createDataFrame([], _schema(decls[name])) for name, _ in selects}
    for name, frame in current.items():
        _view(frame, name)
    grown = True
    while grown:
        grown = False
        for name, rules in selects:
            new = session.sql(" UNION ".join(rules)).subtract(current[name]).localCheckpoint()
            if new.count():
                grown = True
                # coalesced: a union adds up its inputs' partitions, iteration after iteration
                grown_frame = current[name].union(new).coalesce(max(1, session.sparkContext.defaultParallelism))
                current[name] = grown_frame.localCheckpoint()
                frames.append(current[name])
                _view(current[name], name)
    return frames


def _isolated(session: SparkSession) -> SparkSession:
    """A session of its own on the same cluster: its views (r_…) and settings are this
    screening's, so two screenings, or the caller's own work, never see each other's."""
    try:
        own = session.newSession()
    except Exception:  # Spark Connect has no newSession: the caller's session it is
        own = session
    for key, value in _EXACT.items():
        own.conf.set(key, value)
    return own


def _tune(session: SparkSession, patients: int) -> None:
    """Shuffle partitions for this many patients: one per core, one more per 100,000
    patients per core beyond the first (100,000 patients from files on local[2]: 140 s
    with 2 partitions, 155 s with 4, 170 s with 8: a task costs more than its share of the
    rows). Adaptive execution is off: it re-plans each of the small queries after every
    stage, which costs more on the driver than it saves."""
    cores = max(1, session.sparkContext.defaultParallelism)
    session.conf.set("spark.sql.shuffle.partitions", str(cores * (1 + patients // (100_000 * cores))))
    session.conf.set("spark.sql.adaptive.enabled", "false")


def _truths(session: SparkSession, names: list[str]) -> dict[str, str]:
    """Each patient's derived truths packed as DuckDB's path packs them (a key character
    per predicate, a letter per truth, sorted): one row per patient to bring back."""
    letters = " ".join(f"WHEN '{truth}' THEN '{letter}'" for truth, letter in TRUTH_LETTER.items())
    union = " UNION ALL ".join(
        f"SELECT c0, concat('{truth_key(k)}', CASE c1 {letters} ELSE '?' END) AS kt FROM {table_name(p, SPARK)}"
        for k, p in enumerate(names)
    )
    query = f"SELECT c0, concat_ws('', array_sort(collect_list(kt))) AS packed FROM ({union}) GROUP BY c0"
    table = session.sql(query).toArrow()
    return dict(zip(table.column("c0").to_pylist(), table.column("packed").to_pylist(), strict=True))


def _unpack(pid: str, packed: str, names: list[str]) -> dict[str, str]:
    found = dict(zip(packed[0::2], packed[1::2], strict=True))
    if len(found) * 2 != len(packed):
        keys = packed[0::2]
        twice = sorted({names[ord(k) - ord(truth_key(0))] for k in keys if keys.count(k) > 1})
        raise EngineError(f"the rules derive two truths for {', '.join(twice)}({pid}, _)")
    return found


def evaluate_spark(
    patients: Iterable[Patient],
    kb: KnowledgeBase,
    assumptions: AssumptionSet,
    as_of: date | None = None,
    today: date | None = None,
    *,
    session: SparkSession | None = None,
    master: str | None = None,
    workers: int | None = None,
    chunk: int = CHUNK,
    scratch: Path | str | None = None,
    progress: Callable[[int], None] | None = None,
) -> Iterator[BatchVerdict]:
    """Every patient's verdict and statuses, in input order, as `evaluate_many` gives them,
    derived by Spark: `session`, else `spark_session(master)`.

    The facts are built by `workers` local processes (default: the cores, at most 2), a
    chunk of patients at a time, into a scratch folder of Parquet, then Spark derives every
    relation for all patients at once (`evaluate_spark_parts`). `progress(done)` as the
    facts of each chunk are built."""

    def write(job: tuple[int, list[Patient]], folder: Path) -> SparkPart:
        return patients_part(job[1], job[0], folder, kb, assumptions, as_of, today)

    done = 0

    def tick(part: SparkPart) -> None:
        nonlocal done
        done += len(part.order)
        if progress is not None:
            progress(done)

    yield from evaluate_spark_parts(
        _chunks(patients, chunk),
        write,
        kb,
        assumptions,
        session=session,
        master=master,
        workers=workers,
        scratch=scratch,
        on_part=tick,
    )


def evaluate_spark_parts(
    jobs: Iterable[Any],
    write: Callable[[Any, Path], SparkPart],
    kb: KnowledgeBase,
    assumptions: AssumptionSet,
    *,
    session: SparkSession | None = None,
    master: str | None = None,
    workers: int | None = None,
    scratch: Path | str | None = None,
    on_part: Callable[[SparkPart], None] | None = None,
) -> Iterator[BatchVerdict]:
    """The verdicts of every part's patients, part after part in `jobs`' order, derived by
    Spark: `write(job, folder)` builds a part's facts and writes them under `folder` (run by
    `workers` forked processes, default the cores, at most 2: a chunk of patients, or of a
    file set read set-at-a-time), `on_part` sees each part as it is built (its problems).

    The Parquet goes to a temporary folder under `scratch` (default: this machine's
    temporary folder, which the executors of `local[*]` or of a cluster on this host read;
    a cluster on other hosts needs a folder every executor sees at the same path, e.g. an
    NFS mount or a Databricks volume); it is removed at the end."""
    plan = spark_plan(kb)
    decider = make_decider(kb, assumptions)
    workers = workers if workers is not None else min(2, os.cpu_count() or 1)
    order: list[str] = []
    cohorts: dict[str, tuple[str, ...]] = {}
    reference: dict[str, BatchVerdict] = {}
    shared: dict[str, set[tuple[object, ...]]] = {}
    if scratch is not None and not Path(scratch).is_dir():
        raise KbError(f"--spark-scratch {scratch}: not a folder (the executors read the facts from there)")
    with tempfile.TemporaryDirectory(prefix="kb-spark-", dir=scratch) as folder:
        target = Path(folder)
        for built in _built(jobs, workers, write, target):
            order.extend(built.order)
            cohorts.update(built.cohorts)
            reference.update((v.patient_id, v) for v in built.reference)
            for relation, rows in built.shared.items():
                shared.setdefault(relation, set()).update(rows)
            if on_part is not None:
                on_part(built)
        found: dict[str, str] = {}
        if plan is not None and cohorts:
            for relation, distinct in shared.items():
                table = arrow_facts([t for _, t in plan.inputs[relation].params], sorted(distinct, key=repr))
                if table is not None:
                    (target / relation).mkdir(exist_ok=True)
                    pq.write_table(table, target / relation / "part-shared.parquet")
            spark = _isolated(session if session is not None else spark_session(master))
            _load_inputs(spark, plan, target)
            _tune(spark, len(cohorts))
            frames = _derive(spark, plan, kb.program.declarations, predicates(kb))
            found = _truths(spark, predicates(kb))
            del frames  # the stored rows go with them (Spark's cleaner frees unreferenced blocks)
    names = predicates(kb)
    for pid in order:
        if pid in reference:
            yield reference[pid]
        else:
            packed = found.get(pid)
            yield decider(pid, cohorts[pid], _unpack(pid, packed, names) if packed else {})


#: a schema of the session's catalog, as `kb screen --omop-schema` takes it (catalog.schema at most)
_SCHEMA = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)?")


def check_schema_name(schema: str) -> None:
    """Refuse a schema name that is not one (before any session starts for it)."""
    if not _SCHEMA.fullmatch(schema):
        raise KbError(f"--omop-schema {schema!r}: a schema name is letters, digits and _ (catalog.schema at most)")


def catalog_omop_tables(session: SparkSession, schema: str) -> dict[str, pa.Table]:
    """The OMOP CDM tables of `schema` in the session's catalog (a Hive metastore, Unity
    Catalog, `global_temp` …) as Arrow, only the columns the OMOP importer reads, for
    `read_omop_tables`. The name is checked before it reaches Spark: it becomes a table name,
    never SQL text."""
    check_schema_name(schema)
    out: dict[str, pa.Table] = {}
    for table in OMOP_TABLES:
        name = f"{schema}.{table}"
        if not session.catalog.tableExists(name):
            continue
        frame = session.table(name)
        wanted = {c.casefold() for c in COLUMNS[table]}
        out[table] = frame.select(*[c for c in frame.columns if c.casefold() in wanted]).toArrow()
    if "person" not in out:
        raise KbError(f"--omop-schema {schema}: the Spark catalog has no table {schema}.person (an OMOP CDM schema?)")
    return out
