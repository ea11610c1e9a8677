"""Per-run and per-epoch tables from merged samples (the clean stage's computations).

Two windows per run (docs/methods.md#energy-windows, :mod:`helpers.core.windows`):

* the run window (columns without prefix: ``energy_j``, ``duration_s``, ``gpu_power_mean_w``,
  ...): each series from its first to its last valid sample, idle lead-in and tail included;
* the training window (columns ``training_*``): :func:`helpers.core.windows.training_window`
  (``warmup_start`` or the first ``epoch_start`` to the last ``epoch_end``) where the run has
  those events, else the whole run (``training_window`` says which), with its edges on the
  samples' clock (``training_start_s``, ``training_end_s``: seconds from the first sample).

Energy per component, in either window, integrated by :mod:`helpers.core.energy` with the rules
and method tags of :mod:`helpers.core.rules`, the same as the grid's ``emissions.csv``:
* GPU: NVML counter difference where every GPU has ``gpu_energy_counter_j`` readings, else the
  trapezoid of ``gpu_power_draw`` on real timestamps (kept beside the counter as a check).
* CPU: RAPL counter difference where present, else the trapezoid of ``cpu_power_w`` (an estimate
  whose method the run metadata names), else NaN with the reason.
* RAM: Green Algorithms model on process RSS where recorded, else on system RAM used (both MiB).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from helpers.core import energy, rules, windows
from helpers.core.units import MS_PER_S

GPU_UNMEASURED_REASON = "no GPU power samples"
CPU_UNMEASURED_REASON = "no CPU power or energy data in the source"
RAM_UNMEASURED_REASON = "fewer than two RAM samples"


#: Numeric columns the per-run computations read (NaN where a table lacks one).
_NUMERIC = ("gpu_power_draw", "gpu_energy_counter_j", "cpu_energy_counter_j", "cpu_power_w",
            "process_rss_mb", "memory_usage", "gpu_max_power", "gpu_usage", "gpu_memory_usage",
            "gpu_temperature", "cpu_usage")


class _Run:
    """One run's samples as numpy arrays (reading a DataFrame column by column costs more than
    the computations on one run): the numeric columns as floats, ``gpu_index`` as stored
    (None: no such column), ``times`` (tz-aware) and ``t`` (s since the Unix epoch, whole
    ms)."""

    def __init__(self, columns: dict[str, np.ndarray], gpu_index: np.ndarray | None,
                 times: pd.api.extensions.ExtensionArray, t: np.ndarray) -> None:
        self.columns, self.gpu_index, self.times, self.t = columns, gpu_index, times, t

    @classmethod
    def of(cls, samples: pd.DataFrame) -> _Run:
        """The arrays of a table of samples (one run, or many to be cut by :meth:`rows`)."""
        columns = {c: samples[c].to_numpy(dtype=float) for c in _NUMERIC if c in samples}
        gpu_index = samples["gpu_index"].to_numpy() if "gpu_index" in samples else None
        times = samples["time_utc"].array
        return cls(columns, gpu_index, times, _event_seconds(samples["time_utc"]))

    def __len__(self) -> int:
        return len(self.t)

    def rows(self, sel: slice | np.ndarray) -> _Run:
        """The rows ``sel`` (a slice: views, no copy)."""
        return _Run({c: v[sel] for c, v in self.columns.items()},
                    None if self.gpu_index is None else self.gpu_index[sel], self.times[sel],
                    self.t[sel])

    def col(self, name: str) -> np.ndarray:
        """A numeric column (NaN where the table has none)."""
        values = self.columns.get(name)
        return np.full(len(self.t), np.nan) if values is None else values


def _gpu_energy(t: np.ndarray, run: _Run, window: windows.Window | None = None
                ) -> tuple[float, str, float]:
    """(energy J, method, trapezoid J) summed over the run's GPUs, over ``window`` (None: each
    series over its own samples)."""
    gpu_index = run.gpu_index if run.gpu_index is not None else np.zeros(len(t))
    power, counter = run.col("gpu_power_draw"), run.col("gpu_energy_counter_j")
    if len(gpu_index) and (gpu_index[0] == gpu_index).all():  # one GPU: no selection
        per_gpu = [(t, power, counter)]
    else:
        per_gpu = [(t[sel], power[sel], counter[sel])
                   for sel in (gpu_index == g for g in pd.unique(gpu_index))]
    return energy.gpu_energy_j(per_gpu, GPU_UNMEASURED_REASON, window)


def _cpu_energy(t: np.ndarray, run: _Run, estimate_method: str | None,
                window: windows.Window | None = None) -> tuple[float, str]:
    return energy.cpu_energy_j(t, run.col("cpu_energy_counter_j"), run.col("cpu_power_w"),
                               estimate_method, CPU_UNMEASURED_REASON, window)


def _ram_energy(t: np.ndarray, run: _Run) -> tuple[float, str]:
    rss = run.col("process_rss_mb")
    basis, used_mib = (rules.PROCESS_RSS, rss) if np.isfinite(rss).sum() >= 2 else (
        rules.SYSTEM_RAM_USED, run.col("memory_usage"))
    return energy.ram_energy_j(t, used_mib, basis, RAM_UNMEASURED_REASON)


def _first_gpu(run: _Run) -> _Run:
    """The rows of the run's first GPU (the lowest ``gpu_index``)."""
    index = run.gpu_index
    if index is None or not len(index):
        return run
    first = pd.Series(index).min() if index.dtype.kind not in "iu" else index.min()
    if pd.isna(first) or (index == first).all():
        return run
    return run.rows(index == first)


