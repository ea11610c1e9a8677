"""Reader for tidy samples CSVs of other profilers, described by a mapping file (docs/own-data.md).

One or more CSV files hold one row per sample (per device, per run); the mapping file
(``dl-energy-mapping.yaml``/``.yml``/``.json`` beside them, :mod:`helpers.readers.detect`) names
the columns and their units::

    kind: samples
    files: "*.csv"              # glob(s) beside the mapping file (default: every CSV there)
    device: gpu                 # what the power column measures: gpu (default) or cpu
    timezone: UTC               # of ISO stamps without an offset
    environment: lab-a100       # label when there is no environment column
    architecture: resnet50      # label when there is no architecture column / runs file
    on_bad_row: error           # error (default) or skip (recorded in interim/skips.csv)
    columns:                    # pipeline name: the file's column
      timestamp: time           # required
      power: power_mW           # required
      run_id: job               # optional: without it, each file is one run (its name)
      energy_counter: energy_mJ # optional cumulative energy counter of the same device
      utilisation: util         # optional
    units:
      timestamp: iso            # iso (default), s, ms, us or ns since the Unix epoch
      power: mW                 # W (default), mW, uW or kW
      energy_counter: mJ        # J (default), mJ, uJ, kJ, Wh or kWh
      utilisation: pct          # pct (default, 0-100) or fraction (0-1)
      memory: MiB               # MiB (default), MB, GiB or GB (memory_used, memory_total,
                                #   ram_used)
    events:                     # optional phase events (docs/raw-format.md#eventscsv)
      file: events.csv
      columns: {run_id: job, timestamp: time, event: name, epoch: epoch}
      names: {train_begin: epoch_start, train_end: epoch_end}   # renamed to the pipeline's
    runs_file: runs.csv         # optional: one row per run, keyed by the run_id column's
                                #   values: environment, architecture, epochs, batch_size,
                                #   train_size, images_per_epoch, gflops, params, accuracy, f1,
                                #   input_size_px, status

Optional sample columns (keys of :data:`OPTIONAL_COLUMNS`): ``gpu_index``, ``gpu_name``,
``memory_used``, ``memory_total``, ``memory_utilisation``, ``temperature``, ``power_limit``,
``cpu_usage``, ``ram_used``, ``environment``, ``architecture``.

The outputs are those of the merge stage for the project's format (:class:`MergeOutputs`):
samples in the DL Training Profiling Dataset schema (+ extras), run index, events, skips and
per-run sample counts. Runs are numbered by first sample within (environment, architecture);
``run_id`` is ``'<environment>/<architecture>/<run:03d>'`` and the file's own id is kept as
``source_run_id``. A CPU power column becomes ``cpu_power_w`` with the method
``'estimate:<column> column'`` (the pipeline cannot tell how another profiler obtained it); a
CPU energy counter is taken as RAPL.

Bad input (docs/raw-format.md#plausibility-bounds): a missing file or mapped column, a folder
where a data file should be, an unknown mapping key or unit -> :class:`InputFormatError`
naming the file (and key or column). A bad row (wrong number of fields, a line that is not
UTF-8 or holds a NUL byte, a stray carriage return or a quoted field left open, an unparsable
stamp or one outside :func:`helpers.core.bounds.stamps_in_range`, text in a numeric column,
negative power) -> ``InputFormatError`` naming file, line and column, or, with
``on_bad_row: skip``, a recorded skip. Always recorded skips: a last line without a newline (a
write cut short: a number in it may be truncated), a value outside its plausible range (power
above the ceiling or twice the row's power limit, utilisation outside 0-100 %, ``inf``; set to
NaN), a stamp repeated for the same run and device or a few rows cut off by long gaps (left
out), an energy-counter glitch (NaN) or step back (a new counter segment), and repeated or
unpaired phase events. An empty cell, or one of :data:`NOT_MEASURED` (nvidia-smi's ``[N/A]``),
is "not measured" (NaN). A value may carry its unit as text (``119.17 W``, ``83 %``,
``23573 MiB``, as nvidia-smi's CSV does); it must be the mapping's unit. Dates written
``2023/02/21`` are read as ``2023-02-21``. A UTF-8 byte-order mark and CRLF line ends are read
as usual.
"""

from __future__ import annotations

import csv
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from helpers.core import bounds
from helpers.core.errors import InputFormatError
from helpers.core.schema import PROFILING_COLUMNS
from helpers.core.units import (
    BYTES_PER_GB,
    BYTES_PER_MIB,
    J_PER_KWH,
    MIB_PER_GIB,
    MS_PER_S,
)
from helpers.readers import merge, rawfile
from helpers.readers.merge import EVENT_COLUMNS, MergeOutputs

