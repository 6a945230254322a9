"""The fixes of one criterion, one finder per kind of repair.

A repair (`kb.reasoning.repairs`) mends every open criterion of a cohort with one fix each; a fix is a
tuple of `RepairChange`s that together mend it. Each kind of fix has its finder, so that
each can be read, and tested, on the vignette built for it:

- `RangeFixes`: what an alternative of the rule asks (`kb.reasoning.requirements`): a missing datum
  collected in the range the rule needs, or a value treatment can move changed to the rule's
  bound; for the creatinine clearance also the creatinine that gives it (z3, `kb.factbase.clearance`);
- `GapFixes`: an open criterion no requirement speaks of: each datum it waits for collected
  (a history reviewed, a stale result repeated);
- `WaitFixes`: the earliest enrolment day from which the criterion passes (a window closes,
  the 18th birthday), found by asking the engine about that one criterion at later dates;
- `StopFixes`: an ongoing drug of the failing proof stopped, then its washout waited.

They share a `Baseline`: the patient as recorded, and what every change is measured against.
A change says what it applies as `kb.reasoning.whatif` `Change` objects (a stop) or as (item, value)
witnesses the search dates once it knows the enrolment day.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import date, timedelta
from decimal import Decimal
from itertools import product
from typing import Any

from kb.catalogue.assumptions import AssumptionSet
from kb.catalogue.knowledge import KnowledgeBase
from kb.catalogue.vocabulary import Vocabulary
from kb.factbase.build import FactBase, ReferenceDates, build_facts
from kb.factbase.clearance import creatinine_for_clearance
from kb.factbase.exposures import ongoing
from kb.language.syntax import Atom, Const
from kb.reasoning.evaluation import Assessment, CriterionResult, assess, criterion_status
from kb.reasoning.requirements import Requirement, Snapshot, inside
from kb.reasoning.until import HORIZON_DAYS
from kb.reasoning.whatif import Change, apply_changes, moved_enrolment, setting, stopping
from kb.records.patients import Patient
from kb.status import Status

__all__ = ["Baseline", "Fix", "GapFixes", "RangeFixes", "RepairChange", "StopFixes", "WaitFixes"]


@dataclass(frozen=True)
class RepairChange:
    kind: str  # collect | wait | stop | change
    item: str  # an item, attestation, reviewed:<history>, a drug, or "enrolment"
    current: str  # what the patient has now
    target: str  # what it must become
    criteria: tuple[str, ...] = ()
    earliest_date: date | None = None
    witness: tuple[tuple[str, str], ...] = ()  # (item, value): the what-if results that simulate it
    stop: Change | None = None  # the what-if stop of a drug
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


#: One fix: the changes that together mend one criterion.
Fix = tuple[RepairChange, ...]


@dataclass(frozen=True)
class Baseline:
    """The patient as recorded, assessed once: what every fix and candidate is measured against."""

    patient: Patient
    kb: KnowledgeBase
    assumptions: AssumptionSet
    as_of: date | None
    before: Assessment
    base: FactBase
    snapshot: Snapshot
    now: date  # the first day a drug can be stopped

    @classmethod
    def of(
        cls, patient: Patient, kb: KnowledgeBase, assumptions: AssumptionSet, as_of: date | None, today: date | None
    ) -> Baseline:
        before = assess(patient, kb, assumptions, as_of)
        base = build_facts(patient, kb, assumptions, as_of)
        now = min(today or date.today(), before.reference.enrolment)
        return cls(patient, kb, assumptions, as_of, before, base, Snapshot.of(base), now)

    @property
    def vocab(self) -> Vocabulary:
        return self.kb.vocabulary

    @property
    def reference(self) -> ReferenceDates:
        return self.before.reference

    @property
    def start(self) -> date:
        """The enrolment day as recorded (or as of)."""
        return self.reference.enrolment

    def patient_with(self, changes: Sequence[Change]) -> Patient:
        return apply_changes(self.patient, list(changes), self.vocab, self.start)[0]

    def current(self, relation: str, item: str) -> str:
        """What the patient has now, in words."""
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

    def uln(self, item: str) -> Decimal | None:
        limits = [o for o in self.patient.observations if o.item == item and o.uln is not None]
        return max(limits, key=lambda o: o.date).uln if limits else None

    def latest(self, items: list[str]) -> list[tuple[str, str, date]]:
        """(item, value, date) of the latest result of each of `items` up to enrolment."""
        out = []
        for item in items:
            results = [o for o in self.patient.observations if o.item == item and o.date <= self.start]
            if results:
                obs = max(results, key=lambda o: (o.date, o.source.row))
                out.append((item, _value_text(obs.value), obs.date))
        return out

    def stale_by(self, enrolment: date) -> list[tuple[str, str, date]]:
        """Results current at the original enrolment that are stale by `enrolment`."""
        lookback = self.assumptions.days("lab_lookback_days")
        out = []
        latest: dict[str, Any] = {}
        for obs in self.patient.observations:
            if obs.date <= self.start and (obs.item not in latest or obs.date >= latest[obs.item].date):
                latest[obs.item] = obs
        for item, obs in sorted(latest.items()):
            if self.vocab.items[item].window != "lookback":
                continue
            fresh_then = obs.date >= self.start - timedelta(days=lookback)
            if fresh_then and obs.date < enrolment - timedelta(days=lookback):
                out.append((item, _value_text(obs.value), obs.date))
        return out


class RangeFixes:
    """The fixes one alternative of a rule's requirements offers: each group of requirements
    on one datum not met yet is collected (missing) or changed (a value treatment can move) to
    a value inside every bound of the group; the combinations, one option per group, are the fixes."""

    def __init__(self, baseline: Baseline) -> None:
        self.baseline = baseline

    def fixes(self, alternative: tuple[Requirement, ...], cid: str) -> list[Fix]:
        groups: dict[tuple[str, str], list[Requirement]] = {}
        for req in alternative:
            groups.setdefault((req.relation, req.item), []).append(req)
        per_group: list[list[RepairChange | None]] = []
        for (relation, item), reqs in groups.items():
            states = {self.baseline.snapshot.state(r) for r in reqs}
            if states == {"met"}:
                per_group.append([None])
                continue
            options = self._changes(relation, item, reqs, "missing" in states, cid, alternative)
            if not options:
                return []
            per_group.append(list(options))
        fixes = []
        for combo in product(*per_group):
            changes = tuple(c for c in combo if c is not None)
            if changes:
                fixes.append(changes)
        return fixes

    def _changes(
        self,
        relation: str,
        item: str,
        reqs: list[Requirement],
        missing: bool,
        cid: str,
        alternative: tuple[Requirement, ...],
    ) -> list[RepairChange]:
        baseline, vocab = self.baseline, self.baseline.vocab
        kind = "collect" if missing else "change"
        now = baseline.current(relation, item)
        if relation == "obs_num":
            spec = vocab.items[item]
            if not missing and not spec.modifiable:
                return []
            witness, wanted = _witness(reqs, spec.display_unit)
            return [RepairChange(kind, item, now, wanted, (cid,), witness=((item, _value_text(witness)),))]
        if relation == "xuln":
            spec = vocab.items[item]
            if not missing and not spec.modifiable:
                return []
            uln = baseline.uln(item)  # a new result keeps the limit of the stored one (kb.reasoning.whatif)
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
            return self._clearance(reqs, missing, cid, alternative)
        if relation == "age_at":
            start = baseline.start
            if not missing or baseline.patient.birth_date is not None:
                return []  # a birthday can be waited for (see WaitFixes), never changed
            born = date(start.year - 40, start.month, min(start.day, 28))  # a placeholder age of 40
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

    def _clearance(
        self, reqs: list[Requirement], missing: bool, cid: str, alternative: tuple[Requirement, ...]
    ) -> list[RepairChange]:
        """A measured clearance in range; or, when the clearance is computed, the creatinine
        that gives it (meeting the alternative's bound on creatinine × ULN as well)."""
        lower = [r for r in reqs if r.op in (">=", ">")]
        if not lower:
            return []
        bound = max(lower, key=lambda r: Decimal(r.value))
        now = self.baseline.current("crcl", "crcl")
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
            formula = self.baseline.assumptions["crcl_formula"]
            out.append(
                RepairChange(
                    "change",
                    "creatinine",
                    self.baseline.current("obs_num", "creatinine"),
                    f"≤ {_value_text(creatinine)} µmol/L (clearance {wanted} by {formula})",
                    (cid,),
                    witness=(("creatinine", _value_text(creatinine)),),
                    coupled=True,
                )
            )
        return out

    def _creatinine_for(self, bound: Requirement, alternative: tuple[Requirement, ...]) -> Decimal | None:
        baseline, vocab = self.baseline, self.baseline.vocab
        age = baseline.snapshot.values.get(("age_at", "enrolment"))
        patient = baseline.patient
        if ("obs_num", "crcl_measured") in baseline.snapshot.values or age is None or patient.weight_kg is None:
            return None
        if patient.sex is None or not vocab.items["creatinine"].modifiable:
            return None
        ratio = [r for r in alternative if r.relation == "xuln" and r.item == "creatinine" and r.op in ("<", "<=")]
        return creatinine_for_clearance(
            bound.op,
            Decimal(bound.value),
            age=Decimal(age),
            weight_kg=patient.weight_kg,
            female=patient.sex == "female",
            formula=str(baseline.assumptions["crcl_formula"]),
            umol_per_mg_dl=vocab.items["creatinine"].molar_factor or Decimal("88.4"),
            uln=baseline.uln("creatinine") if ratio else None,
            max_ratio=Decimal(ratio[0].value) if ratio else None,
        )


class GapFixes:
    """For an open criterion no requirement mends: collect every datum it waits for
    (histories reviewed, stale results repeated), when each can be simulated."""

    def __init__(self, baseline: Baseline) -> None:
        self.baseline = baseline

    def fixes(self, result: CriterionResult) -> list[Fix]:
        changes = []
        for gap in result.missing:
            if gap.reason == "history_not_reviewed":
                changes.append(
                    RepairChange(
                        "collect", gap.item, gap.detail, "history reviewed", (result.id,), witness=((gap.item, "yes"),)
                    )
                )
            elif gap.reason == "stale" and (latest := self.baseline.latest([gap.item])):
                _, value, when = latest[0]
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


class WaitFixes:
    """The earliest enrolment day from which a failing criterion passes, by bisection over
    the days up to the horizon, the engine asked about that one criterion each time."""

    def __init__(self, baseline: Baseline) -> None:
        self.baseline = baseline

    def fixes(self, result: CriterionResult) -> list[Fix]:
        waited = self.wait(result, ())
        return [] if waited is None else [waited]

    def wait(self, result: CriterionResult, extra: tuple[Change, ...]) -> Fix | None:
        """The earliest enrolment day from which `result`'s criterion no longer fails (with
        `extra` applied), with the results it reads repeated on that day as they are (a window
        counted back from a sample needs a new sample); None if it fails still at the horizon."""
        baseline, vocab, start = self.baseline, self.baseline.vocab, self.baseline.start
        latest = baseline.latest(self._reads(result.criterion.predicate or ""))

        def status(day: date) -> Status:
            moved = moved_enrolment(baseline.patient, baseline.reference, day, vocab) if day != start else []
            repeats = [setting(item, value, vocab, day) for item, value, _ in latest]
            when = day if day != start else baseline.as_of
            patient = baseline.patient_with([*extra, *moved, *repeats])
            return criterion_status(patient, result.criterion, baseline.kb, baseline.assumptions, when)

        horizon = start + timedelta(days=HORIZON_DAYS)
        if status(horizon) == Status.FAIL:
            return None
        low, high = start, horizon  # low fails (or is untested), high does not
        if status(low) != Status.FAIL:
            high = low
        while (high - low).days > 1:
            middle = low + timedelta(days=(high - low).days // 2)
            if status(middle) == Status.FAIL:
                low = middle
            else:
                high = middle
        if high == start and not latest and not extra:
            return None
        changes: list[RepairChange] = []
        if high > start:
            changes.append(
                RepairChange(
                    "wait", "enrolment", start.isoformat(), f"on or after {high.isoformat()}", (result.id,), high
                )
            )
        for item, value, when in latest:
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
        program = self.baseline.kb.program
        items: dict[str, None] = {}
        for name in program.depends_on([predicate]):
            for rule in program.rules_for(name):
                for lit in rule.body:
                    atom = lit if isinstance(lit, Atom) else None
                    if atom and atom.predicate in ("obs_num", "obs_cat") and isinstance(atom.args[1], Const):
                        items[str(atom.args[1].value)] = None
        return list(items)


class StopFixes:
    """Each drug of the failing proof still being taken, stopped on the first day one can,
    with the wait its washout then asks for (and the results to repeat on that day)."""

    def __init__(self, baseline: Baseline, waits: WaitFixes) -> None:
        self.baseline, self.waits = baseline, waits

    def fixes(self, result: CriterionResult) -> list[Fix]:
        fixes: list[Fix] = []
        for agent, started in self._culprits(result):
            day = max(self.baseline.now, started)
            stop = stopping(agent, self.baseline.vocab, day)
            after = self.waits.wait(result, (stop,))
            if after is not None:
                when = max((c.earliest_date for c in after if c.earliest_date), default=None)
                change = RepairChange(
                    "stop",
                    agent,
                    f"ongoing since {started.isoformat()}",
                    f"stopped on {day.isoformat()}",
                    (result.id,),
                    when,
                    stop=stop,
                )
                fixes.append((change, *(c for c in after if c.kind != "wait")))
        return fixes

    def _culprits(self, result: CriterionResult) -> list[tuple[str, date]]:
        """Drugs of the failing proof still being taken after the first day one can stop."""
        if result.trace is None:
            return []
        sources = {n.detail.get("source") for n in result.trace.walk()}
        drugs: dict[str, date] = {}
        for event in self.baseline.patient.events:
            if event.kind != "medication" or not event.agent or str(event.source) not in sources:
                continue
            if ongoing(event) or (event.end is not None and event.end > self.baseline.now):
                drugs[event.agent] = max(event.start, drugs.get(event.agent, event.start))
        return sorted(drugs.items())


def _value_text(value: Decimal | str) -> str:
    return format(value.normalize(), "f") if isinstance(value, Decimal) else value


def _witness(reqs: list[Requirement], unit: str) -> tuple[Decimal, str]:
    """A value inside the interval the requirements allow, and the interval as text."""
    text = " and ".join(r.describe(unit).removeprefix(f"{r.item} ") for r in reqs)
    return inside(reqs), text
