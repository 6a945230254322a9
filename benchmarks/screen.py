"""Screening throughput and memory (issue 8: ≥ 2,000 patients/s at N = 10,000, < 2 GB at
100,000, and the ratio to per-patient pyDatalog).

Patients are the seeded synthetic cohort of `kb/quality/synthetic.py` (vignettes of all six cohorts,
35% with complete data, the rest with realistic gaps, results moved onto the rules' bounds).
For N = 1,000 and 10,000 the patients are made first (not timed) and screened by the
set-at-a-time path (`kb.screening.batch`, both cores), median of --runs; N = 100,000 runs once in a
child process of its own, the patients made by the workers as they go (made on demand, so
their making is inside that figure), and its peak memory is the child's peak plus each
worker's. Per-patient pyDatalog (`assess`, statuses only) screens the first 1,000 in the
same run, and every one of them is checked to get the same statuses and verdict.

Files on disk (issue 16): `--files N` (default 100,000) writes a CSV file set of N patients
(the demo's vignettes copied under new ids, about 73 rows each) to a temporary folder and
screens it as `kb screen --facts FOLDER` does (`screen_folder`: chunks streamed from disk)
in a child process; its peak memory is the peak of the RSS summed over that process and
every process it starts, sampled from /proc every 0.1 s (target < 2 GB).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path

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


def _cohort() -> tuple[SyntheticCohort, object, object]:
    kb = load_knowledge()
    assumptions = resolve_assumptions()
    return SyntheticCohort.from_vignettes(load_dataset(), kb, assumptions, seed=SEED), kb, assumptions


def _one(count: int) -> None:
    """Screen `count` patients made on demand; print one JSON line (run in a child process)."""
    cohort, kb, assumptions = _cohort()
    start = time.perf_counter()
    verdicts = Counter(row.verdict for row in evaluate_many(cohort.sequence(count), kb, assumptions))  # type: ignore[arg-type]
    elapsed = time.perf_counter() - start
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    worker = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    print(json.dumps({"seconds": elapsed, "own_mb": own, "worker_mb": worker, "verdicts": verdicts}))


def _write_files(folder: Path, count: int) -> int:
    """A file set of `count` patients: the demo's, copied under ids C<n>-P0xx; its size in bytes."""
    demo = {name: (DEMO_DATASET / name).read_text(encoding="utf-8").splitlines() for name in _FILES}
    by_patient: dict[str, dict[str, list[str]]] = {name: {} for name in _FILES}
    for name, (_, *lines) in demo.items():
        for line in lines:
            by_patient[name].setdefault(line.split(",", 1)[0], []).append(line)
    ids = [line.split(",", 1)[0] for line in demo["patients.csv"][1:]]
    for name in _FILES:
        with (folder / name).open("w", encoding="utf-8") as fh:
            fh.write(demo[name][0] + "\n")
            for n in range(count):
                pid = ids[n % len(ids)]
                fh.writelines(f"C{n // len(ids)}-{line}\n" for line in by_patient[name].get(pid, []))
    return sum((folder / name).stat().st_size for name in _FILES)


_FILES = ("patients.csv", "observations.csv", "events.csv", "attestations.csv")


def _one_files(folder: str) -> None:
    """Screen a file set on disk streamed; print one JSON line (run in a child process)."""
    kb, assumptions = load_knowledge(), resolve_assumptions()
    start = time.perf_counter()
    screened = screen_folder(kb, folder, assumptions)
    elapsed = time.perf_counter() - start
    verdicts = Counter(row.verdict for row in screened.rows)
    print(json.dumps({"seconds": elapsed, "patients": len(screened.rows), "verdicts": verdicts}))


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


def _files_figure(count: int) -> None:
    with tempfile.TemporaryDirectory(prefix="kb-bench-") as folder:
        size = _write_files(Path(folder), count)
        child = subprocess.Popen(
            [sys.executable, __file__, "--one-files", folder], stdout=subprocess.PIPE, text=True, env=_ENV
        )
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
            raise SystemExit(f"screening the files failed (exit {child.returncode})")
    figures = json.loads(out.strip().splitlines()[-1])
    print(
        f"N={count:>7,} from files on disk ({size / 2**20:,.0f} MB of CSV): {count / figures['seconds']:,.0f} "
        f"patients/s (one run, streamed in chunks); peak memory summed over processes {peak[0] / 2**20:,.0f} MB "
        f"(target < 2,048 MB); verdicts {figures['verdicts']}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=3, help="repetitions for N = 1,000 and 10,000 (default 3)")
    parser.add_argument("--sizes", default="1000,10000,100000", help="N values (default 1000,10000,100000)")
    parser.add_argument("--reference", type=int, default=1000, help="patients for per-patient pyDatalog")
    parser.add_argument("--files", type=int, default=100_000, help="patients screened from files (0: skip)")
    parser.add_argument("--one", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--one-files", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        _one(args.one)
        return
    if args.one_files:
        _one_files(args.one_files)
        return
    cohort, kb, assumptions = _cohort()
    print(f"machine: {platform.machine()}, {platform.python_implementation()} {platform.python_version()}, ", end="")
    print(f"{__import__('os').cpu_count()} cores; seed {SEED}")
    sizes = [int(n) for n in args.sizes.split(",")]
    share = sum(cohort.complete(n) for n in range(10_000)) / 100
    print(f"synthetic patients: {share:.1f}% with complete data (of the first 10,000), the rest with gaps")
    fast_rate: dict[int, float] = {}
    for n in sizes:
        if n > 10_000:
            out = subprocess.run(
                [sys.executable, __file__, "--one", str(n)], capture_output=True, text=True, check=True, env=_ENV
            ).stdout
            figures = json.loads(out.strip().splitlines()[-1])
            fast_rate[n] = n / figures["seconds"]
            peak = figures["own_mb"] + 2 * figures["worker_mb"]
            print(
                f"N={n:>7,}: {fast_rate[n]:>7,.0f} patients/s (one run, patients made on demand); peak memory "
                f"{peak:,.0f} MB = screening process {figures['own_mb']:,.0f} MB + 2 workers × "
                f"{figures['worker_mb']:,.0f} MB (target < 2,048 MB); verdicts {figures['verdicts']}"
            )
            continue
        patients = list(cohort.patients(n))
        samples = []
        for _ in range(args.runs):
            start = time.perf_counter()
            rows = list(evaluate_many(patients, kb, assumptions))
            samples.append(time.perf_counter() - start)
        fast_rate[n] = n / statistics.median(samples)
        verdicts = Counter(r.verdict for r in rows)
        complete = sum(1 for r in rows if r.engine == "sql")
        print(
            f"N={n:>7,}: {fast_rate[n]:>7,.0f} patients/s (median of {args.runs}; runs "
            f"{', '.join(f'{s:.2f} s' for s in samples)}); {complete} by SQL, {n - complete} by pyDatalog; "
            f"verdicts {dict(verdicts)}"
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
    for n, rate in fast_rate.items():
        print(f"ratio set-at-a-time / pyDatalog at N={n:,}: {rate / slow:,.0f}×")
    if args.files:
        _files_figure(args.files)


if __name__ == "__main__":
    main()
