"""Render answers and proof trees as text, Markdown and Graphviz DOT (JSON is `as_dict`).

The report of one patient's answer (text, Markdown, HTML) is `kb.presentation.report`, from one model.
"""

from __future__ import annotations

import re
import shlex
import textwrap

from kb.quality.coverage import CoverageReport
from kb.reasoning.evaluation import CriterionResult
from kb.reasoning.repairs import RepairAnswer
from kb.reasoning.trace import Node
from kb.status import MARKS, Status

__all__ = [
    "DOT_FONT_SIZE",
    "GRAPH_HIDDEN",
    "coverage_text",
    "criterion_text",
    "escape_markdown",
    "repair_text",
    "trace_dot",
    "trace_text",
]

#: What can start Markdown (CommonMark, GFM) or Streamlit markup anywhere in a line.
_MARKUP = re.compile(
    r"[\\`*~\[\]|$]"  # escapes, code, emphasis, strikethrough, links and images, tables, LaTeX
    r"|(?<![^\W_])_|_(?![^\W_])"  # underscore emphasis: one inside a word can neither open nor close it
    r"|<(?=[A-Za-z/!?])"  # HTML: tags, comments, declarations; <http://…> autolinks
    r"|&(?=#?\w+;)"  # character references (&lt; would show as <)
    r"|:(?=/)|@(?=[\w-]+\.\w)|(?<=[wW]{3})\."  # autolinks: http://…, name@host.org, www.…
)
#: What starts a block only at the start of a line: headings, quotes, lists, setext underlines.
_LINE_MARKUP = re.compile(r"^([ \t]*)([#>+=-]|\d+(?=[.)]))", re.MULTILINE)


def escape_markdown(text: str) -> str:
    """User or file text made to show as itself in Markdown (Streamlit's included), never as markup.

    A patient id, drug name or question such as `![b](http://host/x.png)<img src=x>` would
    otherwise load an image from anywhere (a beacon) or turn into a link, emphasis or
    colour (Streamlit's :red[…] needs its bracket). Every character that can start markup
    gets a backslash, which CommonMark defines as showing the character itself; ordinary
    prose ("P059: ineligible", "< 50", "ge4_7_window_days", dates) is left as it is, so
    what the user reads does not change.
    """
    escaped = _MARKUP.sub(lambda m: "\\" + m.group(0), text)
    return _LINE_MARKUP.sub(
        lambda m: m.group(1) + (m.group(2) + "\\" if m.group(2)[0].isdigit() else "\\" + m.group(2)), escaped
    )


def trace_text(node: Node, indent: str = "") -> str:
    lines = [f"{indent}{_line(node)}"]
    for child in node.children:
        lines.append(trace_text(child, indent + "  "))
    return "\n".join(lines)


def _line(node: Node) -> str:
    extra = []
    for key in ("source", "formula", "bindings", "at", "expression"):
        if node.detail.get(key) and node.kind != "comparison":
            extra.append(f"{key}: {node.detail[key]}")
    if node.kind == "comparison":
        extra.append(node.detail.get("expression", ""))
    if node.kind == "criterion" and node.detail.get("protocol"):
        extra.append(f"protocol: {node.detail['protocol']}")
    label = {"rule": "by rule", "absence": "", "record": "examined:", "gap": "missing:"}.get(node.kind, "")
    head = f"{label} {node.label}".strip()
    return head + (f"  [{'; '.join(e for e in extra if e)}]" if extra else "")


def _dot_escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


_SHAPES = {
    "criterion": ("box", "#dbe9f6"),
    "rule": ("box", "#f2f2f2"),
    "fact": ("note", "#fff7d6"),
    "derived": ("note", "#fde9c8"),
    "comparison": ("ellipse", "#e2f0d9"),
    "assignment": ("ellipse", "#eeeeee"),
    "absence": ("box", "#f9dede"),
    "record": ("note", "#ffffff"),
    "gap": ("box", "#fbe4d5"),
    "note": ("plaintext", "#ffffff"),
}


#: Node text in points. A page scales a wide graph down to its column, so the text is set
#: large (16 pt, as body text), wrapped narrow (18 characters: a level of five siblings fits
#: a column at about body size), rules show only their head (the full rule is
#: in the text trace beside the graph), and the reference facts every proof joins in (the
#: enrolment date, an assumption in force) are left to that text trace: the graph stays narrow
#: enough that at normal zoom it reads like the page around it.
DOT_FONT_SIZE = 16
#: relations the graph leaves out (they are in the text trace and the formal proof)
GRAPH_HIDDEN = frozenset({"ref_day", "assumption", "assumption_days", "patient"})


