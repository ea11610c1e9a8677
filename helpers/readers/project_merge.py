"""Merge stage for the project's own raw format (runs written by :mod:`helpers.collect.sampler`).

GPU and CPU/RAM values already share one row per tick, so no join is needed. With GPUs the sampler
reads the host once per ``slow_period_s`` (docs/raw-format.md), leaving the CPU/RAM cells of the
rows between empty; ``cpu_match_gap_s`` is the time from each row to the nearest row with host
readings (0 on such rows; NaN beyond ``tolerance_s``), so RAM coverage means what it means for
the nearest join of the published logs. Each sample is labelled with its
phase and epoch from the run's events, and the run metadata becomes the run index.

Bad input (docs/raw-format.md#plausibility-bounds): every skip the reader records goes to the
skips table with its run. A run folder the reader rejects (:class:`InputFormatError`) is left
out with a recorded skip naming its file, line, column and reason, and the other runs are read;
``strict=True`` raises instead. Every run rejected raises.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from helpers.core import rules
from helpers.core.errors import InputFormatError
from helpers.readers import merge, project
from helpers.readers.merge import EVENT_COLUMNS, MergeOutputs

#: project raw column -> (profiling/extra column, scale)
COLUMN_MAP: dict[str, tuple[str, float]] = {
    "gpu_index": ("gpu_index", 1.0),
    "gpu_power_w": ("gpu_power_draw", 1.0),
    "gpu_power_instant_w": ("gpu_power_instant_w", 1.0),
    "gpu_energy_counter_j": ("gpu_energy_counter_j", 1.0),
    "gpu_usage_pct": ("gpu_usage", 0.01),
    "gpu_memory_usage_pct": ("gpu_memory_usage", 0.01),
    "gpu_memory_total_mb": ("gpu_total_memory", 1.0),
    "gpu_memory_used_mb": ("gpu_memory_used", 1.0),
    "gpu_power_limit_w": ("gpu_max_power", 1.0),
    "gpu_temperature_c": ("gpu_temperature", 1.0),
    "gpu_sm_clock_mhz": ("gpu_sm_clock_mhz", 1.0),
    "cpu_usage_pct": ("cpu_usage", 1.0),
    "system_ram_used_mb": ("memory_usage", 1.0),
    "process_cpu_pct": ("process_cpu_pct", 1.0),
    "process_rss_mb": ("process_rss_mb", 1.0),
    "cpu_energy_counter_j": ("cpu_energy_counter_j", 1.0),
}

#: metadata key -> run index column
METADATA_MAP = {
    "batch_size": "batch_size", "params": "params", "train_size": "train_size",
    "val_size": "val_size", "epochs_trained": "epochs", "epochs_planned": "epochs_planned",
    "accuracy": "accuracy", "f1": "f1", "input_size_px": "input_size_px",
    "gflops_per_image": "gflops", "images_per_epoch": "images_per_epoch",
    "dataset": "image_dataset", "device": "device", "seed": "seed",
}


def _cpu_tdp_and_cores(meta: dict) -> tuple[float, float]:
    """(TDP W, logical cores) from metadata (the reader has nulled implausible values)."""
    tdp = (meta.get("cpu_power") or {}).get("tdp_w")
    cores = (meta.get("host") or {}).get("logical_cores")
    return (float(tdp) if tdp else np.nan), (float(cores) if cores else np.nan)


def _info_number(info: object, key: str) -> float:
    """A number of an event's info dict; NaN where absent or not a finite number."""
    value = info.get(key) if isinstance(info, dict) else None
    if isinstance(value, int | float) and not isinstance(value, bool) and np.isfinite(value):
        return float(value)
    return np.nan


def _host_gap_s(t: np.ndarray, host: np.ndarray, tolerance_s: float) -> np.ndarray:
    """Per row: |time (s) to the nearest row with host readings|, NaN beyond ``tolerance_s`` or
    when no row has them. ``t`` must be non-decreasing."""
    th = t[host]
    if th.size == 0:
        return np.full(t.shape, np.nan)
    i = np.clip(np.searchsorted(th, t), 1, max(th.size - 1, 1))
    gap = np.minimum(np.abs(t - th[i - 1]), np.abs(th[np.minimum(i, th.size - 1)] - t))
    return np.where(gap <= tolerance_s, gap, np.nan)


def _samples(run: project.ProjectRun, run_id: str, tolerance_s: float) -> pd.DataFrame:
    """Samples in profiling units. CPU power is attributed to the training process tree:
    TDP × process CPU (% of one core) / (100 × logical cores), so that other work on a shared
    machine does not enter the run's energy (the raw file keeps the system-wide estimate)."""
    raw = run.samples
    out = pd.DataFrame({"run_id": run_id,
                        "time_utc": pd.to_datetime(raw["timestamp_ms"], unit="ms", utc=True)})
    out["gpu_name"] = raw["gpu_name"].fillna("none").replace("", "none").astype(str)
    for src, (dst, scale) in COLUMN_MAP.items():
        out[dst] = pd.to_numeric(raw[src], errors="coerce").astype("float64") * scale
    tdp_w, cores = _cpu_tdp_and_cores(run.metadata)
    out["cpu_power_w"] = rules.process_cpu_power_estimate_w(tdp_w, out["process_cpu_pct"], cores)
    host = out[["cpu_usage", "memory_usage", "process_rss_mb"]].notna().any(axis=1).to_numpy()
    t = pd.to_numeric(raw["monotonic_s"], errors="coerce").to_numpy(dtype=float)
    out["cpu_match_gap_s"] = _host_gap_s(t, host, tolerance_s)
    has_gpu = out["gpu_power_draw"].notna().any()
    out["device_power_w"] = out["gpu_power_draw"] if has_gpu else out["cpu_power_w"]
    out["source_file"] = str(Path(run.run_dir.parent.parent.name) / run.run_dir.parent.name
                             / run.run_dir.name / "samples.csv")
    return out


