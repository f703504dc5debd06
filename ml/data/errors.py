"""Validation problems that name the file, row and column at fault."""

from __future__ import annotations

from dataclasses import dataclass

from rlops_core.errors import RlopsError

MAX_ISSUES_IN_MESSAGE = 10


@dataclass(frozen=True)
class DataIssue:
    """One problem in one place. `row` counts data rows from 1 (the header is not a row); 0 = whole file."""

    file: str
    message: str
    row: int = 0
    column: str = ""

    def __str__(self) -> str:
        where = self.file
        if self.row:
            where += f" row {self.row}"
        if self.column:
            where += f" column '{self.column}'"
        return f"{where}: {self.message}"


class DataValidationError(RlopsError):
    """Raised when input data breaks a rule; carries every issue found, not just the first."""

    def __init__(self, issues: list[DataIssue]) -> None:
        self.issues = issues
        shown = "; ".join(str(issue) for issue in issues[:MAX_ISSUES_IN_MESSAGE])
        more = len(issues) - MAX_ISSUES_IN_MESSAGE
        super().__init__(shown + (f"; and {more} more issue(s)" if more > 0 else ""))
