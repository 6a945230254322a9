"""The second form of dead rule, and exclusions that repeat an inclusion's failure.

An inclusion is implied when no patient who can pass the other obligations of a cohort
can fail it: (the others can pass) ∧ (it fails) is unsatisfiable, over the exact
abstraction of every derivation (kb.review.derivations), with "not applicable" counted as
passing, since it never blocks. An exclusion repeats an inclusion's negation when one way
it blocks is, proved both ways, one way the inclusion fails (GE10's positive pregnancy test
and GI9's): the finding says how far the two cover each other. When the only criteria that
make an inclusion implied are exclusions repeating its negation, it is one finding, not two.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import z3

from kb.catalogue.criteria import Criterion
from kb.review.context import Context, domain_of, proves, statuses, text
from kb.review.derivations import Derivation, Unfolded, parts
from kb.review.evidence import describe_part, model_patient
from kb.review.findings import Case, Finding, Witness
from kb.review.logic import _smt
from kb.status import Cohort, Status, Truth

__all__ = ["Implied", "fold", "implied", "implied_findings", "negation_findings"]


def _describe(derivation: Derivation) -> str:
    return ", ".join(describe_part(p) for p in parts(derivation))


def _compatible(ctx: Context, a: Criterion, b: Criterion) -> bool:
    """Whether both apply to the same patients (one general, or the same cohort)."""
    return "general" in (ctx.owner(a), ctx.owner(b)) or ctx.owner(a) == ctx.owner(b)


def _usable(unfolded: Unfolded) -> bool:
    return unfolded.complete and bool(unfolded.derivations)


# ---- exclusions that repeat an inclusion's failure -----------------------------------------------


def negation_findings(ctx: Context) -> list[Finding]:
    findings = []
    inclusions = [c for c in ctx.applied if c.kind == "inclusion"]
    for excl in (c for c in ctx.applied if c.kind == "exclusion"):
        blocks = ctx.truth(excl, Truth.YES)
        if not _usable(blocks):
            continue
        for incl in inclusions:
            fails = ctx.truth(incl, Truth.NO)
            if not _usable(fails) or not _compatible(ctx, excl, incl):
                continue
            if not ctx.derivations.keys(blocks) & ctx.derivations.keys(fails):
                continue
            same = [(e, i) for e in blocks.derivations for i in fails.derivations if _equivalent(ctx, e, i)]
            if same:
                finding = _negation(ctx, excl, incl, same)
                if finding is not None:
                    findings.append(finding)
    return findings


def _equivalent(ctx: Context, e: Derivation, i: Derivation) -> bool:
    if not ctx.derivations.keys_of(e) & ctx.derivations.keys_of(i):
        return False
    fe, fi = ctx.formula(e), ctx.formula(i)
    return not proves(ctx, fe) and proves(ctx, fe, z3.Not(fi)) and proves(ctx, fi, z3.Not(fe))


def _negation(
    ctx: Context, excl: Criterion, incl: Criterion, same: list[tuple[Derivation, Derivation]]
) -> Finding | None:
    blocks, fails = ctx.truth(excl, Truth.YES), ctx.truth(incl, Truth.NO)
    all_blocks, all_fails = ctx.derivations.some_of(blocks), ctx.derivations.some_of(fails)
    uncovered = [i for i in fails.derivations if not proves(ctx, ctx.formula(i), z3.Not(all_blocks))]
    beyond = [e for e in blocks.derivations if not proves(ctx, ctx.formula(e), z3.Not(all_fails))]
    repeated = "; ".join(dict.fromkeys(_describe(e) for e, _ in same))
    pair = (excl, incl)
    first = _case(
        ctx, f"W-neg-{excl.id}", [ctx.formula(same[0][0])], {excl.id: Status.FAIL, incl.id: Status.FAIL}, pair
    )
    if first is None:
        return None  # no constructed patient shows it: not reported unproved
    cases = [first]
    told = []
    if not uncovered and not beyond:
        told.append(f"{excl.id} blocks exactly the patients {incl.id} fails: one of them is enough.")
    elif not uncovered:
        told.append(f"Every way {incl.id} fails, {excl.id} blocks too: {incl.id} never decides alone.")
    elif not beyond:
        told.append(f"Every patient {excl.id} blocks fails {incl.id} too: {excl.id} never decides alone.")
    for n, (side, other, derivation, need, expected) in enumerate(
        [(excl, incl, e, ctx.passing(incl), {excl.id: Status.FAIL, incl.id: Status.PASS}) for e in beyond]
        + [(incl, excl, i, ctx.passing(excl), {excl.id: Status.PASS, incl.id: Status.FAIL}) for i in uncovered]
    ):
        verb = "blocks" if side is excl else "fails"
        made = _case(ctx, f"W-neg-{n}", [ctx.formula(derivation), need], expected, pair)
        if made is not None:
            cases.append(made)
            told.append(f"{side.id} also {verb} where {other.id} does not: {_describe(derivation)}.")
        else:
            told.append(f"{side.id} also {verb} for {_describe(derivation)}, which z3 cannot compare with {other.id}.")
    explanation = (
        f"{text(excl)} excludes, among its conditions, exactly the patients {text(incl)} fails for ({repeated}): "
        f"one condition decided twice, once as an exclusion and once as an inclusion's failure. {' '.join(told)}"
    )
    rules = tuple(dict.fromkeys(r for e, i in same for r in (*e.rules[:1], *i.rules[:1])))
    return Finding(
        "duplicate",
        (excl.id, incl.id),
        explanation,
        Witness("patient", f"{excl.id} blocks ⇔ {incl.id} fails, for {repeated} (z3, both directions)", tuple(cases)),
        rules,
    )


def _case(
    ctx: Context, patient_id: str, formulas: list[z3.BoolRef], expected: dict[str, Status], crits: tuple[Criterion, ...]
) -> Case | None:
    """A patient from a model of the formulas, kept only if the engine gives `expected`."""
    solver = z3.Solver()
    solver.add(*domain_of(formulas, ctx.kb), *formulas)
    if solver.check() != z3.sat:
        return None
    made = model_patient(patient_id, solver.model(), formulas, ctx.kb)
    if made is None:
        return None
    shown, patient = made
    actual = statuses(ctx, patient, crits)
    return Case(patient, expected, f"a patient with {shown}") if actual == expected else None


# ---- inclusions the others imply -----------------------------------------------------------------


@dataclass(frozen=True)
class Implied:
    inclusion: tuple[Criterion, ...]  # the obligation (an OR-group's members)
    scope: str  # general, or the cohort within which it is implied
    core: tuple[Criterion, ...]  # the other criteria whose passing rules out its failure
    constraints: tuple[z3.BoolRef, ...]


def implied(ctx: Context) -> list[Implied]:
    """Per cohort (general first), the inclusions no patient passing the others can fail.
    One solver holds every obligation behind its own guard; a cohort is the guards assumed."""
    obligations: dict[tuple[str, str], list[Criterion]] = {}  # (owner, group or id) -> members
    for c in ctx.applied:
        obligations.setdefault((ctx.owner(c), c.group or c.id), []).append(c)
    solver = z3.Solver()
    solver.add(*ctx.domain)
    guards, passes, keys = {}, {}, {}
    for key, members in obligations.items():
        guards[key] = z3.Bool(f"passes {key[1]}")
        passes[key] = z3.Or(*(ctx.passing(m) for m in members))
        keys[key] = frozenset().union(*(ctx.derivations.keys(ctx.truth(m, t)) for m in members for t in Truth))
        solver.add(z3.Implies(guards[key], passes[key]))
    found: list[Implied] = []
    done: set[tuple[str, str]] = set()
    for scope in ["general", *sorted({owner for owner, _ in obligations} - {"general"})]:
        here = [key for key in obligations if key[0] in ("general", scope)]
        if solver.check(*(guards[k] for k in here)) == z3.unsat:
            continue  # the cohort admits nobody: a contradiction, kb.review.logic's finding
        for key in here:
            members = obligations[key]
            if key in done or any(m.kind != "inclusion" for m in members):
                continue
            failing = [ctx.failing(m) for m in members]
            if not all(_usable(f) for f in failing):
                continue
            others = [k for k in here if k != key]
            if not frozenset().union(*(ctx.derivations.keys(f) for f in failing)) & frozenset().union(
                *(keys[k] for k in others)
            ):
                continue  # it reads nothing the others read: only a contradiction could imply it
            fails = z3.And(*(ctx.any_of(f) for f in failing))
            guard = z3.Bool(f"fails {key[1]}")
            solver.add(z3.Implies(guard, fails))
            if solver.check(guard) == z3.unsat or solver.check(guard, *(guards[k] for k in others)) != z3.unsat:
                continue  # (one that can never fail at all is not this finding)
            core = [k for k in others if any(z3.eq(c, guards[k]) for c in solver.unsat_core())]
            by_core = [m for k in core for m in obligations[k]]
            if len(by_core) == 1 and by_core[0].kind == "inclusion" and _compatible(ctx, by_core[0], members[0]):
                continue  # one inclusion inside another: the redundancy kind
            formulas = [*(passes[k] for k in core), fails]
            found.append(Implied(tuple(members), scope, tuple(by_core), (*domain_of(formulas, ctx.kb), *formulas)))
            if scope == "general":
                done.add(key)
    return found


def implied_findings(ctx: Context, negations: list[Finding], found: list[Implied]) -> list[Finding]:
    """Dead rules of the second form; those whose core is only exclusions repeating the
    inclusion's negation are folded into that duplicate finding (`fold`)."""
    return [f for f in (_implied_finding(ctx, i, negations) for i in found) if f is not None]


