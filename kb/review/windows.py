"""Windows, read by asking the engine: which exclusion each drug class meets, and for how long.

Window rules are arithmetic over dates, anchors, half-lives and assumption days; rather than
re-deriving that algebra, the review asks the rules themselves. For one representative
agent of each distinct set of classes, a constructed patient takes a single dose N days
before enrolment (histories reviewed, every anchor on the enrolment day); the criteria that
fail at N = 0 are the ones the class meets, and bisection finds the last N at which each
still fails: that criterion's window for the class. The bisections of every agent and
criterion advance together, a level at a time, each level's probe patients evaluated in one
engine session (`truths_many`): 15 sessions, not 430. From the windows follow two kinds of
finding: a criterion whose window for a class lies inside another's (it never blocks alone
for those drugs), and windows for one class counted from different reference dates. What an
inclusion requires that a window forbids is kb/review/tensions.py's.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal

from kb.catalogue.assumptions import AssumptionSet
from kb.catalogue.criteria import Criterion
from kb.catalogue.knowledge import KnowledgeBase
from kb.language.engine import FactValue
from kb.language.syntax import Atom, Const, Var
from kb.reasoning.evaluation import criterion_status
from kb.records.patients import Patient
from kb.review.findings import Case, Finding, Witness, synthetic_patient
from kb.review.sessions import truths_many
from kb.status import Status, Truth

__all__ = ["Window", "probe_windows", "window_findings"]

#: Longer than any window: a criterion still failing this many days after the dose counts
#: the drug at any time.
EVER = 4000
_LABS = {"anc": Decimal("2.0"), "hemoglobin": Decimal(120), "platelets": Decimal(150), "alc": Decimal("1.0")}


@dataclass(frozen=True)
class Window:
    criterion: str
    agent: str  # the representative agent probed
    classes: tuple[str, ...]
    kind: str  # the event kind
    days: int  # the dose fails the criterion from 0 to `days` days before its anchor (EVER: any time)
    anchors: tuple[str, ...]

    def span(self) -> str:
        return "at any time" if self.days >= EVER else f"within {self.days} days"


def _event_kind(classes: tuple[str, ...]) -> str:
    if any("vaccine" in c for c in classes):
        return "vaccination"
    if any("transfusion" in c for c in classes):
        return "transfusion"
    if {"car_t", "gm_t_cell"} & set(classes):
        return "cell_therapy"
    return "medication"


def _anchors(kb: KnowledgeBase, predicate: str) -> tuple[str, ...]:
    """The reference dates a criterion's windows count from, read from its rules."""
    found: set[str] = set()
    reads_results = False
    for name in kb.program.depends_on([predicate]):
        for rule in kb.program.rules_for(name):
            for lit in rule.body:
                if isinstance(lit, Atom) and lit.predicate == "ref_day" and isinstance(lit.args[1], Const):
                    found.add(str(lit.args[1].value))
                if isinstance(lit, Atom) and lit.predicate in ("obs_num", "obs_cat") and len(lit.args) > 3:
                    day = lit.args[3]
                    reads_results = reads_results or (isinstance(day, Var) and not day.anonymous)
    if reads_results:
        found.add("the result's date")
    return tuple(sorted(found))


def _time_criteria(kb: KnowledgeBase) -> list[Criterion]:
    return [
        crit
        for crit in kb.criteria
        if crit.counted and crit.kind in ("inclusion", "exclusion") and crit.predicate
        if _reads_events(kb, crit.predicate)
    ]


def _reads_events(kb: KnowledgeBase, predicate: str) -> bool:
    return any(
        isinstance(lit, Atom) and lit.predicate == "event"
        for name in kb.program.depends_on([predicate])
        for rule in kb.program.rules_for(name)
        for lit in rule.body
    )


def _status(crit: Criterion, truths: frozenset[FactValue]) -> Status:
    """fail: the criterion blocks the probed patient; unknown: no rule decides it."""
    blocking = Truth.YES if crit.kind == "exclusion" else Truth.NO
    return Status.UNKNOWN if not truths else Status.FAIL if truths == {blocking} else Status.PASS


