"""One condition decided in two places: duplicate exclusions, exclusions that repeat an
inclusion's failure, and inclusions the other criteria always imply.

Texts are not compared: what the deciding rules derive is (kb.review.derivations). Two
exclusions are duplicates when their blocking derivations need the same records (a
diagnosis of a class, expanded through the vocabulary to its conditions and codes) or the
same data; z3 then says whether one contains the other (whoever the first excludes, the
second does too). An exclusion repeats an inclusion's negation when one way it blocks is,
provably both ways, one way the inclusion fails. An inclusion is implied (the second form
of dead rule) when no patient who can pass the other obligations of a cohort can fail it.
Drug records are left to the engine-probed windows (kb.review.windows), which find those
overlaps with their windows.
"""

from __future__ import annotations

from dataclasses import dataclass

import z3

from kb.catalogue.assumptions import AssumptionSet
from kb.catalogue.criteria import Criterion
from kb.catalogue.knowledge import KnowledgeBase
from kb.language.syntax import Atom, Const
from kb.review.context import Context, Datum, context, proves, statuses, text
from kb.review.derivations import NOWHERE
from kb.review.evidence import (
    Record,
    cohort_events,
    contains,
    describe_shared,
    model_patient,
    shared_record,
    with_events,
    witness_name,
)
from kb.review.findings import Case, Finding, Witness, synthetic_patient
from kb.review.implied import fold, implied, implied_findings, negation_findings
from kb.status import Cohort, Status, Truth

__all__ = ["duplicate_findings", "overlap_findings"]

#: Days before enrolment a constructed record starts (tried in turn until both criteria
#: read it: a year suits a 5-year window and a 2-year one alike).
_OFFSETS = (365, 30, 1500)
_COHORT_DAYS = 30  # a cohort diagnosis this many days before enrolment


def overlap_findings(kb: KnowledgeBase, assumptions: AssumptionSet) -> list[Finding]:
    ctx = context(kb, assumptions)
    negations, found = negation_findings(ctx), implied(ctx)
    return [*duplicate_findings(ctx), *fold(ctx, negations, found), *implied_findings(ctx, negations, found)]


# ---- class 4: the same condition excluded in two places ------------------------------------------


@dataclass(frozen=True)
class _Found:
    records: list[tuple[Record, Record, str]]  # (record of a, record of b, the shared ones in words)
    data: list[tuple[Datum, Datum]]  # (a's part, b's part) reading the same datum


def duplicate_findings(ctx: Context) -> list[Finding]:
    exclusions = [c for c in ctx.applied if c.kind == "exclusion"]
    findings = []
    for n, a in enumerate(exclusions):
        for b in exclusions[n + 1 :]:
            found = _shared(ctx, a, b)
            if found is None:
                continue
            finding = _duplicate(ctx, a, b, found)
            if finding is not None:
                findings.append(finding)
    return findings


def _record_parts(ctx: Context, crit: Criterion) -> list[Record]:
    return ctx.evidence(crit)[0]


def _shared(ctx: Context, a: Criterion, b: Criterion) -> _Found | None:
    shared_records = []
    drugs = False
    for ra in _record_parts(ctx, a):
        for rb in _record_parts(ctx, b):
            both = shared_record(ra, rb, ctx.kb)
            if both is None:
                continue
            if ra.agents or rb.agents:  # drugs: the engine-probed windows' (kb.review.windows)
                drugs = drugs or (ra.names is not None and rb.names is not None)
                continue
            shared_records.append((ra, rb, describe_shared(both, ctx.kb)))
    shared_data = [
        (da, db)
        for da in ctx.evidence(a)[1]
        for db in ctx.evidence(b)[1]
        if set(da.names) & set(db.names) - {"sex"} and not proves(ctx, da.formula, db.formula)
    ]
    if drugs and not shared_records and not shared_data:
        ctx.drugs.append((a.id, b.id))
    if not shared_records and not shared_data:
        return None
    return _Found(shared_records, shared_data)


def _contained(ctx: Context, inner: Criterion, outer: Criterion) -> bool:
    """Whether every patient `inner` excludes, `outer` excludes too (z3, with the vocabulary's
    containments between record parts as axioms)."""
    yes_in, yes_out = ctx.truth(inner, Truth.YES), ctx.truth(outer, Truth.YES)
    if not yes_in.complete or not yes_in.derivations:
        return False
    axioms = [
        z3.Implies(z3.Bool(ri.text), z3.Bool(ro.text))
        for ri in _record_parts(ctx, inner)
        for ro in _record_parts(ctx, outer)
        if contains(ri, ro)
    ]
    return proves(ctx, ctx.any_of(yes_in), z3.Not(ctx.derivations.some_of(yes_out)), *axioms)


