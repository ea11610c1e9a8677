"""Merge stage: join GPU samples with the nearest CPU/RAM sample, label runs, phases and epochs,
and export the DL Training Profiling Dataset schema (plus extra columns)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from helpers.core import datasets, io
from helpers.core.schema import PROFILING_COLUMNS, SAMPLE_EXTRA_COLUMNS, require_columns

#: Default nearest-match tolerance (s) for ~1 Hz logs.
DEFAULT_TOLERANCE_S = 1.0


EVENT_COLUMNS = ["run_id", "time_utc", "event", "epoch", "val_accuracy", "val_f1"]


@dataclass
class MergeOutputs:
    """What the merge stage produces (see module docstring). ``source_columns``: for per-run
    sources (CodeCarbon), what became of each column of the files (written to
    ``interim/source_columns.csv``); None for the sample formats, whose columns are fixed."""

    profiling: pd.DataFrame
    run_index: pd.DataFrame
    events: pd.DataFrame
    skips: pd.DataFrame
    match_counts: pd.DataFrame
    source_columns: pd.DataFrame | None = None

    def write(self, dataset: str) -> dict[str, Path]:
        """Write every table atomically under ``data_outputs/<dataset>/interim`` (a stale
        ``source_columns.csv`` of another source is removed)."""
        d = datasets.output_dir(dataset, "interim")
        out = {
            "profiling": io.write_parquet(self.profiling, d / "profiling.parquet"),
            "run_index": io.write_parquet(self.run_index, d / "run_index.parquet"),
            "events": io.write_parquet(self.events, d / "events.parquet"),
            "skips": io.write_csv(self.skips, d / "skips.csv"),
            "match_counts": io.write_csv(self.match_counts, d / "match_counts.csv"),
        }
        columns = d / "source_columns.csv"
        if self.source_columns is not None:
            out["source_columns"] = io.write_csv(self.source_columns, columns)
        elif columns.exists():
            columns.unlink()
        return out


#: Columns of ``skips.csv``.
SKIP_COLUMNS = ["run_id", "file", "line", "column", "reason", "rows"]


def empty_profiling() -> pd.DataFrame:
    """A profiling table without samples (a per-run source): the schema's columns, typed."""
    text = {"train_strategy", "architecture", "gpu_name", "dataset", "run_id", "phase",
            "source_file"}
    dtypes = {"run": "int64", "timestamp": "int64", "time_utc": "datetime64[ms, UTC]",
              **{c: "str" for c in text}}
    cols = [*PROFILING_COLUMNS, *SAMPLE_EXTRA_COLUMNS]
    return pd.DataFrame({c: pd.Series(dtype=dtypes.get(c, "float64")) for c in cols})


def empty_events() -> pd.DataFrame:
    """An events table without events, typed."""
    return pd.DataFrame({"run_id": pd.Series(dtype="str"),
                         "time_utc": pd.Series(dtype="datetime64[ms, UTC]"),
                         "event": pd.Series(dtype="str"), "epoch": pd.Series(dtype="float64"),
                         "val_accuracy": pd.Series(dtype="float64"),
                         "val_f1": pd.Series(dtype="float64")})


@dataclass
class MergeResult:
    """Merged samples plus per-run match counts (``matched``, ``unmatched``, ``cpu_samples``)."""

    samples: pd.DataFrame
    match_counts: pd.DataFrame


def _stamps(times: pd.Series, unit: str, what: str) -> np.ndarray:
    """Integer stamps of ``times`` in ``unit``; NaT is an error (as in ``merge_asof``)."""
    if times.isna().any():
        raise ValueError(f"{what} have missing time stamps (time_utc)")
    return times.dt.as_unit(unit).astype("int64").to_numpy()


