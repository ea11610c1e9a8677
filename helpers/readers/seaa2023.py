"""Reader for the published SEAA 2023 profiling logs (nvidia-smi GPU logs + psutil CPU/RAM logs).

Layout: ``raw/<environment>/<architecture>/gpu-power-<YYYYmmddTHHMMSS>.csv`` and
``cpu-mem-usage-<same stamp>.csv``. GPU files come in two header variants (renamed, and raw
nvidia-smi with ``", "`` separators); values carry units as text (``"119.17 W"``), which are
parsed with their decimals. Stamps are local wall-clock time; ``tz`` converts them to UTC.

Bad input never crashes inside pandas or pyarrow (docs/raw-format.md#plausibility-bounds):

* file-level problems (a folder or unreadable file where a log should be, empty, header-less,
  unknown header) leave the file out;
* row-level problems leave the row out: torn last line, wrong field count, a line that is not
  UTF-8 or holds a stray carriage return, a non-numeric value, an unparsable stamp or one
  outside :func:`helpers.core.bounds.stamps_in_range`, a stamp out of order (the fewest rows
  are dropped so that the rest increase), a repeated stamp, a few rows cut off from the rest by
  gaps over :data:`helpers.core.bounds.MAX_SAMPLE_GAP_S`;
* cell-level problems set the cell to NaN: a value outside :data:`VALUE_BOUNDS`
  (utilisation over 100 %, negative or implausibly high power, ...).

Each is a :class:`Skip` record naming file, line, column and reason (``rows``: rows left
out), or raises :class:`~helpers.core.errors.InputFormatError` when ``strict=True``. A UTF-8
byte-order mark and CRLF line ends are read as usual.

Speed: :func:`read_logs` reads the files as text in threads, then parses the rows of all logs
of one header variant at once (:mod:`helpers.readers.textcolumns`). A log with anything to
record is parsed again on its own by the per-file path of :func:`read_gpu_log` /
:func:`read_cpu_log`, so both paths give the same table and the same skips.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import TypeVar

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from helpers.core import bounds
from helpers.core.errors import InputFormatError
from helpers.core.units import MS_PER_S
from helpers.readers import rawfile, textcolumns
from helpers.readers.rawfile import Skip
from helpers.readers.textcolumns import NUMBER_RE, TIME_RE

#: Default timezone of the published local-time stamps (the study ran in Barcelona).
DEFAULT_TZ = "Europe/Madrid"

#: Display names used by the authors' processed dataset for each raw environment label.
ENVIRONMENT_NAMES = {
    "cloud": "Cloud",
    "local-v2": "Local ML Engineer/Gamer",
    "local": "Local Normal User",
}

GPU_COLUMNS = [
    "timestamp", "gpu_name", "gpu_usage", "gpu_memory_usage", "gpu_total_memory",
    "gpu_memory_used", "gpu_power_draw", "gpu_max_power", "gpu_temperature",
]
#: Raw nvidia-smi header, mapped onto the renamed one (same order).
NVSMI_HEADER = [
    "timestamp", "name", "utilization.gpu [%]", "utilization.memory [%]", "memory.total [MiB]",
    "memory.used [MiB]", "power.draw [W]", "power.max_limit [W]", "temperature.gpu",
]
#: Numeric GPU columns -> (unit suffix allowed in the text, scale to the schema unit).
GPU_NUMERIC = {
    "gpu_usage": ("%", 0.01),
    "gpu_memory_usage": ("%", 0.01),
    "gpu_total_memory": ("MiB", 1.0),
    "gpu_memory_used": ("MiB", 1.0),
    "gpu_power_draw": ("W", 1.0),
    "gpu_max_power": ("W", 1.0),
    "gpu_temperature": ("", 1.0),
}
CPU_HEADER = ["timestamp", "cpu usage (%)", "memory usage (MB)", "temperature (Celsius)"]
CPU_COLUMNS = {"cpu usage (%)": "cpu_usage", "memory usage (MB)": "memory_usage",
               "temperature (Celsius)": "cpu_temperature_c"}
CPU_NUMERIC = {col: ("", 1.0) for col in CPU_COLUMNS}
#: Per kind of log: its columns, numeric columns (unit, scale), renamed columns.
_KINDS: dict[str, tuple[list[str], dict[str, tuple[str, float]], dict[str, str]]] = {
    "gpu": (GPU_COLUMNS, GPU_NUMERIC, {}),
    "cpu": (CPU_HEADER, CPU_NUMERIC, CPU_COLUMNS),
}
#: Columns of a parsed log of each kind.
OUTPUT_COLUMNS = {"gpu": ["time_utc", *GPU_COLUMNS[1:], "line"],
                  "cpu": ["time_utc", *CPU_COLUMNS.values(), "line"]}
#: Plausible range of each numeric column in the file's units (helpers.core.bounds): (low, high,
#: unit). The power draw's upper bound is POWER_LIMIT_FACTOR x its row's power limit where that
#: is plausible, else GPU_POWER_CEILING_W. A value outside becomes NaN with a recorded skip.
VALUE_BOUNDS: dict[str, tuple[float, float, str]] = {
    "gpu_usage": (*bounds.UTILISATION_RANGE_PCT, "%"),
    "gpu_memory_usage": (*bounds.UTILISATION_RANGE_PCT, "%"),
    "gpu_total_memory": (0.0, np.inf, "MiB"),
    "gpu_memory_used": (0.0, np.inf, "MiB"),
    "gpu_max_power": (*bounds.POWER_LIMIT_RANGE_W, "W"),
    "gpu_power_draw": (0.0, bounds.GPU_POWER_CEILING_W, "W"),
    "gpu_temperature": (*bounds.TEMPERATURE_RANGE_C, "degC"),
    "cpu usage (%)": (*bounds.UTILISATION_RANGE_PCT, "%"),
    "memory usage (MB)": (0.0, np.inf, "MiB"),
    "temperature (Celsius)": (*bounds.TEMPERATURE_RANGE_C, "degC"),
}
STAMP_RE = re.compile(r"^(gpu-power|cpu-mem-usage)-(\d{8}T\d{6})\.csv$")
T = TypeVar("T")
R = TypeVar("R")


@dataclass
class ParsedLog:
    """One parsed log file: samples (with their 1-based physical ``line``) and the skips."""

    path: Path
    data: pd.DataFrame
    skips: list[Skip] = field(default_factory=list)
    variant: str = ""


def _fail(path: Path, reason: str, line: int | None, column: str | None,
          strict: bool) -> Skip:
    if strict:
        raise InputFormatError(path, reason, line=line, column=column)
    return Skip(str(path), line, column, reason)


def _clean_body(path: Path, body: bytes, names: list[str], strict: bool
                ) -> tuple[bytes, list[Skip]]:
    """Leave out (record, and empty) lines that are not UTF-8 or hold a stray carriage return
    (CRLF line ends are fine). Lines of ``body`` are numbered from 2 (line 1 is the header)."""
    skips = []
    bad = {b.line: (b.reason(), rawfile.field_name(names, b.field))
           for b in rawfile.bad_text_lines(body)}
    for number in rawfile.stray_cr_lines(body):
        bad.setdefault(number, ("stray carriage return inside the line: row left out", None))
    for number in sorted(bad):
        reason, column = bad[number]
        skips.append(_fail(path, reason, number + 1, column, strict))
    return rawfile.blank_lines(body, sorted(bad)), skips


def _read_rows(path: Path, raw: bytes, names: list[str], strict: bool
               ) -> tuple[pa.Table, np.ndarray, list[Skip]]:
    """Parse the body (after the header line) as strings. Returns the Arrow table, the
    physical line number of each row, and skips for torn, undecodable or malformed rows."""
    skips: list[Skip] = []
    start = raw.index(b"\n") + 1
    if len(raw) > start and not raw.endswith(b"\n"):
        skips.append(_fail(path, "last line not newline-terminated (torn write), left out",
                           rawfile.newlines(raw, start) + 2, None, strict))
        raw = raw[:raw.rfind(b"\n") + 1]
    if not (raw.isascii() and b"\x00" not in raw and b"\r" not in raw):  # else: plain text
        raw, bad_text = _clean_body(path, raw[start:], names, strict)
        skips.extend(bad_text)
        start = 0
    if _blank(raw, start):  # nothing left but a torn line: pyarrow rejects an empty body
        table = pa.table({n: pa.array([], pa.string()) for n in names})
        return table, np.zeros(0, dtype=np.int64), skips
    table, kept, bad = rawfile.read_string_rows(path, raw, names, quote=False, start=start)
    skips.extend(_fail(path, f"expected {len(names)} fields, found {found}", line, None, strict)
                 for line, found in bad)
    return table, kept, skips


def _bad_rows(path: Path, column: pa.ChunkedArray, ok: np.ndarray, lines: np.ndarray,
              name: str, what: str, strict: bool) -> list[Skip]:
    return [_fail(path, f"{what} {column[int(i)].as_py()!r}", int(lines[i]), name, strict)
            for i in np.flatnonzero(~ok)]


def _to_numeric(table: pa.Table, col: str, unit: str, lines: np.ndarray, path: Path,
                strict: bool) -> tuple[np.ndarray, np.ndarray, list[Skip]]:
    """Strip whitespace and the unit suffix, then parse floats (vectorised in Arrow). Rows whose
    text is not a number are flagged and recorded with their line and column."""
    raw = table.column(col)
    text = textcolumns.number_text(raw, unit)
    try:  # fast path: Arrow parses every row and all are finite (it accepts no finite value
        # that NUMBER_RE rejects); otherwise flag the rows NUMBER_RE rejects
        values = pc.cast(text, pa.float64()).to_numpy(zero_copy_only=False)
        if np.isfinite(values).all():
            return values, np.ones(len(values), dtype=bool), []
    except pa.ArrowInvalid:
        pass
    ok = pc.match_substring_regex(text, NUMBER_RE).to_numpy(zero_copy_only=False)
    values = pc.cast(textcolumns.null_where_bad(text, ok), pa.float64()).to_numpy(
        zero_copy_only=False)
    return values, ok, _bad_rows(path, raw, ok, lines, col, "non-numeric value", strict)


def _parse_time(table: pa.Table, lines: np.ndarray, tz: str, path: Path, strict: bool
                ) -> tuple[pd.DatetimeIndex, np.ndarray, list[Skip]]:
    """Parse local ISO-like stamps (``-`` or ``/`` date separators, optional fraction: Python's
    isoformat drops it when microseconds are 0) and convert them from ``tz`` to UTC (ms).
    Stamps outside :func:`helpers.core.bounds.stamps_in_range` are bad rows too."""
    raw = table.column("timestamp")
    text = textcolumns.stamp_text(raw)
    ok = pc.match_substring_regex(text, TIME_RE).to_numpy(zero_copy_only=False)
    local = pd.DatetimeIndex(textcolumns.cast_stamps(text, ok))
    utc = local.tz_localize(tz, ambiguous="NaT", nonexistent="NaT").tz_convert("UTC").as_unit("ms")
    ok = ok & ~np.asarray(utc.isna())
    skips = _bad_rows(path, raw, ok, lines, "timestamp", "unparsable timestamp", strict)
    in_range = bounds.stamps_in_range(np.where(ok, utc.asi8, 0))
    if not in_range[ok].all():
        skips += _bad_rows(path, raw, in_range | ~ok, lines, "timestamp",
                           f"timestamp outside {bounds.stamp_range_text()}:", strict)
        ok &= in_range
    return utc, ok, skips


def _repeats(df: pd.DataFrame, rows: np.ndarray, t: np.ndarray) -> list[tuple[int, str]]:
    """(row, reason) of the rows (positions ``rows`` of ``df``, stamps ``t``) whose stamp
    repeats the previous one's."""
    out = []
    for k in np.flatnonzero(t[1:] == t[:-1]) + 1:
        a, b = df.iloc[rows[k - 1]], df.iloc[rows[k]]
        differ = not a.drop("line").equals(b.drop("line"))
        out.append((int(rows[k]), f"repeated timestamp (as line {int(a['line'])})"
                    + (" with different values" if differ else "")))
    return out


