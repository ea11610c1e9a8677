"""Text columns to typed values with Arrow kernels, for many files' rows at once.

The readers parse their logs as strings (:func:`helpers.readers.rawfile.read_string_rows`) and
convert each column here. Two kinds of functions:

* the exact conversions (:func:`number_text`, :func:`stamp_text`, :func:`cast_stamps`), which a
  reader's per-file path applies before it records every bad cell with its line;
* the batch conversions (:func:`parse_numbers`, :func:`parse_stamps`), which convert the rows of
  many files in one pass and return, beside the values, a per-row ``ok`` mask. They record
  nothing: a file with any row not ``ok`` goes through its reader's per-file path. A row is
  ``ok`` only where the per-file path keeps it with the same value, so both give one table.

Stamps are local wall-clock time converted to UTC milliseconds (:func:`localize_ms`).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

#: A number as the readers accept it (after whitespace and unit are stripped).
NUMBER_RE = r"^[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$"
#: An ISO-like local stamp (after ``/`` date separators became ``-``).
TIME_RE = r"^\d{4}-\d{2}-\d{2}[ T]\d{2}:\d{2}:\d{2}(\.\d{1,9})?$"
#: Shortest text :data:`TIME_RE` accepts (``YYYY-MM-DD hh:mm:ss``).
SHORTEST_STAMP = 19
#: Microseconds per minute and per millisecond.
_US_PER_MIN = 60_000_000
_US_PER_MS = 1_000
_NAT = np.iinfo(np.int64).min


def number_text(text: pa.ChunkedArray | pa.Array, unit: str) -> pa.ChunkedArray | pa.Array:
    """The exact clean-up before a number is parsed: whitespace stripped, then one trailing
    ``unit`` (if given) and the whitespace before it (plain string kernels: a regex per file
    costs more)."""
    text = pc.utf8_trim_whitespace(text)
    if not unit:
        return text
    cut = pc.utf8_slice_codeunits(text, 0, -len(unit))
    return pc.utf8_trim_whitespace(pc.if_else(pc.ends_with(text, unit), cut, text))


def stamp_text(text: pa.ChunkedArray | pa.Array) -> pa.ChunkedArray | pa.Array:
    """The exact clean-up before a stamp is parsed: whitespace stripped, ``/`` -> ``-``."""
    return pc.replace_substring(pc.utf8_trim_whitespace(text), "/", "-")


def null_where_bad(text: pa.ChunkedArray | pa.Array, ok: np.ndarray) -> pa.Array:
    """``text`` with the rows not ``ok`` set to null."""
    if isinstance(text, pa.ChunkedArray):
        text = text.combine_chunks()
    if ok.all():
        return text
    return pc.if_else(pa.array(ok), text, pa.scalar(None, text.type))


def cast_stamps(text: pa.ChunkedArray | pa.Array, ok: np.ndarray) -> np.ndarray:
    """Naive stamps (datetime64[us]) of ISO-like text (rows not ``ok`` -> NaT). Arrow parses all
    at once; a well-formed but impossible stamp (month 13, 29 February 2023) fails the whole
    column there, so pandas then parses row by row, impossible stamps becoming NaT."""
    try:
        stamps = pc.cast(null_where_bad(text, ok), pa.timestamp("us"))
        return stamps.to_numpy(zero_copy_only=False).astype("datetime64[us]", copy=False)
    except pa.ArrowInvalid:
        values = pd.Series(text.to_numpy(zero_copy_only=False)).where(ok)
        parsed = pd.to_datetime(values, format="ISO8601", errors="coerce")
        return pd.DatetimeIndex(parsed).as_unit("us").to_numpy()


def localize_ms(local: np.ndarray, tz: str) -> np.ndarray:
    """UTC milliseconds (int64; NaT as the int64 minimum) of naive local stamps
    (datetime64[us]) in ``tz``: what ``DatetimeIndex.tz_localize(tz, ambiguous="NaT",
    nonexistent="NaT").tz_convert("UTC").as_unit("ms")`` gives (a stamp a clock change skips
    or repeats is NaT; sub-millisecond parts are floored).

    Fast: stamps come in runs within one local minute (ordered logs), and each run is
    localised by its first stamp where its last gives the same offset; a run holding a clock
    change (they fall on whole minutes) is localised stamp by stamp."""
    us = np.asarray(local).astype("datetime64[us]", copy=False).view(np.int64)
    if not us.size:
        return us.copy()
    minute = us // _US_PER_MIN
    starts = np.flatnonzero(minute[1:] != minute[:-1]) + 1
    starts = np.concatenate([[0], starts])
    ends = np.concatenate([starts[1:], [us.size]])
    first, last = _utc_us(us[starts], tz), _utc_us(us[ends - 1], tz)
    first_off, last_off = us[starts] - first, us[ends - 1] - last
    lengths = ends - starts
    utc = np.floor_divide(us - np.repeat(first_off, lengths), _US_PER_MS)
    nat = first == _NAT
    if nat.any():
        utc[np.repeat(nat, lengths)] = _NAT
    odd = (nat != (last == _NAT)) | (~nat & (first_off != last_off))
    if odd.any():  # a clock change within the run's minute: stamp by stamp
        rows = np.repeat(odd, lengths)
        exact = _utc_us(us[rows], tz)
        utc[rows] = np.where(exact == _NAT, _NAT, np.floor_divide(exact, _US_PER_MS))
    return utc


def _utc_us(us: np.ndarray, tz: str) -> np.ndarray:
    """UTC microseconds of local ones (int64, NaT as the int64 minimum), by pandas."""
    local = pd.DatetimeIndex(us.view("datetime64[us]"))
    return local.tz_localize(tz, ambiguous="NaT", nonexistent="NaT").asi8


def parse_numbers(text: pa.ChunkedArray, unit: str) -> tuple[np.ndarray, np.ndarray]:
    """Floats of cells written ``[spaces]<number>[ <unit>]`` (many files' rows at once) and
    where they are ``ok``: parsed and finite, with the value :func:`number_text` then a cast
    give. Fast path: one slice takes the unit (and the space of a ``", "`` separator) off
    every cell; a cell that does not fit goes through :func:`number_text` and
    :data:`NUMBER_RE`."""
    lead = 1 if pc.all(pc.starts_with(text, " ")).as_py() else 0
    tail = len(unit) + 1 if unit and pc.all(pc.ends_with(text, " " + unit)).as_py() else 0
    cut = pc.utf8_slice_codeunits(text, lead, -tail if tail else None) if lead or tail else text
    try:  # a cast accepts no whitespace, so a cell it parses here reads the same after
        # number_text
        values = pc.cast(cut, pa.float64()).to_numpy(zero_copy_only=False)
        return values, np.isfinite(values)
    except pa.ArrowInvalid:
        pass
    exact = number_text(text, unit)
    ok = pc.match_substring_regex(exact, NUMBER_RE).to_numpy(zero_copy_only=False)
    values = pc.cast(null_where_bad(exact, ok), pa.float64()).to_numpy(zero_copy_only=False)
    return values, ok & np.isfinite(values)


def _dashed_dates(text: pa.ChunkedArray) -> pa.Array:
    """``text`` with a ``/`` at the 5th or 8th character (``YYYY/MM/DD``) made ``-`` (the
    other characters unchanged), without a search through the strings."""
    text = pc.cast(text, pa.large_string()).combine_chunks()
    _, offsets, data = text.buffers()
    if data is None:  # every string empty
        return text
    ends = np.frombuffer(offsets, dtype=np.int64)[text.offset:text.offset + len(text) + 1]
    chars = np.frombuffer(data, dtype=np.uint8)[:ends[-1]].copy()
    for at in (4, 7):
        where = ends[:-1] + at
        where = where[where < ends[1:]]
        chars[where[chars[where] == ord("/")]] = ord("-")
    return pa.LargeStringArray.from_buffers(len(ends) - 1, pa.py_buffer(ends - ends[0]),
                                            pa.py_buffer(chars[ends[0]:]))


def parse_stamps(text: pa.ChunkedArray, tz: str) -> tuple[np.ndarray, np.ndarray]:
    """UTC milliseconds (:func:`localize_ms`) of local ISO-like stamps (many files' rows at
    once) and where they are ``ok``: matching :data:`TIME_RE` after :func:`stamp_text`, a
    possible wall-clock time in ``tz``. Fast path: Arrow's cast of the text as it is, or with
    ``YYYY/MM/DD`` dates dashed (a cast accepts no whitespace, no ``/`` and, at
    :data:`SHORTEST_STAMP` characters or more, only what :data:`TIME_RE` accepts); otherwise
    the exact clean-up, the regex and :func:`cast_stamps`."""
    local = None
    for candidate in (text, None):
        try:
            candidate = _dashed_dates(text) if candidate is None else candidate
            local = pc.cast(candidate, pa.timestamp("us")).to_numpy(zero_copy_only=False)
            ok = pc.greater_equal(pc.utf8_length(candidate), SHORTEST_STAMP).to_numpy(
                zero_copy_only=False)
            break
        except pa.ArrowInvalid:
            continue
    if local is None:
        exact = stamp_text(text)
        ok = pc.match_substring_regex(exact, TIME_RE).to_numpy(zero_copy_only=False)
        local = cast_stamps(exact, ok)
    utc = localize_ms(local, tz)
    return utc, ok & (utc != _NAT)
