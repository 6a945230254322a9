"""Time `kb review` on the full encoding with the vignettes as the population (issue 6:
under 30 s). Prints the median and worst of --runs runs and the findings per kind."""

from __future__ import annotations

import argparse
import statistics
import time

from kb.assumptions import resolve_assumptions
from kb.knowledge import load_knowledge
from kb.patients import load_dataset
from kb.review.findings import KINDS
from kb.review.reviewer import review


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=3, help="repetitions (default 3)")
    args = parser.parse_args()
    kb = load_knowledge()
    dataset = load_dataset()
    times = []
    for _ in range(args.runs):
        start = time.perf_counter()
        result = review(kb, resolve_assumptions(), dataset)
        times.append(time.perf_counter() - start)
    counts = ", ".join(f"{kind}: {len(result.of_kind(kind))}" for kind in KINDS)
    print(f"findings: {len(result.findings)} ({counts}); unconfirmed witnesses: {len(result.unconfirmed)}")
    print(f"review with witnesses checked and impact on {len(dataset.patients)} patients, runs: {args.runs}")
    print(f"median {statistics.median(times):.1f} s, worst {max(times):.1f} s (target < 30 s)")


if __name__ == "__main__":
    main()