def _order_rows(df: pd.DataFrame, path: Path, strict: bool) -> tuple[pd.DataFrame, list[Skip]]:
    """Keep the rows whose stamps increase (bounds.increasing_keep: the fewest rows dropped),
    then drop repeated stamps and a few rows cut off from the rest by long gaps
    (bounds.isolated_rows); each dropped row is a recorded skip."""
    t = df["time_utc"].astype("int64").to_numpy()
    step = np.diff(t)
    if (step > 0).all() and not (step > bounds.MAX_SAMPLE_GAP_S * MS_PER_S).any():
        return df, []  # the common case: nothing to look at
    drop = ~bounds.increasing_keep(t, strict=False)
    reasons = [(int(i), "timestamp out of order (not between its neighbours' stamps)")
               for i in np.flatnonzero(drop)]
    kept = np.flatnonzero(~drop)
    repeat = _repeats(df, kept, t[kept])
    reasons += repeat
    drop[[i for i, _ in repeat]] = True
    kept = np.flatnonzero(~drop)
    alone = bounds.isolated_rows(t[kept] / MS_PER_S)
    reasons += [(int(i), f"timestamp more than {bounds.MAX_SAMPLE_GAP_S:g} s away from the "
                         "rest of the file (an isolated bad stamp)") for i in kept[alone]]
    drop[kept[alone]] = True
    if not reasons:
        return df, []
    skips = [_fail(path, why, int(df["line"].iat[i]), "timestamp", strict)
             for i, why in sorted(reasons)]
    return df.loc[~drop].reset_index(drop=True), skips


