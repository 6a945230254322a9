"""FHIR R4 bundles written for vignettes: the same patient as a collection bundle, the way
an EHR export carries it (LOINC + UCUM results, ICD-10 conditions, medication statements,
immunisations, procedures, and attestations as Observations of the attestation system)."""

from __future__ import annotations

import json
from typing import Any

from kb.catalogue.vocabulary import Vocabulary
from kb.records.importers.fhir import ATTESTATION_SYSTEM, REFERENCE_DATE_EXTENSIONS
from kb.records.patients import AGENT_KINDS, Patient

ICD10 = "http://hl7.org/fhir/sid/icd-10"
SNOMED = "http://snomed.info/sct"


def _number(value: object) -> float | int:
    text = str(value)
    return int(text) if text.lstrip("-").isdigit() else float(text)


def bundle(patients: list[Patient], vocab: Vocabulary) -> dict[str, Any]:
    entries: list[dict[str, Any]] = []

    def add(resource: dict[str, Any]) -> None:
        resource["id"] = (
            f"{resource['resourceType'].lower()}-{len(entries)}" if "id" not in resource else resource["id"]
        )
        entries.append({"fullUrl": f"urn:uuid:{resource['id']}", "resource": resource})

    for p in patients:
        patient: dict[str, Any] = {"resourceType": "Patient", "id": p.id}
        if p.sex:
            patient["gender"] = p.sex
        if p.birth_date:
            patient["birthDate"] = p.birth_date.isoformat()
        add(patient)
        subject = {"reference": f"urn:uuid:{p.id}"}
        if p.enrolment_date or p.screening_date or p.apheresis_date:
            research: dict[str, Any] = {
                "resourceType": "ResearchSubject",
                "status": "on-study",
                "study": {"reference": "ResearchStudy/NCT06420154"},
                "individual": subject,
                "extension": [
                    {"url": url, "valueDate": getattr(p, field).isoformat()}
                    for url, field in REFERENCE_DATE_EXTENSIONS.items()
                    if getattr(p, field)
                ],
            }
            if p.enrolment_date:
                research["period"] = {"start": p.enrolment_date.isoformat()}
            add(research)
        if p.weight_kg is not None:
            add(
                {
                    "resourceType": "Observation",
                    "status": "final",
                    "code": {"coding": [{"system": "http://loinc.org", "code": "29463-7"}]},
                    "subject": subject,
                    "effectiveDateTime": "2026-01-01",
                    "valueQuantity": {
                        "value": _number(p.weight_kg),
                        "system": "http://unitsofmeasure.org",
                        "code": "kg",
                    },
                }
            )
        for o in p.observations:
            item = vocab.items[o.item]
            code: dict[str, Any] = (
                {"coding": [{"system": "http://loinc.org", "code": item.loinc[0]}]} if item.loinc else {"text": o.item}
            )
            resource: dict[str, Any] = {
                "resourceType": "Observation",
                "status": "final",
                "code": code,
                "subject": subject,
                "effectiveDateTime": o.date.isoformat(),
            }
            if item.quantitative:
                unit = item.unit if not o.factor_assumption else item.alternate_unit[0]
                resource["valueQuantity"] = {
                    "value": _number(o.value),
                    "system": "http://unitsofmeasure.org",
                    "code": unit or "1",
                }
                if o.uln is not None:
                    resource["referenceRange"] = [{"high": {"value": _number(o.uln), "code": unit}}]
            else:
                resource["valueCodeableConcept"] = {"text": str(o.value)}
            add(resource)
        for e in p.events:
            start, end = e.start.isoformat(), e.end.isoformat() if e.end else None
            if e.kind in ("diagnosis", "cardiac_event", "thrombosis", "malignancy", "infection"):
                condition: dict[str, Any] = {
                    "resourceType": "Condition",
                    "subject": subject,
                    "category": [{"text": e.kind}],
                    "code": {"text": e.name},
                    "onsetDateTime": start,
                }
                if e.code:
                    system, _, code_value = e.code.rpartition(":")
                    uri = SNOMED if system.casefold() == "snomed" else ICD10
                    condition["code"]["coding"] = [{"system": uri, "code": code_value}]
                if end:
                    condition["abatementDateTime"] = end
                add(condition)
            elif e.kind == "vaccination":
                add(
                    {
                        "resourceType": "Immunization",
                        "status": "completed",
                        "vaccineCode": {"text": e.name},
                        "patient": subject,
                        "occurrenceDateTime": start,
                    }
                )
            elif e.kind in ("procedure", "transfusion", "cell_therapy"):
                period = {"start": start, **({"end": end} if end else {})}
                add(
                    {
                        "resourceType": "Procedure",
                        "status": "completed",
                        "category": {"text": e.kind},
                        "code": {"text": e.name},
                        "subject": subject,
                        "performedPeriod": period,
                    }
                )
            else:  # medication, investigational product
                assert e.kind in AGENT_KINDS or e.kind == "investigational_product"
                statement: dict[str, Any] = {
                    "resourceType": "MedicationStatement",
                    "status": "active" if end is None else "completed",
                    "category": {"text": e.kind},
                    "medicationCodeableConcept": {"text": e.name},
                    "subject": subject,
                    "effectivePeriod": {"start": start, **({"end": end} if end else {})},
                }
                if e.dose is not None or e.frequency:
                    dosage: dict[str, Any] = {"text": e.frequency} if e.frequency else {}
                    if e.dose is not None:
                        dosage["doseAndRate"] = [{"doseQuantity": {"value": _number(e.dose), "unit": e.dose_unit}}]
                    statement["dosage"] = [dosage]
                add(statement)
        for a in p.attestations:
            observation: dict[str, Any] = {
                "resourceType": "Observation",
                "status": "final",
                "code": {"coding": [{"system": ATTESTATION_SYSTEM, "code": a.item}]},
                "subject": subject,
                "valueString": a.value,
            }
            if a.date:
                observation["effectiveDateTime"] = a.date.isoformat()
            if a.by:
                observation["performer"] = [{"display": a.by}]
            add(observation)
    return {"resourceType": "Bundle", "type": "collection", "entry": entries}


def bundle_bytes(patients: list[Patient], vocab: Vocabulary) -> bytes:
    return json.dumps(bundle(patients, vocab), indent=1).encode("utf-8")
