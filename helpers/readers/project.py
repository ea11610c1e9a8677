"""Reader of the project's own raw run folders (written by
:class:`helpers.collect.sampler.Sampler`).

Format: docs/raw-format.md. A run folder ``<raw_root>/<environment>/<architecture>/<run:03d>/``
holds ``samples.csv``, ``events.csv`` and ``metadata.json``.

Malformed files raise :class:`helpers.core.errors.InputFormatError` naming the file, line and
column: a missing or empty file, a folder or unreadable file where a file should be, a line that
is not UTF-8, a header that is not exactly the documented one, a field count that differs from
the header (a short row is never padded), a blank line, a non-numeric value in a numeric column,
a missing time stamp or event name, time stamps going backwards, every stamp of a file outside
the plausible range (e.g. seconds written as ms), an info cell that is not a JSON object, or
unreadable ``metadata.json``.

Tolerated, each with a recorded :class:`~helpers.readers.rawfile.Skip`
(docs/raw-format.md#plausibility-bounds): a UTF-8 byte-order mark and CRLF line ends (read as
usual); a torn last line (no trailing newline: what a SIGKILL during a write leaves), left out;
rows whose stamp is outside :func:`helpers.core.bounds.stamps_in_range`, whose ``timestamp_ms``
disagrees with ``monotonic_s`` (the file's clock anchor), that repeat an earlier row's instant
for the same GPU, or that are cut off from the rest by long gaps, left out; a value outside its
bound (:data:`VALUE_BOUNDS`: negative or implausibly high power, utilisation over 100 %, inf),
set to NaN; an energy-counter glitch, set to NaN; a counter step back (reset or wrap), recorded
as the start of a new counter segment (:mod:`helpers.core.energy` sums segments); a phase event
repeated for the same run or epoch, left out; an epoch that ends before it starts, or without
its start or end (but the last one of a run without ``run_end``), recorded
(:func:`helpers.readers.merge.phase_event_problems`); a metadata value the analysis reads that
is not a plausible number (or text), set to null.
"""

from __future__ import annotations

import csv
import io
import json
import math
import re
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from helpers.core import bounds
from helpers.core.errors import InputFormatError
from helpers.core.raw_format import (
    EVENT_COLUMNS,
    EVENTS_FILE,
    METADATA_FILE,
    RAW_FORMAT_VERSION,
    SAMPLE_COLUMNS,
    SAMPLES_FILE,
)
from helpers.core.units import MS_PER_S
from helpers.readers import merge, rawfile
from helpers.readers.rawfile import Skip

_INT_COLUMNS = {"timestamp_ms", "gpu_index", "epoch"}
_STR_COLUMNS = {"gpu_name", "gpu_power_source", "gap_reason", "event", "info"}
_REQUIRED = {"timestamp_ms", "monotonic_s", "event"}
_RUN_NAME = re.compile(r"^\d{3,}$")
_INTEGER = re.compile(r"^\s*[-+]?\d+\s*$")
#: Largest |timestamp_ms - 1000 x monotonic_s| deviation from the file's anchor (ms): both are
#: written from one clock reading, so they agree to the rounding of each (1 ms).
CLOCK_TOLERANCE_MS = 2.0
_POWER = ("gpu_power_w", "gpu_power_instant_w", "gpu_power_avg_w")
_UTIL = bounds.UTILISATION_RANGE_PCT
#: Plausible range (low, high, unit) of the numeric samples.csv columns (helpers.core.bounds).
#: The GPU power columns' upper bound is POWER_LIMIT_FACTOR x the row's ``gpu_power_limit_w``
#: where that is plausible (else GPU_POWER_CEILING_W); ``process_cpu_pct``'s is
#: PROCESS_CPU_HEADROOM x 100 % x ``metadata.host.logical_cores`` where known. A value outside
#: becomes NaN (recorded).
VALUE_BOUNDS: dict[str, tuple[float, float, str]] = {
    "gpu_power_limit_w": (*bounds.POWER_LIMIT_RANGE_W, "W"),
    **{c: (0.0, bounds.GPU_POWER_CEILING_W, "W") for c in _POWER},
    "gpu_energy_counter_j": (0.0, np.inf, "J"),
    "gpu_usage_pct": (*_UTIL, "%"),
    "gpu_memory_usage_pct": (*_UTIL, "%"),
    "gpu_memory_used_mb": (0.0, np.inf, "MiB"),
    "gpu_memory_total_mb": (0.0, np.inf, "MiB"),
    "gpu_temperature_c": (*bounds.TEMPERATURE_RANGE_C, "degC"),
    "gpu_sm_clock_mhz": (0.0, np.inf, "MHz"),
    "cpu_usage_pct": (*_UTIL, "%"),
    "process_cpu_pct": (0.0, np.inf, "%"),
    "process_rss_mb": (0.0, np.inf, "MiB"),
    "system_ram_used_mb": (0.0, np.inf, "MiB"),
    "cpu_energy_counter_j": (0.0, np.inf, "J"),
    "cpu_power_estimate_w": (0.0, bounds.CPU_POWER_CEILING_W, "W"),
}
#: metadata keys the analysis reads as numbers: key path -> (low, high).
METADATA_NUMBERS: dict[tuple[str, ...], tuple[float, float]] = {
    ("cpu_power", "tdp_w"): (0.0, bounds.CPU_POWER_CEILING_W),
    ("host", "logical_cores"): (1.0, np.inf),
    **{(k,): (0.0, np.inf) for k in ("epochs_trained", "epochs_planned", "images_per_epoch",
                                     "train_size", "val_size", "batch_size", "input_size_px",
                                     "gflops_per_image", "params")},
    ("return_code",): (-255.0, 255.0),
    ("seed",): (-np.inf, np.inf),
    ("accuracy",): (0.0, 1.0),
    ("f1",): (0.0, 1.0),
}
#: metadata keys the analysis reads as text.
METADATA_TEXT = ("status", "dataset", "device")