#: Label of the training window of a run without training events.
WHOLE_RUN = "whole run (no epoch events)"
#: Run statistics also given over the training window (as ``training_<name>``).
WINDOW_STATS = {"gpu_power_mean_w": "gpu_power_draw", "gpu_usage_mean": "gpu_usage",
                "gpu_memory_usage_mean": "gpu_memory_usage"}


def _in_window(t: np.ndarray, window: windows.Window) -> np.ndarray:
    tol = 5e-4  # stamps are whole milliseconds
    return (t >= window.start_s - tol) & (t <= window.end_s + tol)


def _window_energy(samples: _Run, one: _Run, t: np.ndarray, t1: np.ndarray,
                   window: windows.Window, on_gpu: bool, cpu_estimate_method: str | None
                   ) -> tuple[float, str]:
    """(energy J, source) over ``window`` of the component the run's energy_j measures."""
    if on_gpu:
        gpu_j, method, _ = _gpu_energy(t, samples, window)
        return gpu_j, f"gpu:{method}"
    cpu_j, method = _cpu_energy(t1, one, cpu_estimate_method, window)
    return cpu_j, f"cpu:{method}"


def _has_training_events(names: np.ndarray) -> bool:
    return bool(np.isin(names, [*windows.TRAINING_START_EVENTS,
                                windows.TRAINING_END_EVENT]).any())


def _training_summary(samples: _Run, run: dict, events: pd.DataFrame | None,
                      cpu_estimate_method: str | None = None) -> dict:
    """The ``training_*`` columns of one run: window (label and edges on the samples' clock),
    energy of the component of ``run['energy_source']`` (same rules as the run energy), its
    duration, mean power, GPU statistics over the window, and ``pre_epoch_energy_j`` (energy of
    the window before its first epoch: the warm-up batches). Without training events the
    window is the whole run and the run's own values are repeated."""
    one = _first_gpu(samples)
    t, t1 = samples.t, one.t
    first = float(np.min(t)) if len(t) else float("nan")
    names = (events["event"].to_numpy(dtype=object) if events is not None and len(events)
             else np.array([], dtype=object))
    if not len(t1) or not _has_training_events(names):
        start = float(np.min(t1)) - first if len(t1) else float("nan")
        return {"training_window": WHOLE_RUN, "training_start_s": start,
                "training_end_s": start + run["duration_s"],
                "training_duration_s": run["duration_s"],
                "training_energy_j": run["energy_j"],
                "training_energy_source": run["energy_source"],
                "training_energy_scope": "whole run",
                "training_device_power_mean_w": run["device_power_mean_w"],
                **{f"training_{k}": run[k] for k in WINDOW_STATS},
                "pre_epoch_energy_j": float("nan")}
    ev_t = _event_seconds(events["time_utc"])
    window = windows.training_window(names, ev_t, t1)
    on_gpu = str(run["energy_source"]).startswith("gpu:")
    energy_j, source = _window_energy(samples, one, t, t1, window, on_gpu, cpu_estimate_method)
    starts = ev_t[names == "epoch_start"]
    pre_j = 0.0
    if starts.size and starts.min() > window.start_s:
        lead = windows.Window(window.start_s, float(starts.min()), "before the first epoch")
        pre_j = _window_energy(samples, one, t, t1, lead, on_gpu, cpu_estimate_method)[0]
    inside = one.rows(_in_window(t1, window))
    # times are whole milliseconds: rounding removes the noise of differences of epoch seconds
    duration = round(window.duration_s, 6)
    return {"training_window": window.label,
            "training_start_s": round(window.start_s - first, 6),
            "training_end_s": round(window.end_s - first, 6), "training_duration_s": duration,
            "training_energy_j": energy_j, "training_energy_source": source,
            "training_energy_scope": "epochs",
            "training_device_power_mean_w": energy_j / duration if duration > 0 else np.nan,
            **{f"training_{k}": _nanmean(inside, col) for k, col in WINDOW_STATS.items()},
            "pre_epoch_energy_j": pre_j}