def _duplicate(ctx: Context, a: Criterion, b: Criterion, found: _Found) -> Finding | None:
    a_in_b, b_in_a = _contained(ctx, a, b), _contained(ctx, b, a)
    owner_a, owner_b = ctx.owner(a), ctx.owner(b)
    if not found.records and (owner_a == owner_b or "general" in (owner_a, owner_b)) and (a_in_b or b_in_a):
        return None  # a datum bound inside another, for the same patients: the redundancy kind
    cases, records_named = _cases(ctx, a, b, found)
    if "both" not in cases:
        return None  # no constructed patient shows it: not reported unproved
    what = "; ".join(dict.fromkeys(words for _, _, words in found.records)) or "; ".join(
        dict.fromkeys(
            da.words if da.words == db.words else f"{da.words} ({a.id}) and {db.words} ({b.id})"
            for da, db in found.data
        )
    )
    containment = _containment(ctx.kb, a, b, a_in_b, b_in_a, found, cases)
    cohorts = _cohorts(ctx, a, b, a_in_b, b_in_a, records_named)
    explanation = f"{text(a)} and {text(b)} exclude the same condition: {what}. {containment} {cohorts}"
    rules = tuple(dict.fromkeys(r for c in (a, b) for d in ctx.truth(c, Truth.YES).derivations for r in d.rules[:1]))
    return Finding(
        "duplicate",
        (a.id, b.id),
        explanation,
        Witness("patient", f"one record or datum ({what}) fails both", tuple(cases.values()), detail={"shared": what}),
        rules,
    )


def _alone(mine: Record, theirs: Record, kb: KnowledgeBase) -> list[str]:
    """Names one side's record accepts and the other's does not (vocabulary names only)."""
    m, t = mine.allowed(), theirs.allowed()
    if m is not None and t is not None:
        out = m - t
    elif m is not None:
        out = m & theirs.excluded
    elif t is not None:
        out = frozenset(kb.vocabulary.conditions) - t - mine.excluded if mine.kind is None else frozenset()
    else:
        out = theirs.excluded - mine.excluded
    return sorted(out)


def _containment(
    kb: KnowledgeBase, a: Criterion, b: Criterion, a_in_b: bool, b_in_a: bool, found: _Found, cases: dict[str, Case]
) -> str:
    if a_in_b and b_in_a:
        same = f" (both are decided by one rule, {a.predicate})" if a.predicate == b.predicate else ""
        return f"They exclude exactly the same patients{same}."
    told = []
    for inner, outer, yes in ((a, b, a_in_b), (b, a, b_in_a)):
        if yes:
            told.append(f"{inner.id} never decides alone: every patient it excludes, {outer.id} excludes too.")
    for crit in (a, b):
        if crit.id in cases:
            told.append(f"{crit.id} alone excludes {cases[crit.id].note}.")
    names = [
        f"{crit.id} alone takes {', '.join(n.replace('_', ' ') for n in only)}"
        for crit, only in (
            (a, sorted({n for ra, rb, _ in found.records for n in _alone(ra, rb, kb)})),
            (b, sorted({n for ra, rb, _ in found.records for n in _alone(rb, ra, kb)})),
        )
        if only and not ((crit is a and a_in_b) or (crit is b and b_in_a))
    ]
    if names:
        told.append(f"Of the records both read, {'; '.join(names)}.")
    if any(not (ra.plain and rb.plain) for ra, rb, _ in found.records):
        told.append("Each reads its own time window.")
    return " ".join(told) or "z3 does not show one inside the other."


def _cohorts(
    ctx: Context, a: Criterion, b: Criterion, a_in_b: bool, b_in_a: bool, named: dict[str, tuple[str, str]]
) -> str:
    owner_a, owner_b = ctx.owner(a), ctx.owner(b)
    if "general" not in (owner_a, owner_b) and owner_a != owner_b:
        others = [c.label for c in Cohort if c not in (owner_a, owner_b)]
        return (
            f"{a.id} applies to the {Cohort(owner_a).label} cohort and {b.id} to the {Cohort(owner_b).label} "
            f"cohort only: a patient of the other cohorts ({', '.join(others)}) with it is excluded by neither. "
            "If the condition was meant to exclude from every cohort, it belongs among the general exclusions."
        )
    if owner_a == owner_b:
        return "Both apply to the same patients: for those with it, one criterion is enough."
    block, general = (a, b) if owner_b == "general" else (b, a)
    inside = (block is a and a_in_b) or (block is b and b_in_a)
    cohort = Cohort(ctx.owner(block)).label
    if inside:
        return (
            f"{general.id} applies to every cohort, so the {cohort} block's {block.id} adds nothing: "
            "a reviewer should ask what the block item was meant to add."
        )
    told = (
        f"{general.id} applies to every cohort and {block.id} to the {cohort} cohort only: a patient of that "
        f"cohort with it is excluded twice, and {block.id} decides alone only where {general.id} does not reach"
    )
    if block.id not in named:
        return told + "."
    words, name = named[block.id]
    if _tied(ctx, block):  # about the cohort's own disease (a myositis after a tumour): no other cohort has it
        excepted = any(name in r.excluded for r in _record_parts(ctx, general))
        return f"{told}: for instance {words}{f', which {general.id} excepts' if excepted else ''}."
    return (
        f"{told}; so a patient of another cohort with {words} is excluded by neither: if {block.id} "
        "was meant for every cohort, it belongs among the general exclusions."
    )


