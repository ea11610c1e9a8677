"""What every reader does to a raw text file before parsing it: read its bytes with a clean
error, drop a UTF-8 byte-order mark, find the lines that are not text (not UTF-8, or holding a
NUL byte), and record what is left out (:class:`Skip`, docs/raw-format.md#plausibility-bounds)."""

from __future__ import annotations

import codecs
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv

from helpers.core.errors import InputFormatError


@dataclass(frozen=True)
class Skip:
    """A recorded, counted skip: what was left out of which file, where and why. ``rows``: rows
    left out (0 for a note that drops nothing, e.g. a cell set to NaN or a counter reset)."""

    file: str
    line: int | None
    column: str | None
    reason: str
    rows: int = 1


def read_bytes(path: Path) -> bytes:
    """The file's bytes, without a leading UTF-8 byte-order mark. A missing file, a folder or
    an unreadable file raises :class:`InputFormatError` naming it."""
    try:
        raw = path.read_bytes()
    except IsADirectoryError as err:
        raise InputFormatError(path, "is a folder, not a file") from err
    except (FileNotFoundError, NotADirectoryError) as err:
        raise InputFormatError(path, "missing file") from err
    except OSError as err:
        raise InputFormatError(path, f"cannot be read ({err.strerror or err})") from err
    return raw.removeprefix(codecs.BOM_UTF8)


@dataclass(frozen=True)
class BadText:
    """A line that is not text: its 1-based ``line``, the 0-based ``field`` (comma-separated)
    holding the first bad byte, and that byte (a NUL, or one that is not UTF-8)."""

    line: int
    field: int
    byte: int

    def reason(self) -> str:
        """The skip or error text."""
        what = "a NUL byte" if self.byte == 0 else f"not UTF-8 text (byte 0x{self.byte:02x})"
        return f"{what}: row left out"

    def error(self) -> str:
        """The error text (the whole file refused)."""
        return "a NUL byte" if self.byte == 0 else f"not UTF-8 text (byte 0x{self.byte:02x})"


def bad_text_lines(raw: bytes) -> list[BadText]:
    """Every line of ``raw`` that holds a NUL byte or does not decode as UTF-8 (one pass when
    all is well)."""
    if raw.isascii() and b"\x00" not in raw:  # the common case, fast
        return []
    try:
        raw.decode("utf-8")
        if b"\x00" not in raw:
            return []
    except UnicodeDecodeError:
        pass
    out = []
    for number, line in enumerate(raw.split(b"\n"), start=1):
        try:
            line.decode("utf-8")
            start = line.find(b"\x00")
        except UnicodeDecodeError as err:
            nul = line.find(b"\x00", 0, err.start)
            start = err.start if nul < 0 else nul
        if start >= 0:
            out.append(BadText(number, line.count(b",", 0, start), line[start]))
    return out


def blank_lines(raw: bytes, lines: list[int]) -> bytes:
    """``raw`` with the given 1-based lines emptied (their newlines kept, so that the other
    lines keep their numbers)."""
    if not lines:
        return raw
    parts = raw.split(b"\n")
    for number in lines:
        parts[number - 1] = b""
    return b"\n".join(parts)


def field_name(names: list[str], field: int) -> str | None:
    """The column name of a 0-based field index (None past the header)."""
    return names[field] if 0 <= field < len(names) else None


def stray_cr_lines(raw: bytes) -> list[int]:
    """1-based lines holding a carriage return other than a CRLF line end (a CSV parser would
    take it for a line break, and every later line number would be off)."""
    if b"\r" not in raw or raw.count(b"\r") == raw.count(b"\r\n"):
        return []
    return [number for number, line in enumerate(raw.split(b"\n"), start=1)
            if b"\r" in line.removesuffix(b"\r")]


def unbalanced_quote_lines(raw: bytes) -> list[int]:
    """1-based lines with an odd number of ``"``: a quoted field left open, which would run on
    into the following lines."""
    if b'"' not in raw:
        return []
    return [number for number, line in enumerate(raw.split(b"\n"), start=1)
            if line.count(b'"') % 2]


def newlines(data: bytes, start: int = 0) -> int:
    """The number of ``\\n`` in ``data[start:]`` (numpy: a few times faster than
    ``bytes.count``, and without the GIL)."""
    return int(np.count_nonzero(np.frombuffer(data, dtype=np.uint8, offset=start) == 10))


def arrow_row_lines(body: bytes, n_rows: int, n_bad: int, first: int = 2, start: int = 0
                    ) -> list[int] | range:
    """Physical line numbers (the first line of ``body[start:]`` is ``first``) of the lines
    pyarrow's CSV reader counts as rows (``n_rows`` read, ``n_bad`` invalid): every line but the
    empty ones (``''`` or a lone ``'\\r'``). Its ``InvalidRow.number`` k (1-based) is the k-th
    of these. A range when every line is a row (one count, no split)."""
    if n_rows + n_bad == newlines(body, start):
        return range(first, first + n_rows + n_bad)
    return [i + first for i, line in enumerate(body[start:].split(b"\n")[:-1])
            if line not in (b"", b"\r")]


def read_string_rows(path: Path, body: bytes, names: list[str], *, quote: bool = True,
                     include: list[str] | None = None, start: int = 0
                     ) -> tuple[pa.Table, np.ndarray, list[tuple[int | None, int]]]:
    """Parse ``body[start:]`` (the non-empty CSV lines after the header line; ``start`` spares
    a copy of a file's bytes past its header) into string columns ``names`` (only those in
    ``include`` where given; ``quote=False`` for files that never quote, so that a stray ``"``
    cannot swallow the following lines).

    Returns the table, the physical line number of each row kept (the header is line 1), and
    ``(line, fields found)`` of each line rejected for its number of fields (line None where
    pyarrow does not say), for the caller to record or raise."""
    rejected: list[tuple[int, int]] = []

    def on_invalid(row: pacsv.InvalidRow) -> str:
        # only record here: pyarrow swallows exceptions raised inside this handler
        rejected.append((-1 if row.number is None else int(row.number), row.actual_columns))
        return "skip"

    table = pacsv.read_csv(
        pa.BufferReader(pa.py_buffer(body).slice(start)),
        read_options=pacsv.ReadOptions(column_names=names, use_threads=False),
        parse_options=pacsv.ParseOptions(quote_char='"' if quote else False,
                                         invalid_row_handler=on_invalid),
        convert_options=pacsv.ConvertOptions(
            column_types={n: pa.string() for n in names}, strings_can_be_null=False,
            include_columns=include),
    )
    rows = arrow_row_lines(body, table.num_rows, len(rejected), start=start)
    numbers = {n for n, _ in rejected}
    kept = [line for k, line in enumerate(rows, start=1) if k not in numbers] if rejected else rows
    if len(kept) != table.num_rows:  # guards the line numbers of every skip
        raise InputFormatError(path, "rows do not match physical lines (a quoted field spans "
                               "lines?)")
    bad = [(rows[n - 1] if 0 < n <= len(rows) else None, found) for n, found in rejected]
    lines = (np.arange(kept.start, kept.stop, dtype=np.int64) if isinstance(kept, range)
             else np.asarray(kept, dtype=np.int64))
    return table, lines, bad