def with_training_columns(runs: pd.DataFrame) -> pd.DataFrame:
    """``runs`` with the training-window columns it lacks (a table written without them):
    the run's own values, window ``'whole run'`` and no edges (every sample is used)."""
    out = runs.copy()
    pairs = {"training_energy_j": "energy_j", "training_duration_s": "duration_s",
             "training_energy_source": "energy_source",
             "training_device_power_mean_w": "device_power_mean_w",
             **{f"training_{k}": k for k in WINDOW_STATS}}
    for train_col, run_col in pairs.items():
        if train_col not in out:
            out[train_col] = out[run_col] if run_col in out else np.nan
    if "device_power_mean_w" not in runs and "training_device_power_mean_w" not in runs:
        out["training_device_power_mean_w"] = out["training_energy_j"] / out[
            "training_duration_s"]
    defaults = {"training_window": WHOLE_RUN, "training_energy_scope": "whole run",
                "training_start_s": np.nan, "training_end_s": np.nan,
                "pre_epoch_energy_j": np.nan, "model_metrics_missing": ""}
    for col, value in defaults.items():
        if col not in out:
            out[col] = value
    return out


def summarise_run(samples: pd.DataFrame, cpu_estimate_method: str | None = None,
                  events: pd.DataFrame | None = None) -> dict:
    """Compute one run's durations, energies (with methods) and power/usage statistics over the
    run window, and the same over the training window (``events``: the run's phase events,
    time_utc and event)."""
    return _summarise(_Run.of(samples), cpu_estimate_method, events)


def _summarise(samples: _Run, cpu_estimate_method: str | None,
               events: pd.DataFrame | None) -> dict:
    """:func:`summarise_run` of a run's arrays."""
    one = _first_gpu(samples)
    t1, t = one.t, samples.t
    duration_s = windows.run_window(t1).duration_s
    gpu_j, gpu_method, gpu_trap_j = _gpu_energy(t, samples)
    cpu_j, cpu_method = _cpu_energy(t1, one, cpu_estimate_method)
    ram_j, ram_method = _ram_energy(t1, one)
    if np.isfinite(gpu_j):
        energy_j, source = gpu_j, f"gpu:{gpu_method}"
    else:
        energy_j, source = cpu_j, f"cpu:{cpu_method}"
    parts = {"gpu": gpu_j, "cpu": cpu_j, "ram": ram_j}
    known = {k: v for k, v in parts.items() if np.isfinite(v)}
    power, limit = one.col("gpu_power_draw"), one.col("gpu_max_power")
    measured = np.isfinite(power).any()
    run = {
        "start_utc": one.times[0],
        "duration_s": duration_s,
        "n_samples": len(one),
        "sampling_period_s": float(np.median(np.diff(t1))) if len(t1) > 1 else float("nan"),
        "gpu_energy_j": gpu_j,
        "gpu_energy_method": gpu_method,
        "gpu_energy_trapezoid_j": gpu_trap_j,
        "cpu_energy_j": cpu_j,
        "cpu_energy_method": cpu_method,
        "ram_energy_j": ram_j,
        "ram_energy_method": ram_method,
        "energy_j": energy_j,
        "energy_source": source,
        "total_energy_j": sum(known.values()) if known else float("nan"),
        "total_energy_components": "+".join(known) if known else "none",
        "gpu_power_mean_w": float(np.nanmean(power)) if measured else np.nan,
        "gpu_power_std_w": float(np.nanstd(power)) if measured else np.nan,
        "gpu_power_max_w": float(np.nanmax(power)) if measured else np.nan,
        "gpu_power_limit_w": float(np.nanmedian(limit)) if np.isfinite(limit).any() else np.nan,
        "gpu_usage_mean": _nanmean(one, "gpu_usage"),
        "gpu_memory_usage_mean": _nanmean(one, "gpu_memory_usage"),
        "gpu_temperature_mean_c": _nanmean(one, "gpu_temperature"),
        "cpu_usage_mean_pct": _nanmean(one, "cpu_usage"),
        "ram_used_mean_mb": _nanmean(one, "memory_usage"),
        "device_power_mean_w": energy_j / duration_s if duration_s > 0 else np.nan,
    }
    return {**run, **_training_summary(samples, run, events, cpu_estimate_method)}