def _events(run: project.ProjectRun, run_id: str) -> pd.DataFrame:
    ev = run.events
    info = ev["info"] if "info" in ev else pd.Series([{}] * len(ev))
    return pd.DataFrame({
        "run_id": run_id,
        "time_utc": pd.to_datetime(ev["timestamp_ms"], unit="ms", utc=True),
        "event": ev["event"].astype(str),
        "epoch": pd.to_numeric(ev["epoch"], errors="coerce").astype("float64"),
        "val_accuracy": [_info_number(d, "val_accuracy") for d in info],
        "val_f1": [_info_number(d, "val_f1") for d in info],
    })


def _index_row(run: project.ProjectRun, run_id: str, env: str, arch: str, num: int) -> dict:
    meta = run.metadata
    row = {"run_id": run_id, "environment": env, "environment_name": env, "architecture": arch,
           "run": num, "status": meta.get("status", "unknown"),
           "return_code": meta.get("return_code"),
           "cpu_energy_method": rules.process_cpu_estimate_method(_cpu_tdp_and_cores(meta)[0])}
    for key, col in METADATA_MAP.items():
        row[col] = meta.get(key, np.nan)
    if row["status"] == "running":
        row["status"] = "incomplete: metadata still says running (killed?)"
    return row


def _relative(path: str | Path, root: Path) -> str:
    path = Path(path)
    return str(path.relative_to(root)) if path.is_relative_to(root) else str(path)


def merge_project(raw_root: Path, dataset: str,
                  tolerance_s: float = merge.DEFAULT_TOLERANCE_S,
                  strict: bool = False) -> MergeOutputs:
    """Read every run under ``raw_root`` and build the merge stage's outputs; ``tolerance_s``:
    furthest a row may be from a host reading (s) to count as covered (``cpu_match_gap_s``).
    A run the reader rejects is left out with a recorded skip (``strict``: raises)."""
    samples, events, index, skips = [], [], [], []
    run_dirs = project.discover_runs(raw_root)
    rejected: list[InputFormatError] = []
    for run_dir in run_dirs:
        env, arch, num = run_dir.parent.parent.name, run_dir.parent.name, int(run_dir.name)
        run_id = f"{env}/{arch}/{num:03d}"
        try:
            run = project.read_run(run_dir)
        except InputFormatError as err:
            if strict:
                raise
            rejected.append(err)
            skips.append({"run_id": run_id, "file": _relative(err.path, raw_root),
                          "line": err.line, "column": err.column,
                          "reason": f"run left out: {err.reason}", "rows": 0})
            continue
        samples.append(_samples(run, run_id, tolerance_s)
                       .assign(environment=env, architecture=arch, run=num))
        events.append(_events(run, run_id))
        index.append(_index_row(run, run_id, env, arch, num))
        skips.extend({"run_id": run_id, "file": _relative(s.file, raw_root), "line": s.line,
                      "column": s.column, "reason": s.reason, "rows": s.rows}
                     for s in run.skips)
    if rejected and not samples:
        raise InputFormatError(rejected[0].path, f"every run under {raw_root} was rejected "
                               f"({len(rejected)}); the first: {rejected[0].reason}",
                               line=rejected[0].line, column=rejected[0].column)
    if not samples:
        raise FileNotFoundError(f"no runs under {raw_root}: run notebook 01-collect first")
    all_samples = pd.concat(samples, ignore_index=True)
    all_events = pd.concat(events, ignore_index=True)[EVENT_COLUMNS]
    labelled = merge.label_phases(all_samples, all_events)
    labelled = merge.add_elapsed(labelled)
    profiling = merge.to_profiling_schema(labelled, dataset)
    run_index = pd.DataFrame(index)
    run_index["images_seen"] = run_index["epochs"] * run_index["images_per_epoch"]
    counts = pd.DataFrame({"run_id": run_index["run_id"]})
    counts["gpu_samples"] = counts["run_id"].map(profiling.groupby("run_id").size()).fillna(0)
    counts["matched"] = counts["run_id"].map(
        profiling["cpu_match_gap_s"].notna().groupby(profiling["run_id"]).sum()).fillna(0)
    counts["unmatched"] = counts["gpu_samples"] - counts["matched"]
    skip_df = pd.DataFrame(skips, columns=["run_id", "file", "line", "column", "reason", "rows"])
    return MergeOutputs(profiling, run_index, all_events, skip_df, counts.astype(
        {"gpu_samples": "int64", "matched": "int64", "unmatched": "int64"}))
