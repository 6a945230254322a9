"""A wide table, one row per patient and one column per item: what a clinic export or a
screening spreadsheet looks like (CSV or the first sheet of an Excel workbook).

Columns are recognised by the vocabulary: item names, labels, synonyms ("plt", "hb") or
LOINC codes; the unit is in the header (`platelets [10^9/L]`, `Hb (g/dL)`) or in a units row
under it. Results are dated by a `<item>_date` column, else by a shared `result_date`
(`lab_date`, `date`); limits by `<item>_uln`. Demographics and reference dates keep their
file-set names (with common variants: dob, gender, weight); attestation items (consent,
`reviewed:medications`) are columns too, and diagnosis codes a `diagnosis_code` column
(several split by `;` or `|`) with its `diagnosis_date`. A column none of this knows is
reported once and left out, with the nearest name.
"""

from __future__ import annotations

import csv
import difflib
import io
import re

from kb.catalogue.vocabulary import Vocabulary
from kb.errors import KbError, Problem
from kb.records.importers.common import Imported, Origin
from kb.records.patients import decode_text
from kb.records.workbook import excel_rows

__all__ = ["ID_COLUMNS", "read_wide"]

ID_COLUMNS = ("patient_id", "patient", "id", "mrn", "subject", "subject_id", "person_id", "participant_id", "record_id")
DATE_COLUMNS = ("result_date", "lab_date", "sample_date", "date", "visit_date")
PATIENT_FIELDS = {
    "sex": "sex",
    "gender": "sex",
    "birth_date": "birth_date",
    "date_of_birth": "birth_date",
    "dob": "birth_date",
    "weight_kg": "weight_kg",
    "weight": "weight_kg",
    "height_cm": "height_cm",
    "height": "height_cm",
    "screening_date": "screening_date",
    "enrolment_date": "enrolment_date",
    "enrollment_date": "enrolment_date",
    "apheresis_date": "apheresis_date",
}
DIAGNOSIS_FIELDS = {"diagnosis_code": "code", "diagnosis_codes": "code", "diagnosis": "name", "diagnosis_date": "date"}
_UNIT = re.compile(r"^(?P<name>.*?)\s*[\[(]\s*(?P<unit>[^\])]+?)\s*[\])]\s*$")
_SPLIT = re.compile(r"\s*[;|]\s*")


def _key(text: str) -> str:
    return re.sub(r"[\s\-]+", "_", text.strip().casefold())


def _items_by_name(vocab: Vocabulary) -> dict[str, str]:
    names: dict[str, str] = {}
    for item in vocab.items.values():
        for alias in (item.name, item.label, *item.synonyms, *item.loinc):
            names.setdefault(_key(alias), item.name)
    return names


def _table(content: bytes, name: str, encoding: str | None = None) -> list[list[str]]:
    if name.casefold().endswith((".xlsx", ".xlsm")):
        return excel_rows(content, name)
    text = decode_text(content, name, encoding)  # whole or not at all, located at the bad byte
    try:
        dialect = csv.Sniffer().sniff(text[:4096], delimiters=",;\t")
    except csv.Error:
        dialect = csv.excel
    reader = csv.reader(io.StringIO(text, newline=""), dialect, strict=True)
    try:
        return list(reader)
    except csv.Error as exc:  # an unbalanced quote would swallow the rows after it: none is read
        problem = Problem(name, reader.line_num, None, f"the file cannot be read as CSV: {exc}", "no row of it is read")
        raise KbError(f"{name} could not be read", [problem]) from None