_NOT_SPACE = re.compile(rb"[^ \t\n\r\x0b\x0c]")


def _blank(data: bytes, start: int = 0) -> bool:
    """Whether ``data[start:]`` holds nothing but ASCII whitespace (what ``bytes.strip``
    removes), without copying it."""
    return _NOT_SPACE.search(data, start) is None


def _read_head(path: Path, strict: bool) -> tuple[bytes, list[str] | None, Skip | None]:
    """Read the file (a UTF-8 byte-order mark dropped) and split its first line; a folder, an
    unreadable, empty or header-only file gives a skip."""
    try:
        raw = rawfile.read_bytes(path)
    except InputFormatError as err:
        return b"", None, _fail(path, err.reason, None, None, strict)
    if _blank(raw):
        return raw, None, _fail(path, "empty file", None, None, strict)
    end = raw.find(b"\n")
    first = raw if end < 0 else raw[:end]
    header = [c.strip() for c in first.decode("utf-8", errors="replace").split(",")]
    if (end < 0 or _blank(raw, end + 1)) and not header[0][:2].isdigit():
        return raw, None, _fail(path, "header only, no samples", 1, None, strict)
    return raw, header, None


def _header_skip(path: Path, header: list[str], strict: bool) -> Skip:
    reason = ("no header (first line holds data)" if header and header[0][:2].isdigit()
              else f"unknown header {','.join(header)!r}")
    return _fail(path, reason, 1, None, strict)