def fold(ctx: Context, negations: list[Finding], found: list[Implied]) -> list[Finding]:
    """The duplicate findings, each with the proof, where there is one, that its inclusion
    never decides alone (the cohort's obligations, its failure: unsat)."""
    out = []
    for finding in negations:
        excl_id, incl_id = finding.criteria
        proof = next(
            (
                i
                for i in found
                if [m.id for m in i.inclusion] == [incl_id]
                and _folded(i, negations)
                and excl_id in {c.id for c in i.core}
            ),
            None,
        )
        if proof is not None:
            finding = replace(
                finding, witness=replace(finding.witness, kind="unsat_core", core=_smt(list(proof.constraints)))
            )
        out.append(finding)
    return out


def _folded(i: Implied, negations: list[Finding]) -> bool:
    """Whether every criterion of the core is an exclusion repeating the inclusion's failure."""
    pairs = {f.criteria for f in negations}
    return bool(i.core) and all((c.id, m.id) in pairs for c in i.core for m in i.inclusion)


def _implied_finding(ctx: Context, i: Implied, negations: list[Finding]) -> Finding | None:
    if _folded(i, negations):
        return None
    names = " or ".join(text(m) for m in i.inclusion)
    failing = "; ".join(_describe(d) for m in i.inclusion for d in ctx.failing(m).derivations)
    where = "any patient" if i.scope == "general" else f"a patient of the {Cohort(i.scope).label} cohort"
    explanation = (
        f"{names} never decides: for {where}, it fails only when {failing}, and no patient who can pass "
        f"{', '.join(text(c) for c in i.core)} meets that. Whoever it would make ineligible already is; "
        "either it can go, or it was meant to say more."
    )
    cases: tuple[Case, ...] = ()
    passing = [ctx.passing(c) for c in i.core] + [z3.Or(*(ctx.passing(m) for m in i.inclusion))]
    made = _case(
        ctx,
        f"W-implied-{i.inclusion[0].id}",
        passing,
        {c.id: Status.PASS for c in (*i.core, *i.inclusion)},
        (*i.core, *i.inclusion),
    )
    if made is not None:
        cases = (made,)
    rules = tuple(dict.fromkeys(r for m in i.inclusion for d in ctx.failing(m).derivations for r in d.rules[:1]))
    return Finding(
        "dead rule",
        (*(m.id for m in i.inclusion), *(c.id for c in i.core)),
        explanation,
        Witness(
            "unsat_core",
            f"{' or '.join(m.id for m in i.inclusion)} fails ∧ {' ∧ '.join(c.id + ' can pass' for c in i.core)}: unsat",
            cases,
            _smt(list(i.constraints)),
        ),
        rules,
    )
