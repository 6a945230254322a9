"""Screening throughput and memory: DuckDB and Spark against per-patient pyDatalog (issues 8,
16 and 20), every figure in one run.

Patients are the seeded synthetic cohort of `kb/quality/synthetic.py` (vignettes of all six
cohorts, about a third with complete data, the rest with realistic gaps, results moved onto
the rules' bounds).

- *Generated* (`--sizes`, default 1,000, 10,000, 100,000): up to 10,000 the patients are made
  first (not timed) and screened by DuckDB's set-at-a-time path (`kb.screening.batch`, both
  cores) in this process, median of --runs; above, once in a child process of its own, the
  patients made by the workers as they go (their making is inside that figure).
- *Read from files* (`--files`, default 10,000 and 100,000): a CSV file set of N patients
  (the demo's vignettes copied under new ids, about 73 rows each) is written to a temporary
  folder first (not timed), then screened as `kb screen --facts FOLDER` does (`screen_folder`:
  chunks of 5,000 streamed from disk, each read, its facts built and its rules derived in one
  DuckDB by a worker, kb/screening/file_chunk.py) in a child process; median of --runs up to
  10,000, above of --runs-big (default 1). The copies repeat the vignettes' values, which
  flatters the SQL reader (it judges each distinct value once): with every value varied by
  up to ±10%, reading 10,000 patients took 2.7 s against 13–24 s for the Python loader (one
  measurement beside other work), where these copies read 15.7× faster (benchmarks/csv_sql.py).
- *Spark* (`--spark-sizes`, default 100,000; `--spark-master`, default local[*]): the same
  file set screened as `kb screen --facts FOLDER --engine spark` does (`screen_folder` with
  engine "spark": the workers read each chunk and build its facts set-at-a-time as DuckDB's
  path does, write them as Parquet, and Spark derives the rules for every patient at once,
  kb/screening/spark_files.py), in a child process; the session is started before the clock
  (its start is printed apart). 1,000,000 is opt-in (`--spark-sizes 100000,1000000`; give the
  driver room: KB_SPARK_DRIVER_MEMORY=6g).
- *Per-patient pyDatalog* (`assess`, statuses only) screens the first --reference (1,000) of
  the generated patients, each checked to get the same statuses and verdict as DuckDB; every
  figure above is also given as its ratio to this one.

Peak memory of a child is the peak of the RSS summed over it and every process it starts
(the fork pool's workers, Spark's JVM), sampled from /proc every 0.1 s.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from kb.catalogue.assumptions import resolve_assumptions
from kb.catalogue.knowledge import load_knowledge
from kb.quality.synthetic import SyntheticCohort
from kb.reasoning.evaluation import assess
from kb.records.patients import DEMO_DATASET, load_dataset
from kb.screening.batch import evaluate_many
from kb.screening.screen import screen_folder

SEED = 8
#: the children import `kb` from this tree (not whichever one is installed)
_ENV = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
_FILES = ("patients.csv", "observations.csv", "events.csv", "attestations.csv")


def _cohort() -> tuple[SyntheticCohort, Any, Any]:
    kb = load_knowledge()
    assumptions = resolve_assumptions()
    return SyntheticCohort.from_vignettes(load_dataset(), kb, assumptions, seed=SEED), kb, assumptions


# --- what a child process measures (each prints one JSON line) ------------------------------


def _child_generated(count: int) -> None:
    """Screen `count` patients made on demand (their making is timed too)."""
    cohort, kb, assumptions = _cohort()
    start = time.perf_counter()
    verdicts = Counter(row.verdict for row in evaluate_many(cohort.sequence(count), kb, assumptions))
    print(json.dumps({"seconds": time.perf_counter() - start, "patients": count, "verdicts": verdicts}))


def _child_files(folder: str) -> None:
    """Screen a file set on disk streamed, as `kb screen --facts FOLDER` does."""
    kb, assumptions = load_knowledge(), resolve_assumptions()
    start = time.perf_counter()
    screened = screen_folder(kb, folder, assumptions)
    elapsed = time.perf_counter() - start
    verdicts = Counter(row.verdict for row in screened.rows)
    print(json.dumps({"seconds": elapsed, "patients": len(screened.rows), "verdicts": verdicts}))


def _child_spark(folder: str, master: str) -> None:
    """Screen a file set on disk with the Spark engine, as `kb screen --facts FOLDER --engine
    spark` does (`screen_folder`: chunks read and their facts built set-at-a-time by the
    workers, written as Parquet, the rules derived by Spark); the session is started first."""
    from kb.screening.spark import spark_session

    kb, assumptions = load_knowledge(), resolve_assumptions()
    start = time.perf_counter()
    session = spark_session(master)
    started = time.perf_counter() - start
    start = time.perf_counter()
    screened = screen_folder(kb, folder, assumptions, engine="spark", spark_master=master)
    elapsed = time.perf_counter() - start
    session.stop()
    verdicts = Counter(row.verdict for row in screened.rows)
    print(json.dumps({"seconds": elapsed, "start": started, "patients": len(screened.rows), "verdicts": verdicts}))


# --- measuring a child ------------------------------------------------------------------------


def _tree_rss(root: int) -> int:
    """RSS in bytes summed over `root` and its descendants, from /proc."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                fields = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            children.setdefault(int(fields[1]), []).append(int(entry))
    total, todo = 0, [root]
    while todo:
        pid = todo.pop()
        todo.extend(children.get(pid, []))
        try:
            pages = int(Path(f"/proc/{pid}/statm").read_text().split()[1])
        except OSError:
            continue
        total += pages * os.sysconf("SC_PAGE_SIZE")
    return total


