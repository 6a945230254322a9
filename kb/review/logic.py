"""Contradictions, dead rules, redundancies and undecided ranges, decided by z3.

Each criterion's passing and failing truths are unfolded into alternatives of datum
requirements (`kb.reasoning.requirements.alternatives`): for an alternative that reads other facts
too (an event, a `not`), its requirements are only necessary, which is all an
unsatisfiability proof needs; a claim that one criterion's failure covers another's uses
only exact alternatives. Rules sharing no text meet in the solver through the data they
bound: an inclusion `clearance ≥ 60` makes an exclusion `clearance < 40` dead.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from fractions import Fraction

import portion as P
import z3

from kb.catalogue.assumptions import AssumptionSet
from kb.catalogue.criteria import Criterion
from kb.catalogue.knowledge import KnowledgeBase
from kb.reasoning.evaluation import cohort_of, criterion_status
from kb.reasoning.requirements import Alternative, Requirement, alternatives, inside
from kb.records.patients import Patient
from kb.review.findings import REVIEW_DAY, Case, Finding, Witness, synthetic_patient
from kb.status import Status, Truth

__all__ = ["logic_findings"]

_NUMERIC = frozenset({"obs_num", "xuln", "crcl", "egfr", "age_at"})
_NOMINAL_ULN = Decimal(100)


def _key_name(relation: str, item: str) -> str:
    return f"{relation}:{item}"


def _var(relation: str, item: str) -> z3.ExprRef:
    name = _key_name(relation, item)
    return z3.Real(name) if relation in _NUMERIC else z3.String(name)


def _constraint(req: Requirement) -> z3.BoolRef | None:
    if req.relation == "reviewed":
        return None  # a review date can always be reached
    var = _var(req.relation, req.item)
    if req.relation in _NUMERIC:
        value = z3.RealVal(str(req.value))
        return {
            ">=": var >= value,
            ">": var > value,
            "<=": var <= value,
            "<": var < value,
            "=": var == value,
            "!=": var != value,
        }[req.op]
    literal = z3.StringVal(str(req.value))
    return var == literal if req.op == "=" else var != literal


def _conjunction(alt: Alternative) -> z3.BoolRef:
    parts = [c for c in (_constraint(r) for r in alt.requirements) if c is not None]
    return z3.And(*parts) if parts else z3.BoolVal(True)


@dataclass
class _Criterion:
    criterion: Criterion
    passing: list[Alternative]
    failing: list[Alternative]

    @property
    def id(self) -> str:
        return self.criterion.id

    def can_pass(self) -> z3.BoolRef:
        """Necessary for passing (True when some way to pass bounds no datum)."""
        if not self.passing:
            return z3.BoolVal(False)
        return z3.Or(*(_conjunction(a) for a in self.passing))

    def surely_fails(self) -> z3.BoolRef:
        """Sufficient for failing: the exact alternatives only."""
        exact = [_conjunction(a) for a in self.failing if a.exact and a.requirements]
        return z3.Or(*exact) if exact else z3.BoolVal(False)


def _analysed(kb: KnowledgeBase, assumptions: AssumptionSet) -> list[_Criterion]:
    out = []
    for crit in kb.criteria:
        if not crit.counted or crit.predicate is None or crit.kind not in ("inclusion", "exclusion"):
            continue
        if crit.manual_unless and assumptions[crit.manual_unless] == "none":
            continue  # verified by hand (the text was lost): nothing to reason about
        yes, no = (
            alternatives(kb.program, crit.predicate, Truth.YES),
            alternatives(kb.program, crit.predicate, Truth.NO),
        )
        passing, failing = (yes, no) if crit.kind == "inclusion" else (no, yes)
        out.append(_Criterion(crit, passing, failing))
    return out


def _domain(keys: set[tuple[str, str]], kb: KnowledgeBase) -> list[z3.BoolRef]:
    out = []
    for relation, item in sorted(keys):  # sorted: the core text is the same in every process
        if relation not in _NUMERIC:
            continue
        var = _var(relation, item)
        out.append(var >= 0)
        spec = kb.vocabulary.items.get(item)
        if relation == "obs_num" and spec is not None and spec.maximum is not None:
            out.append(var <= z3.RealVal(str(spec.maximum)))
        if relation == "age_at":
            out.append(var <= 120)
    return out


def _keys(alts: list[Alternative]) -> set[tuple[str, str]]:
    return {(r.relation, r.item) for a in alts for r in a.requirements if r.relation != "reviewed"}


def _smt(constraints: list[z3.BoolRef]) -> tuple[str, ...]:
    solver = z3.Solver()
    solver.add(*constraints)
    return (solver.to_smt2(),)


def _model_patient(
    patient_id: str, model: z3.ModelRef, keys: set[tuple[str, str]], kb: KnowledgeBase
) -> tuple[str, Patient] | None:
    """A constructed patient whose data take the model's values (None if one cannot be set)."""
    values: dict[str, Decimal | str] = {}
    uln: dict[str, Decimal] = {}
    attested: dict[str, str] = {}
    birth = date(1980, 1, 1)
    shown = []
    for relation, item in sorted(keys):
        raw = model.eval(_var(relation, item), model_completion=True)
        if relation in _NUMERIC:
            number = _decimal(raw)
            if relation == "obs_num":
                values[item] = number
            elif relation == "xuln":
                values[item], uln[item] = number * _NOMINAL_ULN, _NOMINAL_ULN
            elif relation == "crcl":
                values["crcl_measured"] = number
            elif relation == "egfr":
                return None  # computed from creatinine and age by CKD-EPI: not a datum to set
            else:
                years = int(number)
                birth = date(REVIEW_DAY.year - years, REVIEW_DAY.month, REVIEW_DAY.day)
            shown.append(f"{item} {number.normalize():f}" + (" × ULN" if relation == "xuln" else ""))
        else:
            text = raw.as_string() if isinstance(raw, z3.SeqRef) else str(raw)
            if not text:
                return None
            (values if relation == "obs_cat" else attested)[item] = text
            shown.append(f"{item} {text}")
    patient = synthetic_patient(patient_id, kb, values, attested=attested, uln=uln, birth_date=birth)
    return ", ".join(shown), patient