#: Required sample columns: mapping key -> meaning.
REQUIRED_COLUMNS = {"timestamp": "sample time", "power": "power of the device (W after units)"}
#: Optional sample columns: mapping key -> profiling column it fills (None: identity columns).
OPTIONAL_COLUMNS: dict[str, str | None] = {
    "run_id": None, "environment": None, "architecture": None, "gpu_name": None,
    "energy_counter": None, "utilisation": None,
    "gpu_index": "gpu_index", "memory_used": "gpu_memory_used",
    "memory_total": "gpu_total_memory", "memory_utilisation": "gpu_memory_usage",
    "temperature": "gpu_temperature", "power_limit": "gpu_max_power",
    "cpu_usage": "cpu_usage", "ram_used": "memory_usage",
}
#: Unit -> factor to the pipeline's unit, per quantity.
UNITS: dict[str, dict[str, float | None]] = {
    "timestamp": {"iso": None, "s": 1.0, "ms": 1e-3, "us": 1e-6, "ns": 1e-9},
    "power": {"W": 1.0, "mW": 1e-3, "uW": 1e-6, "kW": 1e3},
    "energy_counter": {"J": 1.0, "mJ": 1e-3, "uJ": 1e-6, "kJ": 1e3, "Wh": J_PER_KWH / 1e3,
                       "kWh": J_PER_KWH},
    "utilisation": {"pct": 1.0, "fraction": 100.0},
    "memory": {"MiB": 1.0, "MB": BYTES_PER_GB / 1e3 / BYTES_PER_MIB, "GiB": MIB_PER_GIB,
               "GB": BYTES_PER_GB / BYTES_PER_MIB},
}
DEFAULT_UNITS = {"timestamp": "iso", "power": "W", "energy_counter": "J", "utilisation": "pct",
                 "memory": "MiB"}
#: Top-level keys of a samples mapping.
MAPPING_KEYS = {"kind", "files", "device", "timezone", "environment", "architecture",
                "on_bad_row", "columns", "units", "events", "runs_file"}
#: Per-run columns a runs file may give (run index names).
RUN_FILE_COLUMNS = {"environment": "text", "architecture": "text", "status": "text",
                    "epochs": "num", "batch_size": "num", "train_size": "num",
                    "images_per_epoch": "num", "gflops": "num", "params": "num",
                    "accuracy": "num", "f1": "num", "input_size_px": "num"}
#: Memory columns (unit ``units.memory``).
_MEMORY = {"memory_used", "memory_total", "ram_used"}
SKIP_COLUMNS = ["run_id", "file", "line", "column", "reason", "rows"]
#: Cells that mean "not measured" (nvidia-smi writes ``[N/A]`` and ``[Not Supported]``).
NOT_MEASURED = ("", "N/A", "[N/A]", "[Not Supported]", "nan", "NaN", "None")
_NUMBER_UNIT = re.compile(r"^([-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)\s*([A-Za-z%]+)$")
_SLASH_DATE = re.compile(r"^(\d{4})/(\d{2})/(\d{2})")
_OFFSET = re.compile(r"(?:Z|[+-]\d{2}:?\d{2})$")


@dataclass
class SamplesMapping:
    """A validated samples mapping (see the module docstring)."""

    path: Path
    columns: dict[str, str]
    units: dict[str, str]
    device: str = "gpu"
    timezone: str = "UTC"
    environment: str | None = None
    architecture: str | None = None
    skip_bad_rows: bool = False
    events: dict[str, Any] = field(default_factory=dict)
    runs_file: str | None = None

    def factor(self, quantity: str) -> float | None:
        """Factor from the file's unit of ``quantity`` to the pipeline's."""
        return UNITS[quantity][self.units[quantity]]


