"""What-if: evaluate a patient under hypothetical changes and show what they change.

"What if her platelets were 80, if we enrolled on 12 January, if the 4-day steroid window
meant 4 weeks?" A change is parsed from text (never executed), applied to a copy of the
patient (stored facts are never modified, and one evaluation's hypothetical facts never
reach another's: each evaluation builds its own facts and engine session), and the answer
is the difference: the criteria whose status changed, with both messages, and the verdicts.

A program builds its changes with the typed constructors (`setting`, `stopping`,
`moved_enrolment`), which check them as `parse_change` checks a user's; `change_text` writes
any change back in the form `kb whatif` reads, for the user to run it.
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass, field, replace
from datetime import date
from decimal import Decimal, InvalidOperation
from typing import Any

from kb.catalogue.assumptions import AssumptionSet, resolve_assumptions
from kb.catalogue.derived import check_date
from kb.catalogue.knowledge import KnowledgeBase
from kb.catalogue.vocabulary import Item, Vocabulary
from kb.errors import KbError
from kb.factbase.build import ReferenceDates
from kb.factbase.exposures import ongoing
from kb.reasoning.evaluation import Assessment, CriterionResult, assess
from kb.reasoning.trace import Node
from kb.records.patients import Attestation, Event, Observation, Patient, Source
from kb.records.units import UnitError, convert

__all__ = [
    "FORMS",
    "Change",
    "Difference",
    "WhatIf",
    "apply_changes",
    "change_text",
    "moved_enrolment",
    "parse_change",
    "setting",
    "stopping",
    "what_if",
]

FORMS = (
    "ITEM=VALUE[@DATE] (a result, e.g. platelets=80 or hemoglobin=9.5 g/dL@2026-11-20; "
    "an attestation, e.g. consent=yes or reviewed:medications=yes@2026-11-24; a result with its "
    "upper limit, e.g. ast=30 U/L ULN 40), enrolment=DATE, screening=DATE, apheresis=DATE, "
    "birth_date=DATE, weight_kg=NUMBER, sex=female|male, stop:DRUG@DATE, remove:ITEM, assume:ID=VALUE"
)
ANCHORS = ("screening", "enrolment", "apheresis")
PATIENT_FIELDS = ("birth_date", "weight_kg", "sex")
WHAT_IF_SOURCE = Source("what-if (hypothetical)", 0)


@dataclass(frozen=True)
class Change:
    kind: str  # result | attest | date | patient | stop | remove | assume
    target: str  # the item, attestation, anchor, drug or assumption
    value: str = ""
    when: date | None = None
    text: str = field(default="", compare=False)  # as the user wrote it (or `change_text`), for messages

    def describe(self) -> str:
        at = f" on {self.when.isoformat()}" if self.when else ""
        return {
            "result": f"{self.target} = {self.value}{at}",
            "attest": f"{self.target} attested {self.value}{at}",
            "date": f"{self.target} date {self.value}",
            "patient": f"{self.target} {self.value}",
            "stop": f"{self.target} stopped{at}",
            "remove": f"no {self.target}",
            "assume": f"assumption {self.target} = {self.value}",
        }[self.kind]


@dataclass(frozen=True)
class Difference:
    criterion: str
    before: CriterionResult
    after: CriterionResult
    proof: Node | None = None  # the proof tree of the new status

    def as_dict(self) -> dict[str, Any]:
        return {
            "criterion": self.criterion,
            "before": self.before.status,
            "after": self.after.status,
            "before_message": self.before.message,
            "after_message": self.after.message,
        }


@dataclass(frozen=True)
class WhatIf:
    patient_id: str
    changes: tuple[Change, ...]
    before: Assessment
    after: Assessment
    proofs: dict[str, Node]  # criterion id -> proof tree of its status after the changes

    @property
    def differences(self) -> list[Difference]:
        old = {r.id: r for r in self.before.criteria}
        return [
            Difference(r.id, old[r.id], r, self.proofs.get(r.id))
            for r in self.after.criteria
            if old[r.id].status != r.status
        ]

    def as_dict(self) -> dict[str, Any]:
        return {
            "patient": self.patient_id,
            "changes": [c.describe() for c in self.changes],
            "verdict_before": self.before.verdict,
            "verdict_after": self.after.verdict,
            "eligible_via_after": self.after.eligible_via,
            "changed": [d.as_dict() for d in self.differences],
            "assumptions_after": self.after.assumptions,
        }


def _date(text: str, what: str) -> date:
    try:
        when = date.fromisoformat(text.strip())
    except ValueError:
        raise KbError(f"'{text}' in {what} is not a date (use YYYY-MM-DD); accepted forms: {FORMS}") from None
    return check_date(when, f"{what}: the date")


def _decimal(text: str, raw: str, what: str) -> Decimal:
    """A finite number as written; NaN, sNaN and Infinity are not values (a NaN compares
    with nothing and an sNaN raises on every comparison)."""
    try:
        value = Decimal(text)
    except InvalidOperation:
        raise KbError(f"{raw}: '{text}' is not {what}") from None
    if not value.is_finite():
        raise KbError(f"{raw}: '{text}' is not {what} (a finite number is needed)")
    return value


def change_text(change: Change) -> str:
    """The change in the form `parse_change` reads and `kb whatif` takes on its command line."""
    at = f"@{change.when.isoformat()}" if change.when else ""
    if change.kind == "stop":
        return f"stop:{change.target}{at}"
    if change.kind == "remove":
        return f"remove:{change.target}"
    if change.kind == "assume":
        return f"assume:{change.target}={change.value}"
    return f"{change.target}={change.value}{at}"


def _written(change: Change, text: str) -> Change:
    return replace(change, text=text or change_text(change))


def stopping(drug: str, vocab: Vocabulary, when: date | None = None, text: str = "") -> Change:
    """`drug` (a name, brand or Chinese name) stopped on `when`."""
    agent = vocab.agent(drug)
    if agent is None:
        raw = text or f"stop:{drug}"
        raise KbError(f"unknown drug '{drug.strip()}' in '{raw}' (a name, brand or Chinese name from agents.csv)")
    return _written(Change("stop", agent.name, when=when), text)


def setting(name: str, value: str, vocab: Vocabulary, when: date | None = None, text: str = "") -> Change:
    """`name` set to `value` (on `when`): a reference date, a patient field, an attestation or
    a result, by what `name` is; a KbError if the vocabulary knows no such item or value."""
    raw = text or f"{name}={value}"
    if name in ANCHORS:
        return _written(Change("date", name, _date(value, raw).isoformat(), when), text)
    if name in PATIENT_FIELDS:
        return _written(Change("patient", name, _patient_field(name, value.strip(), raw), when), text)
    if name in vocab.attestation_items:
        allowed = vocab.attestation_items[name].values
        if value.strip() not in allowed:
            raise KbError(f"{name} cannot be '{value.strip()}'; allowed: {', '.join(allowed)}")
        return _written(Change("attest", name, value.strip(), when), text)
    _known_item(name, vocab)
    return _written(Change("result", name, value.strip(), when), text)


def parse_change(text: str, vocab: Vocabulary) -> Change:
    """One change as the user wrote it; a KbError names the accepted forms."""
    raw = text.strip()
    if raw.startswith("assume:"):
        key, sep, value = raw[len("assume:") :].partition("=")
        if not sep:
            raise KbError(f"'{raw}' is not assume:ID=VALUE")
        resolve_assumptions([f"{key}={value}"])  # checks the id and the value
        return Change("assume", key.strip(), value.strip(), text=raw)
    if raw.startswith("remove:"):
        item = raw[len("remove:") :].strip()
        _known_item(item, vocab)
        return Change("remove", item, text=raw)
    if raw.startswith("stop:"):
        drug, sep, when = raw[len("stop:") :].partition("@")
        stop = stopping(drug, vocab, text=raw)  # the drug is checked before the date
        return replace(stop, when=_date(when, raw)) if sep else stop
    name, sep, rest = raw.partition("=")
    name = name.strip()
    if not sep or not name:
        raise KbError(f"'{raw}' is not a change; accepted forms: {FORMS}")
    value, at, when_text = rest.partition("@")
    return setting(name, value, vocab, _date(when_text, raw) if at else None, raw)


def _patient_field(name: str, value: str, raw: str) -> str:
    if name == "birth_date":
        return _date(value, raw).isoformat()
    if name == "sex":
        if value.casefold() not in ("female", "male"):
            raise KbError(f"{raw}: sex is female or male")
        return value.casefold()
    weight = _decimal(value, raw, "a weight in kg")
    if not Decimal(20) <= weight <= Decimal(400):
        raise KbError(f"{raw}: impossible weight (expected 20-400 kg)")
    return str(weight)


def _known_item(name: str, vocab: Vocabulary) -> None:
    if name in vocab.items or name in vocab.attestation_items:
        return
    close = difflib.get_close_matches(name, [*vocab.items, *vocab.attestation_items], n=1)
    hint = f"did you mean {close[0]}? " if close else ""
    raise KbError(f"unknown item '{name}'; {hint}accepted forms: {FORMS}")


def _observation(change: Change, vocab: Vocabulary, on: date, birth: date | None) -> Observation:
    item = vocab.items[change.target]
    if birth is not None and on < birth:
        raise KbError(f"{change.text}: {on.isoformat()} is before the patient's birth ({birth.isoformat()})")
    if not item.quantitative:
        symbol = change.value.casefold().replace(" ", "_")
        if symbol not in item.allowed_values:
            raise KbError(f"{item.name} cannot be '{change.value}'; allowed: {', '.join(item.allowed_values)}")
        return Observation(item.name, symbol, on, None, None, change.value, WHAT_IF_SOURCE)
    parts = re.split(r"\s+ULN\s+", change.value.strip(), maxsplit=1, flags=re.IGNORECASE)
    reading, limit = parts[0], (parts[1].strip() if len(parts) > 1 else "")
    value = _quantity(reading, item, vocab, change.text)
    why = item.implausible(value, reading.strip() if " " in reading.strip() else "")  # with a unit: as written
    if why:
        raise KbError(f"{change.text}: {why}")
    uln = _quantity(limit, item, vocab, change.text) if limit else None
    why = item.implausible_uln(uln, value) if uln is not None else ""
    if why:
        raise KbError(f"{change.text}: {why}")
    return Observation(item.name, value, on, uln, None, change.value, WHAT_IF_SOURCE)


def _quantity(text: str, item: Item, vocab: Vocabulary, raw: str) -> Decimal:
    number, _, unit = text.strip().partition(" ")
    amount = _decimal(number, raw, "a number")
    try:
        return convert(amount, unit.strip() or item.unit, item, vocab)
    except (UnitError, ValueError) as exc:
        raise KbError(f"{raw}: {exc}") from None


def apply_changes(
    patient: Patient, changes: list[Change], vocab: Vocabulary, enrolment: date
) -> tuple[Patient, list[str]]:
    """A changed copy of `patient` (the stored one is untouched) and the assumption overrides.

    A result without a date is dated `enrolment` (the as-of date); a result keeps the ULN of
    the latest stored result of that item, so that ×ULN criteria still have their limit.
    """
    hypo = replace(
        patient,
        observations=list(patient.observations),
        events=list(patient.events),
        attestations=list(patient.attestations),
    )
    overrides: list[str] = []
    for change in changes:
        if change.kind == "assume":
            overrides.append(f"{change.target}={change.value}")
        elif change.kind == "date":
            setattr(hypo, f"{change.target}_date", date.fromisoformat(change.value))
        elif change.kind == "patient":
            setattr(hypo, change.target, _field_value(change))
        elif change.kind == "remove":
            hypo.observations = [o for o in hypo.observations if o.item != change.target]
            hypo.attestations = [a for a in hypo.attestations if a.item != change.target]
        elif change.kind == "attest":
            hypo.attestations.append(
                Attestation(change.target, change.value, change.when or enrolment, "what-if", WHAT_IF_SOURCE)
            )
        elif change.kind == "result":
            obs = _observation(change, vocab, change.when or enrolment, patient.birth_date)
            earlier = [o for o in hypo.observations if o.item == change.target and o.uln is not None]
            if earlier and obs.uln is None:
                latest = max(earlier, key=lambda o: o.date)
                obs = replace(obs, uln=latest.uln, lln=latest.lln)
            hypo.observations.append(obs)
        elif change.kind == "stop":
            hypo.events = _stopped(hypo, change)
    return hypo, overrides


def _field_value(change: Change) -> date | Decimal | str:
    if change.target == "birth_date":
        return date.fromisoformat(change.value)
    return Decimal(change.value) if change.target == "weight_kg" else change.value


def _stopped(patient: Patient, change: Change) -> list[Event]:
    records = [e for e in patient.events if e.kind == "medication" and e.agent == change.target]
    if not records:
        raise KbError(f"{patient.id} has no medication record of {change.target} to stop")
    when = change.when
    if when is None:
        raise KbError(f"'{change.text}' needs the date: stop:{change.target}@YYYY-MM-DD")
    given_after = [e for e in records if e.start > when]
    if given_after:
        first = min(given_after, key=lambda e: e.start)
        raise KbError(
            f"'{change.text}': {change.target} is recorded as given on {first.start.isoformat()} ({first.source}), "
            f"after {when.isoformat()}; a stop ends a course under way and cannot undo a dose already recorded"
        )
    running = [e for e in records if ongoing(e) or (e.end is not None and e.end > when)]
    if not running:
        last = max(records, key=lambda e: e.end or e.start)
        ended = (last.end or last.start).isoformat()
        raise KbError(
            f"'{change.text}': {change.target} is not being taken on {when.isoformat()} "
            f"(its last record, {last.source}, ended {ended}): there is nothing to stop"
        )
    return [replace(e, end=when) if e in running else e for e in patient.events]


def moved_enrolment(patient: Patient, reference: ReferenceDates, when: date, vocab: Vocabulary) -> list[Change]:
    """The changes that enrol `patient` on `when` and nothing else new: the apheresis date
    moves by as many days (an explicit one is rewritten; a derived one follows by itself),
    and each history the patient has had reviewed is re-confirmed up to the new apheresis (a
    review covers the days before it: without this, every "no X in the window" would turn
    unknown the day after)."""
    changes = [setting("enrolment", when.isoformat(), vocab)]
    apheresis = reference.apheresis + (when - reference.enrolment)
    if patient.apheresis_date is not None:
        changes.append(setting("apheresis", apheresis.isoformat(), vocab))
    categories = sorted({a.item for a in patient.attestations if a.item.startswith("reviewed:")})
    changes += [setting(category, "yes", vocab, max(when, apheresis)) for category in categories]
    return changes


def what_if(
    patient: Patient,
    changes: list[Change],
    kb: KnowledgeBase,
    assumptions: AssumptionSet | None = None,
    as_of: date | None = None,
) -> WhatIf:
    assumptions = assumptions or resolve_assumptions()
    before = assess(patient, kb, assumptions, as_of)
    hypo, overrides = apply_changes(patient, changes, kb.vocabulary, before.reference.enrolment)
    changed = resolve_assumptions([*(f"{k}={v}" for k, v in assumptions.values.items()), *overrides])
    moved = next((c for c in reversed(changes) if c.kind == "date" and c.target == "enrolment"), None)
    when = date.fromisoformat(moved.value) if moved else as_of
    after = assess(hypo, kb, changed, when)  # one-line messages as in any answer
    explained = assess(hypo, kb, changed, when, explain="all")  # a proof for whatever changed
    proofs = {r.id: r.trace for r in explained.criteria if r.trace is not None}
    return WhatIf(patient.id, tuple(changes), before, after, proofs)
