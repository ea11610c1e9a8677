"""Reader of the project's own raw run folders (written by
:class:`helpers.collect.sampler.Sampler`).

Format: docs/raw-format.md. A run folder ``<raw_root>/<environment>/<architecture>/<run:03d>/``
holds ``samples.csv``, ``events.csv`` and ``metadata.json``.

Tolerated, with a recorded skip: a torn last line (no trailing newline), which is what a SIGKILL
during a write leaves. Everything else that is malformed raises
:class:`helpers.core.errors.InputFormatError` naming the file, line and column: an empty file, a
header that is not exactly the documented one, a field count that differs from the header, a
non-numeric value in a numeric column, a missing time stamp, time stamps going backwards, an info
cell that is not a JSON object, or unreadable ``metadata.json``.
"""

from __future__ import annotations

import csv
import io
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from helpers.core.errors import InputFormatError
from helpers.core.raw_format import (
    EVENT_COLUMNS,
    EVENTS_FILE,
    METADATA_FILE,
    RAW_FORMAT_VERSION,
    SAMPLE_COLUMNS,
    SAMPLES_FILE,
)

_INT_COLUMNS = {"timestamp_ms", "gpu_index", "epoch"}
_STR_COLUMNS = {"gpu_name", "gpu_power_source", "gap_reason", "event", "info"}
_REQUIRED = {"timestamp_ms", "monotonic_s", "event"}
_RUN_NAME = re.compile(r"^\d{3,}$")


@dataclass
class ProjectRun:
    """One raw run. ``samples``/``events`` have the documented columns with types: int64
    ``timestamp_ms``, float ``monotonic_s``, nullable Int64 ``gpu_index``/``epoch``, float for
    measurements (NaN = not measured), str for text; ``events.info`` holds parsed dicts.
    ``skipped``: (line, reason) of lines left out; the reason names the file."""

    run_dir: Path
    samples: pd.DataFrame
    events: pd.DataFrame
    metadata: dict[str, Any]
    skipped: list[tuple[int, str]] = field(default_factory=list)


def read_run(run_dir: str | Path) -> ProjectRun:
    """Read one run folder; raise :class:`InputFormatError` on malformed input."""
    run_dir = Path(run_dir)
    metadata = _read_metadata(run_dir / METADATA_FILE)
    samples, skipped = _read_table(run_dir / SAMPLES_FILE, SAMPLE_COLUMNS)
    events, skipped_events = _read_table(run_dir / EVENTS_FILE, EVENT_COLUMNS)
    events["info"] = _parse_info(run_dir / EVENTS_FILE, events["info"])
    return ProjectRun(run_dir, samples, events, metadata, skipped + skipped_events)


def discover_runs(raw_root: str | Path) -> list[Path]:
    """Run folders ``<raw_root>/<environment>/<architecture>/<run>`` (run: 3+ digits, holding
    ``metadata.json`` or ``samples.csv``), sorted by (environment, architecture, run number)."""
    raw_root = Path(raw_root)
    if not raw_root.is_dir():
        raise FileNotFoundError(f"raw folder {raw_root} does not exist")
    runs = [
        p
        for p in raw_root.glob("*/*/*")
        if p.is_dir()
        and _RUN_NAME.match(p.name)
        and ((p / METADATA_FILE).is_file() or (p / SAMPLES_FILE).is_file())
    ]
    return sorted(runs, key=lambda p: (p.parent.parent.name, p.parent.name, int(p.name)))