def parse_mapping(mapping: dict[str, Any], path: Path, timezone: str = "UTC") -> SamplesMapping:
    """Validate a samples mapping read from ``path``; ``timezone`` is the default of naive
    stamps. Unknown keys, units or devices raise :class:`InputFormatError` naming the key."""
    unknown = sorted(set(mapping) - MAPPING_KEYS)
    if unknown:
        raise InputFormatError(path, f"unknown key {unknown[0]!r} (known: "
                               f"{', '.join(sorted(MAPPING_KEYS))})", column=unknown[0])
    columns = mapping.get("columns") or {}
    allowed = {*REQUIRED_COLUMNS, *OPTIONAL_COLUMNS}
    for key, value in columns.items():
        if key not in allowed:
            raise InputFormatError(path, f"unknown column key {key!r} (known: "
                                   f"{', '.join(sorted(allowed))})", column=f"columns.{key}")
        if not isinstance(value, str) or not value:
            raise InputFormatError(path, f"columns.{key} must name a column of the file",
                                   column=f"columns.{key}")
    for key in REQUIRED_COLUMNS:
        if key not in columns:
            raise InputFormatError(path, f"columns.{key} is required ({REQUIRED_COLUMNS[key]})",
                                   column=f"columns.{key}")
    units = {**DEFAULT_UNITS, **(mapping.get("units") or {})}
    for key, unit in units.items():
        if key not in UNITS or unit not in UNITS[key]:
            known = ", ".join(UNITS.get(key, {})) or f"quantities: {', '.join(UNITS)}"
            raise InputFormatError(path, f"unit {unit!r} of {key!r} not known ({known})",
                                   column=f"units.{key}")
    device = mapping.get("device", "gpu")
    if device not in {"gpu", "cpu"}:
        raise InputFormatError(path, f"device {device!r} must be gpu or cpu", column="device")
    on_bad = mapping.get("on_bad_row", "error")
    if on_bad not in {"error", "skip"}:
        raise InputFormatError(path, f"on_bad_row {on_bad!r} must be error or skip",
                               column="on_bad_row")
    events = mapping.get("events") or {}
    if events and not ({"file", "columns"} <= set(events)
                       and {"timestamp", "event"} <= set(events["columns"])):
        raise InputFormatError(path, "events needs file and columns with timestamp and event",
                               column="events")
    return SamplesMapping(path, dict(columns), units, device,
                          mapping.get("timezone") or timezone, mapping.get("environment"),
                          mapping.get("architecture"), on_bad == "skip", dict(events),
                          mapping.get("runs_file"))


# -- reading CSV files ----------------------------------------------------------------------

@dataclass
class _Table:
    """The mapped columns of one file as text, with the physical line of each row."""

    path: Path
    text: dict[str, np.ndarray]
    lines: np.ndarray
    skips: list[dict]


def _fail(path: Path, reason: str, line: int | None, column: str | None, skip: bool,
          skips: list[dict]) -> None:
    if not skip:
        raise InputFormatError(path, reason, line=line, column=column)
    skips.append({"run_id": None, "file": str(path), "line": line, "column": column,
                  "reason": reason, "rows": 1})


def _header(path: Path, raw: bytes) -> list[str]:
    first = raw.split(b"\n", 1)[0].decode("utf-8-sig", errors="replace").rstrip("\r")
    return [h.strip() for h in next(csv.reader([first]), [])]


def _clean_text(path: Path, body: bytes, header: list[str], skip_bad: bool,
                skips: list[dict]) -> bytes:
    """Lines of ``body`` (numbered from 2) that are not text (not UTF-8, a NUL byte), hold a
    stray carriage return (CRLF line ends are fine) or leave a quoted field open are bad rows:
    raised, or emptied and recorded (``skip_bad``)."""
    bad = {b.line: (b.reason(), rawfile.field_name(header, b.field))
           for b in rawfile.bad_text_lines(body)}
    for number in rawfile.stray_cr_lines(body):
        bad.setdefault(number, ("stray carriage return inside the line: row left out", None))
    for number in rawfile.unbalanced_quote_lines(body):
        bad.setdefault(number, ("unbalanced quote (a quoted field left open): row left out",
                                None))
    for number in sorted(bad):
        _fail(path, bad[number][0], number + 1, bad[number][1], skip_bad, skips)
    return rawfile.blank_lines(body, sorted(bad))


