"""Three-valued evaluation of every criterion for one patient, and the verdict.

Each criterion's status is a pyDatalog answer: the truth values its deciding predicate
derives (yes / no / na; none at all means unknown). For an unknown criterion, the rules
behind it are walked (skipping sub-conditions the engine already decided) to name the data
to collect and why it is missing. Criteria combine by Kleene's logic into cohort verdicts,
and the patient's verdict is the best over their cohorts.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

from kb.catalogue.assumptions import AssumptionSet, resolve_assumptions
from kb.catalogue.criteria import X_BLOCK, Criterion
from kb.catalogue.knowledge import KnowledgeBase, load_knowledge
from kb.factbase.build import FactBase, Gap, ReferenceDates, build_facts, cohorts_of
from kb.language.engine import EngineError, Session
from kb.language.syntax import Atom, Const, Negation, Term, Var
from kb.reasoning.trace import Explainer, Node, message_from
from kb.reasoning.wording import plain_gaps, plain_message, sentence, words_for
from kb.records.patients import Patient
from kb.status import COHORTS, Cohort, Status, Truth, Verdict

__all__ = [
    "Assessment",
    "CohortVerdict",
    "CriterionResult",
    "applicable_criteria",
    "assess",
    "cohort_of",
    "cohort_verdict",
    "criteria_with",
    "criterion_status",
    "decide",
    "decide_statuses",
    "kleene_and",
    "kleene_or",
    "not_applicable",
    "status_from_truth",
    "verdict_without",
]

SCOPE_NOTE = "all general criteria and the six disease blocks; items lost from the record are listed to verify by hand"
MANUAL_MESSAGE = "Text missing from the record: verify by hand"


@dataclass(frozen=True)
class CriterionResult:
    criterion: Criterion
    status: Status
    reason: str | None  # for unknown: missing | stale | not_attested | history_not_reviewed | unknown_term
    message: str  # in plain clinical language (`kb.reasoning.wording`): what a clinician reads beside the status
    missing: tuple[Gap, ...] = ()
    trace: Node | None = None
    #: the formal one-line proof (facts with their rule bounds and the rule's algebra), for the
    #: evidence a reader opens; not in `as_dict`, whose keys stay as they were
    proof: str = ""

    @property
    def id(self) -> str:
        return self.criterion.id

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "kind": self.criterion.kind,
            "cohort": self.criterion.cohort,
            "status": self.status,
            "reason": self.reason,
            "message": self.message,
            "missing": [g.item for g in self.missing],
        }


@dataclass(frozen=True)
class CohortVerdict:
    cohort: str
    verdict: Verdict
    blocking: tuple[str, ...]
    unknown: tuple[str, ...]
    note: str = ""  # why the verdict is capped, if it is

    def as_dict(self) -> dict[str, Any]:
        return {
            "cohort": self.cohort,
            "verdict": self.verdict,
            "blocking": list(self.blocking),
            "unknown": list(self.unknown),
            "note": self.note,
        }


@dataclass(frozen=True)
class Assessment:
    """The answer to "is this patient eligible?", with everything needed to show why."""

    patient_id: str
    verdict: Verdict
    cohorts: tuple[CohortVerdict, ...]
    criteria: tuple[CriterionResult, ...]
    reference: ReferenceDates
    assumptions: dict[str, int | str]
    stamp: dict[str, str]
    scope: str = SCOPE_NOTE

    @property
    def eligible_via(self) -> list[str]:
        return [c.cohort for c in self.cohorts if c.verdict == Verdict.ELIGIBLE]

    @property
    def blocking(self) -> list[CriterionResult]:
        """The criteria that block in some cohort (an alternative that another rescues does not)."""
        ids = criteria_with(self.cohorts, Status.FAIL, [r.criterion for r in self.criteria], self._statuses)
        return [r for r in self.criteria if r.id in ids]

    @property
    def unknown(self) -> list[CriterionResult]:
        """The undecided criteria that keep some cohort's verdict open."""
        ids = criteria_with(self.cohorts, Status.UNKNOWN, [r.criterion for r in self.criteria], self._statuses)
        return [r for r in self.criteria if r.id in ids]

    @property
    def _statuses(self) -> dict[str, Status]:
        return {r.id: r.status for r in self.criteria}

    @property
    def elsewhere(self) -> list[CriterionResult]:
        """Other cohorts' criteria and the definitions only they use: not this patient's
        question, so answers list them apart."""
        return [
            r
            for r in self.criteria
            if r.status == Status.NOT_APPLICABLE
            and (r.criterion.cohort != "general" or r.criterion.kind == "definition")
        ]

    @property
    def manual_checks(self) -> list[CriterionResult]:
        return [r for r in self.criteria if r.status == Status.MANUAL]

    @property
    def to_collect(self) -> list[Gap]:
        """Every data item an unknown criterion waits for, once each."""
        seen: dict[str, Gap] = {}
        for result in self.unknown:
            for gap in result.missing:
                seen.setdefault(gap.item, gap)
        return list(seen.values())

    def result(self, criterion_id: str) -> CriterionResult:
        for r in self.criteria:
            if r.id.upper() == criterion_id.upper():
                return r
        raise KeyError(criterion_id)

    def proofs(self, criterion_id: str | None = None) -> list[tuple[str, Node]]:
        """Why: the proof tree of each blocking and unknown criterion, or of `criterion_id`
        alone (decided or not). A criterion evaluated without a tree (assessed with another
        `explain`, or manual) gets a one-node tree of its status and message."""
        results = [self.result(criterion_id)] if criterion_id else [*self.blocking, *self.unknown]
        return [(r.id, r.trace or Node("criterion", f"{r.id} {r.status}: {r.message}")) for r in results]

    def as_dict(self) -> dict[str, Any]:
        return {
            "patient": self.patient_id,
            "verdict": self.verdict,
            "cohorts": [c.as_dict() for c in self.cohorts],
            "eligible_via": self.eligible_via,
            "scope": self.scope,
            "reference_dates": self.reference.as_dict(),
            "reference_date_notes": list(self.reference.notes),
            "assumptions": self.assumptions,
            "stamp": self.stamp,
            "manual_checks": [f"{r.id}: {MANUAL_MESSAGE}" for r in self.manual_checks],
            "to_collect": [{"item": g.item, "reason": g.reason, "detail": g.detail} for g in self.to_collect],
            "criteria": [r.as_dict() for r in self.criteria],
        }