def trace_dot(node: Node, name: str = "proof") -> str:
    lines = [
        f'digraph "{_dot_escape(name)}" {{',
        "  rankdir=TB;",
        f'  graph [fontname="Helvetica", fontsize={DOT_FONT_SIZE}, nodesep=0.15, ranksep=0.3];',
        f'  node [fontname="Helvetica", fontsize={DOT_FONT_SIZE}, style=filled, margin="0.1,0.05"];',
    ]
    counter = [0]

    def visit(n: Node) -> str:
        counter[0] += 1
        ident = f"n{counter[0]}"
        shape, colour = _SHAPES.get(n.kind, ("box", "#ffffff"))
        text = n.label
        if n.kind == "rule":
            text = n.detail.get("rule", n.label).split(" :- ")[0] + " :- …"
        if n.detail.get("source"):
            text += f"\n[{n.detail['source']}]"
        # wrapped narrow, never inside a word or at a hyphen: a drug name or an id stays whole
        wrapped = textwrap.fill(text, 18, break_long_words=False, break_on_hyphens=False)
        lines.append(f'  {ident} [shape={shape}, fillcolor="{colour}", label="{_dot_escape(wrapped)}"];')
        for child in n.children:
            if child.detail.get("relation") not in GRAPH_HIDDEN:
                lines.append(f"  {ident} -> {visit(child)};")
        return ident

    visit(node)
    lines.append("}")
    return "\n".join(lines)


def criterion_text(result: CriterionResult) -> str:
    mark = MARKS[result.status]
    reason = f" ({result.reason})" if result.reason else ""
    return f"{mark} {result.id:<8} {result.status}{reason}: {result.message}"


def _ids(ids: tuple[str, ...], limit: int = 6) -> str:
    shown = " ".join(ids[:limit])
    return shown + (f" (+{len(ids) - limit})" if len(ids) > limit else "")


def coverage_text(report: CoverageReport, vignettes: int, items: int) -> str:
    """The coverage table: one line per criterion, then placeholders, problems and notes."""
    encoded = [c for c in report.criteria if not c.criterion.placeholder]
    lines = [
        f"{items} protocol items of section 2; {len(report.criteria)} criteria in the catalogue "
        f"({len(report.criteria) - len(encoded)} placeholders); {vignettes} vignettes",
        "",
    ]
    for row in report.criteria:
        crit = row.criterion
        by_file: dict[str, list[str]] = {}
        for where in row.rules:
            path, _, line = where.rpartition(":")
            by_file.setdefault(path.rsplit("/", 1)[-1], []).append(line)
        rules = "; ".join(f"{name}:{','.join(lines)}" for name, lines in by_file.items())
        if crit.placeholder:
            rules = "placeholder: verify by hand"
        lines.append(f"{crit.id:<10} {crit.kind:<10} {crit.cohort:<8} {rules}")
        for status in (Status.PASS, Status.FAIL, Status.UNKNOWN):
            ids = row.vignettes.get(status, ())
            if ids:
                lines.append(f"{'':<12}{status:<8} {_ids(ids)}")
    lines.append("")
    lines.append("placeholders: " + ", ".join(c.criterion.id for c in report.criteria if c.criterion.placeholder))
    lines.append("attestation-only: " + ", ".join(c.criterion.id for c in report.criteria if c.attestation_only))
    lines.extend(f"note: {n}" for n in report.notes)
    lines.extend(f"problem: {p}" for p in report.problems)
    lines.append("coverage: complete" if report.ok else f"coverage: {len(report.problems)} problem(s)")
    return "\n".join(lines)


def repair_text(answer: RepairAnswer) -> str:
    """Each repair as an investigator reads it: what to do, to what range, from when."""
    lines = [f"{answer.patient_id}: {answer.verdict.upper()}"]
    if answer.until is not None:
        lines.append(f"already eligible: {answer.until.describe()}")
    for n, repair in enumerate(answer.repairs, 1):
        via = f" (via {', '.join(repair.eligible_via)})" if repair.eligible_via else ""
        lines.append(
            f"repair {n} ({repair.cost}; earliest enrolment {repair.enrolment.isoformat()}) → {repair.verdict}{via}"
        )
        for change in repair.primary:
            for_ = f"  [{', '.join(change.criteria)}]" if change.criteria else ""
            lines.append(f"  {change.kind:<8} {change.item}: {change.current} → {change.target}{for_}")
        implied = [c for c in repair.changes if c.implied]
        if implied:
            histories = [c for c in implied if c.item == "reviewed histories"]
            results = [c.item for c in implied if c.item != "reviewed histories"]
            if histories:
                lines.append(f"  because enrolment moves: histories {histories[0].target} ({histories[0].current})")
            if results:
                lines.append(
                    f"  because enrolment moves: repeat {len(results)} results stale by then: {', '.join(results)}"
                )
        flips = ", ".join(f"{c} {b} → {a}" for c, b, a in repair.flips if b in (Status.FAIL, Status.UNKNOWN))
        if flips:
            lines.append(f"  mends: {flips}")
        if repair.until is not None:
            lines.append(f"  then {repair.until.describe()}")
        lines.append(f"  check it: kb whatif {answer.patient_id} {shlex.join(repair.whatif)}")
    if not answer.repairs and answer.until is None:
        lines.append("no repair found")
    for obstacle in answer.obstacles:
        lines.append(f"ruled out ({obstacle.cohort}) by {obstacle.criterion}: {obstacle.reason}")
    lines += [f"note: {note}" for note in answer.notes]
    return "\n".join(lines)
