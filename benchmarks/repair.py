"""Time `kb repair` on every vignette that is not eligible (issue 5: median under 1 s).

A repair search evaluates the patient many times (each candidate is confirmed by the engine,
then pruned to a minimal set, and the best gets its eligible-until date), so this is the
slowest question the tool answers. Prints the median and worst per-patient time (each the
median of --runs repetitions; the machine is shared and noisy) and how many repairs and
obstacles were found.
"""

from __future__ import annotations

import argparse
import statistics
import time

from kb.catalogue.assumptions import resolve_assumptions
from kb.catalogue.knowledge import load_knowledge
from kb.quality.vignettes import load_vignettes
from kb.reasoning.repairs import find_repairs
from kb.records.patients import load_dataset


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=3, help="repetitions per patient (default 3)")
    args = parser.parse_args()
    kb = load_knowledge()
    dataset = load_dataset()
    vignettes = [v for v in load_vignettes() if v.expected_verdict != "eligible"]
    settings = {v.patient_id: resolve_assumptions(v.assume) for v in vignettes}
    find_repairs(dataset.patient(vignettes[0].patient_id), kb, settings[vignettes[0].patient_id])  # warm-up
    samples: dict[str, list[float]] = {v.patient_id: [] for v in vignettes}
    found: dict[str, int] = {}
    for _ in range(args.runs):
        for pid in samples:
            start = time.perf_counter()
            answer = find_repairs(dataset.patient(pid), kb, settings[pid])
            samples[pid].append(time.perf_counter() - start)
            found[pid] = len(answer.repairs)
    medians = {pid: statistics.median(times) for pid, times in samples.items()}
    slowest = max(medians, key=medians.__getitem__)
    repaired = sum(1 for n in found.values() if n)
    print(f"vignettes not eligible: {len(medians)} ({repaired} with a confirmed repair), runs per patient: {args.runs}")
    median = statistics.median(medians.values()) * 1000
    print(f"repair search, median over patients: {median:.0f} ms (target < 1000 ms)")
    print(f"repair search, worst patient (median of its runs): {medians[slowest] * 1000:.0f} ms ({slowest})")
    print(f"repairs found in all: {sum(found.values())}")


if __name__ == "__main__":
    main()
