"""Errors that name the file and line of bad input."""

from __future__ import annotations

from pathlib import Path


class InputFormatError(ValueError):
    """Raised for malformed input; the message names the file and, where known, line and column.

    Line numbers are 1-based physical lines of the file (the header is line 1).
    """

    def __init__(
        self,
        path: str | Path,
        message: str,
        line: int | None = None,
        column: str | None = None,
    ) -> None:
        self.path = Path(path)
        self.line = line
        self.column = column
        self.reason = message
        where = str(self.path)
        if line is not None:
            where += f", line {line}"
        if column is not None:
            where += f", column {column!r}"
        super().__init__(f"{where}: {message}")

    def __reduce__(self) -> tuple[type[InputFormatError], tuple, dict]:
        """Pickle by the constructor's arguments (the default passes only the message, which the
        constructor cannot take back), with the instance's attributes (notes included): the
        error survives a trip through a process pool or a notebook run by papermill."""
        return type(self), (self.path, self.reason, self.line, self.column), self.__dict__
