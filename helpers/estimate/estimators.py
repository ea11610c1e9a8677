"""Energy estimators for DL training (METHODS §8): baselines, online and pre-training (PRE).

All energies are joules, powers watts, durations seconds. Notation: T = training duration (s),
N = epochs, u = mean GPU utilisation (fraction 0-1), P_TDP = GPU power limit or TDP (W),
s = stabilisation point (epoch, or seconds for time series), w = window.

* Baselines: ML CO2 Impact (P_TDP · T) and Green Algorithms (T · (P_TDP · u + RAM + CPU)).
* Epoch-based online estimators: Carbontracker (first k epochs · N), online power (mean power over
  a window after s · T) and STEP (energy before s + mean window epoch energy · (N - s)), plus
  ``StepForecaster``, usable during training.
* Time-window estimators for logs without epoch markers (seaa2023): ``pseudo_epochs`` cuts the
  power curve into equal time slices (epoch-based estimators then apply), and
  ``online_time_window_energy_j`` observes the first fraction of a run and projects the rest.
* PRE: scikit-learn Pipelines (scaler inside) predicting mean power, time per epoch and energy per
  epoch from features known before training, with the hyper-parameter search nested inside the
  outer cross-validation so that no scaler or search ever sees a test row.

An estimator that cannot be computed for a run raises ``NotEstimableError`` with the reason, so
that evaluation can drop that run for every method and report why.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy import stats
from sklearn.base import clone
from sklearn.compose import TransformedTargetRegressor
from sklearn.ensemble import GradientBoostingRegressor
from sklearn.kernel_ridge import KernelRidge
from sklearn.linear_model import LinearRegression, Ridge
from sklearn.model_selection import GridSearchCV, GroupKFold, KFold
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.svm import SVR
from threadpoolctl import threadpool_limits

from helpers.analysis import power
from helpers.core import gpu_specs
from helpers.core.energy import RAM_W_PER_GB, cumulative_energy_at_j

#: Green Algorithms' default CPU power per core when the model is unknown ("Any" CPU, W/core).
CPU_W_PER_CORE_DEFAULT = 12.0


class NotEstimableError(ValueError):
    """An estimator cannot be computed for this run; ``reason`` says why."""

    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(reason)


def _arr(x: float | Sequence[float] | np.ndarray | pd.Series, name: str) -> np.ndarray:
    """Float array of ``x``; raises ``ValueError`` for negative values (NaN passes through)."""
    a = np.asarray(x, dtype=float)
    if np.any(a < 0):
        raise ValueError(f"{name} must be non-negative")
    return a


def _out(a: np.ndarray) -> float | np.ndarray:
    """Return a Python float for 0-d results, the array otherwise."""
    return float(a) if a.ndim == 0 else a


# --------------------------------------------------------------------------------------------
# Baselines
# --------------------------------------------------------------------------------------------

def ml_co2_impact_energy_j(duration_s, tdp_w, pue: float = 1.0) -> float | np.ndarray:
    """ML CO2 Impact: Ê = P_TDP · T · PUE (J). Vectorised over runs."""
    return _out(_arr(tdp_w, "tdp_w") * _arr(duration_s, "duration_s") * pue)


def green_algorithms_energy_j(
    duration_s,
    tdp_w,
    gpu_usage,
    ram_gb=0.0,
    cpu_cores=0.0,
    cpu_w_per_core: float = CPU_W_PER_CORE_DEFAULT,
    cpu_usage=1.0,
    pue: float = 1.0,
) -> float | np.ndarray:
    """Green Algorithms: Ê = T · (P_TDP · u + M · 0.3725 + cores · W/core · u_cpu) · PUE (J).

    ``gpu_usage`` and ``cpu_usage`` are fractions 0-1 (a value above 1 raises: pass percentages
    divided by 100). With ``ram_gb`` and ``cpu_cores`` left at 0 this is the GPU-only variant
    Ê = P_TDP · u · T, the one the SEAA 2023 comparison uses. Vectorised over runs.
    """
    u = _arr(gpu_usage, "gpu_usage")
    u_cpu = _arr(cpu_usage, "cpu_usage")
    if np.any(u > 1) or np.any(u_cpu > 1):
        raise ValueError("gpu_usage and cpu_usage are fractions 0-1 (divide percentages by 100)")
    power_w = (_arr(tdp_w, "tdp_w") * u + _arr(ram_gb, "ram_gb") * RAM_W_PER_GB
               + _arr(cpu_cores, "cpu_cores") * cpu_w_per_core * u_cpu)
    return _out(_arr(duration_s, "duration_s") * power_w * pue)


# --------------------------------------------------------------------------------------------
# Epoch-based online estimators
# --------------------------------------------------------------------------------------------

def _epochs(epoch_energies_j: Sequence[float] | np.ndarray, n_epochs: int) -> np.ndarray:
    e = _arr(epoch_energies_j, "epoch_energies_j")
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
    d = _arr(epoch_durations_s, "epoch_durations_s")
    if d.shape != e.shape:
        raise ValueError("epoch_energies_j and epoch_durations_s differ in length")
    w = _window(len(e), stabilisation_epoch, window_epochs)
    if d[w].sum() <= 0:
        raise NotEstimableError("window has zero duration")
    return float(e[w].sum() / d[w].sum() * total_duration_s * pue)


def step_energy_j(epoch_energies_j, n_epochs: int, stabilisation_epoch: int,
                  window_epochs: int, pue: float = 1.0) -> float:
    """STEP: Ê = (Σ energy of epochs < s + mean energy of epochs [s, s + w) · (N - s)) · PUE (J).
    """
    e = _epochs(epoch_energies_j, n_epochs)
    w = _window(len(e), stabilisation_epoch, window_epochs)
    if n_epochs < w.stop:
        raise NotEstimableError(f"window ends at epoch {w.stop - 1} beyond N = {n_epochs}")
    return float((e[:stabilisation_epoch].sum()
                  + e[w].mean() * (n_epochs - stabilisation_epoch)) * pue)


# --------------------------------------------------------------------------------------------
# Power curves: integration, pseudo-epochs, time windows
# --------------------------------------------------------------------------------------------

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


# --------------------------------------------------------------------------------------------
# Stabilisation point
# --------------------------------------------------------------------------------------------

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


# --------------------------------------------------------------------------------------------
# Per-run tables: apply the online estimators to every run of a dataset
# --------------------------------------------------------------------------------------------

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
    s = w = NaN). N = ``runs.epochs``; T = ``runs.training_duration_s`` (the epochs' duration)
    where present, else ``runs.duration_s``; ``epochs`` has run_id, epoch, duration_s, energy_j.

    Returns a long frame: run_id, method, stabilisation_epoch, window_epochs, estimate_j, reason.
    """
    arrays = epoch_arrays(epochs)
    rows = []
    cols = ["run_id", "epochs", "duration_s"]
    if "training_duration_s" in runs:
        runs = runs.assign(duration_s=runs["training_duration_s"])
    for run in runs[cols].itertuples(index=False):
        e, d = arrays.get(run.run_id, (None, None))
        if e is None:
            rows.append((run.run_id, "all", math.nan, math.nan, math.nan, "no epoch data"))
            continue
        n = int(run.epochs)
        rows.append((run.run_id, "carbontracker", math.nan, math.nan,
                     *_try(carbontracker_energy_j, e, n, k)))
        for s in stabilisation_epochs:
            for w in windows_epochs:
                rows.append((run.run_id, "online_power", s, w,
                             *_try(online_power_energy_j, e, d, run.duration_s, s, w)))
                rows.append((run.run_id, "step", s, w, *_try(step_energy_j, e, n, s, w)))
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
    'power') of every run after observing each fraction f of it.

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
    for rid, run, t, p in _run_curves(samples, runs, power_col, time_col):
        T = run["duration_s"]
        for f in fractions:
            s, reason = math.nan, ""
            if t is None:
                reason = "no samples"
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


