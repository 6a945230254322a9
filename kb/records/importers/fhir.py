"""FHIR R4 bundles (JSON, a bundle per file, NDJSON, or one resource) to the same facts.

Each entry is validated by `fhir.resources` (its R4B models read R4), one at a time, so a
malformed resource is reported with its entry number and the rest imported. Read: Patient
(id, gender, birthDate), Observation (LOINC code, UCUM quantity or coded value, date,
reference range; body weight and height go to the patient), Condition (SNOMED / ICD-10
codes: cohorts are matched on codes, never names), MedicationStatement and
MedicationRequest, Immunization, Procedure. Other resource types carry nothing the
criteria read and are skipped.
"""

from __future__ import annotations

import difflib
import json
from decimal import Decimal, InvalidOperation
from typing import Any

from fhir.resources.R4B import get_fhir_model_class

from kb.catalogue.vocabulary import Vocabulary
from kb.errors import KbError
from kb.records.importers.common import Imported, Origin
from kb.records.units import UnitError, convert_unit

__all__ = ["ATTESTATION_SYSTEM", "CODE_SYSTEMS", "REFERENCE_DATE_EXTENSIONS", "agent_name", "read_fhir"]

#: FHIR code system URIs to the code systems of diagnosis_codes.csv
CODE_SYSTEMS = {
    "http://snomed.info/sct": "snomed",
    "http://hl7.org/fhir/sid/icd-10": "icd10",
    "http://hl7.org/fhir/sid/icd-10-cm": "icd10cm",
}
LOINC = "http://loinc.org"
#: An investigator's attestation (consent, "history reviewed") has no FHIR resource of its
#: own: it travels as an Observation coded in this system, the code the attestation item
#: (consent, reviewed:medications), the value a string or code, the date effectiveDateTime.
ATTESTATION_SYSTEM = "https://github.com/nct06420154-kb/attestation"
#: Event kinds a resource's category text may name (a Condition is a diagnosis, a Procedure
#: a procedure, a MedicationStatement a medication, unless their category says otherwise).
CONDITION_KINDS = ("diagnosis", "cardiac_event", "thrombosis", "malignancy", "infection")
PROCEDURE_KINDS = ("procedure", "transfusion", "cell_therapy")
MEDICATION_KINDS = ("medication", "investigational_product")
UCUM = "http://unitsofmeasure.org"
WEIGHT_LOINC = ("29463-7", "3141-9")
HEIGHT_LOINC = ("8302-2",)
READ = (
    "Patient",
    "ResearchSubject",
    "Observation",
    "Condition",
    "MedicationStatement",
    "MedicationRequest",
    "Immunization",
    "Procedure",
)
#: ResearchSubject: the patient's place in the trial. period.start is the enrolment date;
#: the screening and apheresis dates travel as extensions with these URLs.
REFERENCE_DATE_EXTENSIONS = {
    "https://github.com/nct06420154-kb/screening-date": "screening_date",
    "https://github.com/nct06420154-kb/apheresis-date": "apheresis_date",
}


def agent_name(text: str, vocab: Vocabulary) -> str:
    """The vocabulary agent a drug text names ("Prednisone 5 MG Oral Tablet" → prednisone),
    by its longest run of words that is a name or synonym; the text itself if none is."""
    if vocab.agent(text):
        return text
    words = text.replace("/", " ").replace(",", " ").split()
    for size in range(min(len(words), 4), 0, -1):
        for start in range(len(words) - size + 1):
            candidate = " ".join(words[start : start + size])
            agent = vocab.agent(candidate)
            if agent is not None:
                return agent.name
    return text


#: Python's own limit on the digits of an integer it converts from or to text (4,300):
#: a longer integer in a document is kept as a Decimal, which has none, so that the entry
#: holding it is reported (its value too large) instead of the whole file failing.
_MAX_INT_DIGITS = 4000
#: Nesting deeper than this is named in the error when json's C decoder, which recurses per
#: level, gives up on a document (RecursionError, at about 1,000 levels): FHIR nests a few.
MAX_DEPTH = 200


def _int(text: str) -> int | Decimal:
    return int(text) if len(text) <= _MAX_INT_DIGITS else Decimal(text)


def _too_deep(text: str) -> int | None:
    """The line of the first bracket nested deeper than MAX_DEPTH (outside strings), or None:
    scanned only once the decoder has given up, to say where."""
    depth, quoted, escaped, line = 0, False, False, 1
    for char in text:
        if quoted:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                quoted = False
        elif char == '"':
            quoted = True
        elif char in "[{":
            depth += 1
            if depth > MAX_DEPTH:
                return line
        elif char in "]}":
            depth -= 1
        if char == "\n":
            line += 1
    return None