def _alt_patient(patient_id: str, alt: Alternative, kb: KnowledgeBase) -> tuple[str, Patient] | None:
    """A constructed patient meeting an alternative, each value next to its bound."""
    by_key: dict[tuple[str, str], list[Requirement]] = {}
    for req in alt.requirements:
        if req.relation != "reviewed":
            by_key.setdefault((req.relation, req.item), []).append(req)
    values: dict[tuple[str, str], Decimal | str] = {}
    for key, reqs in by_key.items():
        if key[0] in _NUMERIC:
            values[key] = inside(reqs)
        else:
            equal = [r for r in reqs if r.op == "="]
            if not equal:
                return None
            values[key] = str(equal[0].value)
    solver = z3.Solver()
    solver.add(_conjunction(alt))
    for (relation, item), value in values.items():
        var = _var(relation, item)
        solver.add(var == (z3.RealVal(str(value)) if relation in _NUMERIC else z3.StringVal(str(value))))
    if solver.check() != z3.sat:
        return None
    return _model_patient(patient_id, solver.model(), set(values), kb)


def _decimal(value: z3.ExprRef) -> Decimal:
    if z3.is_rational_value(value):
        fraction = Fraction(value.numerator_as_long(), value.denominator_as_long())
        return (Decimal(fraction.numerator) / Decimal(fraction.denominator)).quantize(Decimal("0.0001"))
    return Decimal(str(value).rstrip("?"))


def _scope(crit: Criterion, cohort: str, assumptions: AssumptionSet) -> bool:
    return cohort_of(crit, assumptions) in ("general", cohort)


def _text(crit: Criterion) -> str:
    return f"{crit.id} (“{crit.record_text or crit.text}”)"


def logic_findings(kb: KnowledgeBase, assumptions: AssumptionSet) -> list[Finding]:
    analysed = _analysed(kb, assumptions)
    cohorts = sorted({cohort_of(a.criterion, assumptions) for a in analysed} - {"general"})
    findings: list[Finding] = []
    findings += _contradictions(kb, analysed, cohorts, assumptions)
    findings += _dead_rules(kb, analysed, cohorts, assumptions)
    findings += _redundancies(kb, analysed, assumptions)
    findings += _undecided(kb, analysed)
    return findings


def _combined(members: list[_Criterion]) -> z3.BoolRef:
    return z3.Or(*(m.can_pass() for m in members)) if len(members) > 1 else members[0].can_pass()


def _obligations(
    analysed: list[_Criterion], cohort: str, assumptions: AssumptionSet, kinds: tuple[str, ...]
) -> dict[str, list[_Criterion]]:
    """The criteria a patient of `cohort` must pass, an OR-group as one obligation."""
    out: dict[str, list[_Criterion]] = {}
    for a in analysed:
        if a.criterion.kind in kinds and _scope(a.criterion, cohort, assumptions):
            out.setdefault(a.criterion.group or a.id, []).append(a)
    return out