def _implausible(path: Path, values: dict[str, np.ndarray], ok: np.ndarray,
                 lines: np.ndarray, strict: bool) -> list[Skip]:
    """Set values outside :data:`VALUE_BOUNDS` (file units) to NaN in ``values``, recording a
    skip for each cell (rows already left out are not looked at). The power draw's bound
    follows its row's power limit (checked first)."""
    skips = []
    for col, (low, high, unit) in VALUE_BOUNDS.items():
        if col not in values:
            continue
        if col == "gpu_power_draw":
            high = bounds.max_power_w(values["gpu_max_power"], bounds.GPU_POWER_CEILING_W)
        v = values[col]
        if v.size and low <= v.min() and v.max() <= np.min(high):  # fast: all in (no NaN)
            continue
        bad = bounds.outside(v, low, high) & ok
        for i in np.flatnonzero(bad):
            top = high[i] if isinstance(high, np.ndarray) else high
            skips.append(_fail(path, f"{col} {v[i]:g} {unit} outside "
                               f"{bounds.range_text(low, top, unit)}: set to NaN",
                               int(lines[i]), col, strict))
        if bad.any():  # Arrow's arrays are read-only: a new one
            values[col] = np.where(bad, np.nan, v)
    return [replace(s, rows=0) for s in skips]


def _parse_table(path: Path, table: pa.Table, lines: np.ndarray, kind: str, tz: str,
                 strict: bool) -> tuple[pd.DataFrame, list[Skip]]:
    """Parse one file's string rows (numeric columns and stamps); drop (and record) bad and
    out-of-order rows; set implausible values to NaN (recorded)."""
    names, numeric, rename = _KINDS[kind]
    time_utc, ok, skips = _parse_time(table, lines, tz, path, strict)
    values: dict[str, np.ndarray] = {}
    for col in names[1:]:
        if col in numeric:
            values[col], col_ok, s = _to_numeric(table, col, numeric[col][0], lines, path,
                                                 strict)
            ok &= col_ok
            skips.extend(s)
    skips.extend(_implausible(path, values, ok, lines, strict))
    data: dict[str, object] = {"time_utc": time_utc}
    for col in names[1:]:
        if col in numeric:
            data[rename.get(col, col)] = values[col] * numeric[col][1]
        else:
            text = pc.utf8_trim_whitespace(table.column(col)).to_numpy(zero_copy_only=False)
            data[rename.get(col, col)] = text
    data["line"] = lines
    df = pd.DataFrame(data)
    if not ok.all():
        df = df.loc[ok].reset_index(drop=True)
    df, order_skips = _order_rows(df, path, strict)
    return df, skips + order_skips


