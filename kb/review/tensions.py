"""Tensions: what an inclusion or a definition requires that another criterion forbids.

Two classes, each searched over the whole rule set (kb/review/needs.py reads what every way
of meeting an inclusion or definition needs; kb/review/plans.py finds what forbids it):

1. A drug, a drug class, a glucocorticoid dose or a course that is required, against every
   criterion that fails for it within a window: the last dose the pair allows, what it
   means for a course (it must have begun that much earlier) or a dose (tapered below the
   forbidden level while the disease must stay active), and the agents that meet the
   requirement with no window against them (they may continue).
2. An event (a recurrence, a thrombosis) that is required, against the criteria that fail
   for a qualifying event of a given kind within a window: the patients the pair leaves.

One finding per requirement, with every forbidding criterion in it. Each witness is made of
constructed patients who meet the requirement: one just inside the longest window (it
fails), one just outside (the forbidding criteria pass) and, where there is one, a way no
criterion forbids; a finding is kept only if the engine gives its patients the statuses it
claims.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from kb.catalogue.assumptions import AssumptionSet
from kb.catalogue.criteria import Criterion
from kb.catalogue.instruments import load_instruments
from kb.catalogue.knowledge import KnowledgeBase
from kb.language.syntax import Atom, Const
from kb.reasoning.evaluation import cohort_of
from kb.review.findings import Case, Finding, Witness
from kb.review.needs import DOSE_RELATIONS
from kb.review.plans import FREE, Analysis, Choice, Group, Requirement
from kb.review.probe import WEIGHT, Record
from kb.review.windows import EVER, Window, _anchors
from kb.status import Status

__all__ = ["tension_findings"]


def tension_findings(kb: KnowledgeBase, assumptions: AssumptionSet, windows: list[Window]) -> list[Finding]:
    """Tensions of both classes on the whole rule set, each with a witness the engine confirmed.
    `windows`: what `probe_windows` found for the drug-class representatives."""
    analysis = Analysis(kb, assumptions, windows)
    drafts = [
        _event_draft(analysis, req) if req.need.conditions else _drug_draft(analysis, req)
        for req in analysis.run()
        if req.forbidden() and analysis.plannable(req.root)
    ]
    return _confirmed(analysis, drafts)


@dataclass
class _Draft:
    """A finding before its witness is confirmed: the cases it needs, and those it may show."""

    criteria: tuple[str, ...]
    explanation: str
    summary: str
    needed: list[Case]
    optional: list[Case]
    rule: str


def _confirmed(analysis: Analysis, drafts: list[_Draft]) -> list[Finding]:
    """The findings whose needed cases the engine confirms (in one session), with those of
    their optional cases that hold."""
    cases = [case for d in drafts for case in (*d.needed, *d.optional)]
    answers = analysis.prober.statuses([(c.patient, [_crit(analysis, cid) for cid in c.expected]) for c in cases])

    def holds(case: Case) -> bool:
        return all(answers[case.patient.id][cid] == want for cid, want in case.expected.items())

    return [
        Finding(
            "tension",
            d.criteria,
            d.explanation,
            Witness("patient", d.summary, (*d.needed, *(c for c in d.optional if holds(c)))),
            (d.rule,),
        )
        for d in drafts
        if all(holds(c) for c in d.needed)
    ]


def _crit(analysis: Analysis, criterion_id: str) -> Criterion:
    crit = analysis.kb.criterion(criterion_id)
    assert crit is not None
    return crit


def _quote(crit: Criterion) -> str:
    return f"{crit.id} (“{crit.record_text or crit.text}”)"


def _words(name: str) -> str:
    return name.replace("_", " ")


def _names(names: list[str] | tuple[str, ...], last: str = "and") -> str:
    words = [_words(n) for n in names]
    return words[0] if len(words) == 1 else f"{', '.join(words[:-1])} {last} {words[-1]}"


def _ordered(analysis: Analysis, ids: set[str]) -> list[str]:
    order = [c.id for c in analysis.kb.criteria]
    return sorted(ids, key=order.index)


def _where(req: Requirement) -> str:
    others = [c.id for c in req.users if c.id != req.root.id]
    return f"{req.need.rule}; the same requirement in {', '.join(others)}" if others else req.need.rule


def _span(analysis: Analysis, criterion_id: str, days: int) -> str:
    """'within 14 days before enrolment', 'within 8 days before apheresis', 'at any time'.
    `days` count back from enrolment (the constructed patients' apheresis is the assumption
    apheresis_offset_days after it, their results on the day)."""
    predicate = _crit(analysis, criterion_id).predicate
    assert predicate
    if days >= EVER:
        return "at any time"
    anchors = _anchors(analysis.kb, predicate)
    if anchors == ("apheresis",):
        after = analysis.assumptions.days("apheresis_offset_days")
        later = f" ({after} days after enrolment: assumption apheresis_offset_days)" if after else ""
        return f"within {days + after} days before apheresis{later}"
    if anchors and "enrolment" not in anchors:
        return f"within {days} days before {' / '.join(anchors)} (taken on the day of enrolment here)"
    return f"within {days} days before enrolment"


def _by_windows(groups: list[Group]) -> list[tuple[dict[str, int], list[str]]]:
    """Groups with the same windows shown together, the longest first."""
    merged: dict[tuple[tuple[str, int], ...], list[str]] = {}
    for g in groups:
        merged.setdefault(tuple(sorted(g.windows.items())), []).extend(g.names)
    return sorted(((dict(k), sorted(v)) for k, v in merged.items()), key=lambda kv: -max(kv[0].values()))


def _case(
    analysis: Analysis,
    req: Requirement,
    moved: Choice,
    expected: dict[str, Status],
    what: str,
    extra: tuple[Record, ...] = (),
) -> Case:
    """A patient meeting the requirement's root criterion, one need moved."""
    patient = analysis.patient(req.root, (req.need, moved), extra)
    records = "; ".join(r.words() for r in analysis.records_of[patient.id])
    return Case(patient, {req.root.id: Status.PASS, **expected}, f"{what} (meets {req.root.id} with: {records})")