def _contradictions(
    kb: KnowledgeBase, analysed: list[_Criterion], cohorts: list[str], assumptions: AssumptionSet
) -> list[Finding]:
    findings = []
    seen: set[tuple[str, ...]] = set()
    for cohort in ["general", *cohorts]:
        obligations = _obligations(analysed, cohort, assumptions, ("inclusion", "exclusion"))
        if not obligations:
            continue
        solver = z3.Solver()
        keys = set().union(*(_keys(m.passing) for members in obligations.values() for m in members))
        solver.add(*_domain(keys, kb))
        tracked: dict[str, z3.BoolRef] = {}
        for name, members in obligations.items():
            tracked[name] = _combined(members)
            solver.assert_and_track(tracked[name], z3.Bool(f"obligation {name}"))
        if solver.check() != z3.unsat:
            continue
        core = sorted(str(c).removeprefix("obligation ") for c in solver.unsat_core())
        if tuple(core) in seen:
            continue  # the same general criteria, already reported
        seen.add(tuple(core))
        involved = [m for name in core for m in obligations[name]]
        constraints = [*_domain(keys, kb), *(tracked[name] for name in core)]
        findings.append(
            Finding(
                "contradiction",
                tuple(m.id for m in involved),
                f"no patient of {'any' if cohort == 'general' else 'the ' + cohort} cohort can meet "
                f"{', '.join(_text(m.criterion) for m in involved)} together: the cohort admits nobody",
                Witness(
                    "unsat_core",
                    "; ".join(str(c) for c in constraints),
                    _each_excludes_the_others(kb, assumptions, involved),
                    _smt(constraints),
                ),
                tuple(rule for m in involved for a in m.passing for rule in a.rules[:1]),
            )
        )
    return findings


def _each_excludes_the_others(
    kb: KnowledgeBase, assumptions: AssumptionSet, involved: list[_Criterion]
) -> tuple[Case, ...]:
    """For each criterion of a contradiction, a patient who meets it, and fails another."""
    cases = []
    for m in involved:
        alt = next((a for a in m.passing if a.exact and a.requirements), None)
        made = _alt_patient(f"W-{m.id}", alt, kb) if alt else None
        if made is None:
            continue
        shown, patient = made
        statuses = {o.id: criterion_status(patient, o.criterion, kb, assumptions) for o in involved}
        if statuses[m.id] == Status.PASS and Status.FAIL in statuses.values():
            cases.append(Case(patient, statuses, f"a patient with {shown}"))
    return tuple(cases)


def _dead_rules(
    kb: KnowledgeBase, analysed: list[_Criterion], cohorts: list[str], assumptions: AssumptionSet
) -> list[Finding]:
    findings = []
    for excl in (a for a in analysed if a.criterion.kind == "exclusion"):
        owner = cohort_of(excl.criterion, assumptions)
        scope = "general" if owner == "general" else owner
        inclusions = _obligations(analysed, scope, assumptions, ("inclusion",))
        for alt in excl.failing:
            if not [r for r in alt.requirements if r.relation != "reviewed"]:
                continue
            solver = z3.Solver()
            keys = _keys([alt]) | set().union(*(_keys(m.passing) for ms in inclusions.values() for m in ms))
            solver.add(*_domain(keys, kb))
            solver.assert_and_track(_conjunction(alt), z3.Bool("exclusion"))
            for name, members in inclusions.items():
                solver.assert_and_track(_combined(members), z3.Bool(f"inclusion {name}"))
            if solver.check() != z3.unsat:
                continue
            names = sorted(str(c).removeprefix("inclusion ") for c in solver.unsat_core() if str(c) != "exclusion")
            blockers = [m for name in names for m in inclusions[name]]
            findings.append(_dead_finding(kb, excl, alt, blockers))
    return findings


def _dead_finding(kb: KnowledgeBase, excl: _Criterion, alt: Alternative, blockers: list[_Criterion]) -> Finding:
    condition = " and ".join(r.describe() for r in alt.requirements if r.relation != "reviewed")
    needs = "; ".join(
        f"{m.id} needs " + " or ".join(" and ".join(r.describe() for r in a.requirements) for a in m.passing)
        for m in blockers
    )
    constraints = [_conjunction(alt), *(m.can_pass() for m in blockers)]
    cases: tuple[Case, ...] = ()
    if alt.exact:
        made = _alt_patient("W-dead", alt, kb)
        if made is not None:
            shown, patient = made
            expected = {excl.id: Status.FAIL, **{m.id: Status.FAIL for m in blockers}}
            cases = (Case(patient, expected, f"a patient with {shown}"),)
    return Finding(
        "dead rule",
        (excl.id, *(m.id for m in blockers)),
        f"the rule of {_text(excl.criterion)} that excludes when {condition} cannot exclude anyone who meets "
        f"the inclusions: {needs}. Whoever it would exclude is already ineligible.",
        Witness("unsat_core" if not cases else "patient", f"{condition} contradicts {needs}", cases, _smt(constraints)),
        alt.rules,
    )


