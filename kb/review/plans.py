"""The analysis behind the tension review: what is required, what forbids it and when, and
constructed patients who meet a requirement.

A requirement (kb/review/needs.py) is met by names (agents or conditions); names that every
rule treats alike form a group, probed once. A group's windows say, per forbidding
criterion, the last day before enrolment at which a record of it still fails that
criterion. Medication groups are probed as one record N days before enrolment (or take the
windows `probe_windows` found for an alike representative); event groups are probed on
patients who meet the whole requirement, since a criterion may read what the requirement
brings along (the anticoagulant a recurrence happens on). Each requirement then gets a way
to be met (`choices`), and constructed patients meet a criterion by taking every need's way
on one timeline, with one need moved.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal

from kb.catalogue.assumptions import AssumptionSet
from kb.catalogue.criteria import Criterion
from kb.catalogue.derived import months_before
from kb.catalogue.knowledge import KnowledgeBase
from kb.factbase.build import build_facts, day_number
from kb.language.syntax import Atom, Const
from kb.reasoning.evaluation import cohort_of
from kb.records.patients import Patient
from kb.review.findings import REVIEW_DAY
from kb.review.needs import Need, RuleReader
from kb.review.probe import WEIGHT, Prober, Record
from kb.review.windows import EVER, Window, _event_kind
from kb.status import Status, Truth

__all__ = ["FREE", "Analysis", "Choice", "Group", "Requirement"]

#: Treatments of a constructed patient start this many days before the events it needs, so
#: that whatever a rule asks to come first (an anticoagulant established, a glucocorticoid
#: before the recurrence) has.
_LEAD = 400
#: The earlier event a recurrence follows, this many days before it.
_EARLIER = 30
#: Where an ongoing treatment starts, and where a required event no criterion forbids is put.
FREE = 30

#: A way to meet a need: name, last offset in days before enrolment (None: ongoing), daily dose.
Choice = tuple[str, int | None, Decimal | None]


@dataclass
class Group:
    """Names that every rule treats alike, and what forbids them: criterion id -> the last
    day before enrolment at which a record of them still fails it (EVER: at any time)."""

    names: tuple[str, ...]
    windows: dict[str, int] = field(default_factory=dict)

    @property
    def rep(self) -> str:
        return self.names[0]

    @property
    def longest(self) -> int:
        return max(self.windows.values(), default=-1)


@dataclass
class Requirement:
    need: Need
    root: Criterion  # the criterion constructed patients meet (a definition, if one holds it)
    users: tuple[Criterion, ...]  # every inclusion or definition needing it
    forbidders: list[Criterion]  # the criteria that may forbid it (they read its names)
    groups: list[Group] = field(default_factory=list)

    def forbidden(self) -> list[Group]:
        return [g for g in self.groups if g.windows]

    def free(self) -> list[Group]:
        return [g for g in self.groups if not g.windows]


class Analysis:
    def __init__(self, kb: KnowledgeBase, assumptions: AssumptionSet, windows: list[Window]) -> None:
        self.kb = kb
        self.assumptions = assumptions
        self.windows = windows
        self.reader = RuleReader(kb, assumptions)
        self.prober = Prober(kb, assumptions)
        self.named = {  # names a rule spells out: no other name stands for them
            str(arg.value)
            for rule in kb.program.rules
            for lit in (rule.head, *rule.body)
            if isinstance(lit, Atom)
            for arg in lit.args
            if isinstance(arg, Const) and isinstance(arg.value, str)
        }
        self.roots: dict[str, tuple[list[Need], dict[str, str]]] = {}  # predicate -> needs, attestations
        self.choices: dict[Need, Choice] = {}
        self.attested: dict[str, str] = {}  # what lets every forbidding criterion pass
        self.records_of: dict[str, list[Record]] = {}  # constructed patient id -> its records
        self._reads: dict[str, list[Need]] = {}

    def run(self) -> list[Requirement]:
        """Every requirement with its groups' windows, and a way to meet each one."""
        requirements = self.requirements()
        if not requirements:
            return []
        forbidders = {c.id: c for req in requirements for c in req.forbidders}
        for crit in forbidders.values():
            assert crit.predicate
            passing = Truth.NO if crit.kind == "exclusion" else Truth.YES
            for item, value in self.reader.attestations(crit.predicate, passing).items():
                self.attested.setdefault(item, value)
        # no record at all, with the attestations and without (as `probe_windows` asked)
        unexposed, plain = self.prober.patient([], self.attested), self.prober.patient([], {})
        asked = list(forbidders.values())
        baselines = self.prober.statuses([(unexposed, asked), (plain, asked)])
        self.agent_windows(
            [r for r in requirements if not r.need.conditions], baselines[unexposed.id], baselines[plain.id]
        )
        for req in requirements:
            if not req.need.conditions:
                self._choose(req)
        for req in requirements:
            if req.need.conditions and self.plannable(req.root, but=req.need):
                self.event_windows(req)
                self._choose(req)
        return requirements

    # -- what is required, by whom, and who may forbid it ---------------------------------

    def requirements(self) -> list[Requirement]:
        by_predicate: dict[str, list[Criterion]] = {}
        for crit in self.kb.criteria:
            if crit.kind in ("inclusion", "definition") and crit.predicate and not crit.summary:
                by_predicate.setdefault(crit.predicate, []).append(crit)
        holders: dict[Need, list[str]] = {}
        for predicate in by_predicate:
            needs = self.reader.needed(predicate, Truth.YES)
            if needs:
                self.roots[predicate] = (needs, self.reader.attestations(predicate, Truth.YES))
                for need in needs:
                    holders.setdefault(need, []).append(predicate)
        out = []
        for need, predicates in holders.items():
            inner = min(predicates, key=lambda p: len(self.kb.program.depends_on([p])))
            users = tuple(c for p in predicates for c in by_predicate[p])
            root = next((c for c in by_predicate[inner] if c.kind == "definition"), by_predicate[inner][0])
            out.append(Requirement(need, root, users, self._forbidders(need, users)))
        return out

    def _forbidders(self, need: Need, users: tuple[Criterion, ...]) -> list[Criterion]:
        """Counted criteria of the users' cohorts whose rules read records of the need's names."""
        cohorts = {cohort_of(c, self.assumptions) for c in users if c.kind == "inclusion"}
        own = {c.predicate for c in users}
        kind, wanted = self.kind(need), set(need.names)
        out = []
        for crit in self.kb.criteria:
            if not crit.counted or not crit.predicate or crit.predicate in own:
                continue
            if cohorts and cohort_of(crit, self.assumptions) not in ("general", *cohorts):
                continue
            if any(wanted & set(r.names) or (not r.names and r.event_kind in (None, kind)) for r in self.reads(crit)):
                out.append(crit)
        return out

    def reads(self, crit: Criterion) -> list[Need]:
        assert crit.predicate
        if crit.predicate not in self._reads:
            self._reads[crit.predicate] = self.reader.reads(crit.predicate)
        return self._reads[crit.predicate]

    def kind(self, need: Need) -> str:
        """The event kind a constructed record of the need takes."""
        if need.event_kind:
            return need.event_kind
        if need.conditions:
            return "diagnosis"
        return _event_kind(self.kb.vocabulary.agents[need.names[0]].classes)

    # -- groups, doses and windows ----------------------------------------------------------

    def grouped(self, need: Need) -> list[Group]:
        """The need's names that every rule treats alike: the same facts about them (classes,
        half-life) and not spelled out by a rule; a dose's agents are alike at one dose.
        Within a group, a potency-1 glucocorticoid comes first, then by name."""
        patient = self.prober.patient([Record(self.kind(need), n, 0, 0) for n in need.names], {})
        signature: dict[str, set[object]] = {n: set() for n in need.names}
        for relation, args in build_facts(patient, self.kb, self.assumptions, lean=True).facts:
            if args and patient.id not in args and str(args[0]) in signature:
                signature[str(args[0])].add((relation, args[1:]))
        groups: dict[object, list[str]] = {}
        for name in sorted(need.names, key=lambda n: (self.factor(n) not in (None, 1), n)):
            key = name if name in self.named else frozenset(signature[name])
            groups.setdefault(key, []).append(name)
        return [Group(tuple(names)) for names in groups.values()]

    def factor(self, name: str) -> Decimal | None:
        agent = self.kb.vocabulary.agents.get(name)
        return agent.prednisone_factor if agent else None

    def equivalent(self, need: Need) -> Decimal:
        """The smallest prednisone-equivalent daily dose meeting the need (1 mg if it names none)."""
        if not (need.dose and need.bound):
            return Decimal(1)
        op, value = need.bound
        return value * (WEIGHT if need.relation == "pred_mg_per_kg" else 1) + (1 if op == ">" else 0)

    def dose_of(self, need: Need, agent: str, equivalent: Decimal | None = None) -> Decimal | None:
        """The daily dose of a glucocorticoid that is `equivalent` (default: the need's least)."""
        factor = self.factor(agent)
        if factor is None:
            return None
        mg = (equivalent if equivalent is not None else self.equivalent(need)) / factor
        return mg.quantize(Decimal("0.001")).normalize()

    def agent_windows(
        self, requirements: list[Requirement], baseline: dict[str, Status], plain: dict[str, Status]
    ) -> None:
        """The windows of each medication requirement's groups: those `probe_windows` found
        for an alike representative (if it asked every criterion that may forbid them: it
        asked those a patient without attestations passes), else probed here (one record N
        days before enrolment, hinted by what agents of the same classes showed). Criteria
        that do not pass without any record are not counted as forbidding."""
        makers: dict[tuple[int, int], Callable[[int], Patient]] = {}
        asked: dict[tuple[int, int], list[Criterion]] = {}
        hints: dict[tuple[int, int], dict[str, tuple[int, ...]]] = {}
        for r, req in enumerate(requirements):
            req.groups = self.grouped(req.need)
            candidates = [c for c in req.forbidders if baseline.get(c.id) == Status.PASS]
            if not candidates:
                continue
            ids = {c.id for c in candidates}
            reuse = all(plain.get(cid) == Status.PASS for cid in ids)
            for g, group in enumerate(req.groups):
                known = [w for w in self.windows if w.agent in group.names]
                if known and reuse and self.factor(group.rep) is None:
                    group.windows = {w.criterion: w.days for w in known if w.criterion in ids}
                    continue
                classes = set(self.kb.vocabulary.agents[group.rep].classes)
                alike: dict[str, set[int]] = {}
                for w in self.windows:
                    if set(w.classes) == classes:
                        alike.setdefault(w.criterion, set()).add(w.days)
                hints[(r, g)] = {c: tuple(sorted(days)) for c, days in alike.items()}
                makers[(r, g)] = self._single(self.kind(req.need), group.rep, self.dose_of(req.need, group.rep))
                asked[(r, g)] = candidates
        for (r, g), windows in self.prober.search(makers, asked, hints).items():
            requirements[r].groups[g].windows = windows

    def _single(self, kind: str, agent: str, dose: Decimal | None) -> Callable[[int], Patient]:
        return lambda offset: self.prober.patient([Record(kind, agent, offset, offset, dose)], self.attested)

    def event_windows(self, req: Requirement) -> None:
        """The windows of a required event's kinds, each probed on patients who meet the
        requirement (kinds that do not meet it are dropped), for the criteria that the same
        patient without the event passes."""
        # what fails without the event (for the treatments that go with it) is not the event's doing
        bare = self.prober.patient(
            self.records(req.root, without=req.need), {**self.attested, **self.roots[str(req.root.predicate)][1]}
        )
        without = self.prober.statuses([(bare, req.forbidders)]).get(bare.id, {})
        forbidders = [c for c in req.forbidders if without.get(c.id) == Status.PASS]
        req.groups = self.grouped(req.need)
        makers = {g: self._moved(req, group.rep) for g, group in enumerate(req.groups)}
        months: dict[str, tuple[int, ...]] = {}  # windows counted in months: likely ends
        mode = str(self.assumptions["month_length"])
        for crit in req.forbidders:
            assert crit.predicate
            months[crit.id] = tuple(
                day_number(REVIEW_DAY) - day_number(months_before(REVIEW_DAY, int(lit.args[2].value), mode))
                for name in self.kb.program.depends_on([crit.predicate])
                for rule in self.reader.rules(name)
                for lit in rule.body
                if isinstance(lit, Atom) and lit.predicate == "months_before" and len(lit.args) > 2
                if isinstance(lit.args[2], Const) and isinstance(lit.args[2].value, Decimal)
            )
        found = self.prober.search(
            makers, dict.fromkeys(makers, forbidders), dict.fromkeys(makers, months), dict.fromkeys(makers, req.root)
        )
        for n, group in enumerate(req.groups):
            group.windows = dict(found.get(n, {}))
        req.groups = [group for n, group in enumerate(req.groups) if n in found]

    def _moved(self, req: Requirement, name: str) -> Callable[[int], Patient]:
        return lambda offset: self.patient(req.root, (req.need, (name, offset, None)))

    def _choose(self, req: Requirement) -> None:
        """The way constructed patients meet a requirement: a name no criterion forbids
        (ongoing; an event a month before enrolment), else the shortest window's, just
        outside it; none if every name is forbidden at any time."""
        free = req.free()
        if free:
            rep = free[0].rep
            self.choices[req.need] = (rep, FREE if req.need.conditions else None, self.dose_of(req.need, rep))
        elif req.groups:
            group = min(req.groups, key=lambda g: g.longest)
            if group.longest < EVER:
                self.choices[req.need] = (group.rep, group.longest + 1, self.dose_of(req.need, group.rep))

    # -- constructed patients who meet a requirement ----------------------------------------

    def plannable(self, root: Criterion, but: Need | None = None) -> bool:
        """Whether every need of the root criterion (but one) has a way to be met."""
        assert root.predicate
        return all(n in self.choices or n == but for n in self.roots[root.predicate][0])

    def records(
        self, root: Criterion, moved: tuple[Need, Choice] | None = None, without: Need | None = None
    ) -> list[Record]:
        """Records meeting every need of the root criterion as chosen (one need's moved, or
        left out), on a timeline that puts the treatments before the events they must
        precede (before any offset an event is probed at, so that only the event moves)."""
        assert root.predicate
        needs = self.roots[root.predicate][0]
        chosen = {n: self.choices[n] for n in needs if n in self.choices and n != without}
        if moved:
            chosen[moved[0]] = moved[1]
        if (moved and moved[0].conditions) or (without and without.conditions):  # treatments stay put
            floor = EVER + _EARLIER + _LEAD
        else:
            events = [choice[1] or 0 for need, choice in chosen.items() if need.conditions]
            floor = max(events) + _EARLIER + _LEAD if events else 0
        out = []
        for need, (name, last, dose) in chosen.items():
            kind = self.kind(need)
            if need.conditions:  # the event, after an earlier one of its kind (a recurrence needs it)
                at = last or 0
                out += [Record(kind, name, at + _EARLIER, at + _EARLIER), Record(kind, name, at, at)]
                continue
            span = 0
            if need.relation == "course" and need.bound:
                span = int(need.bound[1]) + (1 if need.bound[0] == ">" else 0)
            start = max((last or 0) + span, floor, FREE if last is None else 0)
            out.append(Record(kind, name, start, last, dose))
        return out

    def patient(
        self, root: Criterion, moved: tuple[Need, Choice] | None = None, extra: tuple[Record, ...] = ()
    ) -> Patient:
        """A constructed patient meeting the root criterion (its attestations too)."""
        assert root.predicate
        records = [*self.records(root, moved), *extra]
        patient = self.prober.patient(records, {**self.attested, **self.roots[root.predicate][1]})
        self.records_of[patient.id] = records
        return patient
