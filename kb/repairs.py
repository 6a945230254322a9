"""Repairs: the smallest sets of changes that make a patient eligible, and from when.

"What would make him eligible?" is answered per cohort. Every criterion that blocks or is
still open there must be mended, and each offers its fixes, cheapest kind first:

1. *collect* the missing or stale datum, in the range the rule needs (`requirements`);
2. *wait*: the earliest enrolment day from which the criterion passes (a window closes, the
   18th birthday), found by asking the engine about that one criterion at later dates;
3. *stop* an ongoing drug of the failing proof, then its washout;
4. *change* a value treatment can move ("platelets ≥ 50 ×10^9/L, now 42"); for the
   clearance, also the creatinine that gives it (z3, `kb.clearance`).

One fix per open criterion makes a candidate; all waits merge into one enrolment date, and
moving enrolment brings what it implies (histories re-confirmed up to the new dates, results
that would be stale by then repeated). A candidate counts only once the engine, evaluating
the patient with it applied (the same what-if path `kb whatif` takes), says eligible; it is
then pruned to a minimal set (dropping any one change breaks it). Facts nothing can change
(age over 65, a lifetime history, the disease itself) are never offered: the answer names
them as what rules the patient out.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import date, timedelta
from decimal import Decimal
from itertools import product
from typing import Any

from kb.assumptions import AssumptionSet, resolve_assumptions
from kb.clearance import creatinine_for_clearance
from kb.evaluation import Assessment, CriterionResult, assess, criterion_status
from kb.exposures import ongoing
from kb.factbase import build_facts
from kb.knowledge import KnowledgeBase
from kb.language.syntax import Atom, Const
from kb.patients import Patient
from kb.requirements import Requirement, Snapshot, inside, requirements
from kb.status import Status, Truth, Verdict
from kb.until import HORIZON_DAYS, Lapse, eligible_until
from kb.whatif import apply_changes, moved_enrolment, parse_change

__all__ = ["COST", "Obstacle", "Repair", "RepairAnswer", "RepairChange", "find_repairs"]

#: The order of cost of the kinds of change.
COST = {"collect": 1, "wait": 2, "stop": 3, "change": 4}
_MAX_CANDIDATES = 48
_OPTIONS_PER_CRITERION = 4


@dataclass(frozen=True)
class RepairChange:
    kind: str  # collect | wait | stop | change
    item: str  # an item, attestation, reviewed:<history>, a drug, or "enrolment"
    current: str  # what the patient has now
    target: str  # what it must become
    criteria: tuple[str, ...] = ()
    earliest_date: date | None = None
    witness: tuple[tuple[str, str], ...] = ()  # (item, value): the what-if results that simulate it
    stop: tuple[str, date] | None = None  # (drug, day) for a stop
    repeat: bool = False  # a result repeated as it is (yields to a witness with a range)
    coupled: bool = False  # its value meets every bound on that item together (wins a merge)
    implied: bool = False  # needed only because enrolment moves

    @property
    def key(self) -> tuple[str, str]:
        return (self.kind, self.item)

    def as_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "item": self.item,
            "from": self.current,
            "to": self.target,
            "earliest_date": self.earliest_date.isoformat() if self.earliest_date else None,
            "criteria": list(self.criteria),
            "implied": self.implied,
        }


@dataclass(frozen=True)
class Repair:
    changes: tuple[RepairChange, ...]
    whatif: tuple[str, ...]  # the `kb whatif` changes that apply it
    verdict: Verdict
    eligible_via: tuple[str, ...]
    flips: tuple[tuple[str, Status, Status], ...]  # criterion, status before, status after
    enrolment: date  # the earliest enrolment date with this repair
    until: Lapse | None = None

    @property
    def primary(self) -> tuple[RepairChange, ...]:
        return tuple(c for c in self.changes if not c.implied)

    @property
    def cost(self) -> str:
        return max((c.kind for c in self.primary), key=COST.__getitem__, default="collect")

    def rank(self) -> tuple[int, int, date]:
        return (COST[self.cost], len(self.primary), self.enrolment)

    def as_dict(self) -> dict[str, Any]:
        return {
            "cost": self.cost,
            "changes": [c.as_dict() for c in self.changes],
            "whatif": list(self.whatif),
            "earliest_enrolment": self.enrolment.isoformat(),
            "verdict_after": self.verdict,
            "eligible_via": list(self.eligible_via),
            "flips": [{"criterion": c, "before": b, "after": a} for c, b, a in self.flips],
            "eligible_until": self.until.as_dict() if self.until else None,
        }


@dataclass(frozen=True)
class Obstacle:
    """A criterion no change on offer mends: what rules the patient out of a cohort."""

    criterion: str
    cohort: str
    reason: str

    def as_dict(self) -> dict[str, str]:
        return {"criterion": self.criterion, "cohort": self.cohort, "reason": self.reason}


@dataclass(frozen=True)
class RepairAnswer:
    patient_id: str
    verdict: Verdict
    repairs: tuple[Repair, ...]
    obstacles: tuple[Obstacle, ...]
    until: Lapse | None = None  # for a patient eligible already
    notes: tuple[str, ...] = ()

    def as_dict(self) -> dict[str, Any]:
        return {
            "patient": self.patient_id,
            "verdict": self.verdict,
            "repairs": [r.as_dict() for r in self.repairs],
            "ruled_out_by": [o.as_dict() for o in self.obstacles],
            "eligible_until": self.until.as_dict() if self.until else None,
            "notes": list(self.notes),
        }


@dataclass
class _Candidate:
    changes: list[RepairChange]
    texts: list[str]
    enrolment: date


def find_repairs(
    patient: Patient,
    kb: KnowledgeBase,
    assumptions: AssumptionSet | None = None,
    as_of: date | None = None,
    max_repairs: int = 5,
    today: date | None = None,
) -> RepairAnswer:
    """The minimal confirmed repairs, cheapest first (at most `max_repairs`)."""
    search = _Search(patient, kb, assumptions or resolve_assumptions(), as_of, today)
    return search.run(max_repairs)


class _Search:
    def __init__(
        self, patient: Patient, kb: KnowledgeBase, assumptions: AssumptionSet, as_of: date | None, today: date | None
    ) -> None:
        self.patient, self.kb, self.assumptions, self.as_of = patient, kb, assumptions, as_of
        self.vocab = kb.vocabulary
        self.before = assess(patient, kb, assumptions, as_of)
        self.reference = self.before.reference
        self.start = self.reference.enrolment
        self.now = min(today or date.today(), self.start)  # the first day a drug can be stopped
        self.base = build_facts(patient, kb, assumptions, as_of)
        self.snapshot = Snapshot.of(self.base)
        self.lookback = assumptions.days("lab_lookback_days")
        self._fixes: dict[str, list[tuple[RepairChange, ...]]] = {}
        self._confirmed: dict[tuple[str, ...], Assessment] = {}

    # ---- the search ----------------------------------------------------------------------
    def run(self, max_repairs: int) -> RepairAnswer:
        before = self.before
        if before.verdict == Verdict.ELIGIBLE:
            until = eligible_until(self.patient, self.kb, self.assumptions, self.as_of)
            return RepairAnswer(self.patient.id, before.verdict, (), (), until)
        found: list[Repair] = []
        obstacles: list[Obstacle] = []
        notes: list[str] = []
        for cohort, obligations, note in self._obligations():
            if note:
                notes.append(note)
                continue
            options: list[list[tuple[RepairChange, ...]]] = []
            for members in obligations:
                fixes = [f for m in members for f in self._fixes_for(m)]
                if not fixes:
                    obstacles += [Obstacle(m.id, cohort, self._why_not(m)) for m in members]
                options.append(sorted(fixes, key=_fix_rank)[:_OPTIONS_PER_CRITERION])
            if any(not o for o in options):
                continue
            found += self._search(options, max_repairs - len(found), found)
            if len(found) >= max_repairs:
                break
        found.sort(key=Repair.rank)
        if found:
            best = found[0]
            hypo = self._patient_with(best.whatif)
            found[0] = replace(best, until=eligible_until(hypo, self.kb, self.assumptions, best.enrolment))
        elif not obstacles and not notes:
            notes.append("no combination of the changes on offer was confirmed by the engine")
        return RepairAnswer(self.patient.id, before.verdict, tuple(found), tuple(obstacles), None, tuple(notes))

    def _obligations(self) -> list[tuple[str, list[list[CriterionResult]], str]]:
        """Per cohort: the open criteria, an OR-group as one obligation; and a note when the
        cohort cannot be repaired by data (an entry criterion lost from the record)."""
        results = {r.id: r for r in self.before.criteria}
        out = []
        cohorts = self.before.cohorts
        if not cohorts:
            ids = [r.id for r in self.before.blocking + self.before.unknown]
            out.append(("none", [[results[i]] for i in ids], ""))
        for verdict in cohorts:
            if verdict.note:
                out.append((verdict.cohort, [], f"{verdict.cohort}: {verdict.note}"))
                continue
            groups: dict[str, list[CriterionResult]] = {}
            obligations: list[list[CriterionResult]] = []
            for cid in (*verdict.blocking, *verdict.unknown):
                result = results[cid]
                if result.criterion.group:
                    groups.setdefault(result.criterion.group, []).append(result)
                else:
                    obligations.append([result])
            obligations += groups.values()
            out.append((verdict.cohort, obligations, ""))
        return out

    def _search(self, options: list[list[tuple[RepairChange, ...]]], wanted: int, found: list[Repair]) -> list[Repair]:
        out: list[Repair] = []
        for combo in _cheapest_first(options, _MAX_CANDIDATES):
            if len(out) >= wanted:
                break
            changes = _merge_changes([c for fix in combo for c in fix])
            primary = frozenset((c.kind, c.item, c.target) for c in changes)
            if any(_primary_set(r) <= primary for r in [*found, *out]):
                continue  # a smaller confirmed repair is inside it
            if not self._eligible(self._candidate(changes)):
                continue
            repair = self._repair(self._minimal(changes))
            if all(_primary_set(r) != _primary_set(repair) for r in [*found, *out]):
                out.append(repair)
        return out

    def _minimal(self, changes: list[RepairChange]) -> list[RepairChange]:
        """Drop any change the rest can do without, until none can be dropped."""
        for n in range(len(changes)):
            rest = changes[:n] + changes[n + 1 :]
            if rest and self._eligible(self._candidate(rest)):
                return self._minimal(rest)
        return changes

    def _repair(self, changes: list[RepairChange]) -> Repair:
        candidate = self._candidate(changes)
        after = self._evaluate(candidate.texts, candidate.enrolment)
        old = {r.id: r.status for r in self.before.criteria}
        flips = tuple((r.id, old[r.id], r.status) for r in after.criteria if r.status != old[r.id])
        return Repair(
            tuple(candidate.changes),
            tuple(candidate.texts),
            after.verdict,
            tuple(after.eligible_via),
            flips,
            candidate.enrolment,
        )

    # ---- candidates and their confirmation -------------------------------------------------
    def _candidate(self, changes: list[RepairChange]) -> _Candidate:
        """The what-if changes that apply `changes`, with what moving enrolment implies."""
        enrolment = max([self.start, *(c.earliest_date for c in changes if c.earliest_date)])
        texts = [f"stop:{c.stop[0]}@{c.stop[1].isoformat()}" for c in changes if c.stop]
        implied: list[RepairChange] = []
        if enrolment > self.start:
            moved = moved_enrolment(self.patient, self.reference, enrolment)
            texts += moved
            reviews = [t.split("=")[0] for t in moved if t.startswith("reviewed:")]
            if reviews:
                implied.append(
                    RepairChange(
                        "collect",
                        "reviewed histories",
                        ", ".join(r.removeprefix("reviewed:") for r in reviews),
                        f"re-confirmed up to {moved[-1].rsplit('@', 1)[1]}",
                        implied=True,
                    )
                )
        apheresis = self.reference.apheresis + (enrolment - self.start)
        witnesses: dict[str, str] = {}
        for change in sorted(changes, key=_precedence):  # a value with a range wins over a repeat
            for item, value in change.witness:
                witnesses.setdefault(item, value)
        if enrolment > self.start:
            for item, value, when in self._stale_by(enrolment):
                if item not in witnesses:
                    witnesses[item] = value
                    implied.append(
                        RepairChange(
                            "collect",
                            item,
                            f"{value} on {when.isoformat()}",
                            f"repeated by {enrolment.isoformat()} (stale by then)",
                            implied=True,
                        )
                    )
        for item, value in witnesses.items():
            day = max(enrolment, apheresis) if item.startswith("reviewed:") else enrolment
            texts.append(f"{item}={value}@{day.isoformat()}")
        return _Candidate([*changes, *implied], texts, enrolment)

    def _stale_by(self, enrolment: date) -> list[tuple[str, str, date]]:
        """Results current at the original enrolment that are stale by `enrolment`."""
        out = []
        latest: dict[str, Any] = {}
        for obs in self.patient.observations:
            if obs.date <= self.start and (obs.item not in latest or obs.date >= latest[obs.item].date):
                latest[obs.item] = obs
        for item, obs in sorted(latest.items()):
            if self.vocab.items[item].window != "lookback":
                continue
            fresh_then = obs.date >= self.start - timedelta(days=self.lookback)
            if fresh_then and obs.date < enrolment - timedelta(days=self.lookback):
                out.append((item, _value_text(obs.value), obs.date))
        return out

    def _patient_with(self, texts: tuple[str, ...] | list[str]) -> Patient:
        changes = [parse_change(t, self.vocab) for t in texts]
        return apply_changes(self.patient, changes, self.vocab, self.start)[0]

    def _evaluate(self, texts: list[str], enrolment: date) -> Assessment:
        key = tuple(texts)
        if key not in self._confirmed:
            when = enrolment if enrolment != self.start else self.as_of
            self._confirmed[key] = assess(self._patient_with(texts), self.kb, self.assumptions, when, explain="status")
        return self._confirmed[key]

    def _eligible(self, candidate: _Candidate) -> bool:
        return self._evaluate(candidate.texts, candidate.enrolment).verdict == Verdict.ELIGIBLE

    # ---- the fixes of one criterion ----------------------------------------------------------
    def _fixes_for(self, result: CriterionResult) -> list[tuple[RepairChange, ...]]:
        if result.id not in self._fixes:
            crit = result.criterion
            fixes: list[tuple[RepairChange, ...]] = []
            if crit.predicate is not None:
                truth = Truth.YES if crit.kind in ("inclusion", "definition") else Truth.NO
                for alternative in requirements(self.kb.program, crit.predicate, truth):
                    fixes += self._alternative(alternative, result.id)
                if result.status == Status.FAIL:
                    # adding data never retracts a failure: only a wait, a stop or a new value can
                    fixes = [f for f in fixes if any(c.kind != "collect" for c in f)]
                    fixes += self._time_fixes(result)
                elif not fixes:
                    fixes += self._gap_fix(result, fixes)
            unique = {tuple((c.kind, c.item, c.target) for c in f): f for f in fixes}
            self._fixes[result.id] = list(unique.values())
        return self._fixes[result.id]

    def _gap_fix(
        self, result: CriterionResult, fixes: list[tuple[RepairChange, ...]]
    ) -> list[tuple[RepairChange, ...]]:
        """For an open criterion: collect every datum it waits for (histories reviewed, stale
        results repeated, a value of the range the rule needs), when each can be simulated."""
        known = {w[0]: w[1] for f in fixes for c in f for w in c.witness}
        changes = []
        for gap in result.missing:
            if gap.reason == "history_not_reviewed":
                changes.append(
                    RepairChange(
                        "collect", gap.item, gap.detail, "history reviewed", (result.id,), witness=((gap.item, "yes"),)
                    )
                )
            elif gap.item in known:
                changes.append(
                    RepairChange(
                        "collect",
                        gap.item,
                        gap.reason,
                        "as the rule needs",
                        (result.id,),
                        witness=((gap.item, known[gap.item]),),
                    )
                )
            elif gap.reason == "stale" and self._latest([gap.item]):
                _, value, when = self._latest([gap.item])[0]
                changes.append(
                    RepairChange(
                        "collect",
                        gap.item,
                        f"{value} on {when.isoformat()} (stale)",
                        "repeated",
                        (result.id,),
                        witness=((gap.item, value),),
                        repeat=True,
                    )
                )
            else:
                return []  # a datum no simulation can supply: the criterion stays open
        return [tuple(changes)] if changes else []

    def _alternative(self, alternative: tuple[Requirement, ...], cid: str) -> list[tuple[RepairChange, ...]]:
        groups: dict[tuple[str, str], list[Requirement]] = {}
        for req in alternative:
            groups.setdefault((req.relation, req.item), []).append(req)
        per_group: list[list[RepairChange | None]] = []
        for (relation, item), reqs in groups.items():
            states = {self.snapshot.state(r) for r in reqs}
            if states == {"met"}:
                per_group.append([None])
                continue
            options = self._requirement_changes(relation, item, reqs, "missing" in states, cid, alternative)
            if not options:
                return []
            per_group.append(list(options))
        fixes = []
        for combo in product(*per_group):
            changes = tuple(c for c in combo if c is not None)
            if changes:
                fixes.append(changes)
        return fixes

    def _requirement_changes(
        self,
        relation: str,
        item: str,
        reqs: list[Requirement],
        missing: bool,
        cid: str,
        alternative: tuple[Requirement, ...],
    ) -> list[RepairChange]:
        kind = "collect" if missing else "change"
        now = self._current(relation, item)
        if relation == "obs_num":
            spec = self.vocab.items[item]
            if not missing and not spec.modifiable:
                return []
            witness, wanted = _witness(reqs, spec.display_unit)
            return [RepairChange(kind, item, now, wanted, (cid,), witness=((item, _value_text(witness)),))]
        if relation == "xuln":
            spec = self.vocab.items[item]
            if not missing and not spec.modifiable:
                return []
            uln = self._uln(item)  # a new result keeps the limit of the stored one (kb.whatif)
            limit_text, suffix = "", ""
            if uln is None:  # no stored limit: simulate with a nominal one, say so
                uln, suffix = Decimal(100), " ULN 100"
            else:
                limit = _value_text(Decimal(reqs[0].value) * uln)
                limit_text = f" = {limit} {spec.display_unit} with ULN {_value_text(uln)}"
            scaled = [replace(r, relation="obs_num", value=Decimal(r.value) * uln) for r in reqs]
            witness, _ = _witness(scaled, "")
            wanted = " and ".join(r.describe() for r in reqs).removeprefix(f"{item} ") + limit_text
            return [RepairChange(kind, item, now, wanted, (cid,), witness=((item, _value_text(witness) + suffix),))]
        if relation == "crcl":
            return self._clearance_changes(reqs, missing, cid, alternative)
        if relation == "age_at":
            if not missing or self.patient.birth_date is not None:
                return []  # a birthday can be waited for (see the time fixes), never changed
            born = date(self.start.year - 40, self.start.month, min(self.start.day, 28))  # a placeholder age of 40
            wanted = " and ".join(r.describe() for r in reqs)
            return [
                RepairChange(
                    "collect", "birth_date", "missing", wanted, (cid,), witness=(("birth_date", born.isoformat()),)
                )
            ]
        if relation in ("obs_cat", "attested"):
            if not missing:
                return []  # a category or a judgement is the patient's, not a value to choose
            value = str(reqs[0].value)
            return [RepairChange("collect", item, "missing", f"= {value}", (cid,), witness=((item, value),))]
        if relation == "reviewed":
            name = f"reviewed:{item}"
            anchor = max(str(r.value) for r in reqs)
            return [
                RepairChange(
                    "collect", name, now, f"reviewed on or after the {anchor} date", (cid,), witness=((name, "yes"),)
                )
            ]
        return []

    def _clearance_changes(
        self, reqs: list[Requirement], missing: bool, cid: str, alternative: tuple[Requirement, ...]
    ) -> list[RepairChange]:
        lower = [r for r in reqs if r.op in (">=", ">")]
        if not lower:
            return []
        bound = max(lower, key=lambda r: Decimal(r.value))
        now = self._current("crcl", "crcl")
        wanted = f"{'≥' if bound.op == '>=' else '>'} {bound.value} mL/min"
        measured = _witness([replace(bound, relation="obs_num")], "")[0]
        out = [
            RepairChange(
                "collect" if missing else "change",
                "crcl_measured",
                now,
                f"measured clearance {wanted}",
                (cid,),
                witness=(("crcl_measured", _value_text(measured)),),
            )
        ]
        creatinine = self._creatinine_for(bound, alternative)
        if creatinine is not None and not missing:
            out.append(
                RepairChange(
                    "change",
                    "creatinine",
                    self._current("obs_num", "creatinine"),
                    f"≤ {_value_text(creatinine)} µmol/L (clearance {wanted} by {self.assumptions['crcl_formula']})",
                    (cid,),
                    witness=(("creatinine", _value_text(creatinine)),),
                    coupled=True,
                )
            )
        return out

    def _creatinine_for(self, bound: Requirement, alternative: tuple[Requirement, ...]) -> Decimal | None:
        age = self.snapshot.values.get(("age_at", "enrolment"))
        patient = self.patient
        if ("obs_num", "crcl_measured") in self.snapshot.values or age is None or patient.weight_kg is None:
            return None
        if patient.sex is None or not self.vocab.items["creatinine"].modifiable:
            return None
        ratio = [r for r in alternative if r.relation == "xuln" and r.item == "creatinine" and r.op in ("<", "<=")]
        return creatinine_for_clearance(
            bound.op,
            Decimal(bound.value),
            age=Decimal(age),
            weight_kg=patient.weight_kg,
            female=patient.sex == "female",
            formula=str(self.assumptions["crcl_formula"]),
            umol_per_mg_dl=self.vocab.items["creatinine"].molar_factor or Decimal("88.4"),
            uln=self._uln("creatinine") if ratio else None,
            max_ratio=Decimal(ratio[0].value) if ratio else None,
        )

    def _time_fixes(self, result: CriterionResult) -> list[tuple[RepairChange, ...]]:
        fixes = []
        waited = self._wait(result, ())
        if waited is not None:
            fixes.append(waited)
        for agent, started in self._culprit_drugs(result):
            day = max(self.now, started)
            stop = RepairChange("stop", agent, f"ongoing since {started.isoformat()}", f"stopped on {day.isoformat()}")
            after = self._wait(result, (f"stop:{agent}@{day.isoformat()}",))
            if after is not None:
                when = max((c.earliest_date for c in after if c.earliest_date), default=None)
                stop = replace(stop, criteria=(result.id,), stop=(agent, day), earliest_date=when)
                fixes.append((stop, *(c for c in after if c.kind != "wait")))
        return fixes

    def _wait(self, result: CriterionResult, extra: tuple[str, ...]) -> tuple[RepairChange, ...] | None:
        """The earliest enrolment day from which `result`'s criterion no longer fails, with
        the results it reads repeated on that day as they are (a window counted back from a
        sample needs a new sample); None if it fails still at the horizon."""
        reads = self._reads(result.criterion.predicate or "")
        repeats = [(item, value) for item, value, _ in self._latest(reads)]

        def status(day: date) -> Status:
            texts = [*extra, *(moved_enrolment(self.patient, self.reference, day) if day != self.start else [])]
            texts += [f"{item}={value}@{day.isoformat()}" for item, value in repeats]
            when = day if day != self.start else self.as_of
            return criterion_status(self._patient_with(texts), result.criterion, self.kb, self.assumptions, when)

        horizon = self.start + timedelta(days=HORIZON_DAYS)
        if status(horizon) == Status.FAIL:
            return None
        low, high = self.start, horizon  # low fails (or is untested), high does not
        if status(low) != Status.FAIL:
            high = low
        while (high - low).days > 1:
            middle = low + timedelta(days=(high - low).days // 2)
            if status(middle) == Status.FAIL:
                low = middle
            else:
                high = middle
        if high == self.start and not repeats and not extra:
            return None
        changes: list[RepairChange] = []
        if high > self.start:
            changes.append(
                RepairChange(
                    "wait",
                    "enrolment",
                    self.start.isoformat(),
                    f"on or after {high.isoformat()}",
                    (result.id,),
                    earliest_date=high,
                )
            )
        for item, value, when in self._latest(reads):
            changes.append(
                RepairChange(
                    "collect",
                    item,
                    f"{value} on {when.isoformat()}",
                    f"repeated on {high.isoformat()}",
                    (result.id,),
                    witness=((item, value),),
                    repeat=True,
                )
            )
        return tuple(changes)

    def _reads(self, predicate: str) -> list[str]:
        """The observation items the rules of `predicate` read."""
        items: dict[str, None] = {}
        for name in self.kb.program.depends_on([predicate]):
            for rule in self.kb.program.rules_for(name):
                for lit in rule.body:
                    atom = lit if isinstance(lit, Atom) else None
                    if atom and atom.predicate in ("obs_num", "obs_cat") and isinstance(atom.args[1], Const):
                        items[str(atom.args[1].value)] = None
        return list(items)

    def _latest(self, items: list[str]) -> list[tuple[str, str, date]]:
        out = []
        for item in items:
            results = [o for o in self.patient.observations if o.item == item and o.date <= self.start]
            if results:
                obs = max(results, key=lambda o: (o.date, o.source.row))
                out.append((item, _value_text(obs.value), obs.date))
        return out

    def _culprit_drugs(self, result: CriterionResult) -> list[tuple[str, date]]:
        """Drugs of the failing proof still being taken after the first day one can stop."""
        if result.trace is None:
            return []
        sources = {n.detail.get("source") for n in result.trace.walk()}
        drugs: dict[str, date] = {}
        for event in self.patient.events:
            if event.kind != "medication" or not event.agent or str(event.source) not in sources:
                continue
            if ongoing(event) or (event.end is not None and event.end > self.now):
                drugs[event.agent] = max(event.start, drugs.get(event.agent, event.start))
        return sorted(drugs.items())

    # ---- what the patient has now --------------------------------------------------------------
    def _current(self, relation: str, item: str) -> str:
        value = self.snapshot.values.get((relation, item))
        if value is None:
            gaps = self.base.gaps_for("obs_num" if relation == "obs_num" else relation, item)
            return gaps[0].reason if gaps else "missing"
        if relation == "reviewed":
            return f"reviewed {date.fromordinal(int(value)).isoformat()}"
        if relation == "xuln":
            return f"{Decimal(value):.2f} × ULN"
        if relation == "obs_num":
            return f"{_value_text(Decimal(value))} {self.vocab.items[item].display_unit}".rstrip()
        if relation == "crcl":
            return f"{value} mL/min"
        return str(value)

    def _uln(self, item: str) -> Decimal | None:
        limits = [o for o in self.patient.observations if o.item == item and o.uln is not None]
        return max(limits, key=lambda o: o.date).uln if limits else None

    def _why_not(self, result: CriterionResult) -> str:
        crit = result.criterion
        if result.status == Status.UNKNOWN:
            gaps = ", ".join(g.item for g in result.missing) or "no rule decides it"
            return f"open ({gaps}): no datum whose collection can be simulated settles it; verify by hand"
        if crit.cohort != "general":
            return f"the disease itself, not modifiable: {result.message}"
        return f"not modifiable by collecting data, waiting, stopping a drug or a value change: {result.message}"


def _cheapest_first(
    options: list[list[tuple[RepairChange, ...]]], limit: int
) -> Iterator[tuple[tuple[RepairChange, ...], ...]]:
    """One fix per obligation, cheapest combinations first, without listing them all (thirty
    open criteria with four fixes each would be 4^30): a best-first walk over index vectors."""

    def key(index: tuple[int, ...]) -> tuple[int, int]:
        return _fix_rank(tuple(c for n, i in enumerate(index) for c in options[n][i]))

    start = tuple(0 for _ in options)
    heap = [(key(start), start)]
    seen = {start}
    while heap and limit > 0:
        _, index = heapq.heappop(heap)
        limit -= 1
        yield tuple(options[n][i] for n, i in enumerate(index))
        for n in range(len(options)):
            if index[n] + 1 < len(options[n]):
                nxt = (*index[:n], index[n] + 1, *index[n + 1 :])
                if nxt not in seen:
                    seen.add(nxt)
                    heapq.heappush(heap, (key(nxt), nxt))


def _fix_rank(fix: tuple[RepairChange, ...]) -> tuple[int, int]:
    return (max((COST[c.kind] for c in fix if not c.repeat), default=COST["collect"]), len(fix))


def _precedence(change: RepairChange) -> int:
    return 0 if change.coupled else 2 if change.repeat else 1


def _primary_set(repair: Repair) -> frozenset[tuple[str, str, str]]:
    return frozenset((c.kind, c.item, c.target) for c in repair.primary)


def _merge_changes(changes: list[RepairChange]) -> list[RepairChange]:
    """One change per (kind, item): waits keep the latest date, the rest the first."""
    merged: dict[tuple[str, str], RepairChange] = {}
    for change in changes:
        old = merged.get(change.key)
        if old is None:
            merged[change.key] = change
            continue
        criteria = tuple(dict.fromkeys(old.criteria + change.criteria))
        later = change if (change.earliest_date or date.min) > (old.earliest_date or date.min) else old
        keep = later if change.kind in ("wait", "stop") else min(old, change, key=_precedence)
        merged[change.key] = replace(keep, criteria=criteria)
    return list(merged.values())


def _value_text(value: Decimal | str) -> str:
    return format(value.normalize(), "f") if isinstance(value, Decimal) else value


def _witness(reqs: list[Requirement], unit: str) -> tuple[Decimal, str]:
    """A value inside the interval the requirements allow, and the interval as text."""
    text = " and ".join(r.describe(unit).removeprefix(f"{r.item} ") for r in reqs)
    return inside(reqs), text