def _redundancies(kb: KnowledgeBase, analysed: list[_Criterion], assumptions: AssumptionSet) -> list[Finding]:
    findings = []
    for a in analysed:
        failing = [alt for alt in a.failing if [r for r in alt.requirements if r.relation != "reviewed"]]
        if not failing or len(failing) != len(a.failing):
            continue
        owner_a = cohort_of(a.criterion, assumptions)
        for b in analysed:
            owner_b = cohort_of(b.criterion, assumptions)
            if b is a or b.criterion.kind != a.criterion.kind or owner_b not in ("general", owner_a):
                continue
            if not _keys(failing) & _keys(b.failing):
                continue
            covered = True
            for alt in failing:
                solver = z3.Solver()
                solver.add(*_domain(_keys([alt]) | _keys(b.failing), kb), _conjunction(alt), z3.Not(b.surely_fails()))
                if solver.check() != z3.unsat:
                    covered = False
                    break
            if covered:
                findings.append(_redundancy_finding(kb, a, b, failing))
    return findings


def _redundancy_finding(kb: KnowledgeBase, a: _Criterion, b: _Criterion, failing: list[Alternative]) -> Finding:
    cases = []
    for n, alt in enumerate(failing):
        if alt.exact:
            made = _alt_patient(f"W-red{n}", alt, kb)
            if made is not None:
                shown, patient = made
                cases.append(Case(patient, {a.id: Status.FAIL, b.id: Status.FAIL}, f"a patient with {shown}"))
    return Finding(
        "redundancy",
        (a.id, b.id),
        f"{_text(a.criterion)} never blocks alone: every patient it blocks, {_text(b.criterion)} blocks too.",
        Witness("patient" if cases else "interval", f"each way {a.id} fails implies {b.id} fails", tuple(cases)),
        tuple(rule for alt in failing for rule in alt.rules[:1]),
    )


def _interval(req: Requirement) -> P.Interval:
    value = Decimal(req.value)
    return {
        ">=": P.closed(value, P.inf),
        ">": P.open(value, P.inf),
        "<=": P.closed(-P.inf, value),
        "<": P.open(-P.inf, value),
        "=": P.singleton(value),
    }.get(req.op, P.open(-P.inf, P.inf))


def _shown(interval: P.Interval) -> str:
    return str(P.to_string(interval, conv=lambda v: format(v.normalize(), "f") if isinstance(v, Decimal) else str(v)))


def _union(alts: list[Alternative]) -> P.Interval:
    """The values of one quantity for which some alternative holds (interval algebra)."""
    out = P.empty()
    for alt in alts:
        interval = P.open(-P.inf, P.inf)
        for req in alt.requirements:
            interval &= _interval(req)
        out |= interval
    return out


def _undecided(kb: KnowledgeBase, analysed: list[_Criterion]) -> list[Finding]:
    """A criterion whose rules read one quantity and leave values of it with no answer: the
    gap is the domain less the union of the passing and failing intervals."""
    findings = []
    for a in analysed:
        alts = a.passing + a.failing
        keys = _keys(alts)
        if len(keys) != 1 or not all(alt.exact and alt.requirements for alt in alts):
            continue
        (relation, item) = next(iter(keys))
        if relation not in _NUMERIC:
            continue
        spec = kb.vocabulary.items.get(item)
        top = spec.maximum if relation == "obs_num" and spec is not None and spec.maximum is not None else P.inf
        gap = P.closed(Decimal(0), top) - (_union(a.passing) | _union(a.failing))
        if gap.empty:
            continue
        first = gap[0]
        point = (
            first.lower
            if first.left == P.CLOSED
            else (first.lower + first.upper) / 2
            if first.upper != P.inf
            else first.lower + 1
        )
        value = Decimal(point).normalize()
        alt = Alternative((Requirement(relation, item, "=", value),), True, ())
        made = _alt_patient("W-gap", alt, kb)
        if made is None:
            continue
        shown, patient = made
        findings.append(
            Finding(
                "boundary/window",
                (a.id,),
                f"the rules of {_text(a.criterion)} decide neither pass nor fail for {item} in {_shown(gap)}: "
                f"for instance {shown} is recorded and the criterion stays unknown",
                Witness(
                    "patient",
                    f"{item} {_shown(gap)}: no rule applies",
                    (Case(patient, {a.id: Status.UNKNOWN}, f"a patient with {shown}"),),
                    detail={"undecided": _shown(gap)},
                ),
                tuple(rule for alt in alts for rule in alt.rules[:1]),
            )
        )
    return findings