# --------------------------------------------------------------------------------------------
# Online STEP forecaster
# --------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Forecast:
    """A run-energy forecast (J). ``stable`` is False (and the numbers NaN) until a
    stabilisation point has been passed; ``reason`` says why not, or how the interval was
    formed."""

    energy_j: float
    low_j: float
    high_j: float
    stable: bool
    stabilisation_epoch: int | None
    epochs_observed: int
    reason: str


class StepForecaster:
    """STEP forecaster to call after every epoch of a training run.

    After epoch e (energies E_0..E_e observed, n = e + 1), once a stabilisation point s is known
    (``stabilisation_epoch`` if given, else ``stabilisation_epoch_rule``) and at least
    ``window`` epochs since s are observed, the forecast for N planned epochs is

        Ê = Σ_{i<n} E_i + m · Ē,   m = N - n remaining epochs, Ē = mean(E_s..E_e)

    (equal to ``step_energy_j`` with the window spanning every epoch since s). The interval is a
    t prediction interval for the sum of m future epochs drawn independently like E_s..E_e:
    Ê ± (t_{(1+c)/2, k-1} · sd · sqrt(m²/k + m) + r · m · Ē), k = n - s, clipped below at the
    energy already observed; r = ``systematic_rel`` is an optional allowance for drift (the t
    part assumes independent, stationary epochs and is too narrow when epoch energies drift).
    All values are multiplied by ``pue``.
    """

    def __init__(self, n_epochs_planned: int, window: int = 3, cv_tol: float = 0.05,
                 min_epoch: int = 1, stabilisation_epoch: int | None = None,
                 confidence: float = 0.95, systematic_rel: float = 0.0,
                 pue: float = 1.0) -> None:
        if n_epochs_planned < 1 or window < 2:
            raise ValueError("n_epochs_planned must be >= 1 and window >= 2")
        self.n_epochs_planned = n_epochs_planned
        self.window = window
        self.cv_tol = cv_tol
        self.min_epoch = min_epoch
        self.fixed_stabilisation = stabilisation_epoch
        self.confidence = confidence
        self.systematic_rel = systematic_rel
        self.pue = pue
        self.energies_j: list[float] = []
        self.stabilisation: int | None = None

    def update(self, epoch: int, epoch_energy_j: float) -> Forecast:
        """Record the energy (J) of ``epoch`` (0, 1, 2, ... in order) and return a forecast."""
        if epoch != len(self.energies_j):
            raise ValueError(f"expected epoch {len(self.energies_j)}, got {epoch}")
        if not (math.isfinite(epoch_energy_j) and epoch_energy_j >= 0):
            raise ValueError(f"epoch energy must be finite and >= 0, got {epoch_energy_j}")
        self.energies_j.append(float(epoch_energy_j))
        n = len(self.energies_j)
        if self.stabilisation is None:
            if self.fixed_stabilisation is not None:
                if n >= self.fixed_stabilisation + self.window:
                    self.stabilisation = self.fixed_stabilisation
            else:
                self.stabilisation = stabilisation_epoch_rule(
                    self.energies_j, self.window, self.cv_tol, self.min_epoch)
        if self.stabilisation is None:
            return Forecast(math.nan, math.nan, math.nan, False, None, n,
                            "stabilisation point not passed yet")
        return self._forecast(n)

    def _forecast(self, n: int) -> Forecast:
        e = np.asarray(self.energies_j)
        s = self.stabilisation
        post = e[s:]
        k, m = len(post), max(self.n_epochs_planned - n, 0)
        observed = e.sum()
        mean, sd = post.mean(), post.std(ddof=1)
        estimate = observed + m * mean
        t = stats.t.ppf((1 + self.confidence) / 2, k - 1)
        half = t * sd * math.sqrt(m * m / k + m) + self.systematic_rel * m * mean
        reason = (f"t interval from {k} epochs since stabilisation epoch {s}"
                  if m else "planned epochs reached: forecast is the energy observed")
        low = max(observed, estimate - half)
        return Forecast(float(estimate * self.pue), float(low * self.pue),
                        float((estimate + half) * self.pue), True, s, n, reason)


