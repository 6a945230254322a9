"""FHIR R4 bundles written for the vignettes give the same verdicts as their CSV files."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from kb.catalogue.assumptions import resolve_assumptions
from kb.catalogue.knowledge import KnowledgeBase
from kb.catalogue.vocabulary import load_vocabulary
from kb.cli import main
from kb.errors import KbError
from kb.records.importers import load_data, load_files
from kb.records.importers.fhir import agent_name, read_fhir
from kb.records.patients import Dataset, load_dataset
from kb.screening.batch import evaluate_many
from tests.fhir_bundles import bundle, bundle_bytes


def test_every_vignette_through_fhir(kb: KnowledgeBase, demo: Dataset, tmp_path: Path) -> None:
    vocab = load_vocabulary()
    patients = list(demo.patients.values())
    path = tmp_path / "vignettes.json"
    path.write_bytes(bundle_bytes(patients, vocab))
    imported = load_data(path)  # recognised as FHIR from its content
    assert imported.problems == []
    assert list(imported.patients) == list(demo.patients)
    assumptions = resolve_assumptions()
    direct = {r.patient_id: r for r in evaluate_many(patients, kb, assumptions, workers=1)}
    via_fhir = {r.patient_id: r for r in evaluate_many(list(imported.patients.values()), kb, assumptions, workers=1)}
    for pid, row in direct.items():
        assert (via_fhir[pid].verdict, via_fhir[pid].statuses) == (row.verdict, row.statuses), pid


def test_units_codes_and_dates_are_read(demo: Dataset) -> None:
    vocab = load_vocabulary()
    p023 = demo.patients["P023"]
    imported = read_fhir([("p023.json", bundle_bytes([p023], vocab))], vocab).dataset(vocab)
    again = imported.patients["P023"]
    assert (again.enrolment_date, again.screening_date, again.weight_kg) == (
        p023.enrolment_date,
        p023.screening_date,
        p023.weight_kg,
    )
    assert sorted((o.item, o.value, o.date) for o in again.observations) == sorted(
        (o.item, o.value, o.date) for o in p023.observations
    )
    codes = {e.code for e in again.events if e.kind == "diagnosis"}
    assert codes == {f"icd10:{e.code}" for e in p023.events if e.kind == "diagnosis"}


def test_a_malformed_entry_is_named_and_the_rest_kept(demo: Dataset) -> None:
    vocab = load_vocabulary()
    document = bundle([demo.patients["P001"]], vocab)
    entries = document["entry"]
    entries[3]["resource"]["valueQuantity"]["value"] = "fifty"  # not a decimal
    entries[4]["resource"]["valueQuantity"]["code"] = "furlongs"  # not a unit of the item
    entries.append({"resource": {"resourceType": "Observation", "status": "final", "code": {"text": "x"}}})
    imported = read_fhir([("p001.json", json.dumps(document).encode())], vocab).dataset(vocab)
    messages = [str(p) for p in imported.problems]
    assert any(m.startswith("p001.json (Observation/observation-3):4") and "not a valid FHIR" in m for m in messages)
    assert any(m.startswith("p001.json (Observation/observation-4):5 column unit") for m in messages)
    assert any("without a subject" in m for m in messages)
    kept = len(imported.patients["P001"].observations)
    assert kept == len(demo.patients["P001"].observations) - 2


@pytest.mark.parametrize(
    ("text", "agent"),
    [
        ("Prednisone 5 MG Oral Tablet", "prednisone"),
        ("methotrexate 2.5 MG Oral Tablet", "methotrexate"),
        ("Acetaminophen 325 MG Oral Tablet", "Acetaminophen 325 MG Oral Tablet"),
    ],
)
def test_drug_texts_are_matched_to_agents(text: str, agent: str) -> None:
    assert agent_name(text, load_vocabulary()) == agent


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "empty"),
        (b'{"name": "not fhir"}', "looks like JSON without a resourceType"),
        (b"{not json", "not JSON"),
    ],
)
def test_not_a_bundle(content: bytes, message: str) -> None:
    with pytest.raises(KbError, match=message):
        read_fhir([("x.json", content)], load_vocabulary())


def _p001(change: Callable[[dict[str, Any]], object] | None = None) -> bytes:
    document = bundle([load_dataset().patients["P001"]], load_vocabulary())
    if change is not None:
        change(document)
    return json.dumps(document).encode()


def _set(entry: int, field: str, value: object) -> Callable[[dict[str, Any]], None]:
    return lambda document: document["entry"][entry]["resource"].__setitem__(field, value)


@pytest.mark.parametrize(
    ("content", "where", "message", "patients"),
    [
        (json.dumps({"resourceType": "Bundle", "entry": 5}).encode(), ("b.json (Bundle.entry)", None), "not a list", 0),
        (_p001(_set(2, "id", {"a": 1})), ("b.json (Observation/?)", 3), "id: Input should be a valid string", 1),
        (_p001(_set(0, "id", {"a": 1})), ("b.json (Patient/?)", 1), "id: Input should be a valid string", 0),
        (
            _p001().replace(b'"value": 50', b'"value": ' + b"9" * 5000, 1),
            ("b.json (Observation/observation-6)", 7),
            "platelets: '99999999999999999999…(5,000 characters)' is too large or too small",
            1,
        ),
        (_p001(lambda d: d["entry"].insert(1, "x")), ("b.json (entry)", 2), "the entry holds no resource object", 1),
        (_p001(_set(1, "resourceType", {"x": 1})), ("b.json (entry)", 2), "resourceType is dict", 1),
    ],
)
def test_a_malformed_bundle_entry_is_a_located_problem_and_the_rest_loads(
    content: bytes, where: tuple[str, int | None], message: str, patients: int
) -> None:
    """Issue 16.2: `"entry": 5` (TypeError), an object as an id (unhashable dict) and a
    5,000-digit number (Python's int digit limit) raised from the whole file; each is now a
    problem at its bundle entry and the other entries are read."""
    vocab = load_vocabulary()
    imported = read_fhir([("b.json", content)], vocab).dataset(vocab)
    found = [p for p in imported.problems if message in p.message]
    assert found and (found[0].path, found[0].row) == where, imported.problems
    assert len(imported.patients) == patients


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b'{"resourceType": "Bundle", "entry": ' + b"[" * 100_000 + b"]" * 100_000 + b"}", "nested more than 200"),
        (b"[" * 100_000 + b"]" * 100_000, "nested more than 200"),
        (_p001().replace(b'"final"', b'"fin\xff\xfeal"', 1), r"line 1 column \d+: byte 0xff is not UTF-8"),
        (b'{"resourceType": "Bundle",\n "entry": [}', "this is not JSON"),
    ],
)
def test_a_document_that_cannot_be_read_is_a_located_error_never_a_traceback(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], content: bytes, message: str
) -> None:
    """Issue 16.2: a 100,000-deep nesting raised RecursionError and a bad byte
    UnicodeDecodeError, in the importer and in format detection; now the file is refused
    with where (line, column) and why, `kb` exits 2, and an upload gets a KbError."""
    with pytest.raises(KbError, match=message):
        read_fhir([("b.json", content)], load_vocabulary())
    with pytest.raises(KbError, match=f"b.json.*{message}"):
        load_files({"b.json": content})
    path = tmp_path / "b.json"
    path.write_bytes(content)
    assert main(["--facts", str(path), "patients"]) == 2
    assert "Traceback" not in capsys.readouterr().err


def test_an_unknown_resource_type_is_a_located_error_not_zero_patients(demo: Dataset) -> None:
    vocab = load_vocabulary()
    with pytest.raises(KbError, match=r"x\.json: no FHIR resource could be read") as caught:
        read_fhir([("x.json", b'{"resourceType": "Patinet", "id": "P001"}')], vocab)
    (problem,) = caught.value.problems
    assert (problem.path, problem.row) == ("x.json (Patinet/P001)", 1)
    assert problem.message == "unknown resourceType 'Patinet'" and problem.hint.startswith("did you mean 'Patient'?")
    document = bundle([demo.patients["P001"]], vocab)
    document["entry"].append({"resource": {"resourceType": "Conditon", "id": "c9"}})
    imported = read_fhir([("p001.json", json.dumps(document).encode())], vocab).dataset(vocab)
    assert [str(p) for p in imported.problems] == [
        f"p001.json (Conditon/c9):{len(document['entry'])}: unknown resourceType 'Conditon' "
        "(did you mean 'Condition'? the entry is skipped)"
    ]
    assert list(imported.patients) == ["P001"]