def read_table(path: Path, wanted: dict[str, str], skip_bad: bool) -> _Table:
    """Read ``path`` as text; ``wanted``: pipeline key -> file column (all must exist). A torn
    last line is a recorded skip; other bad rows (wrong field count, not UTF-8) follow
    ``skip_bad``. A folder or unreadable file raises."""
    raw = rawfile.read_bytes(path)
    if not raw.strip():
        raise InputFormatError(path, "empty file", line=1)
    header = _header(path, raw)
    for key, col in wanted.items():
        if col not in header:
            raise InputFormatError(path, f"header lacks column {col!r} (mapped as {key})",
                                   line=1, column=col)
    skips: list[dict] = []
    body = raw[raw.index(b"\n") + 1:] if b"\n" in raw else b""
    if body and not body.endswith(b"\n"):  # even if it parses: a number may be cut short
        _fail(path, "torn last line (no newline at the end of the file), left out",
              body.count(b"\n") + 2, None, True, skips)
        body = body[:body.rfind(b"\n") + 1]
    body = _clean_text(path, body, header, skip_bad, skips)
    names = [f"c{i}" for i in range(len(header))]
    if not body.strip():
        return _Table(path, {k: np.array([], dtype=object) for k in wanted},
                      np.zeros(0, dtype=np.int64), skips)
    include = [names[header.index(c)] for c in dict.fromkeys(wanted.values())]
    table, lines, bad = rawfile.read_string_rows(path, body, names, include=include)
    for line, found in bad:
        _fail(path, f"{found} fields, header has {len(header)}", line, None, skip_bad, skips)
    text = {key: table.column(names[header.index(col)]).to_numpy(zero_copy_only=False)
            for key, col in wanted.items()}
    return _Table(path, text, lines, skips)


def _bad(table: _Table, mask: np.ndarray, key: str, column: str, what: str, skip: bool,
         ok: np.ndarray) -> None:
    """Record (or raise for) the rows of ``mask``; clears them in ``ok``."""
    for i in np.flatnonzero(mask & ok):
        _fail(table.path, f"{what} {table.text[key][i]!r}", int(table.lines[i]), column, skip,
              table.skips)
    ok &= ~mask


def _numbers(table: _Table, key: str, column: str, skip: bool, ok: np.ndarray,
             nonnegative: bool = False, unit: str | None = None) -> np.ndarray:
    """Floats of a text column. Empty and :data:`NOT_MEASURED` cells -> NaN. A value may carry
    its unit as text (``119.17 W``, ``83 %``, nvidia-smi's CSV); that unit must be ``unit``
    (the mapping's). Text, another unit, or a negative value with ``nonnegative`` is a bad
    row."""
    text = pd.Series(table.text[key], dtype=object).str.strip()
    missing = text.isin(NOT_MEASURED).to_numpy()
    values = pd.to_numeric(text.where(~missing, ""), errors="coerce").to_numpy(dtype=float,
                                                                           copy=True)
    unparsed = ~missing & np.isnan(values)
    if unparsed.any():  # slow path: numbers with a unit suffix
        parts = text[unparsed].str.extract(_NUMBER_UNIT)
        values[unparsed] = pd.to_numeric(parts[0], errors="coerce").to_numpy(dtype=float)
        suffix = pd.Series(np.nan, index=text.index, dtype=object)
        suffix[unparsed] = parts[1]
        wrong = (suffix.notna() & (suffix != unit)).to_numpy()
        _bad(table, wrong, key, column, f"unit is not {unit!r} (mapping) in", skip, ok)
    _bad(table, ~missing & np.isnan(values), key, column, "non-numeric value", skip, ok)
    if nonnegative:
        _bad(table, values < 0, key, column, "negative value", skip, ok)
    return values


def parse_times(table: _Table, key: str, column: str, unit: str, tz: str, skip: bool,
                ok: np.ndarray) -> pd.DatetimeIndex:
    """UTC stamps of a time column: ISO text (naive stamps in ``tz``; an offset or ``Z`` is
    honoured) or numbers since the Unix epoch in ``unit``. Empty, unparsable or outside
    :func:`helpers.core.bounds.stamps_in_range` -> bad row."""
    text = pd.Series(table.text[key], dtype=object).str.strip()
    if unit == "iso":
        text = text.str.replace(_SLASH_DATE, r"\1-\2-\3", regex=True)  # nvidia-smi's dates
        aware = text.str.contains(_OFFSET).to_numpy()
        out = pd.Series(pd.NaT, index=text.index, dtype="datetime64[ns, UTC]")
        if aware.any():
            out[aware] = pd.to_datetime(text[aware], format="ISO8601", errors="coerce",
                                        utc=True)
        if (~aware).any():
            local = pd.to_datetime(text[~aware], format="ISO8601", errors="coerce")
            out[~aware] = local.dt.tz_localize(tz, ambiguous="NaT",
                                               nonexistent="NaT").dt.tz_convert("UTC")
        stamps = pd.DatetimeIndex(out)
    else:
        seconds = pd.to_numeric(text, errors="coerce").to_numpy(dtype=float) * UNITS[
            "timestamp"][unit]
        plausible = bounds.stamps_in_range(seconds * MS_PER_S)  # no overflow in the cast
        _bad(table, ~plausible & np.isfinite(seconds), key, column,
             f"timestamp outside {bounds.stamp_range_text()}:", skip, ok)
        stamps = pd.to_datetime(np.round(np.where(plausible, seconds, np.nan) * 1e9), unit="ns",
                                utc=True)
    _bad(table, np.asarray(stamps.isna()), key, column, "unparsable timestamp", skip, ok)
    stamps = stamps.as_unit("ms") if len(stamps) else stamps
    _bad(table, ~bounds.stamps_in_range(np.where(stamps.isna(), np.nan, stamps.asi8)), key,
         column, f"timestamp outside {bounds.stamp_range_text()}:", skip, ok)
    return stamps


