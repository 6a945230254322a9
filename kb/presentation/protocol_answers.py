"""Protocol answers composed: the sentences, numbers and assumptions behind each kind of
protocol question (kb.presentation.protocol_questions reads the question; kb.presentation.protocol_facts the rules).

A threshold is said as the rule compares it ("GI6.3: platelet count must be ≥ 50 ×10⁹/L"),
a drug by the criteria that count it, with their windows read off the rules (a dose on the
window's first day still counts, so the day after is the earliest), a refractory definition
by its bounds and the drugs it counts. Each answer carries the protocol sentence, the
reading, and every assumption the criteria involved use, with its value in force.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

from kb.catalogue.assumptions import AssumptionSet
from kb.catalogue.criteria import X_BLOCK, Criterion
from kb.catalogue.derived import PREDNISONE_RESOLUTION, washout_days
from kb.catalogue.knowledge import KnowledgeBase
from kb.catalogue.vocabulary import Agent
from kb.presentation.protocol_facts import Bound, Reach, Window, measure_words
from kb.status import COHORTS, Cohort

__all__ = ["ProtocolAnswer", "diseases", "drug", "refractory", "rule", "thresholds"]

_OPS = {">=": "≥", "<=": "≤", "!=": "≠"}
_DOSE = re.compile(r"(\d+(?:\.\d+)?)\s*mg\b(?!\s*/\s*kg)", re.IGNORECASE)


@dataclass(frozen=True)
class ProtocolAnswer:
    kind: str  # threshold | drug | cohorts | refractory | rule
    headline: str
    criteria: tuple[str, ...]
    details: tuple[str, ...]  # protocol sentences, readings, assumptions
    rows: tuple[dict[str, str], ...]  # the numbers, one per bound or window, and the assumptions


def _number(value: Decimal) -> str:
    return f"{value.normalize():f}"


def _disease(cohort: str) -> str:
    """A cohort's disease in full; `general` and block X as they are written."""
    return Cohort(cohort).disease if cohort in COHORTS else cohort


def _where(crit: Criterion) -> str:
    return f" ({_disease(crit.cohort)})" if crit.cohort in COHORTS else ""


def _record(crit: Criterion) -> str:
    text = re.sub(r"\\([\\^<>*_#\[\]()])", r"\1", crit.record_text)
    return text or "(lost from the registry record)"


def _said(crit: Criterion) -> tuple[str, ...]:
    return (f"{crit.id} protocol: {_record(crit)}", f"{crit.id} reading: {crit.text}")


def _label(label: str) -> str:
    return label[0].lower() + label[1:] if label[1:2].islower() else label


def _bound_text(bounds: list[Bound], kb: KnowledgeBase, verb: str = "") -> str:
    """One rule's bounds: "age at enrolment must be ≥ 18 and ≤ 65 years"."""
    words = measure_words(kb)
    parts: list[str] = []
    for measure in dict.fromkeys(b.measure for b in bounds):
        label, unit = words.get(measure, (measure.replace("_", " ").replace(".", " "), ""))
        ops = " and ".join(f"{_OPS.get(b.op, b.op)} {_number(b.value)}" for b in bounds if b.measure == measure)
        parts.append(f"{_label(label)} {verb}{ops} {unit}".strip())
    return " and ".join(parts)


def _bound_sentence(r: Reach, measures: list[str] | None, kb: KnowledgeBase) -> str:
    """The criterion's bounds on `measures` (all if None) as a sentence: rules are alternatives."""
    crit = r.criterion
    wanted = {b.rule for b in r.bounds if measures is None or b.measure in measures}
    chosen = [b for b in r.bounds if b.rule in wanted]  # a rule's other bounds hold with it
    verb = "must be " if crit.kind == "inclusion" else ""
    # rules of one predicate are alternatives; different predicates are what an inclusion
    # requires together, or the conditions any one of which an exclusion is (GI6.6, SSC-E6)
    by_predicate: list[str] = []
    for predicate in dict.fromkeys(b.predicate for b in chosen):
        rules = dict.fromkeys(b.rule for b in chosen if b.predicate == predicate)
        by_predicate.append(", or ".join(_bound_text([b for b in chosen if b.rule == i], kb, verb) for i in rules))
    said = (" or " if crit.kind == "exclusion" else "; and ").join(by_predicate)
    if crit.kind == "exclusion":
        return f"{crit.id}{_where(crit)}: excluded if {said}"
    return f"{crit.id}{_where(crit)}: {said}"