def read_wide(content: bytes, name: str, vocab: Vocabulary, encoding: str | None = None) -> Imported:
    """The four files of a wide table. Raises for a file that cannot be a patient table
    (empty, no patient id column, not text in its encoding); a bad cell is left to the
    loader, which names it."""
    rows = [row for row in _table(content, name, encoding) if any(cell.strip() for cell in row)]
    if not rows:
        raise KbError(f"{name}: the file is empty (expected a header row, then one row per patient)")
    header = [cell.strip() for cell in rows[0]]
    keys = [_key(_UNIT.sub(r"\g<name>", h)) for h in header]
    id_column = next((n for n, k in enumerate(keys) if k in ID_COLUMNS), None)
    if id_column is None:
        raise KbError(
            f"{name}: no patient id column (looked for {', '.join(ID_COLUMNS)}; the header is {', '.join(header)})"
        )
    units = [m.group("unit") if (m := _UNIT.match(h)) else "" for h in header]
    body = rows[1:]
    first_id = body[0][id_column].strip().casefold() if body and id_column < len(body[0]) else ""
    if body and first_id in ("", "unit", "units"):  # a units row under the header
        units = [u or (body[0][n].strip() if n < len(body[0]) else "") for n, u in enumerate(units)]
        body = body[1:]
    out = Imported(name)
    items = _items_by_name(vocab)
    attestations = {_key(a): a for a in vocab.attestation_items}
    roles: dict[int, tuple[str, str]] = {}  # column -> (role, target)
    for n, key in enumerate(keys):
        if n == id_column:
            continue
        if key in PATIENT_FIELDS:
            roles[n] = ("patient", PATIENT_FIELDS[key])
        elif key in DATE_COLUMNS:
            roles[n] = ("result_date", "")
        elif key in DIAGNOSIS_FIELDS:
            roles[n] = ("diagnosis", DIAGNOSIS_FIELDS[key])
        elif key in attestations:
            roles[n] = ("attestation", attestations[key])
        elif key in items:
            roles[n] = ("item", items[key])
        elif key.endswith("_date") and key[:-5] in items:
            roles[n] = ("item_date", items[key[:-5]])
        elif key.endswith("_uln") and key[:-4] in items:
            roles[n] = ("item_uln", items[key[:-4]])
        elif header[n]:
            close = difflib.get_close_matches(key, [*items, *attestations, *PATIENT_FIELDS], n=1, cutoff=0.75)
            hint = f"did you mean '{close[0]}'?" if close else "not an item of kb/facts/vocabulary/items.csv"
            out.problem(Origin(name, 1, f"column {header[n]}"), f"column '{header[n]}' is not known: ignored", hint)
    first_row = 3 if len(rows) - len(body) == 2 else 2
    for offset, row in enumerate(body):
        number = first_row + offset
        cells = [row[n].strip() if n < len(row) else "" for n in range(len(header))]
        pid = cells[id_column]
        where = Origin(name, number)
        if not pid:
            out.problem(where, "empty patient id", "the row is rejected")
            continue
        patient: dict[str, object] = {"patient_id": pid}
        shared_date = next((cells[n] for n, (role, _) in roles.items() if role == "result_date" and cells[n]), "")
        dates = {target: cells[n] for n, (role, target) in roles.items() if role == "item_date" and cells[n]}
        ulns = {target: cells[n] for n, (role, target) in roles.items() if role == "item_uln" and cells[n]}
        diagnosis: dict[str, str] = {}
        for n, (role, target) in roles.items():
            value = cells[n]
            if not value:
                continue
            at = Origin(name, number, f"column {header[n]}")
            if role == "patient":
                patient[target] = value
            elif role == "diagnosis":
                diagnosis[target] = value
            elif role == "item":
                when = dates.get(target, shared_date)
                observation = {"patient_id": pid, "item": target, "value": value, "unit": units[n], "date": when}
                out.add("observations.csv", observation | {"uln": ulns.get(target, ""), "source": name}, at)
            elif role == "attestation":
                _attestation(out, pid, target, value, shared_date, at)
        for code in _SPLIT.split(diagnosis.get("code", "")) if diagnosis.get("code") else []:
            event = {"patient_id": pid, "kind": "diagnosis", "name": diagnosis.get("name", ""), "code": code}
            out.add("events.csv", event | {"start_date": diagnosis.get("date", "")}, where)
        if diagnosis.get("name") and not diagnosis.get("code"):
            event = {"patient_id": pid, "kind": "diagnosis", "name": diagnosis["name"]}
            out.add("events.csv", event | {"start_date": diagnosis.get("date", "")}, where)
        out.add("patients.csv", patient, where)
    return out


def _attestation(out: Imported, pid: str, item: str, value: str, shared_date: str, at: Origin) -> None:
    """A history review is a date (reviewed on) or yes (on the results' date); others a value."""
    if item.startswith("reviewed:") and re.match(r"^\d{4}-\d{2}-\d{2}$", value):
        out.add("attestations.csv", {"patient_id": pid, "item": item, "value": "yes", "date": value}, at)
    else:
        out.add("attestations.csv", {"patient_id": pid, "item": item, "value": value, "date": shared_date}, at)