# -- samples, runs, events --------------------------------------------------------------------

def _text_unit(key: str, m: SamplesMapping) -> str | None:
    """The unit a value of column ``key`` may carry as text (``None``: a bare number)."""
    if key in _MEMORY:
        return m.units["memory"]
    if key in {"utilisation", "memory_utilisation"}:
        return "%" if m.units["utilisation"] == "pct" else None
    return {"power_limit": "W", "temperature": "C", "cpu_usage": "%"}.get(key)


def _implausible(table: _Table, key: str, column: str, values: np.ndarray,
                 bound: tuple[float, float | np.ndarray, str], ok: np.ndarray) -> np.ndarray:
    """``values`` (pipeline units) with those outside ``bound`` (low, high, unit) set to NaN,
    each a recorded skip (the row stays; rows already bad are not looked at)."""
    low, high, unit = bound
    bad = bounds.outside(values, low, high) & ok
    for i in np.flatnonzero(bad):
        top = high[i] if isinstance(high, np.ndarray) else high
        table.skips.append({"run_id": None, "file": str(table.path),
                            "line": int(table.lines[i]), "column": column,
                            "reason": f"{column} {table.text[key][i]!r} is {values[i]:g} {unit}, "
                                      f"outside {bounds.range_text(low, top, unit)}: set to NaN",
                            "rows": 0})
    return np.where(bad, np.nan, values) if bad.any() else values


#: Plausible range (low, high, unit) of the optional columns in pipeline units
#: (helpers.core.bounds; docs/raw-format.md#plausibility-bounds).
OPTIONAL_BOUNDS: dict[str, tuple[float, float, str]] = {
    "gpu_index": (0.0, np.inf, ""),
    "memory_used": (0.0, np.inf, "MiB"), "memory_total": (0.0, np.inf, "MiB"),
    "ram_used": (0.0, np.inf, "MiB"),
    "memory_utilisation": (0.0, 1.0, "(fraction)"),
    "temperature": (*bounds.TEMPERATURE_RANGE_C, "degC"),
    "power_limit": (*bounds.POWER_LIMIT_RANGE_W, "W"),
    "cpu_usage": (*bounds.UTILISATION_RANGE_PCT, "%"),
}


def _samples(table: _Table, m: SamplesMapping) -> pd.DataFrame:
    """One file's samples in pipeline units (bad rows dropped or raised; implausible values
    NaN, recorded)."""
    c = m.columns
    ok = np.ones(len(table.lines), dtype=bool)
    skip = m.skip_bad_rows
    out = pd.DataFrame({"time_utc": parse_times(table, "timestamp", c["timestamp"],
                                                m.units["timestamp"], m.timezone, skip, ok)})
    power = _numbers(table, "power", c["power"], skip, ok, nonnegative=True,
                     unit=m.units["power"]) * m.factor("power")
    counter = (_numbers(table, "energy_counter", c["energy_counter"], skip, ok,
                        unit=m.units["energy_counter"])
               * m.factor("energy_counter") if "energy_counter" in c
               else np.full(len(out), np.nan))
    util = (_numbers(table, "utilisation", c["utilisation"], skip, ok,
                     unit=_text_unit("utilisation", m))
            * m.factor("utilisation") if "utilisation" in c else np.full(len(out), np.nan))
    memory = m.factor("memory")
    optional = {}
    for key, dest in OPTIONAL_COLUMNS.items():
        if dest is None or key not in c:
            continue
        values = _numbers(table, key, c[key], skip, ok, unit=_text_unit(key, m))
        if key in _MEMORY:
            values = values * memory
        if key == "memory_utilisation":
            values = values * m.factor("utilisation") / 100
        optional[dest] = _implausible(table, key, c[key], values, OPTIONAL_BOUNDS[key], ok)
    ceiling = bounds.GPU_POWER_CEILING_W if m.device == "gpu" else bounds.CPU_POWER_CEILING_W
    top = bounds.max_power_w(optional.get("gpu_max_power"), ceiling)
    power = _implausible(table, "power", c["power"], power, (0.0, top, "W"), ok)
    if "energy_counter" in c:
        counter = _implausible(table, "energy_counter", c["energy_counter"], counter,
                               (0.0, np.inf, "J"), ok)
    if "utilisation" in c:
        util = _implausible(table, "utilisation", c["utilisation"], util,
                            (*bounds.UTILISATION_RANGE_PCT, "%"), ok)
    if m.device == "gpu":
        out["gpu_power_draw"], out["gpu_energy_counter_j"] = power, counter
        out["gpu_usage"] = util / 100
        out["cpu_power_w"] = np.nan
    else:
        out["cpu_power_w"], out["cpu_energy_counter_j"] = power, counter
        out["cpu_usage"] = util
        out["gpu_power_draw"] = np.nan
    out["device_power_w"] = power
    for dest, values in optional.items():
        out[dest] = values
    for key in ("run_id", "environment", "architecture", "gpu_name"):
        if key in c:
            out[key] = pd.Series(table.text[key], dtype=object).str.strip().to_numpy()
    if "run_id" not in c:
        out["run_id"] = table.path.stem
    if "gpu_name" not in c:
        out["gpu_name"] = "none" if m.device == "cpu" else "unknown"
    out["source_file"] = table.path.name
    out["line"] = table.lines
    return out.loc[ok].reset_index(drop=True)