def _row(what: str, criterion: str, subject: str = "", comparison: str = "", value: str = "", unit: str = "",
         anchor: str = "", assumption: str = "") -> dict[str, str]:  # fmt: skip
    """One line of the answer's table: the same columns for every kind, so the chat shows one
    table and `kb ask --json` one shape."""
    return {"what": what, "criterion": criterion, "subject": subject, "comparison": comparison, "value": value,
            "unit": unit, "anchor": anchor, "assumption": assumption}  # fmt: skip


def _rows(
    reaches: list[Reach], kb: KnowledgeBase, assumptions: AssumptionSet, agent: Agent | None = None
) -> tuple[dict[str, str], ...]:
    words = measure_words(kb)
    rows: list[dict[str, str]] = []
    for r in reaches:
        crit = r.criterion
        rows.append(_row("criterion", crit.id, f"{crit.kind}, {_disease(crit.cohort)}"))
        for b in r.bounds if not crit.summary else ():
            label, unit = words.get(b.measure, (b.measure, ""))
            op, value = _OPS.get(b.op, b.op), _number(b.value)
            rows.append(_row("threshold", crit.id, _label(label), op, value, unit, assumption=b.assumption))
        for w in _windows_for(r, agent):
            value = str(w.days if w.months is None else w.months)
            unit = "months" if w.months is not None else ("half-lives" if w.washout else "days")
            subject = w.agent_class.replace("_", " ")
            washout = _washout(agent, assumptions) if (w.washout and agent) else None
            if washout is not None:  # the agent's own 5 half-lives, in the days the rule counts
                value, unit = _number(washout), "days (5 half-lives)"
            elif w.washout:
                value = "5"
            rows.append(_row("window", crit.id, subject, "within", value, unit, f"before {w.anchor}", w.assumption))
    for aid in _assumption_ids(reaches, kb):
        used = ", ".join(r.criterion.id for r in reaches if r.criterion.id in kb.assumptions[aid].used_by)
        rows.append(_row("assumption", used, value=str(assumptions[aid]), assumption=aid))
    return tuple(rows)


def _assumption_ids(reaches: list[Reach], kb: KnowledgeBase) -> list[str]:
    ids = {r.criterion.id for r in reaches}
    return [a.id for a in kb.assumptions.values() if ids & set(a.used_by)]


def _assumption_lines(reaches: list[Reach], kb: KnowledgeBase, assumptions: AssumptionSet) -> tuple[str, ...]:
    return tuple(
        f"Assumption {aid} = {assumptions[aid]}: {kb.assumptions[aid].resolves}" for aid in _assumption_ids(reaches, kb)
    )


def _answer(kind: str, headline: str, shown: list[Reach], kb: KnowledgeBase, assumptions: AssumptionSet,
            extra: tuple[str, ...] = (), agent: Agent | None = None) -> ProtocolAnswer:  # fmt: skip
    details = (
        *extra,
        *(line for r in shown for line in _said(r.criterion)),
        *_assumption_lines(shown, kb, assumptions),
    )
    rows = _rows(shown, kb, assumptions, agent)
    return ProtocolAnswer(kind, headline, tuple(r.criterion.id for r in shown), details, rows)


