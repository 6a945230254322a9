"""Problems a user can fix: every one names where it is (file, row or line, column)."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["KbError", "Problem", "UnknownPatientError"]


@dataclass(frozen=True)
class Problem:
    """One located problem in a user's file (rule file or patient file).

    `row` is the line number in the file as a spreadsheet or editor shows it (the header of
    a CSV file is row 1), so a user can go straight to it.
    """

    path: str
    row: int | None
    column: int | str | None
    message: str
    hint: str = ""
    patient_id: str | None = None  # the patient the rejected row belongs to, when known

    def __str__(self) -> str:
        where = self.path
        if self.row is not None:
            where += f":{self.row}"
        if self.column is not None:
            where += f":{self.column}" if isinstance(self.column, int) else f" column {self.column}"
        text = f"{where}: {self.message}"
        return f"{text} ({self.hint})" if self.hint else text


class KbError(Exception):
    """An error caused by the user's input, shown to them without a stack trace."""

    def __init__(self, message: str, problems: list[Problem] | None = None) -> None:
        super().__init__(message)
        self.problems = problems or []

    def __str__(self) -> str:
        lines = [self.args[0]] + [f"  {p}" for p in self.problems]
        return "\n".join(lines)


class UnknownPatientError(KbError):
    """The patient id is not in the data set; the message suggests the nearest ids."""