def _series_problems(samples: pd.DataFrame, paths: dict[str, str], counter: str
                     ) -> tuple[np.ndarray, list[dict]]:
    """Per source run and device (``samples`` sorted by time within each): rows repeating an
    instant and a few rows cut off by long gaps (left out), counter glitches (set to NaN in
    ``samples``) and counter steps back (noted: a new segment). Returns (rows to drop, skips)."""
    drop = np.zeros(len(samples), dtype=bool)
    skips: list[dict] = []
    t_all = samples["time_utc"].astype("int64").to_numpy() / MS_PER_S
    c_all = samples[counter].to_numpy(dtype=float, copy=True)
    lines, files = samples["line"].to_numpy(), samples["source_file"].to_numpy()

    def note(row: int, column: str, reason: str, rows: int) -> None:
        skips.append({"run_id": None, "file": paths[files[row]], "line": int(lines[row]),
                      "column": column, "reason": reason, "rows": rows})

    keys = ["source_run_id", "gpu_index"] if "gpu_index" in samples else ["source_run_id"]
    for rows in samples.groupby(keys, sort=False, dropna=False).indices.values():
        t = t_all[rows]
        repeat = np.zeros(len(rows), dtype=bool)
        repeat[1:] = t[1:] == t[:-1]
        for k in np.flatnonzero(repeat):
            note(rows[k], "timestamp", f"repeated timestamp (as line {int(lines[rows[k - 1]])}) "
                 "for this run and device: left out", 1)
        alive = rows[~repeat]
        alone = bounds.isolated_rows(t_all[alive])
        for row in alive[alone]:
            note(row, "timestamp", f"more than {bounds.MAX_SAMPLE_GAP_S:g} s away from the rest "
                 "of the run (an isolated bad stamp): left out", 1)
        drop[rows[repeat]] = True
        drop[alive[alone]] = True
        alive = alive[~alone]
        glitch = bounds.counter_glitches(t_all[alive], c_all[alive])
        for row in alive[glitch]:
            note(row, counter, f"{counter} {c_all[row]:g} J breaks the counter's line (a glitch; "
                 "its neighbours agree): set to NaN", 0)
        c_all[alive[glitch]] = np.nan
        read = alive[np.isfinite(c_all[alive])]
        steps = np.diff(c_all[read])
        fine = bounds.counter_step_ok(steps, np.diff(t_all[read]), bounds.COUNTER_MAX_POWER_W)
        for k in np.flatnonzero(~fine):
            note(read[k + 1], counter, f"{counter} steps back or jumps ({c_all[read[k]]:g} J to "
                 f"{c_all[read[k + 1]]:g} J: a reset or wrap): a new counter segment starts; "
                 "the energy of this one interval is not counted", 0)
    samples[counter] = c_all
    return drop, skips


