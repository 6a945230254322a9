"""The screening export: one table, one set of columns, for `kb screen --out` and the Cohort page.

A screening leaves as a CSV file or an Excel workbook. Both callers write the same columns,
so a site's spreadsheet reads the same whichever way it was made: one row per patient, the
columns of the screening's JSON (`ScreenRow.as_dict`: patient, verdict, cohorts, blocking,
unknown, earliest_date, left_at, reason), then one column per counted criterion with its
status. The workbook holds that table as the sheet "patients" and the attrition funnel as
"funnel". `--out x.json` writes the JSON contract (`kb screen --json`'s patients and funnel);
`--out x.parquet` the table as Parquet (for a cluster's next step: the same columns, as text,
the values as they are, since no spreadsheet reads a Parquet cell as a formula).

Every cell goes through `spreadsheet_cell`, so a patient id or name from a file never
becomes a formula in the investigator's spreadsheet.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import IO, TYPE_CHECKING

from kb.errors import KbError
from kb.screening.screen import ScreenRow

if TYPE_CHECKING:
    import pyarrow as pa

__all__ = [
    "COLUMNS",
    "FORMULA_STARTS",
    "screening_arrow",
    "screening_csv",
    "screening_table",
    "screening_xlsx",
    "spreadsheet_cell",
    "write_screening",
]

#: The columns every export starts with (the keys of `ScreenRow.as_dict`); the criteria follow.
COLUMNS = ("patient", "verdict", "cohorts", "blocking", "unknown", "earliest_date", "left_at", "reason")
#: What makes a spreadsheet read a cell as a formula (OWASP, "CSV Injection"): = + - @, tab, CR.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def spreadsheet_cell(value: object) -> object:
    """A cell that a spreadsheet shows as the text it is: a text starting a formula gets a quote.

    An uploaded patient id `=HYPERLINK("http://x","y")` or `@SUM(1)` written raw turns live
    when the CSV or workbook is opened (a link that sends data away, a command). OWASP's
    remedy: prefix a single quote, which Excel and LibreOffice show as text. Typed numbers
    (a count, -3 as a number) stay numbers; the text "-3" is text and gets its quote too.
    In a workbook, the quoted text is a string cell (openpyxl data type 's'), never 'f'.
    """
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return value


def _criteria(rows: Iterable[ScreenRow]) -> list[str]:
    """The counted criteria of a screening, in its order (every row of one screening shares them)."""
    criteria: dict[str, None] = {}
    for row in rows:
        for criterion in row.statuses:
            criteria.setdefault(criterion)
    return list(criteria)


def _records(rows: Iterable[ScreenRow], criteria: Sequence[str]) -> Iterator[dict[str, str]]:
    for row in rows:
        yield row.as_dict() | {c: str(row.statuses.get(c, "")) for c in criteria}


def screening_table(rows: Sequence[ScreenRow]) -> list[dict[str, str]]:
    """One dict per patient: the `COLUMNS`, then each counted criterion's status ("" where a
    patient has none, e.g. one not evaluated)."""
    return list(_records(rows, _criteria(rows)))


def _write_csv(out: IO[str], rows: Sequence[ScreenRow]) -> None:
    """Row by row: a streamed screening of 100,000 patients is never held as dicts."""
    criteria = _criteria(rows)
    writer = csv.DictWriter(out, fieldnames=[*COLUMNS, *criteria])
    writer.writeheader()
    for record in _records(rows, criteria):
        writer.writerow({key: spreadsheet_cell(value) for key, value in record.items()})  # =HYPERLINK(…) stays text


def screening_csv(rows: Sequence[ScreenRow]) -> str:
    """The export as CSV text (the csv module's quoting and line ends)."""
    out = io.StringIO()
    _write_csv(out, rows)
    return out.getvalue()


def screening_xlsx(rows: Sequence[ScreenRow], stages: Sequence[tuple[str, int]]) -> bytes:
    """The export as an Excel workbook: the sheet "patients" (the table) and "funnel" (the attrition)."""
    from openpyxl import Workbook  # type: ignore[import-untyped]  # only a workbook needs it (CLI start-up)

    criteria = _criteria(rows)
    book = Workbook()
    patients = book.active
    patients.title = "patients"
    patients.append([*COLUMNS, *criteria])
    for record in _records(rows, criteria):
        patients.append([spreadsheet_cell(value) for value in record.values()])
    funnel = book.create_sheet("funnel")
    funnel.append(["stage", "patients"])
    for stage, count in stages:
        funnel.append([spreadsheet_cell(stage), count])
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def screening_arrow(rows: Sequence[ScreenRow]) -> pa.Table:
    """The export as an Arrow table: the `COLUMNS` and one column per counted criterion,
    every column text (a status, an id, a date in ISO form)."""
    import pyarrow as pa

    criteria = _criteria(rows)
    names = [*COLUMNS, *criteria]
    columns: dict[str, list[str]] = {name: [] for name in names}
    for record in _records(rows, criteria):
        for name in names:
            columns[name].append(record[name])
    return pa.table({name: pa.array(values, pa.string()) for name, values in columns.items()})


def write_screening(path: Path, rows: Sequence[ScreenRow], stages: Sequence[tuple[str, int]]) -> None:
    """`kb screen --out`: the export by the file's suffix (.csv, .xlsx, .parquet), or the JSON
    contract (.json)."""
    suffix = path.suffix.casefold()
    if suffix == ".json":
        funnel_rows = [{"stage": s, "patients": n} for s, n in stages]
        answer = {"patients": [r.as_dict() for r in rows], "funnel": funnel_rows}
        path.write_text(json.dumps(answer, indent=2), encoding="utf-8")
    elif suffix == ".csv":
        with path.open("w", encoding="utf-8", newline="") as fh:
            _write_csv(fh, rows)
    elif suffix == ".xlsx":
        path.write_bytes(screening_xlsx(rows, stages))
    elif suffix == ".parquet":
        import pyarrow.parquet as pq

        pq.write_table(screening_arrow(rows), path)
    else:
        raise KbError(f"{path}: the report is written as .csv, .xlsx, .json or .parquet")