def _empty_frame(columns: list[str]) -> pd.DataFrame:
    """No samples, typed like parsed ones (so that it concatenates and merges)."""
    dtypes = {"time_utc": "datetime64[ms, UTC]", "line": "int64", "gpu_name": "str",
              "run_id": "str", "source_file": "str"}
    return pd.DataFrame({c: pd.Series(dtype=dtypes.get(c, "float64")) for c in columns})


@dataclass
class _LogText:
    """One log file read as strings (:func:`_read_text`): ``table`` (None where the whole file
    is left out), the physical line of each row, the header variant, the skips so far."""

    path: Path
    kind: str
    variant: str
    table: pa.Table | None
    lines: np.ndarray
    skips: list[Skip]


def _variant(kind: str, header: list[str]) -> str | None:
    """The header variant of a ``kind`` ('gpu', 'cpu') log; None: an unknown header."""
    known = {"cpu": {"psutil": CPU_HEADER},
             "gpu": {"renamed": GPU_COLUMNS, "nvidia-smi": NVSMI_HEADER}}[kind]
    return next((name for name, names in known.items() if header == names), None)


def _read_text(path: Path, kind: str, strict: bool) -> _LogText:
    """Read a ``kind`` log's rows as strings. A folder, an unreadable, empty, header-only or
    header-less file, or an unknown header leaves the whole file out (one skip)."""
    raw, header, skip = _read_head(path, strict)
    variant = None if skip else _variant(kind, header)
    if not skip and variant is None:
        skip = _header_skip(path, header, strict)
    if skip:
        return _LogText(path, kind, "", None, np.zeros(0, dtype=np.int64), [skip])
    table, lines, skips = _read_rows(path, raw, _KINDS[kind][0], strict)
    return _LogText(path, kind, variant, table, lines, skips)


def _parse_text(text: _LogText, tz: str, strict: bool) -> ParsedLog:
    """The per-file path: a log read as strings, parsed with every problem recorded."""
    columns = OUTPUT_COLUMNS[text.kind]
    if text.table is None:
        return ParsedLog(text.path, _empty_frame(columns), text.skips)
    df, skips = _parse_table(text.path, text.table, text.lines, text.kind, tz, strict)
    return ParsedLog(text.path, df[columns], text.skips + skips, text.variant)


def read_gpu_log(path: str | Path, tz: str = DEFAULT_TZ, strict: bool = False) -> ParsedLog:
    """Parse one ``gpu-power-*.csv`` of either header variant.

    Returns samples with ``time_utc`` (tz-aware UTC), ``gpu_name`` and the numeric fields of
    the DL Training Profiling Dataset in its units (usage fractions, MiB, W, degC), plus
    ``line`` (1-based physical line). Unknown or missing headers yield an empty log with one
    file-level skip (or an error when ``strict``).
    """
    return _parse_text(_read_text(Path(path), "gpu", strict), tz, strict)


def read_cpu_log(path: str | Path, tz: str = DEFAULT_TZ, strict: bool = False) -> ParsedLog:
    """Parse one ``cpu-mem-usage-*.csv``: ``time_utc``, ``cpu_usage`` (%), ``memory_usage``
    (MB), ``cpu_temperature_c`` (degC), ``line``."""
    return _parse_text(_read_text(Path(path), "cpu", strict), tz, strict)


def discover_runs(raw_dir: str | Path) -> pd.DataFrame:
    """List runs under ``raw_dir`` as a table: environment, architecture, run, stamp, gpu_file,
    cpu_file (None when missing), run_id. Runs are numbered 0.. by stamp order within
    (environment, architecture)."""
    raw_dir = Path(raw_dir)
    rows = []
    for env_dir in sorted(p for p in raw_dir.iterdir() if p.is_dir()):
        for arch_dir in sorted(p for p in env_dir.iterdir() if p.is_dir()):
            stamps: dict[str, dict[str, Path]] = {}
            for f in arch_dir.iterdir():
                m = STAMP_RE.match(f.name)
                if m:
                    stamps.setdefault(m.group(2), {})[m.group(1)] = f
            for run, stamp in enumerate(sorted(stamps)):
                files = stamps[stamp]
                rows.append({
                    "environment": env_dir.name, "architecture": arch_dir.name, "run": run,
                    "stamp": stamp, "gpu_file": files.get("gpu-power"),
                    "cpu_file": files.get("cpu-mem-usage"),
                })
    runs = pd.DataFrame(rows, columns=["environment", "architecture", "run", "stamp",
                                       "gpu_file", "cpu_file"])
    runs["run_id"] = run_ids(runs)
    return runs