def thresholds(
    measures: list[str], reaches: dict[str, Reach], kb: KnowledgeBase, assumptions: AssumptionSet
) -> ProtocolAnswer:
    shown = [r for r in reaches.values() if any(b.measure in measures for b in r.bounds)]
    shown = [
        r for r in shown if not any(s.criterion.predicate == r.criterion.predicate for s in shown[: shown.index(r)])
    ]
    if not shown:
        words = measure_words(kb)
        label = words.get(measures[0], (measures[0].replace("_", " "), ""))[0]
        return ProtocolAnswer("threshold", f"No criterion sets a limit on {label.lower()}", (), (), ())
    sentences = [_bound_sentence(r, measures, kb) + _not_within(r) for r in shown]
    return _answer("threshold", "; ".join(sentences), shown, kb, assumptions)


def _not_within(r: Reach) -> str:
    """An inclusion's look-back that fails it, said with its bound (GI6.2: no red-cell
    transfusion within 14 days before the haemoglobin sample)."""
    if r.criterion.kind != "inclusion" or not r.blocks or not r.windows:
        return ""
    classes = " or ".join(k.replace("_", " ").replace("rbc ", "red blood cell ") for k in r.blocks)
    return f", with no {classes} " + " or ".join(dict.fromkeys(w.describe() for w in r.windows))


def _windows_for(r: Reach, agent: Agent | None) -> list[Window]:
    if agent is None:
        return list(r.windows)
    keyed = [w for w in r.windows if w.agent_class and w.agent_class in agent.classes]
    return keyed or [w for w in r.windows if not w.agent_class]


def _counts(r: Reach, agent: Agent, where: dict[str, tuple[tuple[str, str], ...]]) -> list[tuple[tuple[str, str], ...]]:
    """The gates under which `where` (a criterion's blocking or supporting names) counts the agent:
    by its name, by one of its classes, or by a window kept for one of its classes."""
    gates = [where[k] for k in (agent.name, *agent.classes) if k in where]
    if where is r.blocks and any(w.agent_class in agent.classes for w in r.windows if w.agent_class):
        gates.append(())
    return gates


def drug(
    lowered: str, agents: list[Agent], reaches: dict[str, Reach], kb: KnowledgeBase, assumptions: AssumptionSet
) -> ProtocolAnswer:
    agent = agents[0]
    name = agent.name.replace("_", " ")
    words = measure_words(kb)
    lines: list[str] = []
    blocking: list[Reach] = []
    gated: list[str] = []
    held_back: list[Reach] = []  # criteria that would count the drug under another reading
    supporting: list[Reach] = []
    for r in reaches.values():
        gates = _counts(r, agent, r.blocks) if (r.criterion.kind == "exclusion" or r.windows) else []
        steroid = r.steroid_dose and agent.prednisone_factor is not None
        if steroid or any(_held(g, assumptions) for g in gates):
            blocking.append(r)
        elif gates:
            held_back.append(r)
            for g in gates:
                aid, value = g[0]
                now = assumptions[aid]
                gated.append(
                    f"{r.criterion.id} would exclude {name} only if assumption {aid} were {value}; it is {now}"
                )
        counted = r.criterion.kind != "exclusion" and any(_held(g, assumptions) for g in _counts(r, agent, r.supports))
        if counted and not any(s.criterion.predicate == r.criterion.predicate for s in supporting):
            supporting.append(r)
    for r in blocking:
        windows = " or ".join(w.describe() for w in _windows_for(r, agent)) or "at any time before enrolment"
        dose = [b for b in r.bounds if b.measure == "prednisone_dose"] if agent.prednisone_factor is not None else []
        above = f" above {_number(dose[0].value)} {words['prednisone_dose'][1]}" if dose else ""
        lines.append(f"{r.criterion.id}: {name}{above} taken {windows} excludes")
    for r in supporting:
        lines.append(
            f"{r.criterion.id}: {name} counts towards {r.criterion.id} ({r.criterion.text.split(':')[0].lower()})"
        )
    headline = _drug_headline(lowered, agent, name, blocking, gated, lines, kb, assumptions, words)
    return _answer("drug", headline, blocking + held_back + supporting, kb, assumptions, (*lines, *gated), agent)


