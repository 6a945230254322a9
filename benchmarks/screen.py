"""Screening throughput and memory (issue 8: ≥ 2,000 patients/s at N = 10,000, < 2 GB at
100,000, and the ratio to per-patient pyDatalog).

Patients are the seeded synthetic cohort of `kb/synthetic.py` (vignettes of all six cohorts,
35% with complete data, the rest with realistic gaps, results moved onto the rules' bounds).
For N = 1,000 and 10,000 the patients are made first (not timed) and screened by the
set-at-a-time path (`kb.batch`, both cores), median of --runs; N = 100,000 runs once in a
child process of its own, the patients made by the workers as they go (made on demand, so
their making is inside that figure), and its peak memory is the child's peak plus each
worker's. Per-patient pyDatalog (`assess`, statuses only) screens the first 1,000 in the
same run, and every one of them is checked to get the same statuses and verdict.
"""

from __future__ import annotations

import argparse
import json
import platform
import resource
import statistics
import subprocess
import sys
import time
from collections import Counter

from kb.assumptions import resolve_assumptions
from kb.batch import evaluate_many
from kb.evaluation import assess
from kb.knowledge import load_knowledge
from kb.patients import load_dataset
from kb.synthetic import SyntheticCohort

SEED = 8


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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=3, help="repetitions for N = 1,000 and 10,000 (default 3)")
    parser.add_argument("--sizes", default="1000,10000,100000", help="N values (default 1000,10000,100000)")
    parser.add_argument("--reference", type=int, default=1000, help="patients for per-patient pyDatalog")
    parser.add_argument("--one", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        _one(args.one)
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
                [sys.executable, __file__, "--one", str(n)], capture_output=True, text=True, check=True
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


if __name__ == "__main__":
    main()