def run_ids(df: pd.DataFrame) -> pd.Series:
    """``'<environment>/<architecture>/<run:03d>'`` for each row of ``df``."""
    return (df["environment"].astype(str) + "/" + df["architecture"].astype(str) + "/"
            + df["run"].map("{:03d}".format))


@dataclass
class Seaa2023Logs:
    """All parsed logs of the published dataset.

    ``runs``: one row per discovered run (see :func:`discover_runs`) with ``n_gpu_samples`` and
    ``n_cpu_samples``. ``gpu`` / ``cpu``: samples of every run with ``run_id`` and
    ``source_file``. ``skips``: every recorded skip, with its ``run_id``.
    """

    runs: pd.DataFrame
    gpu: pd.DataFrame
    cpu: pd.DataFrame
    skips: pd.DataFrame


@dataclass
class _Batch:
    """The fast path's columns of one kind: every row of the files it parsed (output names;
    ``gpu_name`` as Arrow strings), and whether each file parsed cleanly."""

    columns: dict[str, np.ndarray]
    names: pa.LargeStringArray | None
    clean: np.ndarray


@dataclass
class _File:
    """One log of a run in :func:`read_logs`: where its rows come from (``rows``: its batch,
    first row there and row count, or ``frame``: parsed by the per-file path), its skips, and
    in strict mode its first error."""

    run_id: str
    kind: str
    rel: str
    present: bool = True
    text: _LogText | None = None
    rows: tuple[_Batch, int, int] | None = None
    frame: pd.DataFrame | None = None
    skips: list[dict] = field(default_factory=list)
    error: InputFormatError | None = None

    def record(self, skips: list[Skip]) -> None:
        self.skips.extend({"run_id": self.run_id, **asdict(s), "file": self.rel} for s in skips)


def _run_files(runs: pd.DataFrame, raw_dir: Path) -> list[_File]:
    """The GPU and CPU log of every run, in run order; a missing one is a recorded skip."""
    files = []
    for r in runs.itertuples():
        present = Path(r.gpu_file or r.cpu_file)
        for kind, path, name in (("gpu", r.gpu_file, "gpu-power"),
                                 ("cpu", r.cpu_file, "cpu-mem-usage")):
            if path is not None:
                files.append(_File(r.run_id, kind, str(Path(path).relative_to(raw_dir))))
                continue
            missing = (present.parent / f"{name}-{r.stamp}.csv").relative_to(raw_dir)
            files.append(_File(r.run_id, kind, str(missing), present=False, skips=[{
                "run_id": r.run_id, "file": str(missing), "line": None, "column": None,
                "reason": f"no {name} file for this stamp", "rows": 0}]))
    return files


def _map(fn: Callable[[T], R], items: list[T], workers: int) -> list[R]:
    """``fn`` of each item, by ``workers`` threads (1: in this thread). Arrow's CSV reader and
    compute kernels release the GIL, so the threads share the cores."""
    if workers <= 1 or len(items) <= 1:
        return [fn(item) for item in items]
    with ThreadPoolExecutor(max_workers=workers) as pool:
        return list(pool.map(fn, items))


def _read_texts(files: list[_File], raw_dir: Path, strict: bool, workers: int) -> None:
    """Read every present log as strings, ``workers`` threads in parallel."""
    def read(f: _File) -> None:
        try:
            f.text = _read_text(raw_dir / f.rel, f.kind, strict)
        except InputFormatError as err:  # strict only
            f.error = err

    _map(read, [f for f in files if f.present], workers)


def _implausible_rows(values: dict[str, np.ndarray]) -> np.ndarray:
    """Rows with any value outside :data:`VALUE_BOUNDS` (see :func:`_implausible`)."""
    n = len(next(iter(values.values())))
    bad = np.zeros(n, dtype=bool)
    for col, (low, high, _) in VALUE_BOUNDS.items():
        if col not in values:
            continue
        v = values[col]
        if col == "gpu_power_draw":
            high = bounds.max_power_w(values["gpu_max_power"], bounds.GPU_POWER_CEILING_W)
        if not (v.size and low <= v.min() and v.max() <= np.min(high)):  # else: all within
            bad |= bounds.outside(v, low, high)
    return bad