def criteria_with(
    cohorts: Sequence[CohortVerdict], status: Status, criteria: Sequence[Criterion], statuses: Mapping[str, Status]
) -> set[str]:
    """The criteria that block ("fail") or keep open ("unknown") some cohort's verdict; with
    no cohort, every counted criterion with that status (they decide the verdict together)."""
    if cohorts:
        return {i for c in cohorts for i in (c.blocking if status == Status.FAIL else c.unknown)}
    return {c.id for c in criteria if c.counted and statuses[c.id] == status}


def kleene_and(values: list[bool | None]) -> bool | None:
    if any(v is False for v in values):
        return False
    if any(v is None for v in values):
        return None
    return True


def kleene_or(values: list[bool | None]) -> bool | None:
    if any(v is True for v in values):
        return True
    if any(v is None for v in values):
        return None
    return False


def _truth(status: Status) -> bool | None:
    return {Status.FAIL: False, Status.UNKNOWN: None}.get(status, True)


def _verdict(value: bool | None) -> Verdict:
    return {True: Verdict.ELIGIBLE, False: Verdict.INELIGIBLE, None: Verdict.NEEDS_DATA}[value]


def assess(
    patient: Patient,
    kb: KnowledgeBase | None = None,
    assumptions: AssumptionSet | None = None,
    as_of: date | None = None,
    explain: str = "decisive",
    today: date | None = None,
) -> Assessment:
    """Evaluate every criterion for `patient`.

    `explain`: "decisive" builds proof trees for the blocking and unknown criteria (what an
    answer shows), "all" for every criterion, "none" for none (messages still come from
    short proofs), "status" neither trees nor messages of decided criteria (for checks that
    only compare statuses).
    """
    kb = kb or load_knowledge()
    assumptions = assumptions or resolve_assumptions()
    base = build_facts(patient, kb, assumptions, as_of, today)
    results: list[CriterionResult] = []
    # cohorts come straight from the diagnosis facts (in_cohort copies them), so that only the
    # rules of the criteria that apply need compiling
    cohorts = cohorts_of(base)
    applicable = applicable_criteria(kb, cohorts, assumptions)
    roots = frozenset({"in_cohort"} | {c.predicate for c in kb.criteria if c.id in applicable and c.predicate})
    with kb.engine.session(base.facts, roots) as session:
        explainers = (Explainer(session, kb, base), Explainer(session, kb, base, examine=False))
        for crit in kb.criteria:
            if crit.id not in applicable:
                results.append(not_applicable(crit, assumptions))
            elif crit.manual_unless and assumptions[crit.manual_unless] == "none":
                hint = f" (or set the assumption {crit.manual_unless})"
                results.append(CriterionResult(crit, Status.MANUAL, None, MANUAL_MESSAGE + hint))
            else:
                results.append(_evaluate(crit, session, explainers, base, kb, explain))
        if explain == "status":
            _check_consistency(session, kb, roots, patient.id)
    verdict, verdicts = decide(cohorts, results, assumptions)
    return Assessment(
        patient.id,
        verdict,
        verdicts,
        tuple(results),
        base.reference,
        assumptions.in_force(),
        _stamp(kb, assumptions, base),
    )