# -- metadata --------------------------------------------------------------------------------
def _read_metadata(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise InputFormatError(path, "missing file")
    text = path.read_text(encoding="utf-8")
    if not text.strip():
        raise InputFormatError(path, "empty file", line=1)
    try:
        meta = json.loads(text)
    except json.JSONDecodeError as err:
        raise InputFormatError(path, f"invalid JSON: {err.msg}", line=err.lineno) from err
    if not isinstance(meta, dict):
        raise InputFormatError(path, "top level is not a JSON object", line=1)
    version = meta.get("raw_format_version")
    if version != RAW_FORMAT_VERSION:
        raise InputFormatError(
            path, f"raw_format_version {version!r} not supported (expected {RAW_FORMAT_VERSION})"
        )
    return meta


# -- CSV tables ------------------------------------------------------------------------------
def _read_table(path: Path, columns: dict[str, str]) -> tuple[pd.DataFrame, list[tuple[int, str]]]:
    """Parse a sampler CSV: exact header, typed columns, one physical line per row."""
    if not path.is_file():
        raise InputFormatError(path, "missing file")
    data = path.read_bytes()
    if not data.strip():
        raise InputFormatError(path, "empty file", line=1)
    skipped: list[tuple[int, str]] = []
    if not data.endswith(b"\n"):
        cut = data.rfind(b"\n") + 1
        if cut == 0:
            raise InputFormatError(path, "header line incomplete (no newline)", line=1)
        line = data.count(b"\n", 0, cut) + 1
        skipped.append(
            (line, f"{path.name}: torn last line (no newline), {len(data) - cut} bytes dropped")
        )
        data = data[:cut]
    names = list(columns)
    _check_header(path, data[: data.index(b"\n")], names)
    dtypes = {c: _dtype(c) for c in names}
    try:
        df = pd.read_csv(
            io.BytesIO(data),
            dtype=dtypes,
            keep_default_na=False,
            na_values=[""],
            skip_blank_lines=False,
            index_col=False,
            engine="c",
        )
    except (ValueError, TypeError, pd.errors.ParserError) as err:
        _diagnose(path, data, names)
        raise InputFormatError(path, f"unparseable CSV: {err}") from err
    if len(df) != data.count(b"\n") - 1:  # a quoted field spans lines: line numbers would lie
        _diagnose(path, data, names)
        raise InputFormatError(path, "rows do not match physical lines")
    _check_rows(path, df, names)
    df["timestamp_ms"] = df["timestamp_ms"].astype("int64")
    return df, skipped


def _dtype(column: str) -> str:
    if column in _INT_COLUMNS:
        return "Int64"
    if column in _STR_COLUMNS:
        return "str"
    return "float64"


def _check_header(path: Path, raw: bytes, names: list[str]) -> None:
    header = next(csv.reader([raw.decode("utf-8", errors="replace").rstrip("\r")]))
    if header == names:
        return
    unknown = [c for c in header if c not in names]
    missing = [c for c in names if c not in header]
    if unknown:
        msg, column = f"unknown header column {unknown[0]!r}", unknown[0]
    elif missing:
        msg, column = f"header lacks column {missing[0]!r}", missing[0]
    else:
        msg, column = "header columns out of the documented order", None
    raise InputFormatError(path, msg, line=1, column=column)


def _diagnose(path: Path, data: bytes, names: list[str]) -> None:
    """Find the first bad line the fast parser tripped over and raise for it."""
    text = data.decode("utf-8", errors="replace")
    reader = csv.reader(io.StringIO(text, newline=""))
    next(reader)
    start = reader.line_num
    for row in reader:
        line = reader.line_num
        if line != start + 1:
            raise InputFormatError(path, "quoted field spans several lines", line=start + 1)
        start = line
        if not row:
            raise InputFormatError(path, "blank line", line=line)
        if len(row) != len(names):
            raise InputFormatError(path, f"{len(row)} fields, header has {len(names)}", line=line)
        for name, value in zip(names, row, strict=True):
            if value == "" or name in _STR_COLUMNS:
                continue
            try:
                number = float(value)
            except ValueError:
                raise InputFormatError(
                    path, f"non-numeric value {value!r}", line=line, column=name
                ) from None
            if name in _INT_COLUMNS and not number.is_integer():
                raise InputFormatError(path, f"non-integer value {value!r}", line=line, column=name)


def _check_rows(path: Path, df: pd.DataFrame, names: list[str]) -> None:
    """Required cells present; time stamps never going backwards. Row i is line i + 2."""
    for column in (c for c in names if c in _REQUIRED):
        missing = np.flatnonzero(df[column].isna().to_numpy())
        if missing.size:
            raise InputFormatError(path, "missing value", line=int(missing[0]) + 2, column=column)
    for column in ("timestamp_ms", "monotonic_s"):
        values = df[column].to_numpy(dtype="float64")
        back = np.flatnonzero(np.diff(values) < 0)
        if back.size:
            row = int(back[0]) + 1
            raise InputFormatError(
                path,
                f"time goes backwards ({values[row - 1]!r} then {values[row]!r})",
                line=row + 2,
                column=column,
            )


def _parse_info(path: Path, info: pd.Series) -> pd.Series:
    parsed: list[dict] = []
    for i, cell in enumerate(info.tolist()):
        try:
            value = json.loads(cell) if isinstance(cell, str) else None
        except json.JSONDecodeError:
            value = None
        if not isinstance(value, dict):
            raise InputFormatError(path, f"not a JSON object: {cell!r}", line=i + 2, column="info")
        parsed.append(value)
    return pd.Series(parsed, index=info.index, dtype=object)