# --------------------------------------------------------------------------------------------
# PRE: regression from pre-training features
# --------------------------------------------------------------------------------------------

#: Candidate pre-training features (per-run columns), in order; those absent or all-NaN in a
#: dataset are dropped with a reason. GPU memory and cores come from ``gpu_specs``.
PRE_FEATURES = ("gflops", "params", "batch_size", "input_size", "train_size",
                "gpu_power_limit_w", "gpu_memory_gb", "gpu_cuda_cores", "ram_total_gb")

#: PRE targets: per-run quantity -> how it is formed from measured columns.
PRE_TARGETS = {
    "power_w": "energy_j / duration_s (mean power consistent with the run energy)",
    "power_fraction": "power_w / gpu_power_limit_w (mean power relative to the power limit)",
    "epoch_time_s": "duration_s / epochs",
    "epoch_energy_j": "energy_j / epochs",
}

#: PRE energy modes: name -> formula.
PRE_MODES = {
    "true_duration": "P̂ · T (as published: needs the measured duration)",
    "pre_training": "N · t̂_epoch · P̂ (planned epochs only)",
    "epoch_energy": "N · ê_epoch (planned epochs only)",
}


@dataclass
class PreFeatures:
    """Pre-training feature matrix, targets and what was dropped.

    Attributes:
        X: features, one row per run (index = the runs' index).
        y: targets (columns of ``PRE_TARGETS``).
        dropped: feature -> reason it is not used.
        notes: other decisions (e.g. power limits filled from the spec table).
    """

    X: pd.DataFrame
    y: pd.DataFrame
    dropped: dict[str, str] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