def decide(
    cohorts: Sequence[str], results: Sequence[CriterionResult], assumptions: AssumptionSet
) -> tuple[Verdict, tuple[CohortVerdict, ...]]:
    """The patient's verdict and each cohort's, from the criteria results."""
    return decide_statuses(cohorts, [r.criterion for r in results], [r.status for r in results], assumptions)


def decide_statuses(
    cohorts: Sequence[str], criteria: Sequence[Criterion], statuses: Sequence[Status], assumptions: AssumptionSet
) -> tuple[Verdict, tuple[CohortVerdict, ...]]:
    """The same from bare statuses (`statuses[n]` of `criteria[n]`): both the per-patient
    engine and the set-at-a-time screening decide through here."""
    verdicts = tuple(cohort_verdict(cohort, criteria, statuses, assumptions) for cohort in cohorts)
    if verdicts:
        return max((v.verdict for v in verdicts), key=lambda verdict: verdict.rank), verdicts
    # no cohort: the COHORT criterion fails or is unknown, and decides with the rest
    general = [_truth(st) for c, st in zip(criteria, statuses, strict=True) if c.cohort == "general" and c.counted]
    return _verdict(kleene_and(general)), verdicts


def status_from_truth(crit: Criterion, truth: str) -> Status:
    """A criterion's status from the truth its deciding predicate derived (a `Truth`, or the
    engine's string of one)."""
    if truth == Truth.NA:
        return Status.NOT_APPLICABLE
    if crit.kind in ("inclusion", "definition"):  # a definition passes when it holds
        return Status.PASS if truth == Truth.YES else Status.FAIL
    return Status.FAIL if truth == Truth.YES else Status.PASS


def verdict_without(assessment: Assessment, criterion_id: str, assumptions: AssumptionSet) -> Verdict:
    """The verdict the patient would get if `criterion_id` were dropped from the protocol
    (its status read as pass): what a reviewer weighs before amending a criterion."""
    results = [
        CriterionResult(r.criterion, Status.PASS, None, "") if r.id == criterion_id else r for r in assessment.criteria
    ]
    return decide(sorted(v.cohort for v in assessment.cohorts), results, assumptions)[0]


def criterion_status(
    patient: Patient, criterion: Criterion, kb: KnowledgeBase, assumptions: AssumptionSet, as_of: date | None = None
) -> Status:
    """The status of one criterion, compiling only the rules it needs: a search that asks
    about one criterion at many dates (the first day a window is over) need not pay for all."""
    if criterion.predicate is None:
        return Status.MANUAL
    base = build_facts(patient, kb, assumptions, as_of)
    with kb.engine.session(base.facts, frozenset({criterion.predicate})) as session:
        explainers = (Explainer(session, kb, base), Explainer(session, kb, base, examine=False))
        return _evaluate(criterion, session, explainers, base, kb, "status").status


def _check_consistency(session: Session, kb: KnowledgeBase, roots: frozenset[str], patient_id: str) -> None:
    """Every three-valued predicate, not only the criteria's, must answer one truth value:
    rules that derive both yes and no for a sub-condition contradict themselves."""
    declarations = kb.program.declarations
    for name in sorted(kb.program.depends_on(roots)):
        decl = declarations.get(name)  # in_cohort is asked for even where no rule set declares it
        if decl is not None and decl.role == "rule" and [t for _, t in decl.params] == ["patient", "truth"]:
            truths = {row[1] for row in session.ask(name, [patient_id, None])}
            if len(truths) > 1:
                raise EngineError(f"the rules derive {sorted(truths)} for {name}({patient_id}, _)")


def cohort_of(crit: Criterion, assumptions: AssumptionSet) -> str:
    """The cohort a criterion belongs to; block X's is the assumption x_block_owner."""
    if crit.cohort == X_BLOCK:
        return str(assumptions["x_block_owner"])
    return crit.cohort