def _read_runs_file(folder: Path, m: SamplesMapping) -> pd.DataFrame:
    """The optional per-run table, indexed by the source run id (text)."""
    if not m.runs_file:
        return pd.DataFrame()
    path = folder / m.runs_file
    id_col = m.columns.get("run_id", "run_id")
    header = _header(path, path.read_bytes()) if path.is_file() else []
    wanted = {"run_id": id_col, **{k: k for k in RUN_FILE_COLUMNS if k in header}}
    table = read_table(path, wanted, skip_bad=False)
    ok = np.ones(len(table.lines), dtype=bool)
    data = {"source_run_id": pd.Series(table.text["run_id"], dtype=object).str.strip()}
    for key, kind in RUN_FILE_COLUMNS.items():
        if key not in wanted:
            continue
        data[key] = (_numbers(table, key, key, False, ok) if kind == "num"
                     else pd.Series(table.text[key], dtype=object).str.strip().to_numpy())
    return pd.DataFrame(data).set_index("source_run_id")


def _identify(samples: pd.DataFrame, m: SamplesMapping, runs_file: pd.DataFrame
              ) -> pd.DataFrame:
    """Per source run: environment, architecture, run number and run_id."""
    first = samples.groupby("source_run_id", sort=False).agg(
        start=("time_utc", "min"), gpu_name=("gpu_name", "first"),
        **{k: (k, "first") for k in ("environment", "architecture") if k in samples})
    gpu = first["gpu_name"].where(~first["gpu_name"].isin(["", "none", "unknown"]), "unknown")
    for key, default in (("environment", m.environment), ("architecture", m.architecture)):
        given = (first[key] if key in first
                 else pd.Series(np.nan, index=first.index, dtype=object))
        given = given.where(given.astype(str).str.strip() != "", np.nan)
        if key in runs_file:
            given = given.fillna(first.index.to_series().map(runs_file[key]))
        fallback = default or (gpu if key == "environment" else "unknown")
        first[key] = given.fillna(fallback).astype(str)
    first = first.sort_values(["environment", "architecture", "start"], kind="stable")
    first["run"] = first.groupby(["environment", "architecture"]).cumcount().astype("int64")
    first["run_id"] = (first["environment"] + "/" + first["architecture"] + "/"
                       + first["run"].map("{:03d}".format))
    return first


def _events(folder: Path, m: SamplesMapping, ids: pd.Series, skips: list[dict]) -> pd.DataFrame:
    """Events in the pipeline's columns (renamed), joined to the runs by source run id."""
    empty = pd.DataFrame({"run_id": pd.Series(dtype=object),
                          "time_utc": pd.Series(dtype="datetime64[ms, UTC]"),
                          "event": pd.Series(dtype=object), "epoch": pd.Series(dtype=float),
                          "val_accuracy": pd.Series(dtype=float),
                          "val_f1": pd.Series(dtype=float)})
    if not m.events:
        return empty
    cols = m.events["columns"]
    path = folder / m.events["file"]
    table = read_table(path, dict(cols), m.skip_bad_rows)
    ok = np.ones(len(table.lines), dtype=bool)
    times = parse_times(table, "timestamp", cols["timestamp"], m.units["timestamp"],
                        m.timezone, m.skip_bad_rows, ok)
    if "run_id" not in cols and len(ids) > 1:
        raise InputFormatError(m.path, f"{len(ids)} runs: events.columns needs run_id",
                               column="events.columns.run_id")
    names = pd.Series(table.text["event"], dtype=object).str.strip()
    ev = pd.DataFrame({
        "source_run_id": (pd.Series(table.text["run_id"], dtype=object).str.strip()
                          if "run_id" in cols else ids.index[0]),
        "time_utc": times, "event": names.replace(m.events.get("names") or {}),
        "epoch": (_numbers(table, "epoch", cols["epoch"], m.skip_bad_rows, ok)
                  if "epoch" in cols else np.nan),
        "line": table.lines})
    skips.extend(table.skips)
    ev = ev.loc[ok]
    ev["run_id"] = ev["source_run_id"].map(ids)
    for r in ev[ev["run_id"].isna()].itertuples():
        skips.append({"run_id": None, "file": str(path), "line": int(r.line), "column":
                      cols.get("run_id"), "reason": f"event of unknown run {r.source_run_id!r}",
                      "rows": 1})
    ev = ev.dropna(subset=["run_id"]).assign(val_accuracy=np.nan, val_f1=np.nan)
    ev = ev.sort_values(["run_id", "time_utc"], kind="stable").reset_index(drop=True)
    drop = np.zeros(len(ev), dtype=bool)
    for rows in ev.groupby("run_id", sort=False).indices.values():
        sub = ev.iloc[rows]
        left_out, notes = merge.phase_event_problems(
            sub["event"].to_numpy(), sub["epoch"].to_numpy(dtype=float),
            sub["time_utc"].astype("int64").to_numpy() / MS_PER_S)
        for i, why in sorted({**notes, **left_out}.items()):
            skips.append({"run_id": sub["run_id"].iat[i], "file": str(path),
                          "line": int(sub["line"].iat[i]), "column": cols["event"],
                          "reason": why, "rows": int(i in left_out)})
        drop[rows[list(left_out)]] = True
    ev = ev.loc[~drop]
    if ev.empty:
        return empty
    return ev[EVENT_COLUMNS].sort_values(["run_id", "time_utc"], kind="stable").reset_index(
        drop=True)