def _drug_draft(analysis: Analysis, req: Requirement) -> _Draft:
    need, forbidden, free = req.need, req.forbidden(), req.free()
    crits = _ordered(analysis, {cid for g in forbidden for cid in g.windows})
    course = int(need.bound[1]) + (need.bound[0] == ">") if need.relation == "course" and need.bound else 0
    level = " at that level" if need.dose else ""
    parts = []
    for windows, names in _by_windows(forbidden):
        longest = max(windows.values())
        fails = ", ".join(f"{cid} {_span(analysis, cid, d)}" for cid, d in sorted(windows.items()))
        if longest >= EVER:
            when = "never"
        else:
            when = f"last dose{level} {longest + 1} or more days before enrolment"
            if course:
                when += f", so the course must have begun {course + longest + 1} or more days before enrolment"
        parts.append((_names(names), f"{fails} — {when}"))
    if len(parts) == 1 and not free and len(need.names) > 1:
        agents = f"For every agent that meets it ({parts[0][0]}): {parts[0][1]}."
    else:
        agents = f"For the agents that meet it: {'; '.join(f'{n}: {d}' for n, d in parts)}."
    text = (
        f"{need.describe()} is required by {_quote(req.root)} ({_where(req)}), and is forbidden by "
        f"{', '.join(_quote(_crit(analysis, c)) for c in crits)}. {agents}"
    )
    if free:
        text += (
            f" {_names(sorted(n for g in free for n in g.names))} meet it with no criterion against them: they may "
            "continue up to enrolment."
        )
    finite = [g for g in forbidden if g.longest < EVER]
    g = max(finite, key=lambda x: x.longest) if finite else forbidden[0]
    worst = max(g.windows, key=lambda c: g.windows[c])
    dose = analysis.dose_of(need, g.rep)
    inside = min(g.longest, EVER)
    needed = [
        _case(
            analysis,
            req,
            (g.rep, inside, dose),
            {worst: Status.FAIL},
            f"{_words(g.rep)} last {inside} days before enrolment",
        )
    ]
    optional = []
    if finite:
        out = g.longest + 1
        needed.append(
            _case(
                analysis,
                req,
                (g.rep, out, dose),
                dict.fromkeys(crits, Status.PASS),
                f"{_words(g.rep)} last {out} days before enrolment",
            )
        )
        text += " " + _clinical(analysis, req, g)
        optional += [t for t in (_taper(analysis, req, g),) if t]
    if free:
        rep = free[0].rep
        optional.append(
            _case(
                analysis,
                req,
                (rep, None, analysis.dose_of(need, rep)),
                dict.fromkeys(crits, Status.PASS),
                f"{_words(rep)} ongoing",
            )
        )
    summary = f"patients meeting {req.root.id}: {_words(g.rep)} just inside the longest window fails it" + (
        "; just outside, every forbidding criterion passes" if finite else ""
    )
    if free:
        summary += f"; {_words(free[0].rep)}, which may continue, passes every forbidding criterion"
    return _Draft((*(c.id for c in req.users), *crits), text, summary, needed, optional, need.rule)


