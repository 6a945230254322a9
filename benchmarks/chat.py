"""Time the chat from question to rendered answer (issue 7: median under 1 s in AppTest).

For every vignette, a fresh app session (AppTest, headless) asks "which criteria block P?"
and the time of that run is measured: parsing, evaluation with the proof trees of the
blocking and unknown criteria, and rendering the verdict, the table and every proof tree.
Prints the median and the worst (each patient's time is the median of --runs).

First, the parser alone (issue 16): hostile questions of 10 KB, one or more per intent
(a keyword, an id, a date, a criterion id, a number with its unit, "what if … = …" repeated
until the question is 10 KB long), each parsed in under 100 ms, so a long paste cannot slow
the answers of everyone else on the server. The chat and `kb ask` refuse questions longer
than MAX_QUESTION_CHARS anyway; these are five times longer, to show the parser is linear.
tests/test_questions.py asserts the ratio between 10 KB and 1 KB (linear: about 10).
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Sequence
from datetime import date
from pathlib import Path

from kb.knowledge import KnowledgeBase, load_knowledge
from kb.patients import DEMO_DATASET, load_dataset
from kb.questions import Clarification, Question, parse_question
from kb.vignettes import load_vignettes

__all__ = ["DESCRIBED", "HOSTILE", "hostile_question", "parse_seconds", "read_as"]

APP = str(Path(__file__).resolve().parents[1] / "app.py")

#: (name, prefix, unit repeated, suffix, the intent the question must still be read as)
HOSTILE: tuple[tuple[str, str, str, str, str], ...] = (
    ("help, repeated", "", "help ", "", "help"),
    ("review", "", "which rules contradict ", "", "review"),
    ("screen", "", "which patients ", "", "screen"),
    ("what-if item = value", "what if P001's ", "platelets = 80 g/dL ", "", "whatif"),
    ("what-if numbers with units", "what if P001 had platelets ", "80 x10^9/l ", "", "whatif"),
    ("what-if dates", "what if we enrol P001 on ", "2026-11-24 ", "", "whatif"),
    ("what-if stops", "what if P001 were to ", "stop rituximab ", "", "whatif"),
    ("what-if one long number", "what if P001's platelets were ", "1", "", "whatif"),
    ("what-if windows", "what if P001 ", "the steroid window were 4 weeks ", "", "whatif"),
    ("until", "", "until when is P001 eligible ", "", "until"),
    ("until, words apart", "", "how long ", "is P001 eligible", "until"),
    ("repair", "", "make P001 ", "eligible", "repair"),
    ("missing", "", "what data are missing for P001 ", "", "missing"),
    ("criterion ids", "explain ", "GE4.7 ", "", "criterion"),
    ("criterion, words apart", "", "what does ", "GE4.7 mean", "criterion"),
    ("why, repeated", "", "why ", "", "clarify"),
    ("a described patient, repeated", "", "a 45 year old woman with lupus, rituximab 2 weeks ago, ", "", "described"),
    ("results in words, repeated", "SLE, ", "platelets 40 x10^9/L, hb 9 ", "", "described"),
    ("why by a criterion", "why is P001 excluded ", "by GE4.2 ", "", "why"),
    ("why fail, no criterion id", "is P001 ", "why fail ge ", "", "blockers"),
    ("blockers", "", "why is P001 not eligible ", "", "blockers"),
    ("check, ids", "is eligible ", "P001 ", "", "check"),
    ("check, patient numbers", "is eligible ", "patient #0001's ", "", "check"),
    ("check, dates", "is P001 eligible on ", "2026-11-24 ", "", "check"),
)


def read_as(parsed: Question | Clarification) -> str:
    """The intent a question was read as ("clarify" when the parser asks back)."""
    return parsed.intent if isinstance(parsed, Question) else "clarify"


def hostile_question(prefix: str, unit: str, suffix: str, size: int) -> str:
    """About `size` characters: the unit repeated whole between the prefix and the suffix."""
    return prefix + unit * ((size - len(prefix) - len(suffix)) // len(unit)) + suffix


def parse_seconds(text: str, kb: KnowledgeBase, ids: Sequence[str], runs: int = 5) -> float:
    """The median CPU time of parsing `text` (CPU time: other processes on the cores do not count)."""
    times = []
    for _ in range(runs):
        start = time.thread_time()
        parse_question(text, kb, list(ids), None, date(2026, 11, 24))
        times.append(time.thread_time() - start)
    return statistics.median(times)


def parser_figures(runs: int) -> None:
    kb = load_knowledge()
    ids = sorted(load_dataset(DEMO_DATASET).patients)
    times: dict[str, float] = {}
    for name, prefix, unit, suffix, intent in HOSTILE:
        text = hostile_question(prefix, unit, suffix, 10_000)
        parsed = parse_question(text, kb, ids, None, date(2026, 11, 24))
        assert read_as(parsed) == intent, (name, parsed)
        times[name] = parse_seconds(text, kb, ids, runs)
    worst = max(times, key=times.__getitem__)
    print(f"hostile questions of 10 KB: {len(times)}, median CPU time of {runs} parses each")
    print(f"parsed in: median {statistics.median(times.values()) * 1000:.1f} ms, ", end="")
    print(f"worst {times[worst] * 1000:.1f} ms ({worst}) (target < 100 ms)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=3, help="repetitions per patient (default 3)")
    args = parser.parse_args()
    parser_figures(runs=5)
    from streamlit.testing.v1 import AppTest  # only the app's timing needs it

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