def _run_index(ident: pd.DataFrame, m: SamplesMapping, runs_file: pd.DataFrame,
               files: pd.Series) -> pd.DataFrame:
    index = pd.DataFrame({
        "run_id": ident["run_id"], "environment": ident["environment"],
        "environment_name": ident["environment"], "architecture": ident["architecture"],
        "run": ident["run"], "status": "ok", "return_code": pd.NA,
        "source_run_id": ident.index, "source_file": ident.index.map(files)})
    if m.device == "cpu":
        index["cpu_energy_method"] = f"estimate:{m.columns['power']} column"
    for key in RUN_FILE_COLUMNS:
        if key in runs_file and key not in {"environment", "architecture"}:
            index[key] = ident.index.map(runs_file[key])
    if "status" in index:
        index["status"] = index["status"].fillna("ok")
    if "epochs" in index:
        per_epoch = index["images_per_epoch"] if "images_per_epoch" in index else (
            index["train_size"] if "train_size" in index else np.nan)
        index["images_seen"] = index["epochs"] * per_epoch
    index["return_code"] = index["return_code"].astype("Int64")
    return index.sort_values("run_id").reset_index(drop=True)


def read_samples(files: list[Path], mapping: dict[str, Any], mapping_file: Path, dataset: str,
                 timezone: str = "UTC") -> MergeOutputs:
    """Read tidy samples ``files`` described by ``mapping`` (from ``mapping_file``) into the
    merge stage's outputs for ``dataset``; ``timezone``: default of naive stamps."""
    m = parse_mapping(mapping, mapping_file, timezone)
    tables = [read_table(Path(f), dict(m.columns), m.skip_bad_rows) for f in files]
    parts = [_samples(t, m) for t in tables]
    skips = [s for t in tables for s in t.skips]
    samples = pd.concat(parts, ignore_index=True).rename(columns={"run_id": "source_run_id"})
    if samples.empty:
        raise InputFormatError(files[0], "no samples left to read (every row bad or empty)")
    samples = samples.sort_values("time_utc", kind="stable").reset_index(drop=True)
    counter = "gpu_energy_counter_j" if m.device == "gpu" else "cpu_energy_counter_j"
    drop, series_skips = _series_problems(samples, {Path(f).name: str(f) for f in files},
                                          counter)
    samples = samples.loc[~drop].reset_index(drop=True)
    skips += series_skips
    runs_file = _read_runs_file(mapping_file.parent, m)
    ident = _identify(samples, m, runs_file)
    samples = samples.drop(columns=[c for c in ("environment", "architecture") if c in samples])
    samples = samples.join(ident[["run_id", "environment", "architecture", "run"]],
                           on="source_run_id")
    if "gpu_index" not in samples:
        samples["gpu_index"] = 0.0 if m.device == "gpu" else np.nan
    samples = samples.sort_values(["run_id", "time_utc"], kind="stable").reset_index(drop=True)
    events = _events(mapping_file.parent, m, ident["run_id"], skips)
    if len(events):
        samples = merge.label_phases(samples, events)
    samples = merge.add_elapsed(samples)
    for col in PROFILING_COLUMNS:  # train_strategy and timestamp: from environment, time_utc
        if col not in samples and col not in {"train_strategy", "timestamp"}:
            samples[col] = np.nan
    profiling = merge.to_profiling_schema(samples, dataset)
    files_by_run = samples.groupby("source_run_id")["source_file"].first()
    run_index = _run_index(ident, m, runs_file, files_by_run)
    counts = profiling.groupby("run_id").agg(
        gpu_samples=("timestamp", "size"), matched=("memory_usage", "count")).reset_index()
    counts["unmatched"] = counts["gpu_samples"] - counts["matched"]
    return MergeOutputs(profiling, run_index, events,
                        pd.DataFrame(skips, columns=SKIP_COLUMNS), counts.astype(
                            {"gpu_samples": "int64", "matched": "int64",
                             "unmatched": "int64"}))
