"""PRE: regression from features known before training (docs/methods.md#estimators).

scikit-learn Pipelines (scaler inside) predict mean power, time per epoch and energy per epoch;
the hyper-parameter search is nested inside the outer cross-validation, so that no scaler or
search ever sees a test row. Energies in J, powers in W, durations in s.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
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

from helpers.core import gpu_specs

#: Candidate pre-training features (per-run columns), in order; those absent or all-NaN in a
#: dataset are dropped with a reason. GPU memory and cores come from ``gpu_specs``.
PRE_FEATURES = ("gflops", "params", "batch_size", "input_size_px", "train_size",
                "gpu_power_limit_w", "gpu_memory_gb", "gpu_cuda_cores", "ram_total_gb")

#: PRE targets: per-run quantity -> how it is formed from measured columns (the training
#: window's energy and duration, docs/methods.md#energy-windows).
PRE_TARGETS = {
    "power_w": "training_energy_j / training_duration_s (mean power of the training window)",
    "power_fraction": "power_w / gpu_power_limit_w (mean power relative to the power limit)",
    "epoch_time_s": "training_duration_s / epochs",
    "epoch_energy_j": "training_energy_j / epochs",
}


def training_energy_duration(runs: pd.DataFrame) -> tuple[pd.Series, pd.Series]:
    """(energy J, duration s) of each run's training window: ``training_energy_j`` and
    ``training_duration_s``, or ``energy_j`` and ``duration_s`` in a table without them."""
    energy = runs["training_energy_j"] if "training_energy_j" in runs else runs["energy_j"]
    duration = (runs["training_duration_s"] if "training_duration_s" in runs
                else runs["duration_s"])
    return energy.astype(float), duration.astype(float)

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
    energy_j, duration_s = training_energy_duration(runs)
    y = pd.DataFrame(index=runs.index)
    y["power_w"] = energy_j / duration_s
    y["power_fraction"] = y["power_w"] / src["gpu_power_limit_w"]
    y["epoch_time_s"] = duration_s / runs["epochs"]
    y["epoch_energy_j"] = energy_j / runs["epochs"]
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

    Fits, per model, the mean power (relative to the power limit when ``relative_power`` and
    the runs have one, then multiplied back by the run's limit, a pre-training quantity), the
    time per epoch and the energy per epoch with ``nested_cv_predict``. Returns a frame indexed
    like ``runs`` with columns ``pre_<model>_<mode>`` (NaN where a run was in no test fold or
    lacks a feature; NaN everywhere, nothing fitted, when the runs have no feature at all) and
    the fits by (model, target).
    """
    splits = list(splits)
    if features.X.shape[1] == 0:
        return pd.DataFrame(np.nan, index=runs.index, columns=[
            f"pre_{model}_{mode}" for model in models for mode in PRE_MODES]), {}
    # without any power limit (CPU-only runs) the mean power itself is the target
    relative_power = relative_power and "gpu_power_limit_w" in features.X
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
        duration_s = training_energy_duration(runs)[1]
        for mode in PRE_MODES:
            out[f"pre_{model}_{mode}"] = pre_energy_j(
                mode, n_epochs=runs["epochs"], duration_s=duration_s, power_w=power_w,
                epoch_time_s=pred["epoch_time_s"], epoch_energy_j=pred["epoch_energy_j"])
    return out, fits