def _json(text: str, name: str, line: int | None = None) -> Any:
    """One JSON document, or a KbError naming the file (and line) and what is wrong with it."""
    where = f"{name}" + (f" line {line}" if line is not None else "")
    try:
        return json.loads(text, parse_int=_int)
    except json.JSONDecodeError as exc:
        raise KbError(f"{where}: this is not JSON ({exc.msg} at line {exc.lineno} column {exc.colno})") from None
    except RecursionError:  # the decoder's own guard: raised cleanly, located here
        at = line if line is not None else _too_deep(text) or 1
        raise KbError(f"{name} line {at}: JSON nested more than {MAX_DEPTH} levels deep; not a FHIR resource") from None
    except ValueError as exc:
        raise KbError(f"{where}: this JSON cannot be read ({exc})") from None


def decode(content: bytes, name: str) -> str:
    """The text of a JSON file (UTF-8, with or without BOM); a byte that is not UTF-8 is an
    error at its line and column, never replaced silently (a replaced byte changes a name)."""
    try:
        return content.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        before = content[: exc.start]
        line = before.count(b"\n") + 1
        column = exc.start - (before.rfind(b"\n") + 1) + 1
        raise KbError(
            f"{name} line {line} column {column}: byte 0x{content[exc.start]:02x} is not UTF-8 (save the file as UTF-8)"
        ) from None


def _label(value: Any) -> str:
    """An id as shown in a place: a string, shortened; anything else is not an id."""
    return (value if len(value) <= 64 else value[:61] + "…") if isinstance(value, str) else "?"


def _entries(content: bytes, name: str, out: Imported) -> list[dict[str, Any]]:
    """The resources of a document, one per entry in order (an entry that holds none is
    reported, located, and counted as an empty entry, so that the numbering stays true)."""
    text = decode(content, name).strip()
    if not text:
        raise KbError(f"{name}: the file is empty (expected a FHIR bundle)")
    try:
        documents = [_json(text, name)]
    except KbError as whole:
        lines = [(n, line) for n, line in enumerate(text.splitlines(), start=1) if line.strip()]
        if len(lines) < 2:
            raise whole from None
        documents = [_json(line, name, n) for n, line in lines]  # NDJSON: one resource per line
    resources: list[dict[str, Any]] = []
    for document in documents:
        if not isinstance(document, dict) or "resourceType" not in document:
            raise KbError(f"{name}: this looks like JSON without a resourceType, expected a FHIR bundle or resource")
        if document["resourceType"] != "Bundle":
            resources.append(document)
            continue
        entries = document.get("entry") or []
        if not isinstance(entries, list):
            kind = type(entries).__name__
            out.problem(Origin(name, None, "Bundle.entry"), f"entry is {kind}, not a list", "no entry read")
            continue
        for entry in entries:
            resource = entry.get("resource") if isinstance(entry, dict) else None
            url = entry.get("fullUrl", "") if isinstance(entry, dict) else ""
            if not isinstance(resource, dict):
                resources.append({"_problem": "the entry holds no resource object"})
                continue
            resources.append(resource | {"_fullUrl": url if isinstance(url, str) else ""})
    return resources


def _coding(concept: Any) -> list[tuple[str, str, str]]:
    """(system, code, display) of a CodeableConcept's codings."""
    if concept is None:
        return []
    return [(c.system or "", c.code or "", c.display or "") for c in concept.coding or []]


def _text(concept: Any) -> str:
    if concept is None:
        return ""
    return concept.text or next((c.display for c in concept.coding or [] if c.display), "") or ""


def _day(value: Any) -> str:
    return "" if value is None else str(value)[:10]


def read_fhir(documents: list[tuple[str, bytes]], vocab: Vocabulary) -> Imported:
    """The four files of one or more FHIR documents (name, content)."""
    out = Imported(documents[0][0] if len(documents) == 1 else "FHIR bundles")
    for name, content in documents:
        resources = _entries(content, name, out)
        before = len(out.problems)
        unknown = _read(out, name, resources, vocab)
        if resources and unknown == len(resources):  # not one FHIR resource: not "0 patients"
            raise KbError(f"{name}: no FHIR resource could be read", out.problems[before:])
    return out


def _fhir_type(kind: str) -> bool:
    """Whether `kind` names a FHIR R4 resource type (read or not)."""
    if kind in READ:
        return True
    try:
        get_fhir_model_class(kind)
    except (ValueError, KeyError, AttributeError, ImportError):
        return False
    return True