def applicable_criteria(kb: KnowledgeBase, cohorts: list[str], assumptions: AssumptionSet) -> set[str]:
    """General criteria, those of the patient's cohorts, and the definitions these use."""
    ids = {c.id for c in kb.criteria if c.kind != "definition" and cohort_of(c, assumptions) in ("general", *cohorts)}
    used = {c.predicate for c in kb.criteria if c.id in ids and c.cohort != "general"}
    return ids | {c.id for c in kb.criteria if c.kind == "definition" and c.predicate in used}


def not_applicable(crit: Criterion, assumptions: AssumptionSet) -> CriterionResult:
    if crit.kind == "definition":
        return CriterionResult(crit, Status.NOT_APPLICABLE, None, "No criterion that applies to this patient uses it")
    owner = cohort_of(crit, assumptions)
    if owner not in COHORTS:
        why = f"block X is not applied (assumption x_block_owner = {owner})"
    else:
        why = f"a criterion of the {Cohort(owner).label} cohort, which the patient is not in"
    return CriterionResult(crit, Status.NOT_APPLICABLE, None, sentence(why))


#: one counted criterion of a cohort: (position in the catalogue, its group, the note shown
#: when it is a lost entry criterion left `manual`)
_Counted = tuple[int, str, str]
_PLANS: dict[tuple[str, str], tuple[Sequence[Criterion], tuple[_Counted, ...]]] = {}


def _counted(cohort: str, criteria: Sequence[Criterion], assumptions: AssumptionSet) -> tuple[_Counted, ...]:
    """The criteria a cohort's verdict counts, worked out once per catalogue and cohort (a
    screening of thousands of patients asks the same question each time)."""
    key = (cohort, str(assumptions["x_block_owner"]))
    cached = _PLANS.get(key)
    if cached is not None and (
        cached[0] is criteria
        or (len(cached[0]) == len(criteria) and all(a is b for a, b in zip(cached[0], criteria, strict=True)))
    ):
        return cached[1]
    plan = tuple(
        (
            n,
            c.group,
            f"{c.id}, this cohort's entry criterion, was lost from the record: at best needs_data "
            f"unless the assumption {c.manual_unless} supplies a reading"
            if c.manual_unless
            else "",
        )
        for n, c in enumerate(criteria)
        if c.counted and cohort_of(c, assumptions) in ("general", cohort)
    )
    _PLANS[key] = (criteria if isinstance(criteria, tuple) else tuple(criteria), plan)
    return plan


def cohort_verdict(
    cohort: str, criteria: Sequence[Criterion], statuses: Sequence[Status], assumptions: AssumptionSet
) -> CohortVerdict:
    """General and cohort criteria combined by Kleene's AND, alternatives (groups) by OR.

    `statuses[n]` is the status of `criteria[n]`; pass, not_applicable and manual count as
    true, fail as false, unknown as unknown."""
    false = undecided = False
    blocking: list[int] = []
    unknown: list[int] = []
    groups: dict[str, list[int]] = {}
    notes = []
    for index, group, entry_note in _counted(cohort, criteria, assumptions):
        status = statuses[index]
        if entry_note and status == Status.MANUAL:
            # a lost entry criterion that only an assumption can read: the cohort stays open
            undecided = True
            notes.append(entry_note)
        elif group:
            groups.setdefault(group, []).append(index)
        elif status == Status.FAIL:
            false = True
            blocking.append(index)
        elif status == Status.UNKNOWN:
            undecided = True
            unknown.append(index)
    for members in groups.values():  # an alternative holds if any member holds
        value = kleene_or([_truth(statuses[i]) for i in members])
        if value is None:
            undecided = True
            unknown += [i for i in members if statuses[i] == Status.UNKNOWN]
        elif value is False:
            false = True
            blocking += [i for i in members if statuses[i] == Status.FAIL]
    return CohortVerdict(
        cohort,
        Verdict.INELIGIBLE if false else Verdict.NEEDS_DATA if undecided else Verdict.ELIGIBLE,
        tuple(criteria[n].id for n in sorted(blocking)),
        tuple(criteria[n].id for n in sorted(unknown)),
        "; ".join(notes),
    )