def _nanmean(run: _Run, col: str) -> float:
    v = run.col(col)
    return float(np.nanmean(v)) if np.isfinite(v).any() else float("nan")


def _by_run(samples: pd.DataFrame) -> list[tuple[object, _Run]]:
    """Each run's samples (in run_id order, rows in table order) as arrays, read from the
    table once."""
    codes, labels = pd.factorize(samples["run_id"], sort=True)
    every = _Run.of(samples)
    if np.any(np.diff(codes) < 0):
        order = np.argsort(codes, kind="stable")
        codes, every = codes[order], every.rows(order)
    bounds = np.searchsorted(codes, np.arange(len(labels) + 1))
    return [(label, every.rows(slice(a, b)))
            for label, a, b in zip(labels, bounds[:-1], bounds[1:], strict=True)]


def summarise_runs(samples: pd.DataFrame,
                   cpu_estimate_methods: dict[str, str] | None = None,
                   events: pd.DataFrame | None = None) -> pd.DataFrame:
    """One row per ``run_id`` of ``samples`` (see :func:`summarise_run`); ``events``: the phase
    events of every run (run_id, time_utc, event), or None."""
    methods = cpu_estimate_methods or {}
    by_run = ({} if events is None or events.empty
              else {rid: ev for rid, ev in events.groupby("run_id", sort=False)})
    rows = [{"run_id": run_id, **_summarise(run, methods.get(run_id), by_run.get(run_id))}
            for run_id, run in _by_run(samples)]
    return pd.DataFrame(rows)


def epoch_table(samples: pd.DataFrame, events: pd.DataFrame,
                energy_sources: dict[str, str] | None = None,
                cpu_estimate_methods: dict[str, str] | None = None) -> pd.DataFrame:
    """Per-epoch energies from ``epoch_start``/``epoch_end`` events: the component each run's
    energy comes from (``energy_sources``: run_id -> ``energy_source`` of the run table; the GPU
    where one has power samples when not given), by the same rules as the run energy (counter
    differences interpolated at the epoch edges where the counter covers the epoch, else the
    power curve cut at the edges by linear interpolation), so that the epochs of a run add up
    to the energy of their union. ``gpu_energy_j``: the GPUs' energy of the epoch."""
    cols = ["run_id", "epoch", "start_utc", "duration_s", "energy_j", "energy_method",
            "gpu_energy_j", "power_mean_w", "val_accuracy", "val_f1"]
    if events.empty or samples.empty:
        return pd.DataFrame(columns=cols)
    sources, methods = energy_sources or {}, cpu_estimate_methods or {}
    by_run = dict(_by_run(samples))
    rows = []
    for run_id, ev in events.groupby("run_id", sort=True):
        run = by_run.get(run_id)
        pairs = windows.epoch_event_pairs(ev["event"], ev["epoch"])
        if run is None or not pairs:
            continue
        one = _first_gpu(run)
        t, t1 = run.t, one.t
        source = sources.get(run_id)
        on_gpu = (str(source).startswith("gpu:") if source is not None
                  else bool(np.isfinite(run.col("gpu_power_draw")).any()))
        ev_t = _event_seconds(ev["time_utc"])
        for ep, i0, i1 in pairs:
            w = windows.Window(float(ev_t[i0]), float(ev_t[i1]), f"epoch {ep}")
            e, src = _window_energy(run, one, t, t1, w, on_gpu, methods.get(run_id))
            info = ev.iloc[i1]
            rows.append({
                "run_id": run_id, "epoch": int(ep), "start_utc": ev["time_utc"].iloc[i0],
                "duration_s": w.duration_s, "energy_j": e, "energy_method": src,
                "gpu_energy_j": _gpu_energy(t, run, w)[0],
                "power_mean_w": e / w.duration_s if w.duration_s > 0 else np.nan,
                "val_accuracy": info.get("val_accuracy", np.nan),
                "val_f1": info.get("val_f1", np.nan),
            })
    return pd.DataFrame(rows, columns=cols)


def _event_seconds(times: pd.Series) -> np.ndarray:
    """Seconds since the Unix epoch of tz-aware UTC times, floored to whole milliseconds."""
    if times.dtype != "datetime64[ms, UTC]":
        times = times.astype("datetime64[ms, UTC]")
    return times.to_numpy(dtype="datetime64[ms]").view("int64") / MS_PER_S
