"""Time a full evaluation of every demo patient: statuses, messages, and the proof trees of
the blocking and unknown criteria (what `kb check` and the app compute for one answer).

Prints, over all demo patients, the median and worst per-patient time (each patient's own
time is the median of --runs repetitions, since the machine is shared and noisy), the
worst single run, and the peak memory of the evaluation. Each vignette is evaluated under
the assumptions its story names. Target (issue 4, whole knowledge base): median under 100 ms.
"""

from __future__ import annotations

import argparse
import resource
import statistics
import time
import tracemalloc

from kb.catalogue.assumptions import resolve_assumptions
from kb.catalogue.knowledge import load_knowledge
from kb.quality.vignettes import load_vignettes
from kb.reasoning.evaluation import assess
from kb.records.patients import load_dataset


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=7, help="repetitions per patient (default 7)")
    args = parser.parse_args()
    kb = load_knowledge()
    dataset = load_dataset()
    settings = {v.patient_id: resolve_assumptions(v.assume) for v in load_vignettes()}
    for pid, patient in dataset.patients.items():  # warm-up: unit registry, caches
        assess(patient, kb, settings[pid])
    samples: dict[str, list[float]] = {pid: [] for pid in dataset.patients}
    for _ in range(args.runs):
        for pid, patient in dataset.patients.items():
            start = time.perf_counter()
            assess(patient, kb, settings[pid])
            samples[pid].append((time.perf_counter() - start) * 1000)
    medians = {pid: statistics.median(times) for pid, times in samples.items()}
    worst_run = max(max(t) for t in samples.values())
    tracemalloc.start()
    for pid, patient in dataset.patients.items():
        assess(patient, kb, settings[pid])
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    slowest = max(medians, key=medians.__getitem__)
    print(f"patients: {len(medians)}, criteria: {len(kb.criteria)}, runs per patient: {args.runs}")
    print(f"full evaluation, median over patients: {statistics.median(medians.values()):.1f} ms (target < 100 ms)")
    print(f"full evaluation, worst patient (median of its runs): {medians[slowest]:.1f} ms ({slowest})")
    print(f"full evaluation, worst single run: {worst_run:.1f} ms")
    print(f"peak memory allocated during one evaluation round: {peak / 1e6:.1f} MB")
    print(f"process peak resident memory: {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB")


if __name__ == "__main__":
    main()
