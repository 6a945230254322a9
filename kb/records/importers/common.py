"""What every importer produces: the rows of the project's four CSV files, each remembering
where in the source it came from.

An importer only translates (a FHIR resource, an OMOP row, a spreadsheet cell) into the
rows of patients.csv, observations.csv, events.csv and attestations.csv; the one loader of
`kb.records.patients` then reads them, so units are converted by the same units library, codes
matched by the same vocabulary, and a bad value rejected with the same message whatever the
format. Its problems are then re-addressed to the source (`bundle.json entry 12`,
`measurement row 4711`), never to a file the user has not seen.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import date

from kb.catalogue.vocabulary import Vocabulary
from kb.errors import Problem
from kb.records.patients import (
    ATTESTATION_COLUMNS,
    EVENT_COLUMNS,
    OBSERVATION_COLUMNS,
    PATIENT_COLUMNS,
    Dataset,
    load_uploaded,
)

__all__ = ["FILES", "Imported", "Origin"]

FILES = {
    "patients.csv": PATIENT_COLUMNS,
    "observations.csv": OBSERVATION_COLUMNS,
    "events.csv": EVENT_COLUMNS,
    "attestations.csv": ATTESTATION_COLUMNS,
}


@dataclass(frozen=True)
class Origin:
    """Where a row came from: a file (or table) and a row or entry number in it."""

    path: str
    row: int | None = None
    what: str = ""  # e.g. "Observation/abc", shown after the place


@dataclass
class Imported:
    """The four CSV files of an import, with the origin of each row and the importer's own
    problems (a resource it could not read at all)."""

    name: str
    rows: dict[str, list[dict[str, str]]] = field(default_factory=lambda: {f: [] for f in FILES})
    origins: dict[tuple[str, int], Origin] = field(default_factory=dict)
    problems: list[Problem] = field(default_factory=list)

    def add(self, file: str, row: Mapping[str, object], origin: Origin) -> None:
        rows = self.rows[file]
        rows.append({column: "" if row.get(column) is None else str(row[column]) for column in FILES[file]})
        self.origins[(file, len(rows) + 1)] = origin  # the header is row 1, as the loader counts

    def problem(
        self, origin: Origin, message: str, hint: str = "", patient_id: str | None = None, column: str | None = None
    ) -> None:
        where = f"{origin.path}" + (f" ({origin.what})" if origin.what else "")
        self.problems.append(Problem(where, origin.row, column, message, hint, patient_id))

    def files(self) -> dict[str, bytes]:
        out = {}
        for file, columns in FILES.items():
            text = io.StringIO()
            writer = csv.DictWriter(text, fieldnames=list(columns), lineterminator="\n")
            writer.writeheader()
            writer.writerows(self.rows[file])
            out[file] = text.getvalue().encode("utf-8")
        return out

    def dataset(self, vocabulary: Vocabulary | None = None, today: date | None = None) -> Dataset:
        """The data set the rows make, its problems addressed to the source."""
        loaded = load_uploaded(self.files(), vocabulary, today, name=self.name)
        moved = []
        for problem in loaded.problems:
            origin = self.origins.get((problem.path, problem.row or 0))
            if origin is not None:
                where = origin.path + (f" ({origin.what})" if origin.what else "")
                problem = replace(problem, path=where, row=origin.row)
            moved.append(problem)
        loaded.problems = self.problems + moved
        return loaded
