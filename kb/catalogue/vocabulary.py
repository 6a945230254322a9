"""Reference vocabularies shipped as data in `kb/facts/vocabulary/`.

Items (with canonical unit, kind and allowed values), event kinds and the history category
each belongs to, attestation items (including `reviewed:<category>`), sex codes, agents
(drugs, vaccines, cell products, blood products) with their classes and names in use at the
trial site, the diagnosis codes that define the cohorts, and the conditions (by name, and
by code for diagnoses) that criteria read.

A diagnosis coded in ICD-10 or ICD-10-CM is always understood: every code of a condition a
criterion reads is listed in `condition_codes.csv`, so a code outside them is known not to
be one. A SNOMED CT code has no such structure: it is understood only when listed.
"""

from __future__ import annotations

import csv
from collections.abc import Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from functools import lru_cache

from kb.catalogue.instruments import load_instruments
from kb.paths import PACKAGE_DIR

__all__ = [
    "CLOSED_CODE_SYSTEMS",
    "MAX_ULN_RATIO",
    "ONE_OFF_CLASSES",
    "Agent",
    "AttestationItem",
    "Condition",
    "ConditionCode",
    "DiagnosisCode",
    "Item",
    "Vocabulary",
    "load_vocabulary",
]

VOCABULARY_DIR = PACKAGE_DIR / "facts" / "vocabulary"
#: The largest result / ULN ratio that is read: liver enzymes in ischaemic hepatitis reach a
#: few hundred × ULN; beyond 1000 the limit (or the unit) was mistyped.
MAX_ULN_RATIO = 1000


@dataclass(frozen=True)
class Item:
    """An observation item: a lab, vital sign, score or imaging measure."""

    name: str
    label: str
    kind: str  # quantitative | qualitative
    unit: str  # canonical UCUM unit ("" for qualitative)
    display_unit: str
    allowed_values: tuple[str, ...]
    #: the plausible range in the canonical unit (items.csv `plausible_min`/`plausible_max`,
    #: with its basis): a result outside it is a typing or unit error, never a clinical
    #: fact, and is rejected before any arithmetic divides by it or overflows on it
    minimum: Decimal | None
    maximum: Decimal | None
    loinc: tuple[str, ...]
    molar_factor: Decimal | None  # µmol/L per mg/dL, for mass <-> molar conversion
    #: a unit whose conversion factor is a named assumption: (UCUM unit, assumption id)
    alternate_unit: tuple[str, str] | None = None
    #: `lookback`: only a result within lab_lookback_days before enrolment counts (current
    #: state); `ever`: the latest result up to enrolment counts (history, classification items)
    window: str = "lookback"
    #: whether treatment can bring the value into range, so that a repair may propose a new
    #: value (platelets, creatinine); disease measures and infection markers are the patient's
    #: condition, never a value to change (a missing one is still collected)
    modifiable: bool = False
    #: other names a user may type (plt, hb, EF), for the question parser
    synonyms: tuple[str, ...] = ()

    @property
    def quantitative(self) -> bool:
        return self.kind == "quantitative"

    @property
    def plausible_range(self) -> str:
        """The plausible range as a user reads it: '10-3000 µmol/L'."""
        return f"{self.minimum}-{self.maximum} {self.display_unit}".rstrip()

    def implausible(self, value: Decimal, written: str = "") -> str:
        """Why `value` (in the canonical unit) cannot be a result of this item, or "" if it
        can. `written` is the value and unit as the user wrote them, when a unit conversion
        changed the number."""
        low, high = self.minimum, self.maximum
        if value.is_finite() and (low is None or value >= low) and (high is None or value <= high):
            return ""
        shown = f"{value} {self.display_unit}".rstrip()
        if written:  # converted: as written, then (if it is a number worth showing) as compared
            shown = f"{written} ({shown})" if value.is_finite() and abs(value.adjusted()) < 16 else written
        return f"{self.name} {shown} is outside the plausible range {self.plausible_range}"

    def implausible_uln(self, uln: Decimal, value: Decimal | None) -> str:
        """Why `uln` (canonical unit) cannot be this item's upper limit of normal for a result
        of `value`, or "": it must be positive, within the plausible range, and no more than
        MAX_ULN_RATIO times smaller than the result (a ULN of 1e-31 would make any result
        10^33 × ULN, a number no criterion should ever compare)."""
        if not uln.is_finite() or uln <= 0:
            return f"an upper limit of normal must be a positive number, not {uln}"
        if self.maximum is not None and uln > self.maximum:
            return f"the upper limit of normal {uln} is outside the plausible range {self.plausible_range}"
        if value is not None and value.is_finite() and value > uln * MAX_ULN_RATIO:
            return (
                f"{self.name} {value} would be more than {MAX_ULN_RATIO} × its upper limit of normal "
                f"{uln}: the limit is implausible"
            )
        return ""


