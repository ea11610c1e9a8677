"""Power behaviour (docs/methods.md#power-behaviour): power vs utilisation, power/limit, idle
baseline, stabilisation.

Per-run inputs follow :data:`helpers.core.schema.RUN_COLUMNS`; per-sample inputs the interim
profiling table (``run_id``, ``elapsed_s``, ``device_power_w`` / ``gpu_power_draw``,
``gpu_usage``, ``phase``, ...); per-epoch inputs :data:`helpers.core.schema.EPOCH_COLUMNS`. Power
in W, energy in J, time in s. Everything but the idle baseline works on the training window
(docs/methods.md#energy-windows): the per-run means ``training_*`` and the samples cut to the
window by :func:`helpers.analysis.window_samples.training_samples` (time counted from its
start), so that a stabilisation point is seconds into the training, not into the idle lead-in.

Stabilisation point — method
----------------------------
The study segmented each run's power with a matrix profile (window 10 samples, two regimes) and
took the boundary as the point after which power is stationary. Here the same "two regimes" model
is fitted by exact change-point search with ``ruptures``:

1. the series (power per sample on time, or energy per epoch) is reduced to non-overlapping block
   means of ``window`` points (``window=10`` ≈ the study's window on 1 Hz logs; ``window=1`` for
   per-epoch series), which smooths the per-epoch evaluation dips and makes the search cheap;
2. the blocks are standardised by a robust noise scale (MAD of first differences / √2), so a
   penalty means the same on every run;
3. ``ruptures.Dynp(model="l1", n_bkps=1)`` finds the optimal single change point (two regimes).
   The l1 (median deviation) cost is the default because the l2 cost, dominated by the few
   start-up samples at near-idle power, puts the split at the end of the 10–20 s start-up ramp
   instead of the end of the warm-up regime (checked by eye on 20 seaa2023 runs);
   ``model="l2"``/``"rbf"`` are allowed. With ``penalty`` set, the split is kept only if it lowers
   the cost by more than the penalty (a penalised choice between one and two regimes, i.e. PELT
   limited to at most one change point); otherwise the run is stationary from the start;
4. the stabilisation point is the position (elapsed seconds or epoch number) of the first point
   of the second regime; every "no change" outcome is recorded with a note.

:func:`stabilisation_sensitivity` shows how the point moves with the window and penalty, and
:func:`window_estimate_error` the error of the online power estimate (mean power over a window
after a candidate point × duration) as a function of that point and window.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np
import pandas as pd
import ruptures as rpt
from scipy import stats as sstats

from helpers.analysis import stats

#: Phases kept for the stabilisation analysis of runs whose samples carry phase labels (the
#: idle baseline, start-up before it, and the idle tail after training are left out).
TRAINING_PHASES: tuple[str, ...] = ("warmup", "train", "eval")
_MAD_TO_SIGMA = 1.4826


#: Per-sample columns the power analyses read from ``interim/profiling.parquet``.
SAMPLE_COLUMNS: tuple[str, ...] = ("run_id", "elapsed_s", "device_power_w", "gpu_power_draw",
                                   "gpu_max_power", "gpu_usage", "gpu_name", "gpu_index",
                                   "epoch", "phase")
#: Numeric sample columns interpolated at the edges of the training window.
VALUE_COLUMNS: tuple[str, ...] = ("device_power_w", "gpu_power_draw", "gpu_max_power",
                                  "gpu_usage")


def power_samples(samples: pd.DataFrame, runs: pd.DataFrame) -> tuple[pd.DataFrame, str]:
    """Samples of the kept ``runs`` with their environment, architecture and GPU name, and the
    power column to analyse: ``device_power_w`` (all GPUs of a sample) where it has values, else
    ``gpu_power_draw``. ``samples`` holds any of :data:`SAMPLE_COLUMNS`."""
    out = samples[samples["run_id"].isin(runs["run_id"])].reset_index(drop=True)
    out["run_id"] = out["run_id"].astype("category")
    has_device = "device_power_w" in out and out["device_power_w"].notna().any()
    meta = runs.set_index("run_id")[["environment", "architecture", "gpu_name"]]
    out = out.drop(columns=[c for c in ("gpu_name",) if c in out]).join(meta, on="run_id")
    return out, "device_power_w" if has_device else "gpu_power_draw"


def power_vs_usage(runs: pd.DataFrame, power: str = "training_gpu_power_mean_w",
                   usage: str = "training_gpu_usage_mean", by: str | None = "environment"
                   ) -> pd.DataFrame:
    """Spearman ρ and least-squares line of mean power (W) on mean utilisation (both over the
    training window by default), per ``by`` group.

    Columns: [by], x, y, n, n_dropped, rho, p_value, slope_w (W per unit of ``usage``),
    intercept_w, r2, note. Fit columns are NaN where ρ is (fewer than 3 runs, constant)."""
    corr = stats.spearman(runs, usage, power, by=by)
    fits = []
    parts = [((), runs)] if by is None else runs.groupby([by], sort=True, dropna=False)
    for _, sub in parts:
        pair = sub[[usage, power]].astype(float).dropna()
        if len(pair) >= 3 and pair[usage].nunique() > 1:
            lr = sstats.linregress(pair[usage], pair[power])
            fits.append((lr.slope, lr.intercept, lr.rvalue**2))
        else:
            fits.append((np.nan, np.nan, np.nan))
    corr[["slope_w", "intercept_w", "r2"]] = np.asarray(fits, float).reshape(-1, 3)
    return corr


def power_limit_ratio(df: pd.DataFrame, power: str = "training_gpu_power_mean_w",
                      limit: str = "gpu_power_limit_w") -> pd.Series:
    """Power divided by the power limit (fraction). NaN where the limit is missing or ≤ 0."""
    lim = df[limit].astype(float)
    return (df[power].astype(float) / lim.where(lim > 0)).rename("power_limit_ratio")


def idle_baseline(samples: pd.DataFrame, power: str = "device_power_w", by: str = "gpu_name",
                  usage: str = "gpu_usage", phase: str = "phase") -> pd.DataFrame:
    """Idle power per ``by`` group (e.g. per GPU model), with the method used.

    * ``phase:idle`` — median power of samples labelled ``idle`` (runs with phase events);
    * ``zero_utilisation`` — otherwise, median power of samples with ``usage`` == 0 (published
      logs have no events; the GPU is then loaded but not computing, so this is an upper bound on
      the device's true idle power, which also varies with temperature and with whether a CUDA
      context is loaded: docs/methods.md#gpu-measurement).

    Columns: [by], method, n_samples, idle_power_w (median), q1_w, q3_w, note. Groups with no
    qualifying sample keep a row with NaN power and a note."""
    rows = []
    for level, sub in samples.groupby(by, sort=True, dropna=False):
        labelled = sub[phase].eq("idle") if phase in sub else pd.Series(False, index=sub.index)
        if labelled.any():
            sel, method = labelled, "phase:idle"
        elif usage in sub and sub[usage].notna().any():
            sel, method = sub[usage].eq(0), "zero_utilisation"
        else:
            sel, method = pd.Series(False, index=sub.index), "none"
        p = sub.loc[sel, power].astype(float).dropna()
        note = "" if len(p) else f"no idle samples ({method})"
        q1, med, q3 = p.quantile([0.25, 0.5, 0.75]).to_numpy() if len(p) else (np.nan,) * 3
        rows.append({by: level, "method": method, "n_samples": len(p), "idle_power_w": med,
                     "q1_w": q1, "q3_w": q3, "note": note})
    return pd.DataFrame(rows)


# --------------------------------------------------------------------------------------------
# Stabilisation point
# --------------------------------------------------------------------------------------------
def _blocks(values: np.ndarray, window: int) -> np.ndarray:
    """Means of non-overlapping blocks of ``window`` points (last block may be shorter)."""
    starts = np.arange(0, len(values), window)
    return np.add.reduceat(values, starts) / np.diff(np.append(starts, len(values)))


def _two_regimes(values: Sequence[float] | np.ndarray, positions: Sequence[float] | np.ndarray,
                 window: int, min_size: int, model: str) -> tuple[float, float, float, str]:
    """Best single split of the block series: (position, gain, first position, note). ``gain``
    is the cost of one regime minus the cost of two, on the standardised blocks."""
    if window < 1 or min_size < 1:
        raise ValueError("window and min_size must be >= 1")
    v, pos = np.asarray(values, float), np.asarray(positions, float)
    if v.shape != pos.shape:
        raise ValueError(f"values ({v.shape}) and positions ({pos.shape}) differ in shape")
    ok = ~(np.isnan(v) | np.isnan(pos))
    v, pos = v[ok], pos[ok]
    first = float(pos[0]) if len(pos) else float("nan")
    blocks = _blocks(v, window)
    if len(blocks) < 2 * min_size:
        return (float("nan"), float("nan"), first,
                f"too short: {len(v)} points = {len(blocks)} blocks of {window}")
    diffs = np.diff(blocks)
    scale = _MAD_TO_SIGMA * np.median(np.abs(diffs - np.median(diffs))) / np.sqrt(2)
    if not scale > 0:
        scale = np.std(blocks)
    if not scale > 0:
        return first, 0.0, first, "constant series: stationary from the start"
    algo = rpt.Dynp(model=model, min_size=min_size, jump=1).fit(blocks / scale)
    bkp = algo.predict(n_bkps=1)[0]
    cost = algo.cost
    gain = cost.error(0, len(blocks)) - cost.error(0, bkp) - cost.error(bkp, len(blocks))
    return float(pos[bkp * window]), float(gain), first, ""


def _apply_penalty(point: float, gain: float, first: float, note: str,
                   penalty: float | None) -> tuple[float, str]:
    """Keep the split if its gain exceeds ``penalty``; otherwise stationary from the start."""
    if penalty is None or note or gain > penalty:
        return point, note
    return first, f"gain {gain:.3g} <= penalty {penalty:g}: stationary from the start"


def stabilisation_point(values: Sequence[float] | np.ndarray,
                        positions: Sequence[float] | np.ndarray, window: int = 10,
                        penalty: float | None = None, min_size: int = 2, model: str = "l1"
                        ) -> tuple[float, str]:
    """Position (s or epoch) from which the series is in its stationary regime.

    Args:
        values: power (W) per sample, or energy (J) per epoch, in time order; NaNs are dropped.
        positions: elapsed seconds or epoch numbers of ``values``.
        window: points per block mean (see the module docstring).
        penalty: ``None`` → always two regimes; a number → the split is kept only if it lowers
            the cost of the standardised blocks by more than ``penalty`` (PELT restricted to at
            most one change point), else the series is stationary from the start.
        min_size: minimum regime length in blocks.
        model: ruptures cost ("l1" default, "l2", "rbf").

    Returns:
        (position, note). Position is NaN with a note when the series is too short; the first
        position with a note when there is no change (constant, or not worth the penalty)."""
    return _apply_penalty(*_two_regimes(values, positions, window, min_size, model), penalty)


def _only(sub: pd.DataFrame, phase: str, keep: Sequence[str]) -> pd.DataFrame:
    """Rows of one run in the ``keep`` phases when the run has such labels; else all rows
    (published logs carry no phases)."""
    if phase not in sub:
        return sub
    mask = sub[phase].isin(keep)
    return sub[mask] if mask.any() else sub


def _series(df: pd.DataFrame, run_col: str, pos_col: str, value_col: str,
            phase: str) -> Iterable[tuple[object, pd.DataFrame]]:
    """(run, frame sorted by position) per run, training phases only where labelled."""
    cols = [run_col, pos_col, value_col] + ([phase] if phase in df else [])
    for run, sub in df[cols].groupby(run_col, sort=True, observed=True):
        yield run, _only(sub, phase, TRAINING_PHASES).sort_values(pos_col)


def stabilisation_points(df: pd.DataFrame, value_col: str = "device_power_w",
                         pos_col: str = "elapsed_s", run_col: str = "run_id", window: int = 10,
                         penalty: float | None = None, min_size: int = 2,
                         phase: str = "phase", model: str = "l1") -> pd.DataFrame:
    """:func:`stabilisation_point` for every run of a per-sample (or per-epoch) table.

    Columns: run_id, n_points, start (first position), stabilisation (s or epoch), gain (cost
    reduction of the split), span (last position), fraction (stabilisation / span), note. For
    per-epoch tables pass ``value_col="energy_j"``, ``pos_col="epoch"`` and ``window=1``."""
    rows = []
    for run, sub in _series(df, run_col, pos_col, value_col, phase):
        split = _two_regimes(sub[value_col], sub[pos_col], window, min_size, model)
        point, note = _apply_penalty(*split, penalty)
        span = float(sub[pos_col].max()) if len(sub) else float("nan")
        rows.append({run_col: run, "n_points": len(sub), "start": split[2],
                     "stabilisation": point, "gain": split[1], "span": span,
                     "fraction": point / span if span else float("nan"), "note": note})
    return pd.DataFrame(rows)


def stabilisation_sensitivity(df: pd.DataFrame, windows: Sequence[int],
                              penalties: Sequence[float | None] = (None,),
                              value_col: str = "device_power_w", pos_col: str = "elapsed_s",
                              run_col: str = "run_id", min_size: int = 2, model: str = "l1"
                              ) -> pd.DataFrame:
    """Stabilisation point of every run for each (window, penalty) setting; the split is searched
    once per window and the penalties only decide whether it is kept.

    Columns: run_id, window, penalty (NaN = always two regimes), stabilisation, note."""
    parts = []
    for w in windows:
        base = stabilisation_points(df, value_col, pos_col, run_col, w, None, min_size,
                                    model=model)
        for pen in penalties:
            kept = [_apply_penalty(r.stabilisation, r.gain, r.start, r.note, pen)
                    for r in base.itertuples()]
            parts.append(pd.DataFrame({
                run_col: base[run_col], "window": w, "penalty": np.nan if pen is None else pen,
                "stabilisation": [k[0] for k in kept], "note": [k[1] for k in kept]}))
    return pd.concat(parts, ignore_index=True)


def _integral_to(x: float, t: np.ndarray, p: np.ndarray, cum: np.ndarray) -> float:
    """Trapezoid integral of ``p`` from ``t[0]`` to ``x`` (J), power interpolated at ``x``."""
    i = int(np.clip(np.searchsorted(t, x, side="right") - 1, 0, len(t) - 2))
    return float(cum[i] + (x - t[i]) * (p[i] + np.interp(x, t, p)) / 2)


def window_estimate_error(power_w: Sequence[float] | np.ndarray,
                          elapsed_s: Sequence[float] | np.ndarray, energy_j: float,
                          starts_s: Sequence[float], windows_s: Sequence[float]) -> pd.DataFrame:
    """Error of the online power estimate Ê = mean power over [s, s + w] × duration.

    Mean power over the window is the trapezoid integral over it divided by its length (cut at
    the window edges by linear interpolation). Columns: start_s, window_s, estimate_j, error_pct
    (100 · (Ê − E)/E); NaN where the window runs past the end of the series."""
    p, t = np.asarray(power_w, float), np.asarray(elapsed_s, float)
    ok = ~(np.isnan(p) | np.isnan(t))
    p, t = p[ok], t[ok]
    if len(t) < 2:
        return pd.DataFrame([{"start_s": s, "window_s": w, "estimate_j": np.nan,
                              "error_pct": np.nan} for s in starts_s for w in windows_s])
    duration = t[-1] - t[0]
    cum = np.concatenate([[0.0], np.cumsum(np.diff(t) * (p[1:] + p[:-1]) / 2)])
    rows = []
    for s in starts_s:
        for w in windows_s:
            a, b = t[0] + s, t[0] + s + w
            est = np.nan
            if w > 0 and b <= t[-1]:
                mean_p = (_integral_to(b, t, p, cum) - _integral_to(a, t, p, cum)) / w
                est = mean_p * duration
            rows.append({"start_s": s, "window_s": w, "estimate_j": est,
                         "error_pct": 100.0 * (est - energy_j) / energy_j})
    return pd.DataFrame(rows)


def estimate_error_grid(samples: pd.DataFrame, runs: pd.DataFrame, starts_s: Sequence[float],
                        windows_s: Sequence[float], power_col: str = "device_power_w",
                        run_col: str = "run_id") -> pd.DataFrame:
    """:func:`window_estimate_error` for every run of ``runs`` present in ``samples``, against
    the run's ``training_energy_j`` (``energy_j`` in a table without it). ``samples`` should be
    the training window's (:func:`helpers.analysis.window_samples.training_samples`), so that
    the duration of the estimate is the window's. Columns: run_id, start_s, window_s,
    estimate_j, error_pct."""
    col = "training_energy_j" if "training_energy_j" in runs else "energy_j"
    measured = runs.set_index(run_col)[col]
    parts = []
    for run, sub in samples.groupby(run_col, sort=True, observed=True):
        if run not in measured.index:
            continue
        energy = measured[run]
        if not np.isfinite(energy) or energy <= 0:
            continue
        sub = sub.sort_values("elapsed_s")
        res = window_estimate_error(sub[power_col], sub["elapsed_s"], float(energy),
                                    starts_s, windows_s)
        res.insert(0, run_col, run)
        parts.append(res)
    cols = [run_col, "start_s", "window_s", "estimate_j", "error_pct"]
    return pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=cols)


def pick_example_runs(runs: pd.DataFrame, n_per_environment: int = 2, value: str = "energy_j",
                      env: str = "environment", arch: str = "architecture",
                      run_col: str = "run_id") -> list[str]:
    """Deterministic examples: in each environment, ``n_per_environment`` architectures evenly
    spread over the ranking of median ``value`` (lowest and highest first), and for each the run
    whose ``duration_s`` is closest to that architecture's median duration."""
    chosen = []
    for _, sub in runs.groupby(env, sort=True):
        order = sub.groupby(arch)[value].median().sort_values().index.tolist()
        idx = np.linspace(0, len(order) - 1, min(n_per_environment, len(order)))
        for a in [order[i] for i in np.unique(idx.round().astype(int))]:
            r = sub[sub[arch] == a]
            gap = (r["duration_s"] - r["duration_s"].median()).abs()
            chosen.append(str(r.loc[gap.idxmin(), run_col]))
    return chosen


def power_limit_ratio_table(samples: pd.DataFrame, by: Sequence[str] = ("gpu_name",
                                                                        "architecture"),
                            ratio: str = "power_limit_ratio") -> pd.DataFrame:
    """Distribution (count, mean, std, min, 5/25/50/75/95 %, max) of per-sample power / limit
    per group."""
    return (samples.groupby(list(by))[ratio]
            .describe(percentiles=[0.05, 0.25, 0.5, 0.75, 0.95]).reset_index())


def sensitivity_table(sens: pd.DataFrame) -> pd.DataFrame:
    """Median stabilisation point by window (rows) and penalty (columns; -1 = no penalty) from
    :func:`stabilisation_sensitivity`."""
    return (sens.assign(penalty=sens["penalty"].fillna(-1))
            .groupby(["window", "penalty"])["stabilisation"].median().unstack("penalty"))


def error_table(errors: pd.DataFrame) -> pd.DataFrame:
    """Median |error| (%) of the online power estimate by start s (rows) and window w (columns)
    from :func:`estimate_error_grid`."""
    return (errors.assign(abs_error_pct=errors["error_pct"].abs())
            .groupby(["start_s", "window_s"])["abs_error_pct"].median().unstack("window_s"))
