"""How long a recorded exposure lasts, and the courses a drug's records make.

A record with an end date lasts to that day. A single dose (a vaccination, a transfusion, a
cell infusion, a procedure, or a medication whose frequency says single) ends on its start
day. "Once" is ambiguous (one infusion of rituximab, or tacrolimus once daily): it is a
single dose only for an agent given as single administrations (`Agent.one_off`, from its
classes), and otherwise reads as once daily, which never shortens an exposure. A repeated
or continuous exposure with no end date is ongoing: it lasts through every reference date
after its start (planned apheresis included) until a record says it stopped, so that a
window counted back from apheresis sees a drug the patient is still taking (DESIGN.md,
"What absence means"). Cutting it off at the enrolment date would turn a patient still on
peginterferon into a pass of GE4.4.

A course is what "for more than 6 months" measures: consecutive or overlapping records of
one agent, a pause of up to `course_gap_days` (an assumption) between them, so that nine
months of mycophenolate written as two prescriptions is one course of nine months. Its
length counts the days up to enrolment only: treatment still to come is not history.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date

from kb.catalogue.vocabulary import load_vocabulary
from kb.records.patients import Event

__all__ = [
    "ONCE",
    "POINT_EVENTS",
    "SINGLE_DOSE_FREQUENCIES",
    "Course",
    "courses",
    "exposure_end",
    "ongoing",
    "single_dose",
]

#: Kinds of event that happen on one day unless an end date is given. A malignancy without
#: an end date (of its last treatment) is taken as still active, like an ongoing drug.
POINT_EVENTS = frozenset(
    {"vaccination", "transfusion", "cell_therapy", "diagnosis", "procedure", "cardiac_event", "thrombosis"}
)
#: Frequencies that make a medication record one dose on its start day, for any agent.
SINGLE_DOSE_FREQUENCIES = frozenset(
    {"single", "single dose", "one dose", "one-off", "once only", "stat", "x1", "×1", "1x", "单次", "一次性"}
)
#: Frequencies that mean one dose for an agent given as single administrations, and once
#: daily for the others.
ONCE = frozenset({"once", "一次"})


def single_dose(event: Event) -> bool:
    if event.kind in POINT_EVENTS:
        return True
    words = " ".join(event.frequency.casefold().split())
    if words in SINGLE_DOSE_FREQUENCIES:
        return True
    agent = load_vocabulary().agents.get(event.agent or "")
    return words in ONCE and agent is not None and agent.one_off


def ongoing(event: Event) -> bool:
    """No end date and not a single dose: still being taken, as far as the record says."""
    return event.end is None and not single_dose(event)


def exposure_end(event: Event, reference_days: Iterable[date]) -> date:
    """The last day of the exposure: its end date, its start day for a single dose, or, for
    an ongoing one, the latest of the reference dates (the exposure lasts through them all)."""
    if event.end is not None:
        return event.end
    if single_dose(event):
        return event.start
    return max(event.start, *reference_days)


@dataclass(frozen=True)
class Course:
    agent: str
    start: date
    end: date  # the last day of its last record (ongoing: the latest reference date)
    days: int  # from start to end or to enrolment, whichever comes first
    records: tuple[Event, ...]

    def describe(self) -> str:
        rows = ", ".join(str(e.source) for e in self.records)
        ongoing_now = any(ongoing(e) for e in self.records)
        until = "ongoing" if ongoing_now else self.end.isoformat()
        return f"{self.agent} course {self.start.isoformat()} to {until}: {self.days} days up to enrolment ({rows})"


def courses(events: Iterable[Event], reference_days: tuple[date, ...], enrolment: date, gap_days: int) -> list[Course]:
    """The courses of each medication: its records (of any agent delivering the same drug) in
    start order, joined when one starts no more than `gap_days` after the previous ends.
    Courses starting after enrolment are left out: they are not history yet."""
    agents = load_vocabulary().agents
    by_drug: dict[str, list[Event]] = {}  # one active drug: mycophenolate mofetil then mycophenolic acid is one course
    for event in events:
        if event.kind == "medication" and event.agent:
            drug = agents[event.agent].moiety if event.agent in agents else event.agent
            by_drug.setdefault(drug, []).append(event)
    out = []
    for _, records in sorted(by_drug.items()):
        records.sort(key=lambda e: (e.start, e.source.row))
        run: list[Event] = []
        end = date.min
        for event in records:
            if run and (event.start - end).days > gap_days:
                out.append(_course(run, end, enrolment))
                run = []
            last = exposure_end(event, reference_days)
            end = last if not run else max(end, last)
            run.append(event)
        if run:
            out.append(_course(run, end, enrolment))
    return [c for c in out if c.start <= enrolment]


def _course(run: list[Event], end: date, enrolment: date) -> Course:
    """A course, named after the agent it began with."""
    start = run[0].start
    return Course(str(run[0].agent), start, end, (min(end, enrolment) - start).days, tuple(run))