@dataclass(frozen=True)
class AttestationItem:
    name: str
    values: tuple[str, ...]
    label: str


#: Classes of agents given as single administrations (infusions, injections of long-acting
#: products, cell products, vaccines, blood products): for them a frequency "once" is one
#: dose; for the others (tablets taken daily, ...) it reads as once daily.
ONE_OFF_CLASSES = frozenset(
    {
        "car_t",
        "gm_t_cell",
        "cd19_directed",
        "anti_cd20",
        "anti_tnf",
        "anti_il6",
        "anti_il6r",
        "anti_il5",
        "immunosuppressive_biologic",
        "immunoglobulin",
        "long_acting_gcsf",
        "live_vaccine",
        "non_live_vaccine",
        "rbc_transfusion",
        "platelet_transfusion",
        "plasma_transfusion",
    }
)


@dataclass(frozen=True)
class Agent:
    name: str
    classes: tuple[str, ...]
    synonyms: tuple[str, ...]
    half_life_hours: Decimal | None
    prednisone_factor: Decimal | None = None  # glucocorticoids: mg prednisone per mg
    #: the active drug, when several agents deliver it (mycophenolate mofetil and mycophenolic
    #: acid): a switch from one to the other continues the course
    moiety: str = ""

    @property
    def one_off(self) -> bool:
        return bool(ONE_OFF_CLASSES & set(self.classes))


@dataclass(frozen=True)
class Condition:
    """A named clinical condition or procedure recorded as an event (MI, DVT, BCC ...)."""

    name: str
    classes: tuple[str, ...]
    synonyms: tuple[str, ...]


@dataclass(frozen=True)
class DiagnosisCode:
    system: str
    code: str
    cohort: str  # "" when the code is explicitly not a cohort (e.g. drug-induced lupus)
    label: str


@dataclass(frozen=True)
class ConditionCode:
    system: str
    code: str
    condition: str
    label: str


#: Code systems whose codes are all understood (see the module's docstring).
CLOSED_CODE_SYSTEMS = frozenset({"icd10", "icd10cm"})


def _read(name: str) -> list[dict[str, str]]:
    with (VOCABULARY_DIR / name).open(encoding="utf-8", newline="") as fh:
        return [{k: (v or "").strip() for k, v in row.items()} for row in csv.DictReader(fh)]


def _split(text: str) -> tuple[str, ...]:
    return tuple(part.strip() for part in text.split("|") if part.strip())


def _longest_prefix(codes: Sequence[DiagnosisCode | ConditionCode], system: str, code: str) -> int | None:
    """The index of the entry of `system` whose code is the longest prefix of `code`."""
    wanted = normalise_code(code)
    best: int | None = None
    length = -1
    for n, entry in enumerate(codes):
        prefix = normalise_code(entry.code)
        if entry.system == system and wanted.startswith(prefix) and len(prefix) > length:
            best, length = n, len(prefix)
    return best


def _cohort_of(codes: tuple[DiagnosisCode, ...], system: str, code: str) -> str | None:
    found = _longest_prefix(codes, system, code)
    return codes[found].cohort or None if found is not None else None


def normalise_code(code: str) -> str:
    return code.strip().upper().replace(".", "")


