"""Rendering: text for people, DOT for Graphviz, JSON-ready dicts."""

from __future__ import annotations

import json
import re

import pytest

from kb.presentation.render import DOT_FONT_SIZE, GRAPH_HIDDEN, escape_markdown, trace_dot, trace_text
from kb.reasoning.evaluation import Assessment
from kb.reasoning.trace import Node


def test_trace_text_and_dot(demo_assessments: dict[str, Assessment]) -> None:
    tree = demo_assessments["P011"].result("GE4.3").trace
    assert tree is not None
    text = trace_text(tree)
    assert "medication rituximab (recorded as 利妥昔单抗) 2026-11-03" in text and "events.csv row" in text
    dot = trace_dot(tree, "P011 GE4.3")
    assert f"fontsize={DOT_FONT_SIZE}" in dot and DOT_FONT_SIZE >= 14  # readable when the page scales it down
    assert dot.startswith('digraph "P011 GE4.3" {') and dot.rstrip().endswith("}")
    assert "n1 -> n2;" in dot
    hidden = [n for n in tree.walk() if n.detail.get("relation") in GRAPH_HIDDEN]  # reference facts: text only
    assert hidden and all(not n.children for n in hidden)
    assert dot.count("->") == len(tree.walk()) - len(hidden) - 1
    json.dumps(tree.as_dict(), ensure_ascii=False)


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        ("![b](http://127.0.0.1:9/x.png)", r"!\[b\](http\://127.0.0.1:9/x.png)"),  # an image: a beacon
        ("<img src=x onerror=alert(1)>", r"\<img src=x onerror=alert(1)>"),
        ("[click](javascript:alert(1))", r"\[click\](javascript:alert(1))"),
        (":red[alarm] **bold** _it_", r":red\[alarm\] \*\*bold\*\* \_it\_"),
        ("`code` ~~gone~~ $x$ a|b", r"\`code\` \~\~gone\~\~ \$x\$ a\|b"),
        ("# title\n- item\n1. first\n> quote", "\\# title\n\\- item\n1\\. first\n\\> quote"),
        ("<http://x> www.x.org me@x.org &lt;", r"\<http\://x> www\.x.org me\@x.org \&lt;"),
        ("a \\[b", r"a \\\[b"),  # a backslash of its own stays one
        # ordinary prose stays as it is: what the user reads does not change
        ("P059: ineligible; GE4.2 fail", "P059: ineligible; GE4.2 fail"),
        ("platelets 49 ×10^9/L on 2026-11-17 < 50 required", "platelets 49 ×10^9/L on 2026-11-17 < 50 required"),
        ("assume:ge4_7_window_days=28 (P001's)", "assume:ge4_7_window_days=28 (P001's)"),
    ],
)
def test_escape_markdown_shows_text_as_text(text: str, shown: str) -> None:
    assert escape_markdown(text) == shown
    # CommonMark: a backslash before punctuation shows the punctuation itself
    assert re.sub(r"\\([!-/:-@\[-`{-~])", r"\1", shown) == text


@pytest.mark.parametrize(
    ("label", "wrapped"),
    [
        ("platelet count 49 below 50", "platelet count 49\\nbelow 50"),
        # a word longer than the width, and one with hyphens, stay whole on their own line
        ("hydroxychloroquine-sulfate given", "hydroxychloroquine-sulfate\\ngiven"),
        ("a very-long-hyphenated-name x", "a\\nvery-long-hyphenated-name\\nx"),
        ("short", "short"),
    ],
)
def test_dot_labels_wrap_at_18_characters_between_words(label: str, wrapped: str) -> None:
    dot = trace_dot(Node("fact", label))
    assert f'label="{wrapped}"' in dot


def test_a_dot_label_keeps_its_source_on_a_line_of_its_own_when_it_fits() -> None:
    dot = trace_dot(Node("fact", "GI6.3 fail", {"source": "obs.csv row 4"}))
    assert 'label="GI6.3 fail\\n[obs.csv row 4]"' in dot