def _held(gates: tuple[tuple[str, str], ...], assumptions: AssumptionSet) -> bool:
    return all(str(assumptions[a]) == v for a, v in gates if a in assumptions.registry)


def _drug_headline(lowered: str, agent: Agent, name: str, blocking: list[Reach], gated: list[str],
                   lines: list[str], kb: KnowledgeBase, assumptions: AssumptionSet,
                   words: dict[str, tuple[str, str]]) -> str:  # fmt: skip
    dose = _DOSE.search(lowered)
    steroid = next((r for r in blocking if r.steroid_dose), None)
    if dose and steroid is not None and agent.prednisone_factor is not None:
        bound = next(b for b in steroid.bounds if b.measure == "prednisone_dose")
        try:
            equivalent = (Decimal(dose.group(1)) * agent.prednisone_factor).quantize(PREDNISONE_RESOLUTION)
        except InvalidOperation:
            equivalent = Decimal(0)
        window = " or ".join(w.describe() for w in _windows_for(steroid, agent))
        above = {">": equivalent > bound.value, ">=": equivalent >= bound.value}.get(bound.op, False)
        said = f"{name} {dose.group(1)} mg/day is {_number(equivalent)} {words['prednisone_dose'][1]}"
        limit = f"{steroid.criterion.id}'s {_number(bound.value)} mg/day"
        allowed = re.search(r"allowed|permitted|acceptable|\bok\b|okay", lowered) is not None  # the answer's polarity
        if above:
            return f"{'Not' if allowed else 'Yes, if taken'} {window}: {said}, above {limit}"
        return f"{'Yes' if allowed else 'No'}: {said}, not above {limit}"
    if not blocking:
        because = f" ({'; '.join(gated)})" if gated else ""
        lost = [c.id for c in kb.criteria if c.kind == "exclusion" and c.placeholder]
        by_hand = f"; {', '.join(lost)}, lost from the record, checked by hand" if lost else ""
        waited = re.search(r"\bhow (long|soon|many)|\bwait|wash-?out", lowered) is not None
        opening = f"No wait: {name} is allowed" if waited else f"Yes, {name} is allowed"
        return f"{opening}: no exclusion criterion counts it{because}{by_hand}"
    first = blocking[0]
    if re.search(r"\bhow (long|soon|many)|\bwait|wash-?out|\bafter\b|\bsince\b", lowered):
        return "; ".join(_earliest(r, agent, name, assumptions) for r in blocking)
    if re.search(r"allowed|permitted|acceptable", lowered):
        ever = "No" if any(not r.windows for r in blocking) else "Not within the window"  # GE14: at any time
        return f"{ever}: {lines[0]}" + (f" (and {len(blocking) - 1} more)" if len(blocking) > 1 else "")
    return f"Yes, if taken within the window: {'; '.join(lines[: len(blocking)])}" if first.windows else lines[0]


def _washout(agent: Agent, assumptions: AssumptionSet) -> Decimal | None:
    """5 half-lives in whole days, as kb.factbase.build counts them (tacrolimus: its assumption)."""
    half_life = agent.half_life_hours
    if agent.name == "tacrolimus":
        half_life = Decimal(str(assumptions["tacrolimus_half_life_hours"]))
    if half_life is None:
        return None
    return washout_days(agent.name, half_life, str(assumptions["washout_rounding"])).value


def _earliest(r: Reach, agent: Agent, name: str, assumptions: AssumptionSet) -> str:
    """When enrolment (or apheresis) may follow the last dose, read off the window: a dose on
    the window's first day still counts (End >= Anchor - N), so the day after is the earliest."""
    parts: list[str] = []
    for w in _windows_for(r, agent):
        days = _washout(agent, assumptions) if w.washout else w.days
        if days is not None:
            what = f"within its washout of 5 half-lives ({_number(Decimal(days))} days)" if w.washout else w.describe()
            parts.append(f"{what} excludes, so {w.anchor} on day {int(days) + 1} after the last dose at the earliest")
        else:
            parts.append(f"{w.describe()} excludes")
    return f"{r.criterion.id}: {name} " + ("; ".join(parts) or "at any time before enrolment excludes")