@dataclass(frozen=True)
class Vocabulary:
    items: dict[str, Item]
    loinc_to_item: dict[str, str]
    event_kinds: dict[str, str]  # kind -> history category
    attestation_items: dict[str, AttestationItem]
    sex_codes: dict[str, str]
    agents: dict[str, Agent]
    agent_names: dict[str, str]  # casefolded name or synonym -> agent
    diagnosis_codes: tuple[DiagnosisCode, ...]
    unit_aliases: dict[str, str]
    conditions: dict[str, Condition]
    condition_names: dict[str, str]  # casefolded name or synonym -> condition
    condition_codes: tuple[ConditionCode, ...] = ()
    _cohorts: dict[tuple[str, str], str | None] = field(default_factory=dict, compare=False, repr=False)

    @property
    def categories(self) -> tuple[str, ...]:
        return tuple(sorted(set(self.event_kinds.values())))

    @property
    def agent_classes(self) -> frozenset[str]:
        return frozenset(c for a in self.agents.values() for c in a.classes)

    def agent(self, name: str) -> Agent | None:
        """The agent a name refers to, matched case-insensitively on name, brand or Chinese name."""
        key = self.agent_names.get(" ".join(name.split()).casefold())
        return self.agents[key] if key else None

    def condition(self, name: str) -> Condition | None:
        """The condition a name refers to (any of its names, any case), if the vocabulary knows it."""
        key = self.condition_names.get(" ".join(name.split()).casefold())
        return self.conditions[key] if key else None

    def cohort_of(self, system: str, code: str) -> str | None:
        """Cohort of a diagnosis code: the longest matching code of that system decides.

        Matching is on codes per code system, never on names, so M34.1 (CREST) is not
        systemic sclerosis although M34 is.
        """
        key = (system, code)
        if key not in self._cohorts:  # a clinic export repeats a few hundred codes
            self._cohorts[key] = _cohort_of(self.diagnosis_codes, system, code)
        return self._cohorts[key]

    def condition_of_code(self, system: str, code: str) -> tuple[str | None, bool]:
        """The condition a diagnosis code names, and whether the code is understood at all:
        (None, True) is a code known to be none of the conditions the criteria read; a listed
        code without a condition (I80.3: deep or superficial?) is not understood."""
        found = _longest_prefix(self.condition_codes, system, code)
        if found is not None:  # a listed code with no condition is one that does not say enough
            condition = self.condition_codes[found].condition
            return condition or None, bool(condition)
        listed = _longest_prefix(self.diagnosis_codes, system, code) is not None
        return None, system in CLOSED_CODE_SYSTEMS or listed

    def known_constants(self) -> dict[str, frozenset[str]]:
        """Constants the rule checker accepts for each vocabulary-typed argument."""
        return {
            "item": frozenset(self.items),
            "event_kind": frozenset(self.event_kinds),
            "category": frozenset(self.categories),
            "attestation": frozenset(self.attestation_items),
            "agent_class": self.agent_classes,
            "condition_class": frozenset(c for cond in self.conditions.values() for c in cond.classes),
        }


def _decimal(text: str) -> Decimal | None:
    return Decimal(text) if text else None


def _ratio(text: str) -> Decimal | None:
    """A potency written as the table gives it, "5/0.75" (0.75 mg is equivalent to 5 mg
    prednisone), or as a number: a factor rounded to 6.67 made 1.5 mg of dexamethasone
    10.005 mg, above GE4.7's 10 mg/day, when the table says it is exactly 10."""
    if "/" not in text:
        return _decimal(text)
    numerator, denominator = text.split("/", 1)
    return Decimal(numerator) / Decimal(denominator)