@dataclass
class ProjectRun:
    """One raw run. ``samples``/``events`` have the documented columns with types: int64
    ``timestamp_ms``, float ``monotonic_s``, nullable Int64 ``gpu_index``/``epoch``, float for
    measurements (NaN = not measured), str for text; ``events.info`` holds parsed dicts.
    ``skips``: every recorded skip (file, line, column, reason, rows left out)."""

    run_dir: Path
    samples: pd.DataFrame
    events: pd.DataFrame
    metadata: dict[str, Any]
    skips: list[Skip] = field(default_factory=list)

    @property
    def skipped(self) -> list[tuple[int | None, str]]:
        """``(line, '<file name>: <reason>')`` of every skip."""
        return [(s.line, f"{Path(s.file).name}: {s.reason}") for s in self.skips]


def read_run(run_dir: str | Path) -> ProjectRun:
    """Read one run folder; raise :class:`InputFormatError` on malformed input (see the module
    docstring for what is recorded and left out instead)."""
    run_dir = Path(run_dir)
    metadata, skips = _read_metadata(run_dir / METADATA_FILE)
    samples_path, events_path = run_dir / SAMPLES_FILE, run_dir / EVENTS_FILE
    samples, s = _read_table(samples_path, SAMPLE_COLUMNS)
    skips += s
    anchor = _clock_anchor(samples)
    samples, s = _check_clock(samples_path, samples, anchor)
    skips += s
    events, s = _read_table(events_path, EVENT_COLUMNS)
    skips += s
    events, s = _check_clock(events_path, events, anchor)
    skips += s
    events["info"] = _parse_info(events_path, events)
    samples, s = _check_samples(samples_path, samples, metadata)
    skips += s
    events, s = _check_events(events_path, events)
    skips += s
    return ProjectRun(run_dir, samples, events, metadata, skips)


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
        and ((p / METADATA_FILE).exists() or (p / SAMPLES_FILE).exists())
    ]
    return sorted(runs, key=lambda p: (p.parent.parent.name, p.parent.name, int(p.name)))


# -- metadata --------------------------------------------------------------------------------
def _read_metadata(path: Path) -> tuple[dict[str, Any], list[Skip]]:
    raw = rawfile.read_bytes(path)
    bad = next(iter(rawfile.bad_text_lines(raw)), None)
    if bad is not None:
        raise InputFormatError(path, bad.error(), line=bad.line)
    text = raw.decode("utf-8")
    if not text.strip():
        raise InputFormatError(path, "empty file", line=1)
    try:
        meta = json.loads(text)
    except json.JSONDecodeError as err:
        raise InputFormatError(path, f"invalid JSON: {err.msg}", line=err.lineno) from err
    except RecursionError as err:
        raise InputFormatError(path, "invalid JSON: nested too deeply") from err
    if not isinstance(meta, dict):
        raise InputFormatError(path, "top level is not a JSON object", line=1)
    version = meta.get("raw_format_version")
    if version != RAW_FORMAT_VERSION:
        raise InputFormatError(
            path, f"raw_format_version {version!r} not supported (expected {RAW_FORMAT_VERSION})"
        )
    return meta, _check_metadata(path, meta)