class _Probes:
    """The statuses of single-dose patients, a round at a time: every (agent, offset) one
    round of the search needs is evaluated in one batch (`truths_many`: one engine session
    for all of them), and every answer is kept, for criteria that meet at the same offset."""

    def __init__(self, kb: KnowledgeBase, assumptions: AssumptionSet) -> None:
        self.kb, self.assumptions = kb, assumptions
        self.known: dict[tuple[str, int, str], str] = {}

    def ask(self, wanted: Iterable[tuple[str, int, Criterion]]) -> None:
        todo: dict[tuple[str, int], dict[str, Criterion]] = {}
        for agent, offset, crit in wanted:
            if (agent, offset, crit.id) not in self.known:
                todo.setdefault((agent, offset), {})[crit.id] = crit
        agents = self.kb.vocabulary.agents
        keys = list(todo)
        asks = [
            (_exposed(self.kb, agent, _event_kind(agents[agent].classes), offset), _named(todo[agent, offset]))
            for agent, offset in keys
        ]
        for (agent, offset), truths in zip(keys, truths_many(self.kb, self.assumptions, asks), strict=True):
            for crit in todo[agent, offset].values():
                assert crit.predicate
                self.known[agent, offset, crit.id] = _status(crit, truths[crit.predicate])

    def fails(self, agent: str, offset: int, crit: Criterion) -> bool:
        return self.known[agent, offset, crit.id] == Status.FAIL


def _named(criteria: Mapping[str, Criterion]) -> list[str]:
    """The predicates deciding these criteria, once each."""
    return sorted({c.predicate for c in criteria.values() if c.predicate})


