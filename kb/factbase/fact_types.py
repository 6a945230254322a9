"""The types of one patient's fact base, below the modules that fill it.

`kb.factbase.build` builds a `FactBase` and `kb.factbase.measures` adds the facts computed from several
results to it; both need these types, so they live here, beneath both (with them in
`kb.factbase.build`, that module and `kb.factbase.measures` imported each other). `kb.factbase.build` exports
them too: its callers read a fact base without knowing where its type is declared.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import date

from kb.catalogue.derived import Derivation
from kb.language.engine import Fact, FactValue
from kb.records.patients import Source

__all__ = ["KEYED_GAPS", "RELATION_GAPS", "FactBase", "Gap", "Provenance", "ReferenceDates"]

#: Which gaps explain the absence of a fact of each input or computed relation.
RELATION_GAPS = {
    "obs_num": "item",
    "obs_cat": "item",
    "xuln": "xuln",
    "crcl": "crcl",
    "sex": "sex",
    "attested": "attested",
    "reviewed": "reviewed",
    "unrecognised": "term",
    "dose_missing": "dose",
    "egfr": "egfr",
    "age_at": "age",
    "score": "instrument",
    "worsening": "worsening",
    "apl_positive_tests": "apl",
    "washout_days": "washout",
}
#: Gap groups whose relation's second argument says which gap (an item, a category, a kind);
#: in the others (age, sex, crcl, egfr, dose) it does not.
KEYED_GAPS = frozenset({"item", "xuln", "attested", "reviewed", "term", "instrument", "worsening"})


@dataclass(frozen=True)
class ReferenceDates:
    screening: date
    enrolment: date
    apheresis: date
    notes: tuple[str, ...]  # how each date was obtained when it was not in the file

    @property
    def dates(self) -> tuple[date, date, date]:
        """Screening, enrolment and apheresis: an ongoing exposure lasts through all of them."""
        return (self.screening, self.enrolment, self.apheresis)

    def as_dict(self) -> dict[str, str]:
        return {
            "screening": self.screening.isoformat(),
            "enrolment": self.enrolment.isoformat(),
            "apheresis": self.apheresis.isoformat(),
        }


@dataclass(frozen=True)
class Provenance:
    description: str
    source: Source | None = None
    derivation: Derivation | None = None
    origin: str = ""  # for reference facts: the vocabulary file or the assumption


@dataclass(frozen=True)
class Gap:
    item: str  # the data item to collect (an item, `uln:<item>`, an attestation, `reviewed:<category>`)
    reason: str  # missing | stale | not_attested | history_not_reviewed | unknown_term
    detail: str


@dataclass
class FactBase:
    patient_id: str
    reference: ReferenceDates
    facts: list[Fact] = field(default_factory=list)
    provenance: dict[Fact, Provenance] = field(default_factory=dict)
    gaps: dict[tuple[str, str], list[Gap]] = field(default_factory=dict)
    #: facts only, no provenance or gaps: what screening thousands of patients needs (their
    #: explanations are built again, in full, when someone asks about one of them)
    lean: bool = False
    #: with `lean`, the keys (second arguments) the rules can match, by relation: derived
    #: facts no rule reads (a ×ULN ratio of an item no rule bounds) are not computed
    wanted: Mapping[str, frozenset[str]] = field(default_factory=dict)
    _seen: set[Fact] = field(default_factory=set, repr=False)

    def add(
        self, relation: str, args: tuple[FactValue, ...], provenance: Provenance | Callable[[], Provenance]
    ) -> None:
        """Add a fact once; `provenance` may be a function, called only when it is kept."""
        fact = (relation, args)
        if self.lean:  # duplicates do no harm to set-at-a-time evaluation
            self.facts.append(fact)
            return
        if fact in self._seen:
            return
        self._seen.add(fact)
        self.facts.append(fact)
        if not self.lean:
            self.provenance[fact] = provenance() if callable(provenance) else provenance

    def gap(self, group: str, key: str, gap: Gap) -> None:
        if not self.lean:
            self.gaps.setdefault((group, key), []).append(gap)

    def gaps_for(self, relation: str, key: str | None) -> list[Gap]:
        """The gaps that can explain why `relation(P, key, ...)` has no fact."""
        group = RELATION_GAPS.get(relation)
        if group is None:
            return []
        if key is None or group not in KEYED_GAPS:
            return [g for (grp, _), gaps in sorted(self.gaps.items()) if grp == group for g in gaps]
        return list(self.gaps.get((group, key), []))