def _check_metadata(path: Path, meta: dict[str, Any]) -> list[Skip]:
    """Set the numbers the analysis reads (:data:`METADATA_NUMBERS`) to null where they are
    not plausible numbers, :data:`METADATA_TEXT` to null where not text, and
    ``host``/``cpu_power`` to {} where they are not objects."""
    skips = []
    for key in ("host", "cpu_power"):
        if key in meta and meta[key] is not None and not isinstance(meta[key], dict):
            skips.append(Skip(str(path), None, key, f"{key} {meta[key]!r} is not a JSON object: "
                              "read as absent", rows=0))
            meta[key] = {}
    for key in METADATA_TEXT:
        if meta.get(key) is not None and not isinstance(meta[key], str):
            skips.append(Skip(str(path), None, key, f"{key} {meta[key]!r} is not text: read as "
                              "null", rows=0))
            meta[key] = None
    for keys, (low, high) in METADATA_NUMBERS.items():
        parent = meta
        for key in keys[:-1]:
            parent = parent.get(key) or {}
        value = parent.get(keys[-1])
        if value is None:
            continue
        number = value if isinstance(value, int | float) and not isinstance(value, bool) else None
        if number is None or not (math.isfinite(number) and low <= number <= high):
            name = ".".join(keys)
            skips.append(Skip(str(path), None, name, f"{name} {value!r} is not a number in "
                              f"{bounds.range_text(low, high, '')}: read as null", rows=0))
            parent[keys[-1]] = None
    return skips


# -- CSV tables ------------------------------------------------------------------------------
def _read_table(path: Path, columns: dict[str, str]) -> tuple[pd.DataFrame, list[Skip]]:
    """Parse a sampler CSV: exact header, typed columns, one physical line per row."""
    data = rawfile.read_bytes(path)
    if not data.strip():
        raise InputFormatError(path, "empty file", line=1)
    skips: list[Skip] = []
    if not data.endswith(b"\n"):
        cut = data.rfind(b"\n") + 1
        if cut == 0:
            raise InputFormatError(path, "header line incomplete (no newline)", line=1)
        line = data.count(b"\n", 0, cut) + 1
        skips.append(Skip(str(path), line, None,
                          f"torn last line (no newline), {len(data) - cut} bytes dropped"))
        data = data[:cut]
    names = list(columns)
    _check_text(path, data, names)
    if b"\r" in data:
        data = data.replace(b"\r\n", b"\n")
    _check_header(path, data[: data.index(b"\n")], names)
    _check_field_counts(path, data, names)
    df = _parse_csv(path, data, names)
    if len(df) != data.count(b"\n") - 1:  # a quoted field spans lines: line numbers would lie
        raise InputFormatError(path, "rows do not match physical lines (a quoted field spans "
                               "lines?)")
    df, s = _check_rows(path, df, names)
    return df, skips + s


def _check_text(path: Path, data: bytes, names: list[str]) -> None:
    """UTF-8 text throughout (no NUL byte), no carriage return but in CRLF line ends, and no
    quoted field left open (each row is one line)."""
    bad = next(iter(rawfile.bad_text_lines(data)), None)
    if bad is not None:
        raise InputFormatError(path, bad.error(), line=bad.line,
                               column=rawfile.field_name(names, bad.field))
    stray = rawfile.stray_cr_lines(data)
    if stray:
        raise InputFormatError(path, "carriage return inside a line", line=stray[0])
    open_quote = rawfile.unbalanced_quote_lines(data)
    if open_quote:
        raise InputFormatError(path, "unbalanced quote (a quoted field left open)",
                               line=open_quote[0])


def _dtype(column: str) -> str:
    if column in _INT_COLUMNS:
        return "Int64"
    if column in _STR_COLUMNS:
        return "str"
    return "float64"


def _check_header(path: Path, raw: bytes, names: list[str]) -> None:
    header = next(csv.reader([raw.decode("utf-8")]), [])
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