def probe_windows(kb: KnowledgeBase, assumptions: AssumptionSet) -> list[Window]:
    criteria = _time_criteria(kb)
    if not criteria:
        return []
    representatives: dict[tuple[str, ...], str] = {}
    for name in sorted(kb.vocabulary.agents):
        representatives.setdefault(kb.vocabulary.agents[name].classes, name)
    probed = sorted(set(representatives.values()) | _named_agents(kb))
    # a criterion counts as meeting a class only if it passes without the dose (an inclusion
    # such as SLE-I4 fails for a patient with no treatment history at all)
    unexposed = synthetic_patient("W-none", kb, dict[str, Decimal | str](_LABS))
    (baseline,) = truths_many(kb, assumptions, [(unexposed, _named({c.id: c for c in criteria}))])
    criteria = [c for c in criteria if c.predicate and _status(c, baseline[c.predicate]) == Status.PASS]
    probes = _Probes(kb, assumptions)
    probes.ask((agent, 0, crit) for agent in probed for crit in criteria)
    met = [(agent, crit) for agent in probed for crit in criteria if probes.fails(agent, 0, crit)]
    probes.ask((agent, EVER, crit) for agent, crit in met)
    # bisection for the last offset at which each still fails, all pairs a level at a time
    bounds = {(agent, crit.id): (0, EVER) for agent, crit in met if not probes.fails(agent, EVER, crit)}
    while searching := [(agent, crit) for agent, crit in met if _width(bounds.get((agent, crit.id))) > 1]:
        middle = {(agent, crit.id): sum(bounds[agent, crit.id]) // 2 for agent, crit in searching}
        probes.ask((agent, middle[agent, crit.id], crit) for agent, crit in searching)
        for agent, crit in searching:
            low, high = bounds[agent, crit.id]  # fails at low, not at high
            mid = middle[agent, crit.id]
            bounds[agent, crit.id] = (mid, high) if probes.fails(agent, mid, crit) else (low, mid)
    windows = []
    for agent, crit in met:
        assert crit.predicate
        days = bounds[agent, crit.id][0] if (agent, crit.id) in bounds else EVER
        classes = kb.vocabulary.agents[agent].classes
        windows.append(Window(crit.id, agent, classes, _event_kind(classes), days, _anchors(kb, crit.predicate)))
    return windows


def _width(bound: tuple[int, int] | None) -> int:
    return 0 if bound is None else bound[1] - bound[0]


def _named_agents(kb: KnowledgeBase) -> set[str]:
    """Agents a rule names itself (a class representative would not show a rule about one drug)."""
    agents = kb.vocabulary.agents
    return {
        str(arg.value)
        for rule in kb.program.rules
        for lit in (rule.head, *rule.body)
        if isinstance(lit, Atom)
        for arg in lit.args
        if isinstance(arg, Const) and isinstance(arg.value, str) and arg.value in agents
    }


def _exposed(kb: KnowledgeBase, agent: str, kind: str, offset: int, **extra: object) -> Patient:
    return synthetic_patient(
        f"W-{agent}",
        kb,
        dict[str, Decimal | str](_LABS),
        events=[(kind, agent, offset, offset)],
        **extra,  # type: ignore[arg-type]
    )


def window_findings(kb: KnowledgeBase, assumptions: AssumptionSet, windows: list[Window]) -> list[Finding]:
    return [
        *_nested(kb, windows),
        *_anchored_apart(kb, assumptions, windows),
    ]


def _text(kb: KnowledgeBase, criterion_id: str) -> str:
    crit = kb.criterion(criterion_id)
    assert crit is not None
    return f"{crit.id} (“{crit.record_text or crit.text}”)"


def _by_agent(windows: list[Window]) -> dict[str, list[Window]]:
    out: dict[str, list[Window]] = {}
    for w in windows:
        out.setdefault(w.agent, []).append(w)
    return out


def _nested(kb: KnowledgeBase, windows: list[Window]) -> list[Finding]:
    """Criterion A's window for a class inside B's (same anchors): A never blocks alone there."""
    pairs: dict[tuple[str, str], list[tuple[Window, Window]]] = {}
    for group in _by_agent(windows).values():
        for a in group:
            for b in group:
                # inside, or equal (then reported once, in id order)
                if a is not b and a.anchors == b.anchors and (a.days, a.criterion) < (b.days, b.criterion):
                    pairs.setdefault((a.criterion, b.criterion), []).append((a, b))
    findings = []
    for (inner, outer), found in sorted(pairs.items()):
        drugs = "; ".join(f"{a.agent} ({', '.join(a.classes)}): {a.span()} vs {b.span()}" for a, b in found)
        cases = tuple(
            Case(
                _exposed(kb, a.agent, a.kind, min(a.days, 30)),
                {inner: Status.FAIL, outer: Status.FAIL},
                f"{a.agent} {min(a.days, 30)} days before enrolment",
            )
            for a, _ in found[:3]
        )
        findings.append(
            Finding(
                "redundancy",
                (inner, outer),
                f"for these drugs {_text(kb, inner)} never blocks alone: {_text(kb, outer)} already blocks them "
                f"over a window that contains its own — {drugs}",
                Witness("patient", f"a dose inside {inner}'s window fails {outer} too", cases),
            )
        )
    return findings


def _anchored_apart(kb: KnowledgeBase, assumptions: AssumptionSet, windows: list[Window]) -> list[Finding]:
    """One drug class, windows counted back from different reference dates."""
    findings = []
    seen: set[tuple[str, str]] = set()
    for group in _by_agent(windows).values():
        for a in group:
            for b in group:
                key = (a.criterion, b.criterion)
                if (
                    a.criterion >= b.criterion
                    or not a.anchors
                    or not b.anchors
                    or a.anchors == b.anchors
                    or key in seen
                ):
                    continue
                case = _distinguishing(kb, assumptions, a, b)
                if case is None:
                    continue
                seen.add(key)
                findings.append(
                    Finding(
                        "boundary/window",
                        (a.criterion, b.criterion),
                        f"{a.agent} ({', '.join(a.classes)}) is counted {a.span()} before {' / '.join(a.anchors)} by "
                        f"{_text(kb, a.criterion)} but {b.span()} before {' / '.join(b.anchors)} by "
                        f"{_text(kb, b.criterion)}: when those dates differ, one dose can pass one criterion and "
                        "fail the other",
                        Witness("patient", case.note, (case,)),
                    )
                )
    return findings


def _distinguishing(kb: KnowledgeBase, assumptions: AssumptionSet, a: Window, b: Window) -> Case | None:
    """A patient whose anchors differ (results a week before enrolment, apheresis a week
    after) and whose single dose fails one of the two criteria and passes the other."""
    crit_a, crit_b = kb.criterion(a.criterion), kb.criterion(b.criterion)
    assert crit_a is not None and crit_b is not None
    for offset in range(-7, 31):
        patient = _exposed(kb, a.agent, a.kind, offset, sample_offset=7, apheresis_offset=7)
        statuses = {c.id: criterion_status(patient, c, kb, assumptions) for c in (crit_a, crit_b)}
        if {statuses[a.criterion], statuses[b.criterion]} == {Status.FAIL, Status.PASS}:
            when = f"{offset} days before enrolment" if offset >= 0 else f"{-offset} days after enrolment"
            note = f"results 7 days before enrolment, apheresis 7 days after, {a.agent} {when}"
            return Case(patient, statuses, note)
    return None