def _parse_batch(texts: list[_LogText], tz: str) -> _Batch:
    """Parse the rows of many logs of one kind at once (:mod:`helpers.readers.textcolumns`).
    A file is ``clean`` where every row parses, is in bounds and in order, with no long gap:
    then the per-file path would give the same rows and record nothing."""
    names, numeric, rename = _KINDS[texts[0].kind]
    table = pa.concat_tables([t.table for t in texts])
    sizes = np.array([t.table.num_rows for t in texts])
    starts = np.r_[0, np.cumsum(sizes)[:-1]]
    utc_ms, ok = textcolumns.parse_stamps(table.column("timestamp"), tz)
    ok &= bounds.stamps_in_range(np.where(ok, utc_ms, 0))
    values = {}
    for col, (unit, _) in numeric.items():
        values[col], col_ok = textcolumns.parse_numbers(table.column(col), unit)
        ok &= col_ok
    step = np.diff(utc_ms)
    jump = np.r_[False, (step <= 0) | (step > bounds.MAX_SAMPLE_GAP_S * MS_PER_S)]
    jump[starts] = False  # a file's first row has no step before it in the file
    clean = ~np.logical_or.reduceat(~ok | _implausible_rows(values) | jump, starts)
    columns: dict[str, np.ndarray] = {"time_utc": utc_ms}
    for col in names[1:]:
        if col in numeric:
            columns[rename.get(col, col)] = values[col] * numeric[col][1]
    columns["line"] = np.concatenate([t.lines for t in texts])
    gpu_names = None
    if "gpu_name" in names:
        gpu_names = pc.cast(pc.utf8_trim_whitespace(table.column("gpu_name")),
                            pa.large_string()).combine_chunks()
    return _Batch(columns, gpu_names, clean)


def _parse_files(files: list[_File], tz: str, strict: bool, workers: int) -> None:
    """Parse every log that was read: the fast path for all logs of one kind and header
    variant at once (a batch per thread of ``workers``), the per-file path (its skips
    recorded) for the rest."""
    read = [f for f in files if f.text is not None]
    fast = [f for f in read if f.text.table is not None and f.text.table.num_rows]
    groups = [[f for f in fast if (f.kind, f.text.variant) == key]
              for key in sorted({(f.kind, f.text.variant) for f in fast})]

    batches = _map(lambda group: _parse_batch([f.text for f in group], tz), groups, workers)
    for group, batch in zip(groups, batches, strict=True):
        first = 0
        for f, clean in zip(group, batch.clean, strict=True):
            n = f.text.table.num_rows
            if clean:
                f.rows = (batch, first, n)
            first += n
    for f in read:
        if f.rows is None:
            try:
                log = _parse_text(f.text, tz, strict)
            except InputFormatError as err:  # strict only
                f.error = err
                continue
            f.frame, skips = log.data, log.skips
        else:
            skips = f.text.skips
        f.record(skips)
        f.text = None  # the strings are no longer needed


def _str_column(values: pa.Array | pa.ChunkedArray) -> pd.Series:
    """Arrow strings as a pandas ``str`` column (no copy)."""
    dtype = pd.StringDtype("pyarrow", na_value=np.nan)
    return pd.Series(values.to_pandas(types_mapper={pa.large_string(): dtype}.get), dtype=dtype)


def _repeated(values: list[str], counts: list[int]) -> pa.Array:
    """Each of ``values`` repeated its count of times, as one Arrow string array."""
    which = np.repeat(np.arange(len(values), dtype=np.int32), counts)
    return pa.array(values, pa.large_string()).take(pa.array(which))


def _assemble(files: list[_File], kind: str) -> pd.DataFrame:
    """The samples of every ``kind`` log, in run order, with ``run_id`` and ``source_file``
    (columns as the per-file path gives them)."""
    columns = ["run_id", *OUTPUT_COLUMNS[kind], "source_file"]
    parts = [f for f in files if f.kind == kind
             and (f.rows is not None or (f.frame is not None and len(f.frame)))]
    if not parts:
        return _empty_frame(columns)
    counts = [f.rows[2] if f.rows else len(f.frame) for f in parts]

    def piece(f: _File, col: str) -> np.ndarray | pa.Array:
        if f.rows is not None:
            batch, first, n = f.rows
            if col == "gpu_name":
                return batch.names.slice(first, n)
            return batch.columns[col][first:first + n]
        if col == "gpu_name":
            return pa.array(f.frame[col].to_numpy(dtype=object), pa.large_string())
        if col == "time_utc":
            return f.frame[col].astype("int64").to_numpy()
        return f.frame[col].to_numpy()

    data: dict[str, object] = {"run_id": _str_column(_repeated([f.run_id for f in parts],
                                                               counts))}
    for col in OUTPUT_COLUMNS[kind]:
        if col == "gpu_name":
            data[col] = _str_column(pa.concat_arrays([piece(f, col) for f in parts]))
        elif col == "time_utc":
            ms = np.concatenate([piece(f, col) for f in parts]).view("datetime64[ms]")
            data[col] = pd.DatetimeIndex(ms).tz_localize("UTC")
        else:
            data[col] = np.concatenate([piece(f, col) for f in parts])
    data["source_file"] = _str_column(_repeated([f.rel for f in parts], counts))
    return pd.DataFrame(data, columns=columns, copy=False)  # fresh arrays: no copy