def _check_field_counts(path: Path, data: bytes, names: list[str]) -> None:
    """Every line after the header holds exactly the header's number of fields (pandas would
    pad a short row with NaN); lines with quotes are split by the csv module."""
    for number, line in enumerate(data.split(b"\n")[1:-1], start=2):
        if line.count(b",") + 1 == len(names) and b'"' not in line:
            continue
        if not line.strip():
            raise InputFormatError(path, "blank line", line=number)
        fields = next(csv.reader([line.decode("utf-8")]), [])
        if len(fields) != len(names):
            raise InputFormatError(path, f"{len(fields)} fields, header has {len(names)}",
                                   line=number)


def _parse_csv(path: Path, data: bytes, names: list[str]) -> pd.DataFrame:
    """Typed columns (fast C parser); on failure, the first bad cell is named."""
    try:
        with warnings.catch_warnings():  # "inf" in an int column warns, then fails: named below
            warnings.simplefilter("ignore", RuntimeWarning)
            return pd.read_csv(io.BytesIO(data), dtype={c: _dtype(c) for c in names},
                               keep_default_na=False, na_values=[""], skip_blank_lines=False,
                               index_col=False, engine="c")
    except (ValueError, TypeError, OverflowError, pd.errors.ParserError) as err:
        _diagnose(path, data, names)
        raise InputFormatError(path, f"unparseable CSV: {err}") from err


def _diagnose(path: Path, data: bytes, names: list[str]) -> None:
    """Find the first bad cell the typed parser tripped over and raise for it."""
    text = pd.read_csv(io.BytesIO(data), dtype=str, keep_default_na=False, index_col=False)
    for name in names:
        if name in _STR_COLUMNS:
            continue
        cells = text[name].str.strip()
        filled = cells != ""
        if name in _INT_COLUMNS:
            numbers = pd.to_numeric(cells.where(filled & cells.str.match(_INTEGER)),
                                    errors="coerce")
            bad = filled & ~(numbers.abs() < 2.0**63)
            what = "non-integer value"
        else:
            bad = filled & pd.to_numeric(cells.where(filled), errors="coerce").isna() & ~(
                cells.str.lower() == "nan")
            what = "non-numeric value"
        if bad.any():
            row = int(np.flatnonzero(bad.to_numpy())[0])
            raise InputFormatError(path, f"{what} {text[name].iat[row]!r}", line=row + 2,
                                   column=name)


def _check_rows(path: Path, df: pd.DataFrame, names: list[str]
                ) -> tuple[pd.DataFrame, list[Skip]]:
    """Required cells present and finite; other non-finite numbers (inf) set to NaN, recorded.
    Row i is line i + 2."""
    skips = []
    for column in (c for c in names if c in _REQUIRED):
        values = df[column]
        missing = values.isna().to_numpy()
        if column == "monotonic_s":
            missing = missing | ~np.isfinite(values.to_numpy(dtype=float))
        if missing.any():
            row = int(np.flatnonzero(missing)[0])
            raise InputFormatError(path, "missing value", line=row + 2, column=column)
    for column in (c for c in names if _dtype(c) == "float64" and c not in _REQUIRED):
        values = df[column].to_numpy()
        bad = np.isinf(values)
        for row in np.flatnonzero(bad):
            skips.append(Skip(str(path), int(row) + 2, column,
                              f"{column} {values[row]} is not a finite number: set to NaN",
                              rows=0))
        if bad.any():
            df[column] = np.where(bad, np.nan, values)
    df["timestamp_ms"] = df["timestamp_ms"].astype("int64")
    df.insert(len(df.columns), "_line", np.arange(2, len(df) + 2, dtype=np.int64))
    return df, skips


# -- clocks ----------------------------------------------------------------------------------
def _offset_ms(df: pd.DataFrame) -> np.ndarray:
    """timestamp_ms - 1000 x monotonic_s of each row: the run's clock anchor (ms)."""
    with np.errstate(over="ignore"):  # a monotonic_s of 1e308: inf, and the row disagrees
        return df["timestamp_ms"].to_numpy(dtype=float) - MS_PER_S * df["monotonic_s"].to_numpy(
            dtype=float)


def _clock_anchor(samples: pd.DataFrame) -> float | None:
    """The run's clock anchor: the median offset of the samples' plausible rows (None: too
    few rows to tell)."""
    ok = bounds.stamps_in_range(samples["timestamp_ms"].to_numpy(dtype=float))
    offsets = _offset_ms(samples)[ok]
    return float(np.median(offsets)) if offsets.size >= 3 else None


