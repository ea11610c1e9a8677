"""Evaluation of energy estimators (docs/methods.md#estimators): metrics, bootstrap CIs,
splitters, error tables.

Energies are joules in, metrics carry their unit in the name: ``rmse_kj`` (kJ), ``mape_pct`` (%),
``r2`` (unitless), ``mean_signed_error_j`` (J, estimate minus measurement: positive =
overestimate). Every method is scored on the same runs: a run any method cannot estimate is
dropped for all of them, and the drop is reported with its reason.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from sklearn.model_selection import GroupKFold, LeaveOneGroupOut, train_test_split


def _pair(y_true_j, y_pred_j) -> tuple[np.ndarray, np.ndarray]:
    y, p = np.asarray(y_true_j, dtype=float), np.asarray(y_pred_j, dtype=float)
    if y.shape != p.shape:
        raise ValueError(f"shapes differ: {y.shape} vs {p.shape}")
    return y, p


def rmse_kj(y_true_j, y_pred_j) -> float | np.ndarray:
    """Root mean squared error (kJ) along the last axis."""
    y, p = _pair(y_true_j, y_pred_j)
    return np.sqrt(np.mean((p - y) ** 2, axis=-1)) / 1e3


def mape_pct(y_true_j, y_pred_j) -> float | np.ndarray:
    """Mean absolute percentage error (%) along the last axis (measured energies must be > 0)."""
    y, p = _pair(y_true_j, y_pred_j)
    if np.any(y <= 0):
        raise ValueError("MAPE needs strictly positive measured energies")
    return np.mean(np.abs(p - y) / y, axis=-1) * 100


def r2(y_true_j, y_pred_j) -> float | np.ndarray:
    """Coefficient of determination 1 - SS_res / SS_tot along the last axis."""
    y, p = _pair(y_true_j, y_pred_j)
    ss_res = np.sum((y - p) ** 2, axis=-1)
    ss_tot = np.sum((y - y.mean(axis=-1, keepdims=True)) ** 2, axis=-1)
    with np.errstate(divide="ignore", invalid="ignore"):
        return 1 - ss_res / ss_tot


def mean_signed_error_j(y_true_j, y_pred_j) -> float | np.ndarray:
    """Mean of (estimate - measurement) (J) along the last axis: positive = overestimate."""
    y, p = _pair(y_true_j, y_pred_j)
    return np.mean(p - y, axis=-1)


#: Metric name -> function(y_true_j, y_pred_j), vectorised along the last axis.
METRICS: dict[str, Callable] = {
    "rmse_kj": rmse_kj,
    "mape_pct": mape_pct,
    "r2": r2,
    "mean_signed_error_j": mean_signed_error_j,
}


def bootstrap_indices(n: int, n_boot: int = 1000, seed: int = 0,
                      groups: Sequence | None = None) -> np.ndarray:
    """Row positions of ``n_boot`` bootstrap resamples, shape (n_boot, n) (or a ragged list of
    arrays when ``groups`` is given: whole groups are resampled, a cluster bootstrap)."""
    rng = np.random.default_rng(seed)
    if groups is None:
        return rng.integers(0, n, size=(n_boot, n))
    g = np.asarray(groups)
    members = [np.flatnonzero(g == u) for u in np.unique(g)]
    picks = rng.integers(0, len(members), size=(n_boot, len(members)))
    return [np.concatenate([members[j] for j in row]) for row in picks]


def bootstrap_ci(y_true_j, y_pred_j, metric: str | Callable, n_boot: int = 1000,
                 confidence: float = 0.95, seed: int = 0,
                 groups: Sequence | None = None) -> tuple[float, float]:
    """Percentile bootstrap CI of ``metric`` over runs (resampling runs, or whole groups when
    ``groups`` is given). Seeded: the same inputs give the same interval. NaN without
    resamples (``n_boot`` 0) or with fewer than two runs."""
    fn = METRICS[metric] if isinstance(metric, str) else metric
    y, p = _pair(y_true_j, y_pred_j)
    if n_boot < 1 or len(y) < 2:
        return float("nan"), float("nan")
    idx = bootstrap_indices(len(y), n_boot, seed, groups)
    vals = fn(y[idx], p[idx]) if groups is None else np.array([fn(y[i], p[i]) for i in idx])
    vals = np.where(np.isfinite(vals), vals, np.nan)
    alpha = (1 - confidence) / 2
    lo, hi = np.nanquantile(vals, [alpha, 1 - alpha])
    return float(lo), float(hi)


# --------------------------------------------------------------------------------------------
# Splitters (row positions)
# --------------------------------------------------------------------------------------------

def random_split(n: int, test_fraction: float = 0.3,
                 seed: int = 0) -> list[tuple[np.ndarray, np.ndarray]]:
    """One seeded random (train, test) split of ``n`` rows, as a one-element split list."""
    train, test = train_test_split(np.arange(n), test_size=test_fraction, random_state=seed)
    return [(np.sort(train), np.sort(test))]


def leave_one_group_out(groups: Sequence) -> list[tuple[np.ndarray, np.ndarray]]:
    """Leave-one-group-out splits (sklearn ``LeaveOneGroupOut``): each group is the test set
    once, e.g. groups = architectures or environments/GPUs."""
    g = np.asarray(groups)
    return list(LeaveOneGroupOut().split(np.zeros(len(g)), groups=g))


def group_kfold(groups: Sequence, n_splits: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """Grouped K-fold splits (sklearn ``GroupKFold``): no group is in train and test at once."""
    g = np.asarray(groups)
    return list(GroupKFold(n_splits=n_splits).split(np.zeros(len(g)), groups=g))


def check_group_disjoint(splits, groups: Sequence) -> None:
    """Raise ``AssertionError`` if any group appears in both train and test of a split."""
    g = np.asarray(groups)
    for i, (train, test) in enumerate(splits):
        both = set(g[train]) & set(g[test])
        if both:
            raise AssertionError(f"split {i}: groups in both train and test: {sorted(both)}")


# --------------------------------------------------------------------------------------------
# Scoring every method on the same runs
# --------------------------------------------------------------------------------------------

@dataclass
class ScoreResult:
    """Tidy error table and the runs dropped from it.

    Attributes:
        errors: one row per (split, method, metric): ``value``, ``ci_low``, ``ci_high``,
            ``n_runs``.
        dropped: one row per (split, run, method) that could not be estimated: ``reason``.
    """

    errors: pd.DataFrame
    dropped: pd.DataFrame


def score_methods(
    measured_j: pd.Series,
    estimates_j: pd.DataFrame,
    split: str,
    reasons: pd.DataFrame | None = None,
    n_boot: int = 1000,
    confidence: float = 0.95,
    seed: int = 0,
) -> ScoreResult:
    """Score every method (column of ``estimates_j``, J) against ``measured_j`` on the same runs.

    Runs where the measurement or any method is missing/non-finite are dropped for all methods;
    each (run, method) gap is listed in ``dropped`` with the reason from ``reasons`` (same shape
    as ``estimates_j``, strings) or a generic one. CIs come from a paired percentile bootstrap
    (the same resamples for every method, seeded).
    """
    est = estimates_j.reindex(measured_j.index)
    y = measured_j.astype(float)
    bad_est = ~np.isfinite(est.astype(float))
    bad_y = ~np.isfinite(y) | (y <= 0)
    rows = []
    for run in y.index[bad_y]:
        rows.append((split, run, "measurement", "measured energy missing or not positive"))
    for method in est.columns:
        for run in est.index[bad_est[method] & ~bad_y]:
            why = None if reasons is None else reasons.get(method, pd.Series()).get(run)
            rows.append((split, run, method, why if isinstance(why, str) and why
                         else "estimate missing (method could not be computed)"))
    dropped = pd.DataFrame(rows, columns=["split", "run_id", "method", "reason"])
    keep = ~bad_y & ~bad_est.any(axis=1)
    yk, ek = y[keep].to_numpy(), est[keep].astype(float)
    out = []
    idx = bootstrap_indices(len(yk), n_boot, seed) if len(yk) > 1 and n_boot > 0 else None
    alpha = (1 - confidence) / 2
    for method in ek.columns:
        p = ek[method].to_numpy()
        for metric, fn in METRICS.items():
            value = float(fn(yk, p)) if len(yk) else np.nan
            lo = hi = np.nan
            if idx is not None:
                vals = np.asarray(fn(yk[idx], p[idx]), dtype=float)
                vals[~np.isfinite(vals)] = np.nan  # e.g. R² of a resample with one value
                lo, hi = np.nanquantile(vals, [alpha, 1 - alpha])
            out.append((split, method, metric, value, float(lo), float(hi), int(keep.sum())))
    errors = pd.DataFrame(out, columns=["split", "method", "metric", "value", "ci_low",
                                        "ci_high", "n_runs"])
    return ScoreResult(errors, dropped)


def wide_table(errors: pd.DataFrame, digits: int = 2) -> pd.DataFrame:
    """Display form of an error table: one row per (split, method), one column per metric,
    each cell 'value [ci_low, ci_high]'."""
    def cell(r: pd.Series) -> str:
        return f"{r['value']:.{digits}f} [{r['ci_low']:.{digits}f}, {r['ci_high']:.{digits}f}]"

    e = errors.assign(cell=errors.apply(cell, axis=1))
    return e.pivot_table(index=["split", "method"], columns="metric", values="cell",
                         aggfunc="first", sort=False)



def grouped_mape(estimates: pd.DataFrame, measured_j: pd.Series, by: Sequence[str],
                 n_boot: int = 1000, confidence: float = 0.95, seed: int = 0) -> pd.DataFrame:
    """MAPE (%) with a bootstrap CI for each group of a long estimate table.

    ``estimates`` has ``run_id``, ``estimate_j`` and the ``by`` columns (e.g. method,
    observed_fraction); ``measured_j`` is indexed by run_id. Each group is scored on its
    estimable runs (the interval needs two); ``n_runs`` and ``n_not_estimable`` say how many
    that was.
    """
    rows = []
    for key, sub in estimates.groupby(list(by), sort=True, dropna=False):
        y = sub["run_id"].map(measured_j).to_numpy(float)
        p = sub["estimate_j"].to_numpy(float)
        ok = np.isfinite(y) & np.isfinite(p) & (y > 0)
        value = lo = hi = np.nan
        if ok.any():
            value = float(mape_pct(y[ok], p[ok]))
            lo, hi = bootstrap_ci(y[ok], p[ok], "mape_pct", n_boot, confidence, seed)
        key = key if isinstance(key, tuple) else (key,)
        rows.append((*key, value, lo, hi, int(ok.sum()), int((~ok).sum())))
    return pd.DataFrame(rows, columns=[*by, "mape_pct", "ci_low", "ci_high", "n_runs",
                                       "n_not_estimable"])