def _read(out: Imported, name: str, resources: list[dict[str, Any]], vocab: Vocabulary) -> int:
    """Import the resources of one file; the number whose resourceType is not FHIR (each a
    located problem: a misspelt "Patinet" must not vanish as a type nobody reads)."""
    unknown = 0
    by_url: dict[str, str] = {}
    for raw in resources:
        if raw.get("resourceType") == "Patient" and raw.get("id") and isinstance(raw["id"], str):
            by_url[raw.get("_fullUrl", "")] = raw["id"]
    weights: dict[str, tuple[str, str, str]] = {}
    heights: dict[str, tuple[str, str, str]] = {}
    patients: dict[str, dict[str, object]] = {}
    dates: dict[str, dict[str, str]] = {}
    for number, raw in enumerate(resources, start=1):
        kind = raw.get("resourceType", "")
        if "_problem" in raw or not isinstance(kind, str):
            what = raw.get("_problem") or f"resourceType is {type(kind).__name__}, not a resource name"
            out.problem(Origin(name, number, "entry"), what, "the entry is skipped")
            continue
        where = Origin(name, number, f"{_label(kind) or 'entry'}/{_label(raw.get('id', '?'))}")
        if kind not in READ:
            if not _fhir_type(kind):
                unknown += 1
                close = difflib.get_close_matches(kind, [*READ, "Bundle"], n=1)
                hint = f"did you mean '{close[0]}'? " if close else "not a FHIR R4 resource type: " if kind else ""
                what = f"unknown resourceType '{kind}'" if kind else "an entry without a resource (no resourceType)"
                out.problem(where, what, hint + "the entry is skipped")
            continue  # nothing a criterion reads (Encounter, Claim …)
        body = {k: v for k, v in raw.items() if k != "_fullUrl"}
        try:
            resource: Any = get_fhir_model_class(kind).model_validate(body)
        except Exception as exc:  # pydantic's ValidationError, or a type fhir.resources rejects
            first = str(exc).splitlines()
            detail = first[1].strip() + ": " + first[2].strip() if len(first) > 2 else str(exc)[:200]
            out.problem(where, f"not a valid FHIR {kind}: {detail}", "the entry is skipped")
            continue
        if kind == "Patient":
            pid = resource.id or ""
            if not pid:
                out.problem(where, "a Patient without an id", "the entry is skipped")
                continue
            sex = {"female": "female", "male": "male"}.get(resource.gender or "", "")
            patients[pid] = {"patient_id": pid, "sex": sex, "birth_date": _day(resource.birthDate)}
            patients[pid]["_origin"] = where
            continue
        subject = (
            getattr(resource, "subject", None)
            or getattr(resource, "patient", None)
            or getattr(resource, "individual", None)
        )
        reference = (subject.reference or "") if subject is not None else ""
        pid = by_url.get(reference) or reference.rpartition("/")[2]
        if not pid:
            out.problem(where, f"a {kind} without a subject", "the entry is skipped")
            continue
        if kind == "ResearchSubject":
            dates[pid] = {"enrolment_date": _day(resource.period.start if resource.period else None)}
            for extension in resource.extension or []:
                if extension.url in REFERENCE_DATE_EXTENSIONS:
                    dates[pid][REFERENCE_DATE_EXTENSIONS[extension.url]] = _day(extension.valueDate)
        elif kind == "Observation":
            _observation(out, pid, resource, where, weights, heights)
        elif kind == "Condition":
            _condition(out, pid, resource, where)
        elif kind in ("MedicationStatement", "MedicationRequest"):
            _medication(out, pid, resource, where, vocab)
        elif kind == "Immunization":
            text = _text(resource.vaccineCode)
            event = {"patient_id": pid, "kind": "vaccination", "name": agent_name(text, vocab), "note": text}
            out.add("events.csv", event | {"start_date": _day(resource.occurrenceDateTime)}, where)
        elif kind == "Procedure":
            text = _text(resource.code)
            period = resource.performedPeriod
            start = resource.performedDateTime or (period.start if period else None)
            what = _kind(resource.category, PROCEDURE_KINDS)
            name = agent_name(text, vocab) if what != "procedure" else text
            event = {"patient_id": pid, "kind": what, "name": name, "start_date": _day(start)}
            out.add("events.csv", event | {"end_date": _day(period.end if period else None)}, where)
    for pid, row in patients.items():
        origin = row.pop("_origin")
        row.update(dates.get(pid, {}))
        if pid in weights:
            row["weight_kg"] = _body_size(weights[pid][0], weights[pid][1], "kg", vocab)
        if pid in heights:
            row["height_cm"] = _body_size(heights[pid][0], heights[pid][1], "cm", vocab)
        assert isinstance(origin, Origin)
        out.add("patients.csv", row, origin)
    return unknown


def _kind(category: Any, kinds: tuple[str, ...]) -> str:
    """The event kind a category names (its text or a coding's code), else the first of `kinds`."""
    concepts = category if isinstance(category, list) else [category] if category is not None else []
    for concept in concepts:
        for word in (concept.text, *(c.code for c in concept.coding or [])):
            key = str(word or "").strip().casefold().replace(" ", "_")
            if key in kinds:
                return key
    return kinds[0]