def _run_codes(gpu_runs: pd.Series, cpu_runs: pd.Series
               ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(GPU rows' run codes, CPU rows' run codes (-1: a run without GPU rows), the GPU run
    labels by code, each GPU run's CPU row count)."""
    gpu_codes, labels = pd.factorize(gpu_runs)
    cpu_codes, cpu_labels = pd.factorize(cpu_runs)
    to_gpu = np.append(pd.Index(labels).get_indexer(cpu_labels), -1)  # code -1: no run_id
    cpu_codes = to_gpu[cpu_codes]
    cpu_counts = np.bincount(cpu_codes[cpu_codes >= 0], minlength=len(labels))
    return gpu_codes, cpu_codes, np.asarray(labels), cpu_counts


def _nearest_rows(g_code: np.ndarray, g_t: np.ndarray, c_code: np.ndarray, c_t: np.ndarray,
                  tolerance: int) -> np.ndarray:
    """For each GPU row, the CPU row of the same run (code) nearest in time within
    ``tolerance`` (-1: none). Ties go to the earlier CPU sample; among CPU samples with one
    stamp, the last before a GPU sample and the first after it count (``merge_asof``'s
    'nearest'). Rows are found by one sorted key per row, run code x span + time."""
    rows = np.flatnonzero(c_code >= 0)
    if not rows.size or not g_t.size:
        return np.full(g_t.shape, -1, dtype=np.int64)
    if rows.size == c_code.size:  # every CPU row belongs to a GPU run: no copy
        rows = slice(None)
    t0 = min(int(g_t.min()), int(c_t[rows].min()))
    span = max(int(g_t.max()), int(c_t[rows].max())) - t0 + 1
    if span * (int(max(g_code.max(), c_code.max())) + 2) >= 2**62:
        raise ValueError("time stamps span too long a time to join")
    c_key = c_code[rows] * span + (c_t[rows] - t0)
    order = np.arange(c_code.size)[rows]
    if np.any(np.diff(c_key) < 0):
        by_key = np.argsort(c_key, kind="stable")
        order, c_key = order[by_key], c_key[by_key]
    g_low = g_code * span  # a run's keys: g_low .. g_low + span - 1
    g_key = g_low + (g_t - t0)
    last = len(c_key) - 1
    back = np.searchsorted(c_key, g_key, side="right") - 1
    fwd = back + 1  # the first CPU key >= the GPU key: past equal keys, if any
    same = np.flatnonzero(back >= 0)
    same = same[c_key[back[same]] == g_key[same]]
    fwd[same] = np.searchsorted(c_key, g_key[same], side="left")
    b_key, f_key = c_key[np.maximum(back, 0)], c_key[np.minimum(fwd, last)]
    b_gap, f_gap = g_key - b_key, f_key - g_key
    in_run = g_code >= 0
    b_ok = in_run & (back >= 0) & (b_key >= g_low) & (b_gap <= tolerance)
    f_ok = in_run & (fwd <= last) & (f_key < g_low + span) & (f_gap <= tolerance)
    use_b = b_ok & (~f_ok | (b_gap <= f_gap))
    pick = np.where(use_b, back, np.where(f_ok, fwd, -1))
    return np.where(pick >= 0, order[np.maximum(pick, 0)], -1)


def merge_nearest(gpu: pd.DataFrame, cpu: pd.DataFrame,
                  tolerance_s: float = DEFAULT_TOLERANCE_S,
                  cpu_columns: tuple[str, ...] = ("cpu_usage", "memory_usage", "cpu_temperature_c"),
                  ) -> MergeResult:
    """Join each GPU sample to the nearest CPU/RAM sample of the same run within
    ``tolerance_s`` (as ``pandas.merge_asof`` with direction 'nearest', by ``run_id``; a tie
    goes to the earlier CPU sample), in the GPU samples' order. Unmatched GPU samples keep NaN
    CPU fields; ``cpu_match_gap_s`` holds |Δt| of each match. Both frames need ``run_id`` and
    ``time_utc`` (datetimes of one time zone, no NaT)."""
    if tolerance_s < 0:
        raise ValueError("tolerance_s must be >= 0")
    require_columns(gpu, ["run_id", "time_utc"], "GPU samples")
    require_columns(cpu, ["run_id", "time_utc", *cpu_columns], "CPU/RAM samples")
    both = [c for c in cpu_columns if c in gpu.columns]
    if both:
        raise ValueError(f"GPU samples already have CPU columns {both}")
    unit = "ns" if gpu["time_utc"].dt.unit != cpu["time_utc"].dt.unit else gpu["time_utc"].dt.unit
    g_code, c_code, labels, cpu_counts = _run_codes(gpu["run_id"], cpu["run_id"])
    g_t = _stamps(gpu["time_utc"], unit, "GPU samples")
    c_t = _stamps(cpu["time_utc"], unit, "CPU/RAM samples")
    tolerance = int(pd.Timedelta(seconds=tolerance_s).as_unit(unit) / pd.Timedelta(1, unit))
    match = _nearest_rows(g_code, g_t, c_code, c_t, tolerance)
    hit = match >= 0
    merged = gpu.reset_index(drop=True)
    for col in cpu_columns:
        merged[col] = pd.api.extensions.take(cpu[col].to_numpy(), match, allow_fill=True)
    gap = np.zeros(len(g_t), dtype=np.int64)
    gap[hit] = np.abs(c_t[match[hit]] - g_t[hit])
    gap_s = pd.TimedeltaIndex(gap.view(f"timedelta64[{unit}]")).total_seconds().to_numpy()
    merged["cpu_match_gap_s"] = np.where(hit, gap_s, np.nan)
    order = np.argsort(labels)
    valid = g_code >= 0
    gpu_samples = np.bincount(g_code[valid], minlength=len(labels))[order]
    matched = np.bincount(g_code[valid & hit], minlength=len(labels))[order]
    counts = pd.DataFrame({
        "run_id": pd.Series(labels[order], dtype=gpu["run_id"].dtype),
        "gpu_samples": gpu_samples, "matched": matched, "unmatched": gpu_samples - matched,
        "cpu_samples": cpu_counts[order]}).astype({c: "int64" for c in (
            "gpu_samples", "matched", "unmatched", "cpu_samples")})
    return MergeResult(merged, counts)


def attach_run_columns(samples: pd.DataFrame, runs: pd.DataFrame,
                       columns: list[str]) -> pd.DataFrame:
    """``samples`` with ``columns`` of ``runs`` (one row per ``run_id``) appended by
    ``run_id``: a many-to-one left join in the samples' order (missing values for a run not in
    ``runs``). Returns a new frame."""
    if not runs["run_id"].is_unique:
        raise ValueError("runs must have one row per run_id")
    codes, labels = pd.factorize(samples["run_id"])
    row = np.append(pd.Index(runs["run_id"]).get_indexer(labels), -1)[codes]
    new = {}
    for col in columns:
        column = runs[col]
        extension = isinstance(column.dtype, pd.api.extensions.ExtensionDtype)  # e.g. str
        values = column.array if extension else column.to_numpy()  # numpy: NaN fills, upcast
        new[col] = pd.api.extensions.take(values, row, allow_fill=True)
    return samples.assign(**new)


def add_elapsed(samples: pd.DataFrame) -> pd.DataFrame:
    """Add ``elapsed_s``: seconds since each run's first sample. Returns a new frame."""
    t = samples["time_utc"]
    codes, _ = pd.factorize(samples["run_id"])
    missing = t.isna().to_numpy()
    stamps = np.where(missing, np.iinfo(np.int64).max, t.astype("int64").to_numpy())
    first = pd.Series(stamps).groupby(codes).transform("min").to_numpy()
    since = np.where(missing, 0, stamps - first).view(f"timedelta64[{t.dt.unit}]")
    elapsed = pd.TimedeltaIndex(since).total_seconds().to_numpy(dtype="float64")
    return samples.assign(elapsed_s=np.where((codes >= 0) & ~missing, elapsed, np.nan))


#: Phase events that happen once per run, and once per epoch (docs/raw-format.md#eventscsv).
ONCE_PER_RUN = ("run_start", "idle_start", "idle_end", "warmup_start", "tail_start", "run_end")
ONCE_PER_EPOCH = ("epoch_start", "eval_start", "epoch_end")


def phase_event_problems(names: np.ndarray, epochs: np.ndarray, times_s: np.ndarray
                         ) -> tuple[dict[int, str], dict[int, str]]:
    """Problems of one run's events, in time order: (events to leave out, events to note),
    each position -> reason. Left out: a phase event repeated for the run (or for its epoch).
    Noted (per-epoch energies leave the epoch out): an epoch whose ``epoch_end`` comes before
    its ``epoch_start``, and one with a start but no end or the reverse, but for the last
    epoch of a run without ``run_end`` (a run stopped there: its status says so)."""
    names = np.asarray(names, dtype=object).astype(str)
    epochs = np.asarray(epochs, dtype=float)
    t = np.asarray(times_s, dtype=float)
    per_epoch = np.isin(names, ONCE_PER_EPOCH)
    key = pd.DataFrame({"event": names, "epoch": np.where(per_epoch, epochs, -1.0)})
    repeat = key.duplicated().to_numpy() & np.isin(names, ONCE_PER_RUN + ONCE_PER_EPOCH)
    drop = {int(i): f"{names[i]} repeated" + (f" for epoch {epochs[i]:g}" if per_epoch[i]
                                              else "") + ": left out"
            for i in np.flatnonzero(repeat)}
    notes: dict[int, str] = {}
    alive = ~repeat
    numbered = np.unique(epochs[np.isfinite(epochs) & per_epoch])
    stopped = "run_end" not in names
    for e in numbered:
        start = np.flatnonzero(alive & (names == "epoch_start") & (epochs == e))
        end = np.flatnonzero(alive & (names == "epoch_end") & (epochs == e))
        if start.size and end.size and t[end[0]] < t[start[0]]:
            notes[int(end[0])] = (f"epoch {e:g} ends before it starts: left out of per-epoch "
                                  "energies")
        elif start.size and not end.size and not (stopped and e == numbered[-1]):
            notes[int(start[0])] = (f"epoch {e:g} has epoch_start but no epoch_end: left out "
                                    "of per-epoch energies")
        elif end.size and not start.size:
            notes[int(end[0])] = (f"epoch {e:g} has epoch_end but no epoch_start: left out "
                                  "of per-epoch energies")
    return drop, notes


def label_phases(samples: pd.DataFrame, events: pd.DataFrame) -> pd.DataFrame:
    """Label each sample with the ``phase`` and ``epoch`` of the latest event at or before it,
    per run. ``events`` needs run_id, time_utc, event, epoch; events named ``<phase>_start``
    open a phase (``epoch_start`` opens 'train', ``eval_start`` 'eval', ``idle_start`` 'idle',
    ``warmup_start`` 'warmup'); ``*_end`` and ``run_end`` close it (phase 'between')."""
    require_columns(events, ["run_id", "time_utc", "event", "epoch"], "events")
    ev = events[["run_id", "time_utc", "event", "epoch"]].copy()
    phase = ev["event"].str.removesuffix("_start")
    phase = phase.where(ev["event"].str.endswith("_start"), "between")
    ev["phase"] = phase.replace({"epoch": "train", "run": "between"})
    ev["epoch"] = ev["epoch"].astype("float64")
    ev = ev.sort_values("time_utc", kind="stable").rename(columns={"time_utc": "_ev_time"})
    left = samples.reset_index(drop=True).rename_axis("_order").reset_index()
    left = left.drop(columns=[c for c in ("phase", "epoch") if c in left.columns])
    left = left.sort_values("time_utc", kind="stable")
    merged = pd.merge_asof(left, ev[["run_id", "_ev_time", "phase", "epoch"]],
                           left_on="time_utc", right_on="_ev_time", by="run_id",
                           direction="backward")
    # an epoch number stays attached through its eval phase, not past the epoch's end
    merged.loc[merged["phase"] == "between", "epoch"] = np.nan
    return merged.sort_values("_order").drop(columns=["_order", "_ev_time"]).reset_index(
        drop=True)


def to_profiling_schema(samples: pd.DataFrame, dataset: str) -> pd.DataFrame:
    """Export merged samples in the DL Training Profiling Dataset schema, exact field names and
    units (timestamp as int64 ms since the Unix epoch, UTC), followed by the extra columns of
    :data:`helpers.core.schema.SAMPLE_EXTRA_COLUMNS` that the source has. ``samples`` must hold
    environment, architecture, run and the profiling fields."""
    out = samples.rename(columns={"environment": "train_strategy"})
    out["timestamp"] = out["time_utc"].dt.as_unit("ms").astype("int64")
    out["dataset"] = dataset
    if "gpu_index" not in out.columns:
        out["gpu_index"] = 0
    if "device_power_w" not in out.columns:
        out["device_power_w"] = out["gpu_power_draw"]
    for col in ("epoch", "phase"):
        if col not in out.columns:
            out[col] = np.nan
    require_columns(out, PROFILING_COLUMNS, "merged samples")
    extras = [c for c in SAMPLE_EXTRA_COLUMNS if c in out.columns]
    return out[[*PROFILING_COLUMNS, *extras]]