def pre_training_features(runs: pd.DataFrame) -> PreFeatures:
    """Build PRE features and targets from a per-run table (RUN_COLUMNS).

    GPU memory and CUDA cores come from ``gpu_specs`` by ``gpu_name``; a missing
    ``gpu_power_limit_w`` is filled with the spec TDP (noted). Features absent or all-NaN are
    dropped with a reason; remaining NaNs stay (those runs are not estimable by PRE).
    """
    specs = gpu_specs.spec_features(runs["gpu_name"])
    src = runs.copy()
    src["gpu_memory_gb"] = specs["gpu_memory_gb"]
    src["gpu_cuda_cores"] = specs["gpu_cuda_cores"]
    notes = []
    limit = src["gpu_power_limit_w"] if "gpu_power_limit_w" in src else specs["gpu_tdp_w"] * np.nan
    fill = limit.isna() & specs["gpu_tdp_w"].notna()
    if fill.any():
        notes.append(f"gpu_power_limit_w filled from the spec-table TDP for {int(fill.sum())} runs")
    src["gpu_power_limit_w"] = limit.where(~fill, specs["gpu_tdp_w"])
    for name, status in specs.loc[specs["gpu_spec_status"] != "ok", "gpu_spec_status"].items():
        notes.append(f"run {name}: GPU spec unknown ({status})")
    dropped, keep = {}, []
    for col in PRE_FEATURES:
        if col not in src:
            dropped[col] = "column absent"
        elif src[col].isna().all():
            dropped[col] = "all values missing"
        else:
            keep.append(col)
    X = src[keep].astype(float)
    y = pd.DataFrame(index=runs.index)
    y["power_w"] = runs["energy_j"] / runs["duration_s"]
    y["power_fraction"] = y["power_w"] / src["gpu_power_limit_w"]
    y["epoch_time_s"] = runs["duration_s"] / runs["epochs"]
    y["epoch_energy_j"] = runs["energy_j"] / runs["epochs"]
    return PreFeatures(X, y.astype(float), dropped, notes)


def pre_pipeline(regressor) -> TransformedTargetRegressor:
    """StandardScaler → regressor, with the target standardised too (both fitted on training
    rows only). Grid keys: ``regressor__model__<param>``."""
    pipe = Pipeline([("scale", StandardScaler()), ("model", regressor)])
    return TransformedTargetRegressor(regressor=pipe, transformer=StandardScaler())


def pre_models(seed: int = 0) -> dict[str, tuple[TransformedTargetRegressor, dict]]:
    """PRE regressors and their (small) hyper-parameter grids."""
    k = "regressor__model__"
    return {
        "linear": (pre_pipeline(LinearRegression()), {}),
        "ridge": (pre_pipeline(Ridge()), {f"{k}alpha": [0.1, 1.0, 10.0]}),
        "kernel_ridge": (pre_pipeline(KernelRidge(kernel="rbf")),
                         {f"{k}alpha": [0.01, 0.1], f"{k}gamma": [0.1, 1.0]}),
        "svr": (pre_pipeline(SVR()), {f"{k}C": [1.0, 10.0], f"{k}epsilon": [0.01, 0.1]}),
        "gradient_boosting": (
            pre_pipeline(GradientBoostingRegressor(n_estimators=30, learning_rate=0.3,
                                                   random_state=seed)),
            {f"{k}max_depth": [2, 3]}),
    }


@dataclass
class FoldFit:
    """One outer fold of a nested CV: positions of its rows, the inner CV used, the selected
    hyper-parameters and the refitted pipeline (fitted on the fold's training rows only)."""

    fold: int
    train: np.ndarray
    test: np.ndarray
    inner_cv: str
    best_params: dict
    estimator: object


@dataclass
class NestedCVResult:
    """Out-of-fold predictions (NaN for rows in no test fold) and the per-fold fits."""

    predictions: pd.Series
    folds: list[FoldFit]


def _inner_cv(groups_train: np.ndarray | None, n_train: int, inner_folds: int, seed: int):
    if groups_train is not None and len(np.unique(groups_train)) >= 2:
        n = min(inner_folds, len(np.unique(groups_train)))
        return GroupKFold(n_splits=n), f"GroupKFold({n})"
    n = min(inner_folds, n_train)
    return KFold(n_splits=n, shuffle=True, random_state=seed), f"KFold({n}, shuffled)"