def _observation(
    out: Imported,
    pid: str,
    resource: Any,
    where: Origin,
    weights: dict[str, tuple[str, str, str]],
    heights: dict[str, tuple[str, str, str]],
) -> None:
    codes = [code for system, code, _ in _coding(resource.code) if system == LOINC]
    when = _day(resource.effectiveDateTime or (resource.effectivePeriod.start if resource.effectivePeriod else None))
    when = when or _day(resource.issued)
    attested = [code for system, code, _ in _coding(resource.code) if system == ATTESTATION_SYSTEM]
    if attested:
        concept = resource.valueCodeableConcept
        value = resource.valueString or (concept.coding[0].code if concept and concept.coding else _text(concept))
        by = next((p.display for p in resource.performer or [] if p.display), "")
        row = {"patient_id": pid, "item": attested[0], "value": value or "", "date": when, "by": by}
        out.add("attestations.csv", row, where)
        return
    quantity = resource.valueQuantity
    value, unit = "", ""
    if quantity is not None and quantity.value is not None:
        value = str(quantity.value)
        unit = (quantity.code if quantity.system == UCUM and quantity.code else quantity.unit) or ""
    elif resource.valueCodeableConcept is not None:
        value = _text(resource.valueCodeableConcept)
    elif resource.valueString:
        value = resource.valueString
    for code in codes:  # body size belongs to the patient; the latest is kept
        for store, loincs in ((weights, WEIGHT_LOINC), (heights, HEIGHT_LOINC)):
            if code in loincs and value and (pid not in store or when >= store[pid][2]):
                store[pid] = (value, unit, when)
                return
    uln = lln = ""
    if resource.referenceRange:
        limits = resource.referenceRange[0]
        uln = str(limits.high.value) if limits.high is not None and limits.high.value is not None else ""
        lln = str(limits.low.value) if limits.low is not None and limits.low.value is not None else ""
    row = {"patient_id": pid, "loinc": codes[0] if codes else "", "value": value, "unit": unit, "date": when}
    if not codes:
        row["item"] = _text(resource.code)  # no LOINC: the loader tries the name and says so
    out.add("observations.csv", row | {"uln": uln, "lln": lln, "source": where.path}, where)


def _condition(out: Imported, pid: str, resource: Any, where: Origin) -> None:
    start = _day(resource.onsetDateTime or resource.recordedDate)
    end = _day(resource.abatementDateTime)
    text = _text(resource.code)
    codes = [(CODE_SYSTEMS[s], c) for s, c, _ in _coding(resource.code) if s in CODE_SYSTEMS and c]
    what = _kind(resource.category, CONDITION_KINDS)
    for system, code in codes or [("", "")]:
        event = {"patient_id": pid, "kind": what, "name": text, "code": f"{system}:{code}" if code else ""}
        out.add("events.csv", event | {"start_date": start, "end_date": end}, where)


def _medication(out: Imported, pid: str, resource: Any, where: Origin, vocab: Vocabulary) -> None:
    text = _text(resource.medicationCodeableConcept)
    if type(resource).__name__ == "MedicationStatement":
        period = resource.effectivePeriod
        start = _day(resource.effectiveDateTime or (period.start if period else None))
        end = _day(period.end if period else None)
        dosage = (resource.dosage or [None])[0]
        what = _kind(resource.category, MEDICATION_KINDS)
    else:
        start, end = _day(resource.authoredOn), ""
        dosage = (resource.dosageInstruction or [None])[0]
        what = _kind(resource.category, MEDICATION_KINDS)
    dose = unit = frequency = ""
    if dosage is not None:
        frequency = dosage.text or ""  # daily, bid, weekly …
        quantity = dosage.doseAndRate[0].doseQuantity if dosage.doseAndRate else None
        if quantity is not None and quantity.value is not None:
            dose, unit = str(quantity.value), quantity.code or quantity.unit or ""
    name = agent_name(text, vocab) if what == "medication" else text
    event = {"patient_id": pid, "kind": what, "name": name, "start_date": start, "end_date": end}
    out.add("events.csv", event | {"dose": dose, "dose_unit": unit, "frequency": frequency, "note": text}, where)


def _body_size(value: str, unit: str, target: str, vocab: Vocabulary) -> str:
    """A body weight or height in the patient file's unit (kg, cm) by the units library;
    a unit it cannot convert is left for the loader to report."""
    try:
        return str(convert_unit(Decimal(value), unit or target, target, vocab))
    except (UnitError, InvalidOperation):
        return f"{value} {unit}".strip()