def _tied(ctx: Context, crit: Criterion) -> bool:
    """Whether every way a criterion blocks reads its own cohort's diagnosis."""
    own = Const(ctx.owner(crit), NOWHERE)
    return all(
        any(isinstance(lit, Atom) and lit.predicate == "cohort_diagnosis" and lit.args[1] == own for lit in d.literals)
        for d in ctx.truth(crit, Truth.YES).derivations
    )


def _cases(
    ctx: Context, a: Criterion, b: Criterion, found: _Found
) -> tuple[dict[str, Case], dict[str, tuple[str, str]]]:
    """Constructed patients, each confirmed by the engine: "both" fails both criteria; under a
    criterion's id, one only that criterion excludes (another name, or another day); and the
    record each has, in words."""
    cohorts = [o for o in dict.fromkeys((ctx.owner(a), ctx.owner(b))) if o != "general"]
    where = f" of the {' and '.join(Cohort(c).label for c in cohorts)} cohort{'s' if len(cohorts) > 1 else ''}"
    wanted = {
        "both": {a.id: Status.FAIL, b.id: Status.FAIL},
        a.id: {a.id: Status.FAIL, b.id: Status.PASS},
        b.id: {a.id: Status.PASS, b.id: Status.FAIL},
    }
    tries: dict[str, list[tuple[str, str, int]]] = {key: [] for key in wanted}
    later: dict[str, list[tuple[str, str, int]]] = {key: [] for key in wanted}  # the same record, another day
    for ra, rb, _ in found.records:
        shared = shared_record(ra, rb, ctx.kb)
        name = witness_name(shared, ctx.kb, a.record_text + b.record_text) if shared is not None else None
        if name is not None:
            kind = ra.kind or rb.kind or "diagnosis"
            tries["both"] += [(kind, name, offset) for offset in _OFFSETS]
            later[a.id] += [(kind, name, offset) for offset in _OFFSETS[1:]]
            later[b.id] += [(kind, name, offset) for offset in _OFFSETS[1:]]
        for crit, mine, theirs in ((a, ra, rb), (b, rb, ra)):
            tries[crit.id] += [(mine.kind or "diagnosis", n, _OFFSETS[0]) for n in _alone(mine, theirs, ctx.kb)[:2]]
    for key, more in later.items():
        tries[key] += more
    out: dict[str, Case] = {}
    named: dict[str, tuple[str, str]] = {}
    for key, expected in wanted.items():
        for kind, name, offset in dict.fromkeys(tries[key]):
            patient = synthetic_patient(f"W-dup-{key}", ctx.kb, events=[(kind, name, offset, None)])
            patient = with_events(patient, cohort_events(ctx.kb, cohorts, _COHORT_DAYS))
            if statuses(ctx, patient, (a, b)) == expected:
                words = f"{kind.replace('_', ' ')} record of {name.replace('_', ' ')} {offset} days before enrolment"
                out[key] = Case(patient, expected, f"a patient{where if cohorts else ''} with a {words}")
                named[key] = (f"a {kind.replace('_', ' ')} record of {name.replace('_', ' ')}", name)
                break
    if not found.records:
        out.update(_data_cases(ctx, a, b, found, cohorts, wanted))
    return out, named


def _data_cases(
    ctx: Context, a: Criterion, b: Criterion, found: _Found, cohorts: list[str], wanted: dict[str, dict[str, Status]]
) -> dict[str, Case]:
    out: dict[str, Case] = {}
    not_a = z3.Not(ctx.derivations.some_of(ctx.truth(a, Truth.YES)))
    not_b = z3.Not(ctx.derivations.some_of(ctx.truth(b, Truth.YES)))
    for da, db in found.data:
        fa, fb = da.formula, db.formula
        for key, formulas in (("both", [fa, fb]), (a.id, [fa, not_b]), (b.id, [fb, not_a])):
            if key in out:
                continue
            solver = z3.Solver()
            solver.add(*ctx.domain, *formulas)
            if solver.check() != z3.sat:
                continue
            made = model_patient(f"W-dup-{key}", solver.model(), formulas, ctx.kb)
            if made is None:
                continue
            shown, patient = made
            patient = with_events(patient, cohort_events(ctx.kb, cohorts, _COHORT_DAYS))
            if statuses(ctx, patient, (a, b)) == wanted[key]:
                out[key] = Case(patient, wanted[key], f"a patient with {shown}")
    return out
