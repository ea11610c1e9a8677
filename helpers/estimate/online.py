"""Online estimators: observe the start of a run, project its energy (docs/methods.md#estimators).

* Epoch-based: Carbontracker (first k epochs · N), online power (mean power over a window after
  the stabilisation point s · T) and STEP (energy before s + mean window epoch energy · (N - s)).
* Time-window estimators for logs without epoch markers: ``pseudo_epochs`` cuts the power curve
  into equal time slices (epoch-based estimators then apply), and
  ``online_time_window_energy_j`` observes the first fraction of a run and projects the rest.
* Per-run tables that apply them to every run of a dataset.

Energies in J, powers in W, durations in s. An estimator that cannot be computed for a run raises
``NotEstimableError`` with the reason, so that evaluation can drop that run for every method.

The per-run tables estimate the training window (docs/methods.md#energy-windows): T is the run
table's ``training_duration_s`` (``duration_s`` in a table without it), the samples given to
them should be cut to the window (:func:`helpers.analysis.window_samples.training_samples`), and
STEP adds the energy observed before the first epoch (``pre_epoch_energy_j``, the warm-up).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import pandas as pd

from helpers.analysis import power
from helpers.core.energy import cumulative_energy_at_j
from helpers.estimate.common import NotEstimableError, nonnegative_array


def _epochs(epoch_energies_j: Sequence[float] | np.ndarray, n_epochs: int) -> np.ndarray:
    e = nonnegative_array(epoch_energies_j, "epoch_energies_j")
    if e.ndim != 1 or not np.all(np.isfinite(e)):
        raise NotEstimableError("epoch energies must be a finite 1-d series")
    if n_epochs < 1:
        raise NotEstimableError(f"n_epochs must be >= 1, got {n_epochs}")
    return e


def carbontracker_energy_j(epoch_energies_j, n_epochs: int, k: int = 1,
                           pue: float = 1.0) -> float:
    """Carbontracker: Ê = N · mean(energy of the first k epochs) · PUE (J)."""
    e = _epochs(epoch_energies_j, n_epochs)
    if k < 1 or len(e) < k:
        raise NotEstimableError(f"needs {k} observed epoch(s), has {len(e)}")
    return float(n_epochs * e[:k].mean() * pue)


def _window(n_observed: int, stabilisation_epoch: int, window_epochs: int) -> slice:
    if stabilisation_epoch < 0 or window_epochs < 1:
        raise ValueError("stabilisation_epoch must be >= 0 and window_epochs >= 1")
    end = stabilisation_epoch + window_epochs
    if n_observed < end:
        raise NotEstimableError(
            f"needs epochs up to {end - 1} (stabilisation {stabilisation_epoch} + window "
            f"{window_epochs}), has {n_observed}"
        )
    return slice(stabilisation_epoch, end)


def online_power_energy_j(epoch_energies_j, epoch_durations_s, total_duration_s: float,
                          stabilisation_epoch: int, window_epochs: int,
                          pue: float = 1.0) -> float:
    """Online power-based: Ê = P̄_window · T · PUE (J), where P̄_window is the time-weighted mean
    power (Σ epoch energy / Σ epoch duration) over epochs [s, s + w). ``total_duration_s`` is the
    true duration T, as published; pass a projection when estimating before the end."""
    e = _epochs(epoch_energies_j, 1)
    d = nonnegative_array(epoch_durations_s, "epoch_durations_s")
    if d.shape != e.shape:
        raise ValueError("epoch_energies_j and epoch_durations_s differ in length")
    w = _window(len(e), stabilisation_epoch, window_epochs)
    if d[w].sum() <= 0:
        raise NotEstimableError("window has zero duration")
    return float(e[w].sum() / d[w].sum() * total_duration_s * pue)


def step_energy_j(epoch_energies_j, n_epochs: int, stabilisation_epoch: int,
                  window_epochs: int, pue: float = 1.0, before_epochs_j: float = 0.0) -> float:
    """STEP: Ê = (E_before + Σ energy of epochs < s + mean energy of epochs [s, s + w) · (N - s))
    · PUE (J); ``before_epochs_j`` is the energy observed before the first epoch (warm-up
    batches inside the training window; 0 when there are none)."""
    e = _epochs(epoch_energies_j, n_epochs)
    w = _window(len(e), stabilisation_epoch, window_epochs)
    if n_epochs < w.stop:
        raise NotEstimableError(f"window ends at epoch {w.stop - 1} beyond N = {n_epochs}")
    return float((before_epochs_j + e[:stabilisation_epoch].sum()
                  + e[w].mean() * (n_epochs - stabilisation_epoch)) * pue)



def _curve(time_s, power_w) -> tuple[np.ndarray, np.ndarray]:
    t = np.asarray(time_s, dtype=float)
    p = np.asarray(power_w, dtype=float)
    if t.shape != p.shape or t.ndim != 1:
        raise ValueError("time_s and power_w must be 1-d and of equal length")
    ok = np.isfinite(t) & np.isfinite(p)
    t, p = t[ok], p[ok]
    if len(t) < 2:
        raise NotEstimableError("fewer than 2 finite power samples")
    if np.any(np.diff(t) < 0):
        raise ValueError("time_s must be non-decreasing")
    return t, p


def pseudo_epochs(time_s, power_w, n_epochs: int) -> pd.DataFrame:
    """Cut a run's power curve into ``n_epochs`` equal time slices ("pseudo-epochs", for logs
    without epoch markers: with n_epochs = trained epochs each slice lasts the mean epoch time).

    Returns one row per slice: ``epoch``, ``start_s``, ``end_s``, ``duration_s``, ``energy_j``
    (the slices' energies sum to the trapezoid energy of the whole curve)."""
    t, p = _curve(time_s, power_w)
    if n_epochs < 1:
        raise NotEstimableError(f"n_epochs must be >= 1, got {n_epochs}")
    edges = np.linspace(t[0], t[-1], n_epochs + 1)
    energy = np.diff(cumulative_energy_at_j(t, p, edges))
    return pd.DataFrame({"epoch": np.arange(n_epochs), "start_s": edges[:-1], "end_s": edges[1:],
                         "duration_s": np.diff(edges), "energy_j": energy})


def online_time_window_energy_j(
    time_s,
    power_w,
    observed_fraction: float,
    total_duration_s: float,
    stabilisation_s: float = 0.0,
    window_s: float | None = None,
    method: str = "step",
    pue: float = 1.0,
) -> float:
    """Observe the first ``observed_fraction`` f of a run and project its energy (J).

    Only samples with ``time_s - time_s[0] <= f · T`` are used (no look-ahead). The window is
    [stabilisation_s, t_obs] (or its last ``window_s`` seconds), t_obs being the last observed
    sample, and P̄ its time-weighted mean power.

    * ``method="step"`` (time-window STEP): Ê = (E_observed + P̄ · (T - t_obs)) · PUE.
    * ``method="power"`` (online power): Ê = P̄ · T · PUE.

    ``total_duration_s`` is the true duration T (as the published online estimators assume);
    ``stabilisation_s`` counts from the first sample.
    """
    if not 0 < observed_fraction <= 1:
        raise ValueError("observed_fraction must be in (0, 1]")
    if method not in {"step", "power"}:
        raise ValueError(f"method must be 'step' or 'power', got {method!r}")
    t, p = _curve(time_s, power_w)
    rel = t - t[0]
    seen = rel <= observed_fraction * total_duration_s
    if seen.sum() < 2:
        raise NotEstimableError(f"fewer than 2 samples in the first {observed_fraction:.0%}")
    rel, p = rel[seen], p[seen]
    t_obs = rel[-1]
    start = stabilisation_s if window_s is None else max(stabilisation_s, t_obs - window_s)
    if start >= t_obs:
        raise NotEstimableError(
            f"stabilisation point {stabilisation_s:.0f} s not passed at {t_obs:.0f} s observed"
        )
    e_obs, e_start = cumulative_energy_at_j(rel, p, [t_obs, start])
    p_mean = (e_obs - e_start) / (t_obs - start)
    if method == "power":
        return float(p_mean * total_duration_s * pue)
    return float((e_obs + p_mean * max(total_duration_s - t_obs, 0.0)) * pue)



def stabilisation_epoch_rule(epoch_energies_j, window: int = 3, cv_tol: float = 0.05,
                             min_epoch: int = 1) -> int | None:
    """Documented rule: the stabilisation point is the first epoch s >= ``min_epoch`` such that
    the ``window`` epochs [s, s + window) have a coefficient of variation (std/mean, ddof=1)
    at most ``cv_tol``. Returns None when no such window exists yet.

    Uses only epochs up to s + window - 1, so it can run online. ``min_epoch`` skips known
    warm-up epochs (epoch 0 holds data caching and autotuning; with transfer learning, the
    frozen-backbone epochs: the SEAA 2023 runs train 10 epochs before unfreezing)."""
    e = np.asarray(epoch_energies_j, dtype=float)
    for s in range(max(min_epoch, 0), len(e) - window + 1):
        w = e[s:s + window]
        mean = w.mean()
        if mean > 0 and w.std(ddof=1) / mean <= cv_tol:
            return s
    return None



def _run_curves(samples: pd.DataFrame, runs: pd.DataFrame, power_col: str, time_col: str):
    """(run_id, run row, elapsed seconds, power) for every run in ``runs`` with samples."""
    by_run = {rid: sub for rid, sub in samples.groupby("run_id", sort=False)}
    for rid, run in runs.set_index("run_id").iterrows():
        sub = by_run.get(rid)
        if sub is None:
            yield rid, run, None, None
            continue
        sub = sub.sort_values(time_col)
        yield rid, run, sub[time_col].to_numpy(float), sub[power_col].to_numpy(float)


def pseudo_epoch_table(samples: pd.DataFrame, runs: pd.DataFrame,
                       power_col: str = "device_power_w",
                       time_col: str = "elapsed_s") -> pd.DataFrame:
    """Pseudo-epochs for runs without epoch markers: each run's power curve cut into
    ``runs.epochs`` equal time slices (``pseudo_epochs``). Columns: run_id, epoch, start_s,
    end_s, duration_s, energy_j (the per-epoch layout the epoch-based estimators read)."""
    parts = []
    for rid, run, t, p in _run_curves(samples, runs, power_col, time_col):
        if t is None or not np.isfinite(run["epochs"]) or run["epochs"] < 1:
            continue
        try:
            parts.append(pseudo_epochs(t, p, int(run["epochs"])).assign(run_id=rid))
        except NotEstimableError:
            continue
    cols = ["run_id", "epoch", "start_s", "end_s", "duration_s", "energy_j"]
    return pd.concat(parts, ignore_index=True)[cols] if parts else pd.DataFrame(columns=cols)


def epoch_arrays(epochs: pd.DataFrame) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """run_id -> (epoch energies J, epoch durations s), in epoch order."""
    ordered = epochs.sort_values(["run_id", "epoch"])
    return {rid: (sub["energy_j"].to_numpy(float), sub["duration_s"].to_numpy(float))
            for rid, sub in ordered.groupby("run_id", sort=False)}


def _try(fn, *args) -> tuple[float, str]:
    """(value, '') or (NaN, reason) for an estimator call."""
    try:
        return fn(*args), ""
    except NotEstimableError as err:
        return math.nan, err.reason


def epoch_sensitivity(epochs: pd.DataFrame, runs: pd.DataFrame,
                      stabilisation_epochs: Sequence[int], windows_epochs: Sequence[int],
                      k: int = 1) -> pd.DataFrame:
    """Epoch-based estimates of every run for each (stabilisation epoch s, window w):
    ``online_power`` and ``step`` (and ``carbontracker`` with k first epochs, once per run, with
    s = w = NaN). N = ``runs.epochs``; T = ``runs.training_duration_s`` (the training window)
    where present, else ``runs.duration_s``; STEP adds ``runs.pre_epoch_energy_j`` where known;
    ``epochs`` has run_id, epoch, duration_s, energy_j.

    Returns a long frame: run_id, method, stabilisation_epoch, window_epochs, estimate_j, reason.
    """
    arrays = epoch_arrays(epochs)
    rows = []
    runs = runs.assign(
        duration_s=runs["training_duration_s"] if "training_duration_s" in runs
        else runs["duration_s"],
        before_j=runs["pre_epoch_energy_j"].fillna(0.0) if "pre_epoch_energy_j" in runs
        else 0.0)
    for run in runs[["run_id", "epochs", "duration_s", "before_j"]].itertuples(index=False):
        e, d = arrays.get(run.run_id, (None, None))
        if e is None:
            rows.append((run.run_id, "all", math.nan, math.nan, math.nan, "no epoch data"))
            continue
        if not np.isfinite(run.epochs):
            rows.append((run.run_id, "all", math.nan, math.nan, math.nan,
                         "no epoch count (N)"))
            continue
        n = int(run.epochs)
        rows.append((run.run_id, "carbontracker", math.nan, math.nan,
                     *_try(carbontracker_energy_j, e, n, k)))
        for s in stabilisation_epochs:
            for w in windows_epochs:
                rows.append((run.run_id, "online_power", s, w,
                             *_try(online_power_energy_j, e, d, run.duration_s, s, w)))
                rows.append((run.run_id, "step", s, w,
                             *_try(step_energy_j, e, n, s, w, 1.0, run.before_j)))
    return pd.DataFrame(rows, columns=["run_id", "method", "stabilisation_epoch",
                                       "window_epochs", "estimate_j", "reason"])


def epoch_method_estimates(epochs: pd.DataFrame, runs: pd.DataFrame,
                           stabilisation_epoch: int = 10, window_epochs: int = 5, k: int = 1,
                           prefix: str = "") -> tuple[pd.DataFrame, pd.DataFrame]:
    """Carbontracker, online power and STEP for every run at one (s, w) (see
    ``epoch_sensitivity``), as wide frames indexed by run_id: (estimates J, reasons), columns
    ``<prefix>carbontracker``, ``<prefix>online_power``, ``<prefix>step``."""
    long = epoch_sensitivity(epochs, runs, [stabilisation_epoch], [window_epochs], k)
    index = pd.Index(runs["run_id"], name="run_id")
    names = ["carbontracker", "online_power", "step"]
    missing = long[long["method"] == "all"]
    long = pd.concat([long[long["method"] != "all"],
                      *(missing.assign(method=m) for m in names)])
    wide = long.pivot(index="run_id", columns="method")
    est = wide["estimate_j"].reindex(index=index, columns=names).add_prefix(prefix)
    why = wide["reason"].reindex(index=index, columns=names).add_prefix(prefix)
    return est.astype(float), why


def _online_rows(rid, t, p, T, f, s, reason):
    for method, label in (("step", "step_time"), ("power", "online_power_time")):
        value, why = (math.nan, reason) if reason else _try(
            online_time_window_energy_j, t, p, f, T, s, None, method)
        yield (rid, f, label, s, value, why)


def online_fraction_estimates(
    samples: pd.DataFrame,
    runs: pd.DataFrame,
    fractions: Sequence[float],
    stabilisation: str | float = "change_point",
    stabilisation_epoch: int = 10,
    change_point_window: int = 10,
    power_col: str = "device_power_w",
    time_col: str = "elapsed_s",
) -> pd.DataFrame:
    """Time-window online estimates (``online_time_window_energy_j``, methods 'step' and
    'power') of every run after observing each fraction f of its training window (T =
    ``training_duration_s``; ``samples`` cut to the window, time from its start).

    The stabilisation point is, by ``stabilisation``:
    * ``"change_point"``: ``helpers.analysis.power.stabilisation_point`` (two regimes, ruptures on
      ``change_point_window``-sample block means) on the samples of the first f · T only;
    * ``"pseudo_epoch"``: ``stabilisation_epoch`` · T / N (the published epoch-10 rule applied
      to equal pseudo-epochs);
    * a number: that many seconds from the first sample.

    Returns a long frame: run_id, observed_fraction, method ('step_time', 'online_power_time'),
    stabilisation_s, estimate_j, reason (empty when estimated).
    """
    if isinstance(stabilisation, str) and stabilisation not in {"change_point", "pseudo_epoch"}:
        raise ValueError(f"unknown stabilisation {stabilisation!r}")
    rows = []
    duration = "training_duration_s" if "training_duration_s" in runs else "duration_s"
    for rid, run, t, p in _run_curves(samples, runs, power_col, time_col):
        T = run[duration]
        for f in fractions:
            s, reason = math.nan, ""
            if t is None:
                reason = "no samples"
            elif not np.isfinite(T) or T <= 0:
                reason = "no training duration"
            elif stabilisation == "pseudo_epoch":
                s = stabilisation_epoch * T / run["epochs"]
            elif stabilisation == "change_point":
                seen = (t - t[0]) <= f * T
                s, note = power.stabilisation_point(p[seen], t[seen] - t[0],
                                                    window=change_point_window)
                reason = "" if np.isfinite(s) else f"no stabilisation point: {note}"
            else:
                s = float(stabilisation)
            rows.extend(_online_rows(rid, t, p, T, f, s, reason))
    return pd.DataFrame(rows, columns=["run_id", "observed_fraction", "method",
                                       "stabilisation_s", "estimate_j", "reason"])
