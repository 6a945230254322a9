"""Time `kb review` on the full encoding with the vignettes as the population (issue 18:
under 10 s; the answer from the cache under 1 s).

Prints the findings per kind; the median and worst of --runs review runs, each with the
review's caches cleared first (the cold figure a first visit pays); and the chat's answer to
"which rules contradict each other?", cold (caches cleared) and then from the cache, the
median of --runs each; and each analysis alone, so that a slow one shows."""

from __future__ import annotations

import argparse
import statistics
import time

from kb.catalogue.assumptions import resolve_assumptions
from kb.catalogue.knowledge import load_knowledge
from kb.presentation.answers import answer
from kb.records.patients import load_dataset
from kb.review.citations import citation_findings
from kb.review.findings import KINDS
from kb.review.logic import logic_findings
from kb.review.overlaps import overlap_findings
from kb.review.qualifiers import qualifier_findings
from kb.review.quantities import quantity_findings
from kb.review.reviewer import clear_caches, review
from kb.review.tensions import tension_findings
from kb.review.terms import vocabulary_findings
from kb.review.windows import probe_windows, window_findings

QUESTION = "which rules contradict each other?"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=3, help="repetitions (default 3)")
    args = parser.parse_args()
    kb = load_knowledge()
    dataset = load_dataset()
    times = []
    for _ in range(args.runs):
        clear_caches()
        start = time.perf_counter()
        result = review(kb, resolve_assumptions(), dataset)
        times.append(time.perf_counter() - start)
    counts = ", ".join(f"{kind}: {len(result.of_kind(kind))}" for kind in KINDS)
    print(f"findings: {len(result.findings)} ({counts}); unconfirmed witnesses: {len(result.unconfirmed)}")
    print(f"review with witnesses checked and impact on {len(dataset.patients)} patients, uncached runs: {args.runs}")
    print(f"median {statistics.median(times):.2f} s, worst {max(times):.2f} s (target < 10 s)")
    print("each analysis alone (median of the runs; the windows probed once, shared by two):")
    assumptions = resolve_assumptions()
    windows = probe_windows(kb, assumptions)
    analyses = {
        "z3 over the bounds (logic)": lambda: logic_findings(kb, assumptions),
        "related quantities": lambda: quantity_findings(kb, assumptions),
        "duplicates and implied": lambda: overlap_findings(kb, assumptions),
        "windows probed": lambda: probe_windows(kb, assumptions),
        "window findings": lambda: window_findings(kb, assumptions, windows),
        "tensions": lambda: tension_findings(kb, assumptions, windows),
        "citations": lambda: citation_findings(kb, assumptions),
        "qualifiers": lambda: qualifier_findings(kb, assumptions),
        "vocabulary": lambda: vocabulary_findings(kb),
    }
    for name, run in analyses.items():
        spent = []
        for _ in range(args.runs):
            start = time.perf_counter()
            run()
            spent.append(time.perf_counter() - start)
        print(f"  {name}: {statistics.median(spent):.3f} s")
    cold, warm = [], []
    for _ in range(args.runs):
        clear_caches()
        for into in (cold, warm):
            start = time.perf_counter()
            reply = answer(QUESTION, kb, dataset)
            into.append(time.perf_counter() - start)
            assert reply.kind == "review", reply.headline
    print(f"chat '{QUESTION}' → {reply.headline}")
    print(
        f"first computation: median {statistics.median(cold):.2f} s, worst {max(cold):.2f} s; "
        f"from the cache: median {statistics.median(warm) * 1000:.1f} ms, worst {max(warm) * 1000:.1f} ms "
        "(target < 1 s)"
    )


if __name__ == "__main__":
    main()
