"""Time the chat from question to rendered answer (issue 7: median under 1 s in AppTest).

For every vignette, a fresh app session (AppTest, headless) asks "which criteria block P?"
and the time of that run is measured: parsing, evaluation with the proof trees of the
blocking and unknown criteria, and rendering the verdict, the table and every proof tree.
Prints the median and the worst (each patient's time is the median of --runs).
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

from streamlit.testing.v1 import AppTest

from kb.vignettes import load_vignettes

APP = str(Path(__file__).resolve().parents[1] / "app.py")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=3, help="repetitions per patient (default 3)")
    args = parser.parse_args()
    AppTest.from_file(APP, default_timeout=300).run()  # warm-up: the knowledge base, caches
    medians: dict[str, float] = {}
    for vignette in load_vignettes():
        times = []
        for _ in range(args.runs):
            app = AppTest.from_file(APP, default_timeout=300).run()
            app.chat_input(key="ask").set_value(f"which criteria block {vignette.patient_id}?")
            start = time.perf_counter()
            app.run()
            times.append(time.perf_counter() - start)
            assert not app.exception, vignette.patient_id
            assert any(f"understood: blockers · {vignette.patient_id}" in c.value for c in app.caption)
        medians[vignette.patient_id] = statistics.median(times)
    slowest = max(medians, key=medians.__getitem__)
    print(f"vignettes: {len(medians)}, runs per patient: {args.runs}")
    median = statistics.median(medians.values()) * 1000
    print(f"question to rendered answer, median: {median:.0f} ms (target < 1000 ms)")
    print(f"worst patient: {medians[slowest] * 1000:.0f} ms ({slowest})")


if __name__ == "__main__":
    main()