def _measure(*argv: str) -> tuple[dict[str, Any], int]:
    """Run this script with `argv` in a child: its JSON line, and the peak of the RSS summed
    over its process tree (bytes)."""
    child = subprocess.Popen([sys.executable, __file__, *argv], stdout=subprocess.PIPE, text=True, env=_ENV)
    peak = [0]

    def sample() -> None:
        while child.poll() is None:
            peak[0] = max(peak[0], _tree_rss(child.pid))
            time.sleep(0.1)

    watcher = threading.Thread(target=sample, daemon=True)
    watcher.start()
    out, _ = child.communicate()
    watcher.join()
    if child.returncode:
        raise SystemExit(f"{' '.join(argv)} failed (exit {child.returncode})")
    return json.loads(out.strip().splitlines()[-1]), peak[0]


def _runs(count: int, args: argparse.Namespace) -> int:
    return int(args.runs if count <= 10_000 else args.runs_big)


def _timed(label: str, count: int, runs: int, *argv: str) -> tuple[float, int, dict[str, Any]]:
    """Median patients/s and the peak memory (MB, the highest of the runs) of `runs` children."""
    samples, peaks = [], []
    figures: dict[str, Any] = {}
    for _ in range(runs):
        figures, peak = _measure(*argv)
        if figures["patients"] != count:
            raise SystemExit(f"{label}: {figures['patients']} rows for {count} patients")
        samples.append(figures["seconds"])
        peaks.append(peak)
    figures["runs"] = ", ".join(f"{s:.1f} s" for s in samples)
    return count / statistics.median(samples), max(peaks) // 2**20, figures


def _write_files(folder: Path, count: int, first: int = 0) -> int:
    """A file set of `count` patients, the demo's copied under ids C<n>-P0xx (n from `first`
    on, a copy of the 78 each): its size in bytes."""
    demo = {name: (DEMO_DATASET / name).read_text(encoding="utf-8").splitlines() for name in _FILES}
    by_patient: dict[str, dict[str, list[str]]] = {name: {} for name in _FILES}
    for name, (_, *lines) in demo.items():
        for line in lines:
            by_patient[name].setdefault(line.split(",", 1)[0], []).append(line)
    ids = [line.split(",", 1)[0] for line in demo["patients.csv"][1:]]
    folder.mkdir(exist_ok=True)
    for name in _FILES:
        with (folder / name).open("w", encoding="utf-8") as fh:
            fh.write(demo[name][0] + "\n")
            for n in range(first, first + count):
                pid = ids[n % len(ids)]
                fh.writelines(f"C{n // len(ids)}-{line}\n" for line in by_patient[name].get(pid, []))
    return sum((folder / name).stat().st_size for name in _FILES)


@contextmanager
def _file_set(count: int) -> Iterator[tuple[str, int]]:
    """A temporary file set of `count` patients, written before any clock starts: its folder
    and size."""
    with tempfile.TemporaryDirectory(prefix="kb-bench-") as folder:
        yield folder, _write_files(Path(folder), count)


