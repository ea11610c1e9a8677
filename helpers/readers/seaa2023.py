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
"""

from __future__ import annotations

import re
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from helpers.core import bounds
from helpers.core.errors import InputFormatError
from helpers.core.units import MS_PER_S
from helpers.readers import rawfile
from helpers.readers.rawfile import Skip

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
    body = raw[raw.index(b"\n") + 1:]
    if body and not body.endswith(b"\n"):
        skips.append(_fail(path, "last line not newline-terminated (torn write), left out",
                           body.count(b"\n") + 2, None, strict))
        body = body[:body.rfind(b"\n") + 1]
    body, bad_text = _clean_body(path, body, names, strict)
    skips.extend(bad_text)
    if not body.strip():  # nothing left but a torn line: pyarrow rejects an empty body
        table = pa.table({n: pa.array([], pa.string()) for n in names})
        return table, np.zeros(0, dtype=np.int64), skips
    table, kept, bad = rawfile.read_string_rows(path, body, names, quote=False)
    skips.extend(_fail(path, f"expected {len(names)} fields, found {found}", line, None, strict)
                 for line, found in bad)
    return table, kept, skips


NUMBER_RE = r"^[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$"
TIME_RE = r"^\d{4}-\d{2}-\d{2}[ T]\d{2}:\d{2}:\d{2}(\.\d{1,9})?$"


def _bad_rows(path: Path, column: pa.ChunkedArray, ok: np.ndarray, lines: np.ndarray,
              name: str, what: str, strict: bool) -> list[Skip]:
    return [_fail(path, f"{what} {column[int(i)].as_py()!r}", int(lines[i]), name, strict)
            for i in np.flatnonzero(~ok)]


def _null_where_bad(text: pa.ChunkedArray, ok: np.ndarray) -> pa.ChunkedArray:
    if ok.all():
        return text
    return pc.if_else(pa.array(ok), text.combine_chunks(), pa.scalar(None, pa.string()))


def _to_numeric(table: pa.Table, col: str, unit: str, lines: np.ndarray, path: Path,
                strict: bool) -> tuple[np.ndarray, np.ndarray, list[Skip]]:
    """Strip whitespace and the unit suffix, then parse floats (vectorised in Arrow). Rows whose
    text is not a number are flagged and recorded with their line and column."""
    raw = table.column(col)
    text = pc.utf8_trim_whitespace(raw)
    if unit:  # drop one trailing unit (plain string kernels: a regex per file costs more)
        cut = pc.utf8_slice_codeunits(text, 0, -len(unit))
        text = pc.utf8_trim_whitespace(pc.if_else(pc.ends_with(text, unit), cut, text))
    try:  # fast path: Arrow parses every row and all are finite (it accepts no finite value
        # that NUMBER_RE rejects); otherwise flag the rows NUMBER_RE rejects
        values = pc.cast(text, pa.float64()).to_numpy(zero_copy_only=False)
        if np.isfinite(values).all():
            return values, np.ones(len(values), dtype=bool), []
    except pa.ArrowInvalid:
        pass
    ok = pc.match_substring_regex(text, NUMBER_RE).to_numpy(zero_copy_only=False)
    values = pc.cast(_null_where_bad(text, ok), pa.float64()).to_numpy(zero_copy_only=False)
    return values, ok, _bad_rows(path, raw, ok, lines, col, "non-numeric value", strict)


def _cast_stamps(text: pa.ChunkedArray, ok: np.ndarray) -> pd.DatetimeIndex:
    """Naive stamps of ISO-like text (rows not ``ok`` -> NaT). Arrow parses all at once; a
    well-formed but impossible stamp (month 13, 29 February 2023) fails the whole column there,
    so pandas then parses row by row, impossible stamps becoming NaT."""
    try:
        stamps = pc.cast(_null_where_bad(text, ok), pa.timestamp("us"))
        return pd.DatetimeIndex(stamps.to_numpy(zero_copy_only=False))
    except pa.ArrowInvalid:
        values = pd.Series(text.to_numpy(zero_copy_only=False)).where(ok)
        parsed = pd.to_datetime(values, format="ISO8601", errors="coerce")
        return pd.DatetimeIndex(parsed).as_unit("us")


def _parse_time(table: pa.Table, lines: np.ndarray, tz: str, path: Path, strict: bool
                ) -> tuple[pd.DatetimeIndex, np.ndarray, list[Skip]]:
    """Parse local ISO-like stamps (``-`` or ``/`` date separators, optional fraction: Python's
    isoformat drops it when microseconds are 0) and convert them from ``tz`` to UTC (ms).
    Stamps outside :func:`helpers.core.bounds.stamps_in_range` are bad rows too."""
    raw = table.column("timestamp")
    text = pc.replace_substring(pc.utf8_trim_whitespace(raw), "/", "-")
    ok = pc.match_substring_regex(text, TIME_RE).to_numpy(zero_copy_only=False)
    local = _cast_stamps(text, ok)
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


def _read_head(path: Path, strict: bool) -> tuple[bytes, list[str] | None, Skip | None]:
    """Read the file (a UTF-8 byte-order mark dropped) and split its first line; a folder, an
    unreadable, empty or header-only file gives a skip."""
    try:
        raw = rawfile.read_bytes(path)
    except InputFormatError as err:
        return b"", None, _fail(path, err.reason, None, None, strict)
    if not raw.strip():
        return raw, None, _fail(path, "empty file", None, None, strict)
    first, _, rest = raw.partition(b"\n")
    header = [c.strip() for c in first.decode("utf-8", errors="replace").split(",")]
    if not rest.strip() and not header[0][:2].isdigit():
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


def _parse_body(path: Path, raw: bytes, names: list[str], numeric: dict[str, tuple[str, float]],
                rename: dict[str, str], tz: str, strict: bool
                ) -> tuple[pd.DataFrame, list[Skip]]:
    """Parse rows, numeric columns and stamps; drop (and record) bad and out-of-order rows;
    set implausible values to NaN (recorded)."""
    table, lines, skips = _read_rows(path, raw, names, strict)
    time_utc, ok, s = _parse_time(table, lines, tz, path, strict)
    skips.extend(s)
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


def _empty_log(path: Path, columns: list[str], skip: Skip) -> ParsedLog:
    return ParsedLog(path, _empty_frame(columns), [skip])


def read_gpu_log(path: str | Path, tz: str = DEFAULT_TZ, strict: bool = False) -> ParsedLog:
    """Parse one ``gpu-power-*.csv`` of either header variant.

    Returns samples with ``time_utc`` (tz-aware UTC), ``gpu_name`` and the numeric fields of
    the DL Training Profiling Dataset in its units (usage fractions, MiB, W, degC), plus
    ``line`` (1-based physical line). Unknown or missing headers yield an empty log with one
    file-level skip (or an error when ``strict``).
    """
    path = Path(path)
    out_cols = ["time_utc", *GPU_COLUMNS[1:], "line"]
    raw, header, skip = _read_head(path, strict)
    if skip:
        return _empty_log(path, out_cols, skip)
    if header == GPU_COLUMNS:
        variant = "renamed"
    elif header == NVSMI_HEADER:
        variant = "nvidia-smi"
    else:
        return _empty_log(path, out_cols, _header_skip(path, header, strict))
    df, skips = _parse_body(path, raw, GPU_COLUMNS, GPU_NUMERIC, {}, tz, strict)
    return ParsedLog(path, df[out_cols], skips, variant)


def read_cpu_log(path: str | Path, tz: str = DEFAULT_TZ, strict: bool = False) -> ParsedLog:
    """Parse one ``cpu-mem-usage-*.csv``: ``time_utc``, ``cpu_usage`` (%), ``memory_usage``
    (MB), ``cpu_temperature_c`` (degC), ``line``."""
    path = Path(path)
    out_cols = ["time_utc", *CPU_COLUMNS.values(), "line"]
    raw, header, skip = _read_head(path, strict)
    if skip:
        return _empty_log(path, out_cols, skip)
    if header != CPU_HEADER:
        return _empty_log(path, out_cols, _header_skip(path, header, strict))
    numeric = {c: ("", 1.0) for c in CPU_COLUMNS}
    df, skips = _parse_body(path, raw, CPU_HEADER, numeric, CPU_COLUMNS, tz, strict)
    return ParsedLog(path, df[out_cols], skips, "psutil")


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
class _ParsedRun:
    """One run's GPU and CPU samples (None: no file), its skips, and in strict mode the first
    error as (file, reason, line, column): an InputFormatError does not survive the trip back
    from a worker process (its pickled form lacks the constructor's arguments)."""

    gpu: pd.DataFrame | None
    cpu: pd.DataFrame | None
    skips: list[dict]
    error: tuple[str, str, int | None, str | None] | None = None


def _parse_run(args: tuple[str, Path | None, Path | None, str, str, bool]) -> _ParsedRun:
    """Parse one run's GPU and CPU logs (runs in a worker process)."""
    run_id, gpu_file, cpu_file, raw_dir, tz, strict = args
    frames: list[pd.DataFrame | None] = []
    skips: list[dict] = []
    present = Path(gpu_file or cpu_file)
    stamp = STAMP_RE.match(present.name).group(2)
    for path, reader, name in ((gpu_file, read_gpu_log, "gpu-power"),
                               (cpu_file, read_cpu_log, "cpu-mem-usage")):
        if path is None:
            frames.append(None)
            missing = (present.parent / f"{name}-{stamp}.csv").relative_to(raw_dir)
            skips.append({"run_id": run_id, "file": str(missing), "line": None, "column": None,
                          "reason": f"no {name} file for this stamp", "rows": 0})
            continue
        try:
            log = reader(path, tz, strict)
        except InputFormatError as err:  # strict only: raised again by read_logs
            return _ParsedRun(None, None, [], (str(err.path), err.reason, err.line, err.column))
        rel = str(Path(path).relative_to(raw_dir))
        df = log.data
        df.insert(0, "run_id", run_id)
        df["source_file"] = rel
        for col in ("run_id", "source_file", "gpu_name"):
            if col in df:
                df[col] = df[col].astype("category")
        frames.append(df)
        skips.extend({"run_id": run_id, **asdict(s), "file": rel} for s in log.skips)
    return _ParsedRun(frames[0], frames[1], skips)


def _concat(parts: list[pd.DataFrame]) -> pd.DataFrame:
    df = pd.concat(parts, ignore_index=True)
    for col in ("run_id", "source_file", "gpu_name"):
        if col in df:
            df[col] = df[col].astype(str)
    return df


def read_logs(raw_dir: str | Path, tz: str = DEFAULT_TZ, strict: bool = False,
              workers: int = 2) -> Seaa2023Logs:
    """Discover and parse every run under ``raw_dir``, ``workers`` processes in parallel
    (1: in this process).

    Not ``strict`` (the default): every problem of a row, a cell or a whole file (unreadable,
    a folder, empty, unknown header) is a recorded skip and the other files are read; a run
    whose file is unusable keeps its place in ``runs`` with no samples from it. ``strict``:
    the first problem raises :class:`InputFormatError` naming file, line and column."""
    raw_dir = Path(raw_dir)
    runs = discover_runs(raw_dir)
    if runs.empty:
        raise FileNotFoundError(f"no gpu-power-*.csv logs under {raw_dir}")
    jobs = [(r.run_id, r.gpu_file, r.cpu_file, str(raw_dir), tz, strict)
            for r in runs.itertuples()]
    if workers > 1:
        with ProcessPoolExecutor(max_workers=workers) as pool:
            parsed = list(pool.map(_parse_run, jobs, chunksize=8))
    else:
        parsed = [_parse_run(j) for j in jobs]
    error = next((p.error for p in parsed if p.error is not None), None)
    if error is not None:
        file, reason, line, column = error
        raise InputFormatError(file, reason, line=line, column=column)
    gpu_parts = [p.gpu for p in parsed if p.gpu is not None]
    gpu_all = _concat(gpu_parts) if gpu_parts else _empty_frame(
        ["run_id", "time_utc", *GPU_COLUMNS[1:], "line", "source_file"])
    cpu_parts = [p.cpu for p in parsed if p.cpu is not None]
    cpu_all = _concat(cpu_parts) if cpu_parts else _empty_frame(
        ["run_id", "time_utc", *CPU_COLUMNS.values(), "line", "source_file"])
    skips = [s for p in parsed for s in p.skips]
    runs = runs.copy()
    runs["n_gpu_samples"] = runs["run_id"].map(gpu_all.groupby("run_id").size()).fillna(0)
    runs["n_cpu_samples"] = runs["run_id"].map(cpu_all.groupby("run_id").size()).fillna(0)
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
