"""Rendering: text for people, DOT for Graphviz, JSON-ready dicts."""

from __future__ import annotations

import json

from kb.evaluation import Assessment
from kb.render import assessment_text, trace_dot, trace_text


def test_text_summary(demo_assessments: dict[str, Assessment]) -> None:
    text = assessment_text(demo_assessments["P010"])
    assert text.splitlines()[0] == "P010: NEEDS_DATA"
    assert "? GE3      unknown (missing): unknown: no hbv_dna result" in text
    assert "- breastfeeding (not_attested): breastfeeding not attested" in text
    assert "verify by hand: GI1, GE1" in text
    assert "lab_lookback_days=28" in text


def test_trace_text_and_dot(demo_assessments: dict[str, Assessment]) -> None:
    tree = demo_assessments["P011"].result("GE4.3").trace
    assert tree is not None
    text = trace_text(tree)
    assert "medication 利妥昔单抗 (rituximab) 2026-11-03" in text and "events.csv row" in text
    dot = trace_dot(tree, "P011 GE4.3")
    assert dot.startswith('digraph "P011 GE4.3" {') and dot.rstrip().endswith("}")
    assert "n1 -> n2;" in dot
    assert dot.count("->") == len(tree.walk()) - 1
    json.dumps(tree.as_dict(), ensure_ascii=False)