def _sizes(text: str) -> list[int]:
    return [int(n) for n in text.split(",") if n.strip() and int(n)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=3, help="repetitions up to 10,000 patients (default 3)")
    parser.add_argument("--runs-big", type=int, default=1, help="repetitions above 10,000 patients (default 1)")
    parser.add_argument("--sizes", default="1000,10000,100000", help="generated N (default 1000,10000,100000)")
    parser.add_argument("--reference", type=int, default=1000, help="patients for per-patient pyDatalog")
    parser.add_argument("--files", default="10000,100000", help="N read from files (default 10000,100000; 0: none)")
    parser.add_argument(
        "--spark-sizes", default="100000", help="N read from files by Spark (default 100000; 0: none; 1000000 opt-in)"
    )
    parser.add_argument("--spark-master", default="local[*]", help="Spark master (default local[*])")
    parser.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        kind, *rest = args.child
        if kind == "generated":
            _child_generated(int(rest[0]))
        elif kind == "files":
            _child_files(rest[0])
        else:
            _child_spark(rest[0], rest[1])
        return
    cohort, kb, assumptions = _cohort()
    print(f"machine: {platform.machine()}, {platform.python_implementation()} {platform.python_version()}, ", end="")
    print(f"{os.cpu_count()} cores; seed {SEED}")
    share = sum(cohort.complete(n) for n in range(10_000)) / 100
    print(f"synthetic patients: {share:.1f}% with complete data (of the first 10,000), the rest with gaps")
    rates: dict[tuple[str, int, str], float] = {}  # (engine, N, how the patients come) -> patients/s
    for n in _sizes(args.sizes):
        if n > 10_000:
            rate, peak, figures = _timed("generated", n, args.runs_big, "--child", "generated", str(n))
            rates["DuckDB", n, "generated"] = rate
            print(
                f"DuckDB N={n:>9,} generated: {rate:>7,.0f} patients/s (runs {figures['runs']}; patients made "
                f"on demand inside the timing); peak memory summed over processes {peak:,} MB; "
                f"verdicts {figures['verdicts']}"
            )
            continue
        patients = list(cohort.patients(n))
        samples = []
        for _ in range(args.runs):
            start = time.perf_counter()
            rows = list(evaluate_many(patients, kb, assumptions))
            samples.append(time.perf_counter() - start)
        rates["DuckDB", n, "generated"] = n / statistics.median(samples)
        complete = sum(1 for r in rows if r.engine == "sql")
        verdicts = {str(v): c for v, c in Counter(r.verdict for r in rows).items()}
        print(
            f"DuckDB N={n:>9,} generated: {n / statistics.median(samples):>7,.0f} patients/s (median of "
            f"{args.runs}; runs {', '.join(f'{s:.2f} s' for s in samples)}; made first, not timed); "
            f"{complete} by SQL, {n - complete} by pyDatalog; verdicts {verdicts}"
        )
    reference = list(cohort.patients(args.reference))
    fast = {r.patient_id: r for r in evaluate_many(reference, kb, assumptions)}
    start = time.perf_counter()
    differ = 0
    for patient in reference:
        result = assess(patient, kb, assumptions, explain="status")
        row = fast[patient.id]
        same = result.verdict == row.verdict and result.cohorts == row.cohorts
        differ += not (same and tuple(r.status for r in result.criteria) == row.status_codes)
    slow = len(reference) / (time.perf_counter() - start)
    print(f"per-patient pyDatalog on {len(reference):,}: {slow:,.1f} patients/s; {differ} patients differ from SQL")
    for n in _sizes(args.files):
        with _file_set(n) as (folder, size):
            rate, peak, figures = _timed("files", n, _runs(n, args), "--child", "files", folder)
        rates["DuckDB", n, "from files"] = rate
        print(
            f"DuckDB N={n:>9,} from files ({size / 2**20:,.0f} MB of CSV, written first): {rate:>7,.0f} patients/s "
            f"(median of {_runs(n, args)}: {figures['runs']}; `kb screen --facts`'s path, streamed in chunks); peak "
            f"memory summed over processes {peak:,} MB (goal at 100,000: ≥ 10,000 patients/s, ≤ 1,024 MB); "
            f"verdicts {figures['verdicts']}"
        )
    master = args.spark_master
    for n in _sizes(args.spark_sizes):
        with _file_set(n) as (folder, size):
            rate, peak, figures = _timed("spark", n, _runs(n, args), "--child", "spark", folder, master)
        rates[f"Spark {master}", n, "from files"] = rate
        print(
            f"Spark {master} N={n:>9,} from files ({size / 2**20:,.0f} MB of CSV, written first): "
            f"{rate:>7,.0f} patients/s (median of {_runs(n, args)}: {figures['runs']}; the "
            f"session's start, {figures['start']:.1f} s, not timed); peak memory summed over processes, the JVM's "
            f"included, {peak:,} MB; verdicts {figures['verdicts']}"
        )
    for (engine, n, how), rate in rates.items():
        print(f"ratio to per-patient pyDatalog, {engine} N={n:,} {how}: {rate / slow:,.0f}×")
    for (engine, n, how), rate in rates.items():
        duck = rates.get(("DuckDB", n, how))
        if engine.startswith("Spark") and duck:
            print(f"{engine} / DuckDB {how} at N={n:,}: {rate / duck:.2f} (goal: Spark within 3×, so ≥ 0.33)")


if __name__ == "__main__":
    main()