def refractory(
    cohorts: list[Cohort], reaches: dict[str, Reach], kb: KnowledgeBase, assumptions: AssumptionSet
) -> ProtocolAnswer:
    definitions = {c.predicate: c for c in kb.criteria if c.kind == "definition"}
    wanted = cohorts or COHORTS
    routes = [
        c for c in kb.criteria
        if c.cohort in wanted and c.kind == "inclusion"
        and (c.predicate in definitions or c.group.endswith("-course"))
    ]  # fmt: skip
    defs = list(dict.fromkeys(definitions[c.predicate] for c in routes if c.predicate in definitions))
    shown = [reaches[c.id] for c in [*defs, *(c for c in routes if c.predicate not in definitions)]]
    who = " and ".join(c.disease for c in cohorts) or "every cohort"
    parts = []
    for r in shown:
        counted = ", ".join(k.replace("_", " ") for k in r.supports if not r.bounds or k not in ("glucocorticoid",))
        said = _bound_sentence(r, None, kb) if r.bounds else f"{r.criterion.id}: {r.criterion.text.split('.')[0]}"
        parts.append(said + (f"; drugs counted: {counted}" if counted and r.bounds else ""))
    head = f"Relapsed/refractory for {who} ({', '.join(c.id for c in routes)}): " + " | ".join(parts)
    named = [reaches[c.id] for c in routes if c.predicate in definitions]  # SLE-I4 … by DEF-RR
    return _answer("refractory", head, shown + named, kb, assumptions)


def diseases(named: list[Cohort], kb: KnowledgeBase, assumptions: AssumptionSet) -> ProtocolAnswer:
    """The cohorts (all six, or those named) with their inclusion and exclusion criteria."""
    wanted = named or list(COHORTS)
    owner = str(assumptions["x_block_owner"])  # the unlabelled exclusion block X: whose it is
    lines = []
    rows: list[dict[str, str]] = []
    for cohort in wanted:
        inclusions = [c.id for c in kb.criteria if c.cohort == cohort and c.kind == "inclusion"]
        blocks = (cohort, X_BLOCK) if owner == cohort else (cohort,)
        exclusions = [c.id for c in kb.criteria if c.cohort in blocks and c.kind == "exclusion"]
        lines.append(
            f"{cohort.disease}: inclusion {', '.join(inclusions)}; exclusion {', '.join(exclusions) or 'none'}"
            + (f" (block X by assumption x_block_owner = {owner})" if owner == cohort else "")
        )
        rows.append({"what": "cohort", "cohort": cohort, "label": cohort.disease,
                     "inclusion": " ".join(inclusions), "exclusion": " ".join(exclusions)})  # fmt: skip
    entry = kb.criterion("COHORT")
    said = ", ".join(c.disease for c in wanted)
    head = f"{len(wanted)} diseases can enter: {said}" if not named else "; ".join(lines)
    extra = (*lines, "Every cohort also meets the general criteria (GI…, GE…) and the COHORT criterion.")
    details = (*extra, *(_said(entry) if entry else ()))
    return ProtocolAnswer(
        "cohorts", head, tuple(c for line in rows for c in line["inclusion"].split()), details, tuple(rows)
    )


def rule(crit: Criterion, r: Reach, kb: KnowledgeBase, assumptions: AssumptionSet) -> ProtocolAnswer:
    """A criterion asked for by id or subject: its bounds and windows, else its reading (a
    heading such as GE4 by its reading: its sub-items' numbers are theirs)."""
    shown = r.bounds and not crit.summary
    said = _bound_sentence(r, None, kb) if shown else f"{crit.id}{_where(crit)}: {crit.text}"
    windows = " or ".join(dict.fromkeys(w.describe() for w in r.windows))
    head = said + (f" ({windows})" if windows and shown else "")
    return _answer("rule", head, [r], kb, assumptions)
