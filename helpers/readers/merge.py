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


def merge_nearest(gpu: pd.DataFrame, cpu: pd.DataFrame,
                  tolerance_s: float = DEFAULT_TOLERANCE_S,
                  cpu_columns: tuple[str, ...] = ("cpu_usage", "memory_usage", "cpu_temperature_c"),
                  ) -> MergeResult:
    """Join each GPU sample to the nearest CPU/RAM sample of the same run within
    ``tolerance_s`` (``pandas.merge_asof``, direction 'nearest'). Unmatched GPU samples keep
    NaN CPU fields; ``cpu_match_gap_s`` holds |Δt| of each match. Both frames need ``run_id``
    and tz-aware ``time_utc``."""
    if tolerance_s < 0:
        raise ValueError("tolerance_s must be >= 0")
    require_columns(gpu, ["run_id", "time_utc"], "GPU samples")
    require_columns(cpu, ["run_id", "time_utc", *cpu_columns], "CPU/RAM samples")
    left = gpu.reset_index(drop=True).rename_axis("_order").reset_index()
    left = left.sort_values("time_utc", kind="stable")
    right = cpu[["run_id", "time_utc", *cpu_columns]].copy()
    right["_cpu_time"] = right["time_utc"]
    right = right.sort_values("time_utc", kind="stable")
    merged = pd.merge_asof(
        left, right, on="time_utc", by="run_id", direction="nearest",
        tolerance=pd.Timedelta(seconds=tolerance_s),
    )
    merged = merged.sort_values("_order").drop(columns="_order").reset_index(drop=True)
    gap = (merged["_cpu_time"] - merged["time_utc"]).abs().dt.total_seconds()
    merged["cpu_match_gap_s"] = gap.astype("float64")
    merged = merged.drop(columns="_cpu_time")
    matched = merged["cpu_match_gap_s"].notna()
    counts = pd.DataFrame({
        "gpu_samples": merged.groupby("run_id", sort=True).size(),
        "matched": matched.groupby(merged["run_id"]).sum(),
    })
    counts["unmatched"] = counts["gpu_samples"] - counts["matched"]
    counts["cpu_samples"] = cpu.groupby("run_id").size().reindex(counts.index).fillna(0)
    counts = counts.astype("int64").reset_index()
    return MergeResult(merged, counts)


def add_elapsed(samples: pd.DataFrame) -> pd.DataFrame:
    """Add ``elapsed_s``: seconds since each run's first sample. Returns a new frame."""
    t = samples["time_utc"]
    first = t.groupby(samples["run_id"]).transform("min")
    out = samples.copy()
    out["elapsed_s"] = (t - first).dt.total_seconds().astype("float64")
    return out


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
    out = samples.rename(columns={"environment": "train_strategy"}).copy()
    out["timestamp"] = out["time_utc"].astype("datetime64[ms, UTC]").astype("int64")
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
