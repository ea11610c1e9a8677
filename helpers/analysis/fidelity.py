"""How close sampled GPU power comes to the GPU's own energy counter (sampler fidelity).

For runs in the project's raw format that carry ``gpu_energy_counter_j`` readings, each window's
counter difference is the reference, and every *method* estimates the same window from the
samples (docs/methods.md#gpu-measurement lists the methods people use):

* ``instant_100ms`` — trapezoid of ``gpu_power_instant_w`` at the sampler's rate (this project);
* ``average_100ms`` — trapezoid of ``gpu_power_avg_w`` (``nvmlDeviceGetPowerUsage``, a 1-s
  average on H100/H200) at the same rate;
* ``instant_1s`` / ``average_1s`` — the first timer sample of every second of the window, mean
  power × window length (what a 1-s logger such as ``nvidia-smi -l 1`` gives);
* ``tdp_x_time`` — the power limit × window length (ML CO2 Impact's assumption).

Windows (:mod:`helpers.core.windows`, docs/methods.md#energy-windows): ``run`` (first to last
counter reading: run_start to run_end), ``training`` (``warmup_start`` or first ``epoch_start``
to the last ``epoch_end``, the window ``emissions.csv`` reports), and ``epoch`` (each
``epoch_start`` to ``epoch_end``). Energies in J; ``error_pct`` = 100 × (estimate − counter) /
counter.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from helpers.core import energy, windows
from helpers.readers.project import ProjectRun, discover_runs, read_run

METHODS: tuple[str, ...] = ("instant_100ms", "average_100ms", "instant_1s", "average_1s",
                            "tdp_x_time")
ROW_COLUMNS: tuple[str, ...] = ("run_id", "gpu_index", "window", "epoch", "duration_s", "method",
                                "counter_j", "estimate_j", "error_pct")


def _per_second_mean_w(t: np.ndarray, p: np.ndarray, t0: float, t1: float) -> float:
    """Mean of the first finite sample at or after each whole second of [t0, t1) (W)."""
    ok = np.isfinite(p)
    t, p = t[ok], p[ok]
    idx = np.searchsorted(t, np.arange(t0, t1, 1.0), side="left")
    idx = idx[idx < len(t)]
    return float(np.mean(p[idx])) if len(idx) else float("nan")


def window_estimates_j(gpu: pd.DataFrame, t0: float, t1: float, limit_w: float) -> dict[str, float]:
    """Every method's energy (J) over [t0, t1] (``monotonic_s``) from one GPU's sample rows.

    ``gpu`` needs a boolean column ``edge`` (the row is a phase-edge sample, taken at an event
    time); ``instant_1s``/``average_1s`` use the timer samples only, as a 1-s logger would."""
    t = gpu["monotonic_s"].to_numpy(float)
    timer = ~gpu["edge"].to_numpy(bool)
    inst = gpu["gpu_power_instant_w"].to_numpy(float)
    avg = gpu["gpu_power_avg_w"].to_numpy(float)
    span = t1 - t0
    return {
        "instant_100ms": energy.window_trapezoid_j(t, inst, t0, t1),
        "average_100ms": energy.window_trapezoid_j(t, avg, t0, t1),
        "instant_1s": _per_second_mean_w(t[timer], inst[timer], t0, t1) * span,
        "average_1s": _per_second_mean_w(t[timer], avg[timer], t0, t1) * span,
        "tdp_x_time": limit_w * span,
    }


def _windows(run: ProjectRun, counter_t: np.ndarray) -> list[tuple[str, float, float, float]]:
    """(window, epoch, t0, t1) of the run (over the counter readings), training (the window
    emissions.csv reports) and each epoch."""
    ev = run.events
    names, t = ev["event"], ev["monotonic_s"].to_numpy(float)
    run_w = windows.run_window(counter_t)
    out = [("run", np.nan, run_w.start_s, run_w.end_s)]
    if (names == windows.TRAINING_END_EVENT).any():
        train = windows.training_window(names, t, run.samples["monotonic_s"])
        out.append(("training", np.nan, train.start_s, train.end_s))
    for epoch, i0, i1 in windows.epoch_event_pairs(names, ev["epoch"]):
        out.append(("epoch", float(epoch), float(t[i0]), float(t[i1])))
    return out


def run_fidelity(run: ProjectRun, run_id: str) -> pd.DataFrame:
    """One row per (GPU, window, method) of a run (:data:`ROW_COLUMNS`); empty without GPU
    counter readings."""
    samples = run.samples[run.samples["gpu_index"].notna()].copy()
    samples["edge"] = samples["monotonic_s"].isin(set(run.events["monotonic_s"]))
    limits = {g.get("index"): g.get("power_limit_w", np.nan) for g in run.metadata.get("gpus", [])}
    rows = []
    for gpu_index, gpu in samples.groupby("gpu_index"):
        counter = gpu["gpu_energy_counter_j"].to_numpy(float)
        t = gpu["monotonic_s"].to_numpy(float)
        readings = np.isfinite(counter)
        if readings.sum() < 2:
            continue
        limit_w = float(limits.get(int(gpu_index), np.nan))
        for window, epoch, t0, t1 in _windows(run, t[readings]):
            reference = energy.window_counter_j(t, counter, t0, t1)
            for method, estimate in window_estimates_j(gpu, t0, t1, limit_w).items():
                rows.append((run_id, int(gpu_index), window, epoch, t1 - t0, method, reference,
                             estimate, 100.0 * (estimate - reference) / reference))
    return pd.DataFrame(rows, columns=list(ROW_COLUMNS))


def dataset_fidelity(raw_root: str | Path) -> pd.DataFrame:
    """:func:`run_fidelity` of every run under ``raw_root`` (run_id ``env/arch/run``)."""
    root = Path(raw_root)
    tables = [run_fidelity(read_run(d), d.relative_to(root).as_posix())
              for d in discover_runs(root)]
    return pd.concat(tables, ignore_index=True) if tables else pd.DataFrame(
        columns=list(ROW_COLUMNS))


def summarise(table: pd.DataFrame) -> pd.DataFrame:
    """Per (window, method): windows, median and max absolute error (%), mean signed error (%),
    median window length (s)."""
    abs_err = table.assign(abs_error_pct=table["error_pct"].abs())
    out = abs_err.groupby(["window", "method"], sort=False).agg(
        windows=("error_pct", "size"),
        median_abs_error_pct=("abs_error_pct", "median"),
        max_abs_error_pct=("abs_error_pct", "max"),
        mean_error_pct=("error_pct", "mean"),
        median_duration_s=("duration_s", "median"),
    )
    return out.reset_index()