def _drop(path: Path, df: pd.DataFrame, reasons: dict[int, str], column: str
          ) -> tuple[pd.DataFrame, list[Skip]]:
    """Leave out the rows (positions) in ``reasons``, recording each with its reason."""
    if not reasons:
        return df, []
    lines = df["_line"].to_numpy()
    skips = [Skip(str(path), int(lines[row]), column, reasons[row]) for row in sorted(reasons)]
    keep = np.ones(len(df), dtype=bool)
    keep[list(reasons)] = False
    return df.loc[keep].reset_index(drop=True), skips


def _check_clock(path: Path, df: pd.DataFrame, anchor: float | None
                 ) -> tuple[pd.DataFrame, list[Skip]]:
    """Leave out rows whose stamp is implausible or disagrees with ``monotonic_s`` (more than
    :data:`CLOCK_TOLERANCE_MS` off the ``anchor``), or a few rows cut off from the rest by
    long gaps; then stamps must not go backwards (raises)."""
    if df.empty:
        return df, []
    stamps = df["timestamp_ms"].to_numpy(dtype=float)
    ok = bounds.stamps_in_range(stamps)
    if not ok.any():
        seconds = bounds.stamps_in_range(stamps * MS_PER_S).all()
        hint = " (they look like seconds, not ms)" if seconds else ""
        raise InputFormatError(path, f"every timestamp_ms is outside "
                               f"{bounds.stamp_range_text()}{hint}", line=2,
                               column="timestamp_ms")
    span = bounds.stamp_range_text()
    df, skips = _drop(path, df, {int(i): f"timestamp_ms {stamps[i]:.0f} outside {span}"
                                 for i in np.flatnonzero(~ok)}, "timestamp_ms")
    if anchor is not None:
        off = _offset_ms(df) - anchor
        df, s = _drop(path, df, {int(i): f"timestamp_ms and monotonic_s disagree by "
                                 f"{off[i]:.0f} ms (the file's clocks agree to 1 ms)"
                                 for i in np.flatnonzero(~(np.abs(off) <= CLOCK_TOLERANCE_MS))},
                      "timestamp_ms")
        skips += s
    _check_order(path, df)
    alone = bounds.isolated_rows(df["monotonic_s"].to_numpy(dtype=float))
    df, s = _drop(path, df, {int(i): f"more than {bounds.MAX_SAMPLE_GAP_S:g} s away from the "
                             "rest of the file (an isolated bad stamp)"
                             for i in np.flatnonzero(alone)}, "monotonic_s")
    return df, skips + s


def _check_order(path: Path, df: pd.DataFrame) -> None:
    for column in ("timestamp_ms", "monotonic_s"):
        values = df[column].to_numpy(dtype="float64")
        back = np.flatnonzero(np.diff(values) < 0)
        if back.size:
            row = int(back[0]) + 1
            digits = 0 if column == "timestamp_ms" else 6
            raise InputFormatError(path, f"time goes backwards ({values[row - 1]:.{digits}f} "
                                   f"then {values[row]:.{digits}f})",
                                   line=int(df["_line"].iat[row]), column=column)


# -- samples ---------------------------------------------------------------------------------
def _check_samples(path: Path, df: pd.DataFrame, meta: dict[str, Any]
                   ) -> tuple[pd.DataFrame, list[Skip]]:
    """Repeated instants left out; values outside :data:`VALUE_BOUNDS` and counter glitches set
    to NaN; counter steps back recorded (each starts a new counter segment)."""
    df, skips = _drop_repeats(path, df)
    skips += _implausible(path, df, meta)
    for column in ("gpu_energy_counter_j", "cpu_energy_counter_j"):
        skips += _counter(path, df, column)
    return df.drop(columns="_line"), skips


def _drop_repeats(path: Path, df: pd.DataFrame) -> tuple[pd.DataFrame, list[Skip]]:
    """A row repeating an earlier row's ``monotonic_s`` for the same GPU is left out."""
    key = df[["gpu_index", "monotonic_s"]]
    repeat = key.duplicated(keep="first").to_numpy()
    if not repeat.any():
        return df, []
    values = df.drop(columns="_line")
    first = df.groupby(["gpu_index", "monotonic_s"], dropna=False)["_line"].transform("first")
    reasons = {}
    for row in np.flatnonzero(repeat):
        origin = int(np.flatnonzero(df["_line"].to_numpy() == first.iat[row])[0])
        differ = not values.iloc[row].equals(values.iloc[origin])
        reasons[int(row)] = (f"repeats the instant of line {int(first.iat[row])} for this GPU"
                             + (" with different values" if differ else ""))
    return _drop(path, df, reasons, "monotonic_s")