def nested_cv_predict(
    X: pd.DataFrame,
    y: pd.Series,
    splits: Iterable[tuple[np.ndarray, np.ndarray]],
    model: str,
    groups: Sequence | None = None,
    inner_folds: int = 3,
    seed: int = 0,
) -> NestedCVResult:
    """Nested cross-validation of one PRE model: for every outer (train, test) split (row
    positions), ``GridSearchCV`` selects hyper-parameters by an inner CV on the training rows
    only (GroupKFold over the training groups when ``groups`` has at least two there, otherwise
    a shuffled KFold), refits on those rows, and predicts the test rows.

    Rows with NaN in X or y never enter a training set and get no prediction.
    """
    estimator, grid = pre_models(seed)[model]
    Xv, yv = X.to_numpy(float), y.to_numpy(float)
    finite = np.isfinite(Xv).all(axis=1) & np.isfinite(yv)
    g = None if groups is None else np.asarray(groups)
    pred = np.full(len(y), np.nan)
    folds = []
    for i, (train, test) in enumerate(splits):
        train = np.asarray(train)[finite[train]]
        test = np.asarray(test)[finite[test]]
        if len(test) == 0 or len(train) < 2:
            continue
        g_train = None if g is None else g[train]
        cv, cv_name = _inner_cv(g_train, len(train), inner_folds, seed)
        search = GridSearchCV(clone(estimator), grid, cv=cv,
                              scoring="neg_mean_absolute_percentage_error", refit=True)
        # tiny matrices: one BLAS thread is faster and immune to oversubscription
        with threadpool_limits(limits=1, user_api="blas"):
            search.fit(Xv[train], yv[train],
                       groups=g_train if isinstance(cv, GroupKFold) else None)
            pred[test] = search.predict(Xv[test])
        folds.append(FoldFit(i, train, test, cv_name, search.best_params_,
                             search.best_estimator_))
    return NestedCVResult(pd.Series(pred, index=y.index, name=f"{model}:{y.name}"), folds)


def pre_energy_j(mode: str, *, n_epochs=None, duration_s=None, power_w=None, epoch_time_s=None,
                 epoch_energy_j=None):
    """Combine PRE predictions into a run energy (J) by ``mode`` (see ``PRE_MODES``):
    'true_duration' P̂ · T, 'pre_training' N · t̂ · P̂, 'epoch_energy' N · ê."""
    if mode == "true_duration":
        return np.asarray(power_w, float) * np.asarray(duration_s, float)
    if mode == "pre_training":
        return (np.asarray(n_epochs, float) * np.asarray(epoch_time_s, float)
                * np.asarray(power_w, float))
    if mode == "epoch_energy":
        return np.asarray(n_epochs, float) * np.asarray(epoch_energy_j, float)
    raise ValueError(f"unknown PRE mode {mode!r}; choose from {', '.join(PRE_MODES)}")


def pre_estimates_j(
    runs: pd.DataFrame,
    features: PreFeatures,
    splits: Sequence[tuple[np.ndarray, np.ndarray]],
    models: Sequence[str] = ("linear", "ridge", "kernel_ridge", "svr", "gradient_boosting"),
    groups: Sequence | None = None,
    relative_power: bool = True,
    seed: int = 0,
) -> tuple[pd.DataFrame, dict[tuple[str, str], NestedCVResult]]:
    """Out-of-fold PRE energy estimates (J) for every model and mode.

    Fits, per model, the mean power (relative to the power limit when ``relative_power``, then
    multiplied back by the run's limit, a pre-training quantity), the time per epoch and the
    energy per epoch with ``nested_cv_predict``. Returns a frame indexed like ``runs`` with
    columns ``pre_<model>_<mode>`` (NaN where a run was in no test fold or lacks a feature) and
    the fits by (model, target).
    """
    splits = list(splits)
    power_target = "power_fraction" if relative_power else "power_w"
    limit = features.X["gpu_power_limit_w"] if relative_power else 1.0
    out = pd.DataFrame(index=runs.index)
    fits = {}
    for model in models:
        pred = {}
        for target in (power_target, "epoch_time_s", "epoch_energy_j"):
            res = nested_cv_predict(features.X, features.y[target], splits, model, groups,
                                    seed=seed)
            fits[(model, target)] = res
            pred[target] = res.predictions
        power_w = pred[power_target] * limit
        for mode in PRE_MODES:
            out[f"pre_{model}_{mode}"] = pre_energy_j(
                mode, n_epochs=runs["epochs"], duration_s=runs["duration_s"], power_w=power_w,
                epoch_time_s=pred["epoch_time_s"], epoch_energy_j=pred["epoch_energy_j"])
    return out, fits