def _evaluate(
    crit: Criterion,
    session: Session,
    explainers: tuple[Explainer, Explainer],
    base: FactBase,
    kb: KnowledgeBase,
    explain: str,
) -> CriterionResult:
    if crit.predicate is None:
        return CriterionResult(crit, Status.MANUAL, None, MANUAL_MESSAGE)
    truths = {row[1] for row in session.ask(crit.predicate, [base.patient_id, None])}
    if len(truths) > 1:
        raise EngineError(
            f"{crit.id}: the rules derive {sorted(truths)} for {crit.predicate}; "
            "a criterion's rules must be mutually exclusive"
        )
    if not truths:
        gaps = _gaps(crit.predicate, session, base, kb)
        unknown_node = _criterion_node(
            crit, Status.UNKNOWN, "no answer", [Node("gap", f"{g.item}: {g.reason} ({g.detail})") for g in gaps]
        )
        if not gaps:
            unknown_node.children.append(Node("note", "no rule decided it and no data gap was found"))
        details = dict.fromkeys(g.detail for g in gaps)  # one file set aside is one reason, not one per history
        message = (
            plain_gaps(list(details), words_for(kb.vocabulary)) if gaps else "No rule decides it with the data given"
        )
        reason = gaps[0].reason if gaps else "missing"
        return CriterionResult(
            crit, Status.UNKNOWN, reason, message, tuple(gaps), unknown_node if explain != "none" else None
        )
    truth = truths.pop()
    status = status_from_truth(crit, str(truth))
    if explain == "status":  # statuses only (the vignette suite, the mutation check)
        return CriterionResult(crit, status, None, "")
    wanted = explain == "all" or (explain == "decisive" and status == Status.FAIL)
    full, brief = explainers
    proof = (full if wanted else brief).prove(crit.predicate, (base.patient_id, truth))
    formal = message_from(proof) if proof else ""
    message = plain_message(proof, words_for(kb.vocabulary)) if proof else ""
    if status == Status.NOT_APPLICABLE:
        message = f"Does not apply: {message[:1].lower()}{message[1:]}"
    node: Node | None = None
    if wanted:
        node = _criterion_node(crit, status, str(truth), [proof] if proof else [])
    return CriterionResult(crit, status, None, message, (), node, formal)


def _criterion_node(crit: Criterion, status: Status, answer: str, children: list[Node]) -> Node:
    """The root of a proof tree: the criterion with its protocol text and what the engine said."""
    detail = {
        "protocol": crit.record_text or crit.text,
        "provenance": crit.provenance,
        "predicate": f"{crit.predicate}(P, {answer})",
    }
    return Node("criterion", f"{crit.id} {status}: {crit.text}", detail, children)


def _gaps(predicate: str, session: Session, base: FactBase, kb: KnowledgeBase) -> list[Gap]:
    """The data whose absence leaves `predicate` undecided, from the rules behind it.

    Constants passed down follow the walk: `history_complete(P, medications)` reads the
    medication review only, not every review the helper could read."""
    found: dict[str, Gap] = {}
    seen: set[tuple[str, tuple[str | None, ...]]] = set()
    decls = kb.program.declarations

    def walk(name: str, given: tuple[str | None, ...]) -> None:
        if (name, given) in seen:
            return
        seen.add((name, given))
        for rule in kb.program.rules_for(name):
            bound: dict[str, str] = {}
            if not _head_accepts(rule.head.args, given, bound):
                continue
            for lit in rule.body:
                atom = lit if isinstance(lit, Atom) else lit.atom if isinstance(lit, Negation) else None
                if atom is None:
                    continue
                args = tuple(
                    str(a.value) if isinstance(a, Const) else bound.get(a.name) if isinstance(a, Var) else None
                    for a in atom.args
                )
                decl = decls[atom.predicate]
                if decl.role != "rule":
                    for gap in base.gaps_for(atom.predicate, args[1] if len(args) > 1 else None):
                        found.setdefault(gap.item, gap)
                elif [t for _, t in decl.params] == ["patient", "truth"] and session.ask(
                    atom.predicate, [base.patient_id, None]
                ):
                    continue  # that sub-condition is decided: its data are not what is missing
                else:
                    walk(atom.predicate, args)

    walk(predicate, ())
    return list(found.values())


def _head_accepts(head: Sequence[Term], given: tuple[str | None, ...], bound: dict[str, str]) -> bool:
    """Whether a rule's head can match the constants a caller passes; binds its variables."""
    for arg, value in zip(head, given, strict=False):
        if value is None:
            continue
        if isinstance(arg, Const) and str(arg.value) != value:
            return False
        if isinstance(arg, Var) and not arg.anonymous:
            bound[arg.name] = value
    return True


def _stamp(kb: KnowledgeBase, assumptions: AssumptionSet, base: FactBase) -> dict[str, str]:
    def digest(value: object) -> str:
        return hashlib.sha256(json.dumps(value, sort_keys=True, default=str).encode()).hexdigest()[:16]

    return {
        "rules": kb.rules_hash,
        "assumptions": digest(assumptions.in_force()),
        "facts": digest(sorted(repr(f) for f in base.facts)),
        "as_of": base.reference.enrolment.isoformat(),
    }