def _clinical(analysis: Analysis, req: Requirement, g: Group) -> str:
    need, last = req.need, g.longest + 1
    if need.dose:
        allowed = _allowed(analysis, g)
        to = f"tapered to {allowed[1]} prednisone-equivalent" if allowed else "stopped"
        activity = _activity(analysis, req.users)
        quoted = "; ".join(_quote(c) for c in activity)
        still = f", while the disease activity the cohorts require must still be there: {quoted}" if activity else ""
        return (
            f"Clinically: a patient on the dose it asks for ({analysis.equivalent(need).normalize():f} mg/day "
            f"prednisone-equivalent at {WEIGHT} kg) must be {to} at least {last} days before enrolment{still}."
        )
    if need.relation == "course":
        free = sorted(n for f in req.free() for n in f.names)
        unless = f" unless it is {_names(free, 'or')}" if free else ""
        return (
            f"Clinically: a patient whose qualifying course is still running must stop it before enrolment{unless} "
            f"(up to {last} days before, by the agent), the course still counting up to its last dose."
        )
    return f"Clinically: the {need.what()} it requires must have been given at least {last} days before enrolment."


def _allowed(analysis: Analysis, g: Group) -> tuple[Decimal, str] | None:
    """The most a forbidding criterion allows within its window (prednisone-equivalent mg/day),
    read from its rules' dose bound, and in words."""
    for cid in g.windows:
        for r in analysis.reads(_crit(analysis, cid)):
            if r.dose and r.bound and r.bound[0] in (">", ">="):
                op, value = r.bound
                per_day = (value if op == ">" else value - 1) * (WEIGHT if r.relation == "pred_mg_per_kg" else 1)
                unit = DOSE_RELATIONS[r.relation]
                return per_day, f"{value} {unit} or less" if op == ">" else f"below {value} {unit}"
    return None


def _taper(analysis: Analysis, req: Requirement, g: Group) -> Case | None:
    """A patient on the required dose until just outside the window, then on the most the
    forbidding criterion allows, up to enrolment: both criteria pass."""
    allowed = _allowed(analysis, g) if req.need.dose else None
    dose = analysis.dose_of(req.need, g.rep, allowed[0]) if allowed else None
    if dose is None:
        return None
    taper = Record(analysis.kind(req.need), g.rep, g.longest, None, dose)
    moved = (g.rep, g.longest + 1, analysis.dose_of(req.need, g.rep))
    what = f"tapered to {dose:f} mg/day {g.longest} days before enrolment"
    return _case(analysis, req, moved, dict.fromkeys(g.windows, Status.PASS), what, (taper,))