def _assemble_all(files: list[_File], workers: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The GPU and the CPU table (:func:`_assemble`), in two threads where ``workers`` > 1."""
    gpu_all, cpu_all = _map(lambda kind: _assemble(files, kind), ["gpu", "cpu"], workers)
    return gpu_all, cpu_all


def _sample_counts(runs: pd.DataFrame, files: list[_File], kind: str) -> pd.Series:
    """Samples per run in the ``kind`` table (0 for a run without any)."""
    counts = {f.run_id: f.rows[2] if f.rows else len(f.frame) for f in files
              if f.kind == kind and (f.rows or (f.frame is not None and len(f.frame)))}
    return runs["run_id"].map(pd.Series(counts, dtype="int64")).fillna(0)


def read_logs(raw_dir: str | Path, tz: str = DEFAULT_TZ, strict: bool = False,
              workers: int = 2) -> Seaa2023Logs:
    """Discover and parse every run under ``raw_dir``.

    The files are read as strings by ``workers`` threads (1: in this thread), then the rows
    of all logs of a kind are parsed at once (:mod:`helpers.readers.textcolumns`); a log with
    anything to record goes through the per-file path (:func:`read_gpu_log`,
    :func:`read_cpu_log`), which gives the same table and records each problem.

    Not ``strict`` (the default): every problem of a row, a cell or a whole file (unreadable,
    a folder, empty, unknown header) is a recorded skip and the other files are read; a run
    whose file is unusable keeps its place in ``runs`` with no samples from it. ``strict``:
    the first problem (in run order, GPU log first) raises :class:`InputFormatError` naming
    file, line and column."""
    raw_dir = Path(raw_dir)
    runs = discover_runs(raw_dir)
    if runs.empty:
        raise FileNotFoundError(f"no gpu-power-*.csv logs under {raw_dir}")
    files = _run_files(runs, raw_dir)
    _read_texts(files, raw_dir, strict, workers)
    _parse_files(files, tz, strict, workers)
    error = next((f.error for f in files if f.error is not None), None)
    if error is not None:
        raise error
    gpu_all, cpu_all = _assemble_all(files, workers)
    runs = runs.copy()
    runs["n_gpu_samples"] = _sample_counts(runs, files, "gpu")
    runs["n_cpu_samples"] = _sample_counts(runs, files, "cpu")
    skips = [s for f in files for s in f.skips]
    skip_df = pd.DataFrame(skips, columns=["run_id", "file", "line", "column", "reason", "rows"])
    return Seaa2023Logs(runs, gpu_all, cpu_all, skip_df)


METRICS_COLUMNS = {
    "train_environment": "environment", "architecture": "architecture", "run": "run",
    "training size": "train_size", "validation size": "val_size", "batch size": "batch_size",
    "GFLOPs": "gflops", "accuracy": "accuracy", "precision": "precision", "recall": "recall",
    "AUC": "auc", "trained epochs": "epochs", "total seen images": "images_seen",
    "f1-score": "f1",
}


def read_model_metrics(path: str | Path) -> pd.DataFrame:
    """Read ``interim/model_metrics.gzip`` (Parquet despite the name) with unit-free snake_case
    names: environment, architecture, run, train_size, val_size, batch_size, gflops, accuracy,
    precision, recall, auc, epochs, images_seen, f1."""
    path = Path(path)
    try:
        df = pd.read_parquet(path)
        if not isinstance(df.index, pd.RangeIndex):  # published file keeps the keys as index
            df = df.reset_index()
    except Exception as exc:  # pyarrow raises several types for a non-Parquet file
        raise InputFormatError(path, f"not a readable Parquet file ({exc})") from exc
    missing = [c for c in METRICS_COLUMNS if c not in df.columns]
    if missing:
        raise InputFormatError(path, f"missing columns {missing}")
    return df[list(METRICS_COLUMNS)].rename(columns=METRICS_COLUMNS)