def _implausible(path: Path, df: pd.DataFrame, meta: dict[str, Any]) -> list[Skip]:
    """Set values outside :data:`VALUE_BOUNDS` to NaN (in place), one skip per cell."""
    cores = (meta.get("host") or {}).get("logical_cores")
    skips = []
    for column, (low, high, unit) in VALUE_BOUNDS.items():
        values = df[column].to_numpy(dtype=float)
        if column in _POWER:
            high = bounds.max_power_w(df["gpu_power_limit_w"].to_numpy(dtype=float),
                                      bounds.GPU_POWER_CEILING_W)
        elif column == "process_cpu_pct" and cores:
            high = bounds.PROCESS_CPU_HEADROOM * _UTIL[1] * cores
        bad = bounds.outside(values, low, high)
        if not bad.any():
            continue
        for row in np.flatnonzero(bad):
            top = high[row] if isinstance(high, np.ndarray) else high
            skips.append(Skip(str(path), int(df["_line"].iat[row]), column,
                              f"{column} {values[row]:g} {unit} outside "
                              f"{bounds.range_text(low, top, unit)}: set to NaN", rows=0))
        df[column] = np.where(bad, np.nan, values)
    return skips


def _counter(path: Path, df: pd.DataFrame, column: str) -> list[Skip]:
    """Per GPU (the CPU counter: over all rows): glitches set to NaN (in place) and recorded;
    steps back or implausibly fast rises recorded as the start of a new counter segment."""
    skips = []
    groups = (df.groupby("gpu_index", dropna=False).indices.values()
              if column.startswith("gpu") else [np.arange(len(df))])
    t_all = df["monotonic_s"].to_numpy(dtype=float)
    c_all = df[column].to_numpy(dtype=float, copy=True)
    for rows in groups:
        t, c = t_all[rows], c_all[rows].copy()
        glitch = bounds.counter_glitches(t, c)
        for row in rows[glitch]:
            skips.append(Skip(str(path), int(df["_line"].iat[row]), column,
                              f"{column} {c_all[row]:g} J breaks the counter's line (a glitch; "
                              "its neighbours agree): set to NaN", rows=0))
        c[glitch] = np.nan
        c_all[rows] = c
        read = np.flatnonzero(np.isfinite(c))
        steps = np.diff(c[read])
        ok = bounds.counter_step_ok(steps, np.diff(t[read]), bounds.COUNTER_MAX_POWER_W)
        for k in np.flatnonzero(~ok):
            row = rows[read[k + 1]]
            what = "steps back" if steps[k] < 0 else "rises implausibly fast"
            skips.append(Skip(str(path), int(df["_line"].iat[row]), column,
                              f"{column} {what} ({c[read[k]]:g} J to {c[read[k + 1]]:g} J: "
                              "a reset or wrap): a new counter segment starts; the energy "
                              "of this one interval is not counted", rows=0))
    df[column] = c_all
    return skips


# -- events ----------------------------------------------------------------------------------
def _parse_info(path: Path, events: pd.DataFrame) -> pd.Series:
    parsed: list[dict] = []
    for cell, line in zip(events["info"].tolist(), events["_line"].tolist(), strict=True):
        try:
            value = json.loads(cell) if isinstance(cell, str) else None
        except (json.JSONDecodeError, RecursionError):
            value = None
        if not isinstance(value, dict):
            raise InputFormatError(path, f"not a JSON object: {cell!r}", line=int(line),
                                   column="info")
        parsed.append(value)
    return pd.Series(parsed, index=events.index, dtype=object)


def _check_events(path: Path, ev: pd.DataFrame) -> tuple[pd.DataFrame, list[Skip]]:
    """Phase-event problems (:func:`helpers.readers.merge.phase_event_problems`): repeats left
    out, epochs without a start or an end (or ending before they start) noted."""
    drop, notes = merge.phase_event_problems(ev["event"].to_numpy(),
                                             ev["epoch"].astype("float64").to_numpy(),
                                             ev["monotonic_s"].to_numpy(dtype=float))
    lines = ev["_line"].to_numpy()
    skips = [Skip(str(path), int(lines[i]), "event", why, rows=0) for i, why in notes.items()]
    ev, s = _drop(path, ev, drop, "event")
    return ev.drop(columns="_line"), sorted(skips + s, key=lambda k: k.line)