def _activity(analysis: Analysis, users: tuple[Criterion, ...]) -> list[Criterion]:
    """The inclusions of the users' cohorts that read a current-activity score (an instrument
    counted over the lookback window): what must still hold when a dose is tapered."""
    cohorts = {cohort_of(c, analysis.assumptions) for c in users if c.kind == "inclusion"} - {"general"}
    lookback = {i.id for i in load_instruments().values() if i.window == "lookback"}
    return [
        crit
        for crit in analysis.kb.criteria
        if crit.kind == "inclusion" and crit.predicate and cohort_of(crit, analysis.assumptions) in cohorts
        if any(
            isinstance(lit, Atom)
            and lit.predicate == "score"
            and isinstance(lit.args[1], Const)
            and str(lit.args[1].value) in lookback
            for name in analysis.kb.program.depends_on([crit.predicate])
            for rule in analysis.reader.rules(name)
            for lit in rule.body
        )
    ]


def _event_draft(analysis: Analysis, req: Requirement) -> _Draft:
    need, forbidden, free = req.need, req.forbidden(), req.free()
    crits = _ordered(analysis, {cid for g in forbidden for cid in g.windows})
    fails = []
    for cid in crits:
        by_days: dict[int, list[str]] = {}
        for g in forbidden:
            if cid in g.windows:
                by_days.setdefault(g.windows[cid], []).extend(g.names)
        kinds = "; or ".join(f"{_names(names, 'or')} {_span(analysis, cid, d)}" for d, names in sorted(by_days.items()))
        fails.append(f"{_quote(_crit(analysis, cid))} if it is {kinds}")
    ever = [n for g in forbidden if g.longest >= EVER for n in g.names]
    leaves = [f"{_names(sorted(n for g in free for n in g.names), 'or')} at any time"] if free else []
    leaves += [
        f"{_names(names, 'or')} more than {max(w.values())} days before enrolment"
        for w, names in _by_windows([g for g in forbidden if g.longest < EVER])
    ]
    text = (
        f"{_quote(req.root)} is met only with {need.describe()} ({_where(req)}), and a qualifying one fails "
        f"{'; '.join(fails)}. The pair leaves only the patients whose qualifying event is "
        f"{'; or '.join(leaves) or 'none'}{'; never ' + _names(ever, 'or') if ever else ''}. Clinically, the event "
        f"that meets {req.root.id} is itself what these criteria exclude: a patient whose qualifying event is recent "
        "(the usual reason to treat now) must wait out the window"
        + (f", and one whose event was {_names(ever, 'or')} never qualifies." if ever else ".")
    )
    needed = []
    for g in forbidden:
        worst = max(g.windows, key=lambda c: g.windows[c])
        inside = min(g.longest, EVER)
        needed.append(
            _case(
                analysis,
                req,
                (g.rep, inside, None),
                {worst: Status.FAIL},
                f"{_words(g.rep)} {inside} days before enrolment",
            )
        )
        if g.longest < EVER:
            out = g.longest + 1
            needed.append(
                _case(
                    analysis,
                    req,
                    (g.rep, out, None),
                    dict.fromkeys(crits, Status.PASS),
                    f"{_words(g.rep)} {out} days before enrolment",
                )
            )
    optional = []
    if free:
        rep = free[0].rep
        optional.append(
            _case(
                analysis,
                req,
                (rep, FREE, None),
                dict.fromkeys(crits, Status.PASS),
                f"{_words(rep)} {FREE} days before enrolment",
            )
        )
    summary = (
        f"patients meeting {req.root.id}: a qualifying event of each forbidden kind just inside its window fails, just "
        "outside passes" + (f"; {_words(free[0].rep)} passes every forbidding criterion" if free else "")
    )
    return _Draft((*(c.id for c in req.users), *crits), text, summary, needed, optional, need.rule)
