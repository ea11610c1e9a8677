"""Per-run and per-epoch tables from merged samples (the clean stage's computations).

Energy per component over the run window (each series from its first to its last valid sample;
docs/methods.md#energy-windows), integrated by :mod:`helpers.core.energy` with the rules and
method tags of :mod:`helpers.core.rules`, the same as the grid's ``emissions.csv``:
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


def _seconds(samples: pd.DataFrame) -> np.ndarray:
    return _event_seconds(samples["time_utc"])


def _col(samples: pd.DataFrame, name: str) -> np.ndarray:
    if name not in samples.columns:
        return np.full(len(samples), np.nan)
    return samples[name].to_numpy(dtype=float)


def _gpu_energy(t: np.ndarray, samples: pd.DataFrame) -> tuple[float, str, float]:
    """(energy J, method, trapezoid J) summed over the run's GPUs."""
    gpu_index = samples["gpu_index"].to_numpy() if "gpu_index" in samples else np.zeros(len(t))
    power, counter = _col(samples, "gpu_power_draw"), _col(samples, "gpu_energy_counter_j")
    per_gpu = [(t[sel], power[sel], counter[sel])
               for sel in (gpu_index == g for g in pd.unique(gpu_index))]
    return energy.gpu_energy_j(per_gpu, GPU_UNMEASURED_REASON)


def _cpu_energy(t: np.ndarray, samples: pd.DataFrame, estimate_method: str | None
                ) -> tuple[float, str]:
    return energy.cpu_energy_j(t, _col(samples, "cpu_energy_counter_j"),
                               _col(samples, "cpu_power_w"), estimate_method,
                               CPU_UNMEASURED_REASON)


def _ram_energy(t: np.ndarray, samples: pd.DataFrame) -> tuple[float, str]:
    rss = _col(samples, "process_rss_mb")
    basis, used_mib = (rules.PROCESS_RSS, rss) if np.isfinite(rss).sum() >= 2 else (
        rules.SYSTEM_RAM_USED, _col(samples, "memory_usage"))
    return energy.ram_energy_j(t, used_mib, basis, RAM_UNMEASURED_REASON)


def _first_gpu(samples: pd.DataFrame) -> pd.DataFrame:
    if "gpu_index" not in samples.columns:
        return samples
    first = samples["gpu_index"].min()
    return samples[samples["gpu_index"] == first] if pd.notna(first) else samples


def summarise_run(samples: pd.DataFrame, cpu_estimate_method: str | None = None) -> dict:
    """Compute one run's durations, energies (with methods) and power/usage statistics."""
    one = _first_gpu(samples)
    t1 = _seconds(one)
    t = _seconds(samples)
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
    power = _col(one, "gpu_power_draw")
    return {
        "start_utc": one["time_utc"].iloc[0],
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
        "gpu_power_mean_w": float(np.nanmean(power)) if np.isfinite(power).any() else np.nan,
        "gpu_power_std_w": float(np.nanstd(power)) if np.isfinite(power).any() else np.nan,
        "gpu_power_max_w": float(np.nanmax(power)) if np.isfinite(power).any() else np.nan,
        "gpu_power_limit_w": float(np.nanmedian(_col(one, "gpu_max_power")))
        if np.isfinite(_col(one, "gpu_max_power")).any() else np.nan,
        "gpu_usage_mean": _nanmean(one, "gpu_usage"),
        "gpu_memory_usage_mean": _nanmean(one, "gpu_memory_usage"),
        "gpu_temperature_mean_c": _nanmean(one, "gpu_temperature"),
        "cpu_usage_mean_pct": _nanmean(one, "cpu_usage"),
        "ram_used_mean_mb": _nanmean(one, "memory_usage"),
        "device_power_mean_w": energy_j / duration_s if duration_s > 0 else np.nan,
    }


def _nanmean(df: pd.DataFrame, col: str) -> float:
    v = _col(df, col)
    return float(np.nanmean(v)) if np.isfinite(v).any() else float("nan")


def summarise_runs(samples: pd.DataFrame,
                   cpu_estimate_methods: dict[str, str] | None = None) -> pd.DataFrame:
    """One row per ``run_id`` of ``samples`` (see :func:`summarise_run`)."""
    methods = cpu_estimate_methods or {}
    rows = []
    for run_id, grp in samples.groupby("run_id", sort=True):
        rows.append({"run_id": run_id, **summarise_run(grp, methods.get(run_id))})
    return pd.DataFrame(rows)


def epoch_table(samples: pd.DataFrame, events: pd.DataFrame) -> pd.DataFrame:
    """Per-epoch energies from ``epoch_start``/``epoch_end`` events. The power curve of the
    component each run's energy comes from (``device_power_w``) is cut at the epoch edges by
    linear interpolation, so epoch energies sum to the energy of the epochs' union."""
    cols = ["run_id", "epoch", "start_utc", "duration_s", "energy_j", "gpu_energy_j",
            "power_mean_w", "val_accuracy", "val_f1"]
    if events.empty:
        return pd.DataFrame(columns=cols)
    rows = []
    for run_id, ev in events.groupby("run_id", sort=True):
        run = _first_gpu(samples[samples["run_id"] == run_id])
        pairs = windows.epoch_event_pairs(ev["event"], ev["epoch"])
        if run.empty or not pairs:
            continue
        t = _seconds(run)
        ev_t = _event_seconds(ev["time_utc"])
        epochs, i0, i1 = (np.array(x) for x in zip(*pairs, strict=True))
        t0, t1 = ev_t[i0], ev_t[i1]
        e = energy.window_energies_j(t, _col(run, "device_power_w"), t0, t1)
        g = energy.window_energies_j(t, _col(run, "gpu_power_draw"), t0, t1)
        for k, ep in enumerate(epochs):
            info = ev.iloc[i1[k]]
            rows.append({
                "run_id": run_id, "epoch": int(ep), "start_utc": ev["time_utc"].iloc[i0[k]],
                "duration_s": float(t1[k] - t0[k]), "energy_j": float(e[k]),
                "gpu_energy_j": float(g[k]),
                "power_mean_w": float(e[k] / (t1[k] - t0[k])) if t1[k] > t0[k] else np.nan,
                "val_accuracy": info.get("val_accuracy", np.nan),
                "val_f1": info.get("val_f1", np.nan),
            })
    return pd.DataFrame(rows, columns=cols)


def _event_seconds(times: pd.Series) -> np.ndarray:
    return times.astype("datetime64[ms, UTC]").astype("int64").to_numpy() / MS_PER_S