@lru_cache(maxsize=1)
def load_vocabulary() -> Vocabulary:
    items = {}
    loinc: dict[str, str] = {}
    for row in _read("items.csv"):
        item = Item(
            name=row["item"],
            label=row["label"],
            kind=row["kind"],
            unit=row["unit"],
            display_unit=row["display_unit"],
            allowed_values=_split(row["allowed_values"]),
            minimum=_decimal(row["plausible_min"]),
            maximum=_decimal(row["plausible_max"]),
            loinc=_split(row["loinc"]),
            molar_factor=_decimal(row["molar_factor"]),
            alternate_unit=tuple(row["alternate_unit"].split("=", 1)) if row["alternate_unit"] else None,  # type: ignore[arg-type]
            window=row.get("window") or "lookback",
            modifiable=row.get("modifiable") == "yes",
            synonyms=_split(row.get("synonyms") or ""),
        )
        if item.quantitative and (item.minimum is None or item.maximum is None or not row["plausible_basis"]):
            raise ValueError(f"items.csv: {item.name} needs plausible_min, plausible_max and plausible_basis")
        items[item.name] = item
        for code in item.loinc:
            loinc[code] = item.name
    for instrument in load_instruments().values():  # `<instrument>.<item>`: present | absent (or a grade)
        for entry in instrument.items:
            name = instrument.item_name(entry)
            items[name] = Item(
                name,
                f"{instrument.label}: {entry.label}",
                "qualitative",
                "",
                "",
                instrument.item_values,
                None,
                None,
                (),
                None,
                None,
                instrument.window,
            )
    event_kinds = {row["kind"]: row["category"] for row in _read("event_kinds.csv")}
    attestations = {
        row["item"]: AttestationItem(row["item"], _split(row["values"]), row["label"])
        for row in _read("attestation_items.csv")
    }
    for category in sorted(set(event_kinds.values())):
        name = f"reviewed:{category}"
        attestations[name] = AttestationItem(name, ("yes",), f"History of {category} reviewed and complete")
    agents: dict[str, Agent] = {}
    names: dict[str, str] = {}
    for row in _read("agents.csv"):
        agent = Agent(
            row["name"],
            _split(row["classes"]),
            _split(row["synonyms"]),
            _decimal(row["half_life_hours"]),
            _ratio(row["prednisone_factor"]),
            row.get("moiety") or row["name"],
        )
        agents[agent.name] = agent
        _index_names("agents.csv", names, agent.name, agent.synonyms)
    conditions: dict[str, Condition] = {}
    condition_names: dict[str, str] = {}
    for row in _read("conditions.csv"):
        condition = Condition(row["name"], _split(row["classes"]), _split(row["synonyms"]))
        conditions[condition.name] = condition
        _index_names("conditions.csv", condition_names, condition.name, condition.synonyms)
    codes = tuple(
        DiagnosisCode(row["system"], row["code"], row["cohort"], row["label"]) for row in _read("diagnosis_codes.csv")
    )
    condition_codes = tuple(
        ConditionCode(row["system"], row["code"], row["condition"], row["label"])
        for row in _read("condition_codes.csv")
    )
    unknown = sorted({c.condition for c in condition_codes if c.condition} - set(conditions))
    if unknown:
        raise ValueError(f"condition_codes.csv names conditions conditions.csv lacks: {', '.join(unknown)}")
    return Vocabulary(
        items=items,
        loinc_to_item=loinc,
        event_kinds=event_kinds,
        attestation_items=attestations,
        sex_codes={row["code"].casefold(): row["sex"] for row in _read("sex_codes.csv")},
        agents=agents,
        agent_names=names,
        diagnosis_codes=codes,
        unit_aliases={row["alias"]: row["ucum"] for row in _read("unit_aliases.csv")},
        conditions=conditions,
        condition_names=condition_names,
        condition_codes=condition_codes,
    )


def _index_names(file: str, names: dict[str, str], canonical: str, synonyms: tuple[str, ...]) -> None:
    """Register every spelling of a name; one spelling may not name two things."""
    for alias in (canonical, canonical.replace("_", " "), *synonyms):
        key = " ".join(alias.split()).casefold()
        if names.get(key, canonical) != canonical:
            raise ValueError(f"{file}: the name {alias!r} is given to {names[key]} and {canonical}")
        names[key] = canonical
