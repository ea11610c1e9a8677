"""Pre-training estimators of training time and energy from the architecture's graph features
and the GPU's specifications (docs/methods.md#estimators).

Inputs per run (:func:`run_inputs`): the architecture feature table (FLOPs and bytes per sample
by operator family, operator calls per step; :mod:`helpers.estimate.architecture_table`), the
training recipe (batch size, epochs, training and validation samples per epoch, epochs with a
frozen backbone, numeric precisions: :data:`RECIPES`) and the GPU's specifications
(:mod:`helpers.core.gpu_specs`: peak dense throughput at those precisions, memory bandwidth,
power cap). Nothing here is measured on the run being predicted.

Estimators (scikit-learn estimators, ``fit(X, energy_j, duration_s=None)`` on a frame of
:func:`run_inputs`, ``predict(X)`` in J):

* :class:`RooflineEnergy`: a roofline time model per step times a utilisation power model, with
  a handful of coefficients fitted in log space with weak physical priors. With
  ``per_environment=False`` the GPU enters only through its specs (shared dimensionless
  efficiencies), so an unseen GPU is predicted from its datasheet.
* :class:`LogFeatureRegressor`: ridge or gradient boosting on log features, target the log energy
  per training sample and epoch.
* :class:`LogLinearBaseline` (log energy on log FLOPs, log parameters, batch size, log epochs)
  and :class:`LookupBaseline` (mean energy per epoch by architecture and batch size; not
  estimable for an architecture never seen).

Every estimator gives an interval (:class:`IntervalModel`): cross-conformal quantiles of the
log-residuals of a grouped cross-validation inside the training runs.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.optimize import least_squares
from sklearn.base import BaseEstimator, RegressorMixin, clone
from sklearn.ensemble import GradientBoostingRegressor
from sklearn.linear_model import LinearRegression, Ridge
from sklearn.model_selection import GroupKFold
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from helpers.core import datasets, gpu_specs, io
from helpers.estimate import architecture_table as arch_table
from helpers.estimate import evaluation as ev
from helpers.estimate.common import NotEstimableError

US = 1e-6
TFLOPS = 1e12
GBS = 1e9


# --------------------------------------------------------------------------------------------
# Training recipes and per-run inputs
# --------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Recipe:
    """How a dataset's runs trained, where the run table does not say.

    Attributes:
        precision: numeric precision of the convolutions ('fp32', 'tf32', 'fp16', ...:
            :data:`helpers.core.gpu_specs.PRECISIONS`).
        matmul_precision: that of the matrix products and attention (PyTorch keeps them in
            full FP32 by default while its cuDNN convolutions use TF32).
        frozen_epochs: first epochs with the backbone frozen (forward pass only through it).
        drop_last_train, drop_last_eval: whether an epoch's training / evaluation pass skips
            its last, partial batch (``samples // batch_size`` steps, else rounded up).
        source: where each value comes from.

    The defaults are the collect stage's PyTorch training.
    """

    precision: str = "tf32"
    matmul_precision: str = "fp32"
    frozen_epochs: int = 0
    drop_last_train: bool = True
    drop_last_eval: bool = False
    source: str = ("PyTorch defaults: fp32 tensors, cuDNN convolutions in TF32 on Ampere and "
                   "later, matrix products in FP32 (torch.backends.cuda.matmul.allow_tf32 "
                   "False); train_size // batch_size full training batches, every validation "
                   "sample")


#: Dataset -> recipe; other datasets get ``Recipe()``.
RECIPES: dict[str, Recipe] = {
    "seaa2023": Recipe("tf32", "tf32", 10, True, True,
                       "published training code (src/models): Keras fp32 (TensorFlow runs "
                       "convolutions and matrix products in TF32 on Ampere), 10 epochs with the "
                       "base frozen, steps_per_epoch = train_size // 32, validation_steps = "
                       "val_size // 32"),
    "ee-training": Recipe("fp16", "fp16", 0, True, False,
                          "timm train.py, mixed precision (inferred: the ViT-B runs reach 38 "
                          "TFLOPS, above the RTX 3090's 35.6 TF32 peak), its training loader "
                          "drops the last partial batch"),
}
#: Peak-throughput columns of the inputs (FLOP/s): convolutions, matrix products and attention
#: at the recipe's precisions, and FP32 on the CUDA cores (the other families).
PEAK_COLUMNS = ("peak_conv_flops", "peak_matmul_flops", "peak_fp32_flops")
#: Image dataset -> (training, evaluation) images, for runs that do not record them.
KNOWN_DATASET_SIZES = {"cifar10": (50_000, 10_000), "cifar100": (50_000, 10_000)}
#: Columns :func:`run_inputs` adds beside the architecture features.
INPUT_COLUMNS = ("batch_size", "epochs", "train_samples", "val_samples", "train_steps",
                 "val_steps", "frozen_epochs", "peak_conv_flops", "peak_matmul_flops",
                 "peak_fp32_flops", "bandwidth_bytes_s", "power_cap_w", "bytes_factor",
                 "gflops_recorded")


@dataclass
class RunInputs:
    """Per-run inputs of the pre-training estimators.

    Attributes:
        X: indexed like the runs: ``architecture``, ``environment``, the architecture
            features, :data:`INPUT_COLUMNS`, ``precision``, ``matmul_precision``.
        reasons: run index -> why a run has no graph features (or no sample counts): the
            methods on graph features cannot estimate it.
        spec_reasons: run index -> why a run has no GPU specifications (CPU-only, unknown
            GPU): the roofline cannot estimate it.
        notes: decisions taken (recipes, filled sizes, input-size rules).
    """

    X: pd.DataFrame
    reasons: pd.Series
    spec_reasons: pd.Series = field(default_factory=lambda: pd.Series(dtype=object))
    notes: list[str] = field(default_factory=list)


def _recipe(dataset: str) -> Recipe:
    return RECIPES.get(dataset, Recipe())


def _samples(runs: pd.DataFrame, column: str, position: int) -> pd.Series:
    """Training (position 0) or evaluation (1) samples per epoch: the run's column, else the
    known size of its image dataset."""
    known = runs.get("image_dataset", pd.Series(index=runs.index, dtype=object)).map(
        lambda d: KNOWN_DATASET_SIZES.get(str(d).lower(), (np.nan, np.nan))[position])
    own = runs[column].astype(float) if column in runs else pd.Series(np.nan, index=runs.index)
    return own.fillna(known.astype(float))


def _gpu_columns(runs: pd.DataFrame, precisions: pd.Series,
                 matmul_precisions: pd.Series) -> pd.DataFrame:
    names = runs["gpu_name"].where(runs["gpu_name"].astype(str) != "none", "")
    out = pd.DataFrame(index=runs.index, columns=[*PEAK_COLUMNS, "bandwidth_bytes_s",
                                                  "spec_tdp_w", "why"])
    for idx, name in names.items():
        spec = gpu_specs.find(name) if isinstance(name, str) else None
        if spec is None:
            why = "CPU-only run" if not name else f"GPU {name!r} not in the spec table"
            out.loc[idx] = (np.nan, np.nan, np.nan, np.nan, np.nan, why)
            continue
        out.loc[idx] = (spec.peak_tflops(precisions[idx]) * TFLOPS,
                        spec.peak_tflops(matmul_precisions[idx]) * TFLOPS,
                        spec.peak_tflops("fp32") * TFLOPS,
                        spec.memory_bandwidth_gbs * GBS, spec.tdp_w, "")
    return out


def _steps(samples, batch_size, drop_last) -> np.ndarray:
    """Steps of an epoch: samples // batch size where the last partial batch is dropped, else
    rounded up."""
    ratio = np.asarray(samples, float) / np.asarray(batch_size, float)
    return np.where(np.asarray(drop_last, bool), np.floor(ratio), np.ceil(ratio))


def power_cap_w(limit_w, tdp_w):
    """Power (W) a GPU draws at full load: the smaller of its configured power limit and its
    reference TDP (a board may allow more than the chip draws, as the SEAA 2023 RTX 3070's
    240 W limit against its 220 W TDP; a lowered limit caps it); either alone where the other
    is unknown."""
    limit, tdp = np.asarray(limit_w, float), np.asarray(tdp_w, float)
    return np.where(np.isnan(limit), tdp, np.where(np.isnan(tdp), limit, np.fmin(limit, tdp)))


def run_inputs(runs: pd.DataFrame, table: pd.DataFrame | None = None) -> RunInputs:
    """Per-run inputs (:class:`RunInputs`) from a run table (RUN_COLUMNS: ``architecture``,
    ``environment``, ``gpu_name``, ``batch_size``, ``epochs``, ``train_size``; optional
    ``dataset``, ``input_size_px``, ``val_size``, ``image_dataset``, ``gpu_power_limit_w``,
    ``gflops``)."""
    feats = arch_table.run_features(runs, table)
    dataset = runs.get("dataset", pd.Series("", index=runs.index)).astype(str)
    recipes = dataset.map(_recipe)
    X = pd.concat([runs[["architecture", "environment"]].astype(str), feats.features], axis=1)
    X["precision"] = recipes.map(lambda r: r.precision)
    X["matmul_precision"] = recipes.map(lambda r: r.matmul_precision)
    X["batch_size"] = runs["batch_size"].astype(float)
    X["epochs"] = runs["epochs"].astype(float)
    X["train_samples"] = _samples(runs, "train_size", 0)
    X["val_samples"] = _samples(runs, "val_size", 1).fillna(0.0)
    X["train_steps"] = _steps(X["train_samples"], X["batch_size"],
                              recipes.map(lambda r: r.drop_last_train))
    X["val_steps"] = _steps(X["val_samples"], X["batch_size"],
                            recipes.map(lambda r: r.drop_last_eval))
    X["frozen_epochs"] = recipes.map(lambda r: r.frozen_epochs).astype(float)
    gpu = _gpu_columns(runs, X["precision"], X["matmul_precision"])
    for col in (*PEAK_COLUMNS, "bandwidth_bytes_s"):
        X[col] = gpu[col].astype(float)
    limit = (runs["gpu_power_limit_w"].astype(float) if "gpu_power_limit_w" in runs
             else pd.Series(np.nan, index=runs.index))
    X["power_cap_w"] = power_cap_w(limit, gpu["spec_tdp_w"].astype(float))
    X["bytes_factor"] = np.where(X["precision"].isin(["fp16", "bf16", "amp"]), 0.5, 1.0)
    X["gflops_recorded"] = (runs["gflops"].astype(float) if "gflops" in runs
                            else pd.Series(np.nan, index=runs.index))
    reasons = feats.reasons.to_dict()
    for idx in X.index[X["train_samples"].isna()]:
        reasons.setdefault(idx, "training samples per epoch unknown (no train_size, and the "
                           "image dataset's size is not known)")
    spec_reasons = {idx: f"no GPU specifications: {why}" for idx, why in gpu["why"].items()
                    if why}
    notes = [f"{d or 'unnamed dataset'}: recipe {asdict(_recipe(d))}" for d in dataset.unique()]
    rules = feats.features["input_size_rule"].dropna().value_counts()
    notes += [f"input size: {rule} for {n} runs" for rule, n in rules.items()]
    return RunInputs(X, pd.Series(reasons, dtype=object),
                     pd.Series(spec_reasons, dtype=object), notes)


# --------------------------------------------------------------------------------------------
# Roofline time and power
# --------------------------------------------------------------------------------------------

#: Families run on the tensor cores, and the peak column each uses; the others run on the CUDA
#: cores (peak FP32).
TENSOR_FAMILIES = {"conv": "peak_conv_flops", "matmul": "peak_matmul_flops",
                   "attention": "peak_matmul_flops"}
#: Time coefficients: name -> (prior value, prior standard deviation of its log). Efficiencies
#: are fractions of the spec peak; costs in µs.
TIME_PRIORS = {
    "eta_compute": (0.6, 0.5),     # achieved share of peak dense throughput
    "eta_memory": (0.6, 0.5),      # achieved share of peak memory bandwidth
    "kernel_us": (4.0, 1.0),       # GPU time per operator call beyond its roofline time
    "host_op_us": (10.0, 1.5),     # host (framework) time per operator call
    "host_sample_us": (200.0, 2.0),  # host time per sample (input pipeline: decode, augment)
}
#: Power coefficients (fractions of the power cap, :func:`power_cap_w`): name -> (prior, sd
#: of its logit).
POWER_PRIORS = {
    "idle": (0.25, 2.0),          # power of an idle but ready GPU
    "busy_compute": (0.95, 2.0),  # power while running compute-bound kernels
    "busy_memory": (0.75, 2.0),   # power while running memory-bound kernels
}
#: Exponent of the smooth maximum of GPU and host time per step.
SMOOTH_MAX_P = 4.0
#: Multiples of the host priors the time fit starts from (the best fit is kept).
START_FACTORS = (0.1, 1.0, 10.0)
#: Coefficients fitted per environment (host side: CPU, input pipeline, framework).
HOST_COEFFICIENTS = ("host_op_us", "host_sample_us")


def _col(X: pd.DataFrame | dict, name: str) -> np.ndarray:
    """Column ``name`` as a float array (``X`` a frame, or a dict of arrays from
    :func:`_arrays`)."""
    return X[name] if isinstance(X, dict) else X[name].to_numpy(float)


#: Numeric columns the roofline reads.
_ROOFLINE_COLUMNS = (
    *(f"flops_per_sample_{f}" for f in arch_table.FAMILIES), "flops_per_sample",
    "flops_per_sample_forward", "bytes_per_sample", "bytes_per_sample_forward",
    "op_calls_per_step", "op_calls_forward", "batch_size", "epochs", "frozen_epochs",
    "train_steps", "val_steps", "peak_conv_flops", "peak_matmul_flops", "peak_fp32_flops",
    "bandwidth_bytes_s", "bytes_factor", "power_cap_w")


def _arrays(X: pd.DataFrame) -> dict[str, np.ndarray]:
    """The roofline's columns as float arrays (read once per fit, not once per iteration)."""
    return {c: X[c].to_numpy(float) for c in _ROOFLINE_COLUMNS}


@dataclass
class StepTimes:
    """Per-run times of one epoch (s), its GPU-busy part (s), the compute share of the GPU
    time and the GPU's utilisation (GPU time over the larger of GPU and host time, 0-1)."""

    epoch_s: np.ndarray
    gpu_s: np.ndarray
    compute_share: np.ndarray
    utilisation: np.ndarray


def _gpu_step_s(X: dict, c: dict, forward: bool) -> tuple[np.ndarray, np.ndarray]:
    """(GPU time s, its compute part s) of one step: FLOPs / (eta_c x peak) summed over the
    families (tensor-core peak for convolutions, matrix products and attention; FP32 peak for
    the others), plus bytes / (eta_m x bandwidth) over all operators, plus a fixed time per
    operator call. Compute and memory time add up (no overlap assumed between kernels: the
    memory-bound normalisation, activation and layout kernels run between the compute-bound
    ones)."""
    bs = _col(X, "batch_size")
    scale = (_col(X, "flops_per_sample_forward") / np.maximum(_col(X, "flops_per_sample"), 1)
             if forward else 1.0)
    bytes_col = "bytes_per_sample_forward" if forward else "bytes_per_sample"
    compute = np.zeros(len(bs))
    for fam in arch_table.FAMILIES:
        peak = _col(X, TENSOR_FAMILIES.get(fam, "peak_fp32_flops"))
        compute += bs * scale * _col(X, f"flops_per_sample_{fam}") / (c["eta_compute"] * peak)
    memory = (bs * _col(X, bytes_col) * _col(X, "bytes_factor")
              / (c["eta_memory"] * _col(X, "bandwidth_bytes_s")))
    ops = _col(X, "op_calls_forward" if forward else "op_calls_per_step")
    return compute + memory + ops * c["kernel_us"] * US, compute


def _host_step_s(X: dict, c: dict, forward: bool) -> np.ndarray:
    ops = _col(X, "op_calls_forward" if forward else "op_calls_per_step")
    return (ops * c["host_op_us"] + _col(X, "batch_size") * c["host_sample_us"]) * US


def epoch_times(X: pd.DataFrame | dict, c: dict) -> StepTimes:
    """Roofline time of one epoch (s) per run for coefficients ``c`` (host coefficients may be
    arrays, one value per run): training steps (forward + backward; forward only in frozen
    epochs, averaged over the run's epochs) and evaluation steps (forward), each the smooth
    maximum (p = :data:`SMOOTH_MAX_P`) of the GPU time and the host time. ``X``: inputs of
    :func:`run_inputs` (or their :func:`_arrays`)."""
    X = X if isinstance(X, dict) else _arrays(X)

    def step(forward: bool) -> tuple[np.ndarray, ...]:
        gpu, compute = _gpu_step_s(X, c, forward)
        host = _host_step_s(X, c, forward)
        p = SMOOTH_MAX_P
        return (gpu ** p + host ** p) ** (1 / p), gpu, compute, np.maximum(gpu, host)

    t_train, g_train, c_train, m_train = step(False)
    t_fwd, g_fwd, c_fwd, m_fwd = step(True)
    epochs = np.maximum(_col(X, "epochs"), 1)
    frozen = np.minimum(_col(X, "frozen_epochs"), epochs) / epochs
    n_train, n_val = _col(X, "train_steps"), _col(X, "val_steps")

    def per_epoch(train: np.ndarray, fwd: np.ndarray) -> np.ndarray:
        return n_train * ((1 - frozen) * train + frozen * fwd) + n_val * fwd

    gpu = per_epoch(g_train, g_fwd)
    return StepTimes(per_epoch(t_train, t_fwd), gpu,
                     per_epoch(c_train, c_fwd) / np.maximum(gpu, 1e-12),
                     gpu / np.maximum(per_epoch(m_train, m_fwd), 1e-12))


def power_fraction(times: StepTimes, c: dict) -> np.ndarray:
    """Mean power as a fraction of the power cap: idle + u x (busy - idle), u the GPU-busy
    share of the epoch, busy interpolated between the memory- and compute-bound levels by the
    compute-bound share of the GPU time; at most 1."""
    u = np.clip(times.utilisation, 0, 1)
    busy = (c["busy_compute"] * times.compute_share
            + c["busy_memory"] * (1 - times.compute_share))
    return np.minimum(c["idle"] + u * (busy - c["idle"]), 1.0)


def _logit(p: float) -> float:
    return math.log(p / (1 - p))


def _sigmoid(x):
    return 1 / (1 + np.exp(-x))


def _group_weights(X: pd.DataFrame) -> np.ndarray:
    """Weight 1 / (runs of the run's architecture x environment): each configuration counts
    once, however many repetitions it has."""
    key = X["architecture"].astype(str) + "|" + X["environment"].astype(str)
    return 1.0 / key.map(key.value_counts()).to_numpy(float)


REQUIRED_ROOFLINE = (*PEAK_COLUMNS, "bandwidth_bytes_s",
                     "flops_per_sample", "op_calls_per_step", "train_steps", "epochs",
                     "power_cap_w")


class RooflineEnergy(RegressorMixin, BaseEstimator):
    """Roofline time per step x utilisation power model (module docstring); energy in J.

    Parameters:
        per_environment: fit the host coefficients (time per operator call and per sample on
            the host) per environment; an unseen environment gets their geometric mean.
            Efficiencies, GPU time per call and the power fractions are always shared, so a
            GPU enters through its specs only.
        prior_weight: weight of the log-space priors (:data:`TIME_PRIORS`,
            :data:`POWER_PRIORS`; squared z-scores) against the weighted squared log errors
            (each architecture x environment weighs 1): 0.01 treats a configuration's log
            error as having a standard deviation of 0.1 (10 %).
    """

    def __init__(self, per_environment: bool = True, prior_weight: float = 0.01) -> None:
        self.per_environment = per_environment
        self.prior_weight = prior_weight

    # -- time -----------------------------------------------------------------------------
    def _time_coefficients(self, theta: np.ndarray, envs: np.ndarray) -> dict:
        names = list(TIME_PRIORS)
        shared = dict(zip(names[:3], np.exp(theta[:3]), strict=True))
        host = np.exp(theta[3:]).reshape(2, -1)
        idx = np.searchsorted(self.environments_, envs) if self.per_environment else 0
        for k, name in enumerate(HOST_COEFFICIENTS):
            shared[name] = host[k][idx] if self.per_environment else host[k][0]
        return shared

    def _fit_time(self, X: pd.DataFrame, duration_s: np.ndarray) -> None:
        envs = X["environment"].to_numpy(str)
        n_env = len(self.environments_) if self.per_environment else 1
        prior = np.log([v for v, _ in TIME_PRIORS.values()])
        sd = np.array([s for _, s in TIME_PRIORS.values()])
        mu = np.r_[prior[:3], np.repeat(prior[3:], n_env)]
        sig = np.r_[sd[:3], np.repeat(sd[3:], n_env)]
        w = np.sqrt(_group_weights(X))
        target = np.log(duration_s / _col(X, "epochs"))
        lam = math.sqrt(self.prior_weight)
        arrays = _arrays(X)

        def residuals(theta):
            t = epoch_times(arrays, self._time_coefficients(theta, envs)).epoch_s
            return np.r_[w * (np.log(t) - target), lam * (theta - mu) / sig]

        # the smooth maximum is flat where the host is far below the GPU: start the host
        # coefficients at a tenth, once and ten times their priors, keep the best fit
        warm = getattr(self, "warm_start_", None)
        starts = ([warm] if warm is not None and len(warm) == len(mu)
                  else [mu + np.r_[np.zeros(3), np.full(len(mu) - 3, math.log(f))]
                        for f in START_FACTORS])
        fits = [least_squares(residuals, start, method="trf", ftol=1e-6, xtol=1e-6)
                for start in starts]
        self.time_theta_ = min(fits, key=lambda f: f.cost).x

    # -- power ----------------------------------------------------------------------------
    @staticmethod
    def _power_coefficients(theta: np.ndarray) -> dict:
        return dict(zip(POWER_PRIORS, _sigmoid(theta), strict=True))

    def _fit_power(self, X: pd.DataFrame, power_w: np.ndarray, times: StepTimes) -> None:
        mu = np.array([_logit(v) for v, _ in POWER_PRIORS.values()])
        sig = np.array([s for _, s in POWER_PRIORS.values()])
        w = np.sqrt(_group_weights(X))
        target = np.log(power_w / _col(X, "power_cap_w"))
        lam = math.sqrt(self.prior_weight)

        def residuals(theta):
            frac = power_fraction(times, self._power_coefficients(theta))
            return np.r_[w * (np.log(frac) - target), lam * (theta - mu) / sig]

        self.power_theta_ = least_squares(residuals, mu, method="trf", ftol=1e-6,
                                          xtol=1e-6).x

    # -- estimator API --------------------------------------------------------------------
    def fit(self, X: pd.DataFrame, y, duration_s=None) -> RooflineEnergy:
        """Fit the time coefficients on the runs' epoch times (``duration_s`` / epochs) and
        the power fractions on their mean power (``y`` / ``duration_s``)."""
        if duration_s is None:
            raise ValueError("RooflineEnergy.fit needs the runs' measured duration_s")
        _check_columns(X, REQUIRED_ROOFLINE)
        y, duration_s = np.asarray(y, float), np.asarray(duration_s, float)
        self.environments_ = np.unique(X["environment"].to_numpy(str))
        self._fit_time(X, duration_s)
        times = epoch_times(X, self.time_coefficients(X))
        self._fit_power(X, y / duration_s, times)
        return self

    def time_coefficients(self, X: pd.DataFrame) -> dict:
        """Time coefficients for the runs of ``X`` (host ones per run; the geometric mean of
        the fitted environments for an environment never seen)."""
        envs = X["environment"].to_numpy(str)
        c = self._time_coefficients(self.time_theta_, np.asarray(self.environments_[:1]))
        if self.per_environment:
            host = np.exp(self.time_theta_[3:]).reshape(2, -1)
            known = np.isin(envs, self.environments_)
            pos = np.searchsorted(self.environments_, envs).clip(0, len(self.environments_) - 1)
            for k, name in enumerate(HOST_COEFFICIENTS):
                c[name] = np.where(known, host[k][pos], np.exp(np.log(host[k]).mean()))
        return c

    def predict_time(self, X: pd.DataFrame) -> np.ndarray:
        """Training time (s): epochs x roofline epoch time."""
        return _col(X, "epochs") * epoch_times(X, self.time_coefficients(X)).epoch_s

    def predict_power(self, X: pd.DataFrame) -> np.ndarray:
        """Mean power (W) over the training."""
        times = epoch_times(X, self.time_coefficients(X))
        return _col(X, "power_cap_w") * power_fraction(
            times, self._power_coefficients(self.power_theta_))

    def predict(self, X: pd.DataFrame) -> np.ndarray:
        """Training energy (J) = predicted time x predicted power."""
        return self.predict_time(X) * self.predict_power(X)

    def coefficients(self) -> dict:
        """Fitted coefficients: efficiencies (fractions of peak), µs costs (host ones per
        environment) and power fractions of the power cap."""
        theta = self.time_theta_
        out = {name: float(v) for name, v in zip(list(TIME_PRIORS)[:3], np.exp(theta[:3]),
                                                 strict=True)}
        host = np.exp(theta[3:]).reshape(2, -1)
        envs = self.environments_ if self.per_environment else np.array(["all"])
        for k, name in enumerate(HOST_COEFFICIENTS):
            out[name] = {str(e): float(v) for e, v in zip(envs, host[k], strict=True)}
        out |= {k: float(v) for k, v in self._power_coefficients(self.power_theta_).items()}
        return out


def _check_columns(X: pd.DataFrame, columns: Sequence[str]) -> None:
    missing = [c for c in columns if c not in X]
    if missing:
        raise ValueError(f"inputs lack columns {missing} (build them with run_inputs)")


# --------------------------------------------------------------------------------------------
# Learned models and baselines
# --------------------------------------------------------------------------------------------

def log_features(X: pd.DataFrame) -> pd.DataFrame:
    """Log features of the learned models: log10 of FLOPs and bytes per sample (tensor-core
    families, other families), operator calls per sample, activation bytes, parameters, batch
    size, peak dense throughput, bandwidth and power cap (hardware columns NaN for CPU runs)."""
    dense = sum(X[f"flops_per_sample_{f}"] for f in TENSOR_FAMILIES)
    other = sum(X[f"flops_per_sample_{f}"] for f in arch_table.FAMILIES
                if f not in TENSOR_FAMILIES)
    out = pd.DataFrame({
        "log_dense_flops": np.log10(dense + 1),
        "log_other_flops": np.log10(other + 1),
        "log_bytes": np.log10(X["bytes_per_sample"] * X["bytes_factor"] + 1),
        "log_ops_per_sample": np.log10(X["op_calls_per_step"] / X["batch_size"]),
        "log_activation_bytes": np.log10(X["activation_bytes_per_sample"] + 1),
        "log_params": np.log10(X["params"]),
        "log_batch_size": np.log10(X["batch_size"]),
        "log_peak": np.log10(X["peak_conv_flops"]),
        "log_peak_matmul": np.log10(X["peak_matmul_flops"]),
        "log_bandwidth": np.log10(X["bandwidth_bytes_s"]),
        "log_power_cap": np.log10(X["power_cap_w"]),
    }, index=X.index)
    return out


def _work_samples(X: pd.DataFrame) -> np.ndarray:
    """Samples processed over the run (training + a third for each evaluation sample, the
    forward share of a step): the denominator of the learned models' target."""
    return _col(X, "epochs") * (_col(X, "train_samples") + _col(X, "val_samples") / 3)


class LogFeatureRegressor(RegressorMixin, BaseEstimator):
    """Ridge or gradient boosting on :func:`log_features`; target log10 of the energy per
    processed sample (:func:`_work_samples`), so epochs and dataset size scale it exactly.
    Feature columns constant in the training runs are dropped (scaled, they would be noise).

    Parameters:
        model: 'ridge' or 'gradient_boosting'.
        alpha: ridge penalty (standardised features).
        seed: random state of the boosting.
    """

    def __init__(self, model: str = "ridge", alpha: float = 1.0, seed: int = 0) -> None:
        self.model = model
        self.alpha = alpha
        self.seed = seed

    def _regressor(self):
        if self.model == "ridge":
            return make_pipeline(StandardScaler(), Ridge(alpha=self.alpha))
        if self.model == "gradient_boosting":
            return GradientBoostingRegressor(n_estimators=60, learning_rate=0.15, max_depth=2,
                                             subsample=0.8, random_state=self.seed)
        raise ValueError(f"unknown model {self.model!r}")

    def fit(self, X: pd.DataFrame, y, duration_s=None) -> LogFeatureRegressor:
        del duration_s
        F = log_features(X)
        keep = [c for c in F if F[c].notna().all() and F[c].std() > 1e-9]
        self.columns_ = keep
        target = np.log10(np.asarray(y, float) / _work_samples(X))
        self.regressor_ = self._regressor().fit(F[keep].to_numpy(), target)
        return self

    def predict(self, X: pd.DataFrame) -> np.ndarray:
        """Energy (J); NaN for runs lacking a feature the model was fitted with (e.g. GPU
        specifications of a CPU run)."""
        F = log_features(X)[self.columns_].to_numpy()
        ok = np.isfinite(F).all(axis=1)
        out = np.full(len(X), np.nan)
        if ok.any():
            out[ok] = 10 ** self.regressor_.predict(F[ok]) * _work_samples(X)[ok]
        return out


class LogLinearBaseline(RegressorMixin, BaseEstimator):
    """Trivial baseline: log energy = a + b log FLOPs + c log params + d batch size + e log
    epochs (+ f log training samples when they vary), ordinary least squares. FLOPs are the
    run table's recorded GFLOPs where present, else the feature table's forward FLOPs."""

    def _design(self, X: pd.DataFrame) -> pd.DataFrame:
        gflops = X["gflops_recorded"].fillna(X["flops_per_sample_forward"] / 1e9)
        return pd.DataFrame({"log_flops": np.log(gflops), "log_params": np.log(X["params"]),
                             "batch_size": X["batch_size"], "log_epochs": np.log(X["epochs"]),
                             "log_train": np.log(X["train_samples"])}, index=X.index)

    def fit(self, X: pd.DataFrame, y, duration_s=None) -> LogLinearBaseline:
        del duration_s
        D = self._design(X)
        self.columns_ = [c for c in D if D[c].std() > 1e-9]
        self.regressor_ = LinearRegression().fit(D[self.columns_].to_numpy(),
                                                 np.log(np.asarray(y, float)))
        return self

    def predict(self, X: pd.DataFrame) -> np.ndarray:
        return np.exp(self.regressor_.predict(self._design(X)[self.columns_].to_numpy()))


class LookupBaseline(RegressorMixin, BaseEstimator):
    """Trivial baseline: mean energy per epoch and training sample of the training runs with
    the same architecture and batch size, times the run's epochs and samples. NaN for a
    (architecture, batch size) never seen: it recognises, it cannot predict."""

    def fit(self, X: pd.DataFrame, y, duration_s=None) -> LookupBaseline:
        del duration_s
        per = np.asarray(y, float) / (_col(X, "epochs") * _col(X, "train_samples"))
        key = X["architecture"].astype(str) + "|" + X["batch_size"].astype(str)
        self.table_ = pd.Series(per, index=key.to_numpy()).groupby(level=0).mean()
        return self

    def predict(self, X: pd.DataFrame) -> np.ndarray:
        key = X["architecture"].astype(str) + "|" + X["batch_size"].astype(str)
        per = key.map(self.table_).to_numpy(float)
        return per * _col(X, "epochs") * _col(X, "train_samples")


# --------------------------------------------------------------------------------------------
# Intervals and evaluation
# --------------------------------------------------------------------------------------------

#: Most folds of the grouped CV behind an interval (leave one group out up to this many groups,
#: grouped K-fold beyond).
INTERVAL_FOLDS = 5


def _group_splits(groups: np.ndarray) -> list[tuple[np.ndarray, np.ndarray]]:
    n = len(np.unique(groups))
    if n <= INTERVAL_FOLDS:
        return [(np.flatnonzero(groups != g), np.flatnonzero(groups == g))
                for g in np.unique(groups)]
    return list(GroupKFold(n_splits=INTERVAL_FOLDS).split(groups, groups=groups))


class IntervalModel(RegressorMixin, BaseEstimator):
    """An estimator and a cross-conformal interval: the ``coverage`` quantile of the absolute
    log-residuals of a grouped cross-validation inside the training runs (groups:
    ``interval_groups`` of :meth:`fit`, e.g. architectures; leave one group out, or
    :data:`INTERVAL_FOLDS` grouped folds with more groups), so the interval is as wide as
    errors on an unseen group. Without two groups, no interval (NaN)."""

    def __init__(self, estimator, coverage: float = 0.9) -> None:
        self.estimator = estimator
        self.coverage = coverage

    def fit(self, X: pd.DataFrame, y, duration_s=None, interval_groups=None) -> IntervalModel:
        y = np.asarray(y, float)
        dur = None if duration_s is None else np.asarray(duration_s, float)
        self.estimator_ = clone(self.estimator).fit(X, y, dur)
        self.log_halfwidth_ = float("nan")
        g = None if interval_groups is None else np.asarray(interval_groups)
        if g is None or len(np.unique(g)) < 2:
            return self
        resid = []
        for train, test in _group_splits(g):
            est = clone(self.estimator)
            # start the inner fits where the full fit ended (a roofline's time coefficients)
            est.warm_start_ = getattr(self.estimator_, "time_theta_", None)
            est.fit(X.iloc[train], y[train], None if dur is None else dur[train])
            pred = est.predict(X.iloc[test])
            ok = np.isfinite(pred) & (pred > 0)
            resid += list(np.abs(np.log(pred[ok] / y[test][ok])))
        if resid:
            n = len(resid)
            level = min(1.0, math.ceil((n + 1) * self.coverage) / n)
            self.log_halfwidth_ = float(np.quantile(resid, level))
        return self

    def predict(self, X: pd.DataFrame) -> np.ndarray:
        return self.estimator_.predict(X)

    def predict_interval(self, X: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
        """(low, high) J: the prediction divided and multiplied by exp(half-width)."""
        pred = self.predict(X)
        return pred * math.exp(-self.log_halfwidth_), pred * math.exp(self.log_halfwidth_)


#: Pre-training methods: name -> (estimator factory, what it is). ``roofline_specs`` is the
#: one that predicts an unseen GPU (host coefficients shared); ``roofline`` fits the host
#: per environment.
METHODS = {
    "roofline": (lambda seed: RooflineEnergy(per_environment=True),
                 "roofline time x utilisation power; host coefficients per environment"),
    "roofline_specs": (lambda seed: RooflineEnergy(per_environment=False),
                       "roofline time x utilisation power; all coefficients shared, GPU from "
                       "its specs"),
    "ridge_log": (lambda seed: LogFeatureRegressor("ridge", 1.0, seed),
                  "ridge on log graph and hardware features"),
    "gbm_log": (lambda seed: LogFeatureRegressor("gradient_boosting", seed=seed),
                "gradient boosting on log graph and hardware features"),
    "loglinear_baseline": (lambda seed: LogLinearBaseline(),
                           "log energy on log FLOPs, log params, batch size, log epochs"),
    "lookup_baseline": (lambda seed: LookupBaseline(),
                        "mean energy per epoch and sample by (architecture, batch size)"),
}
#: Methods that need the graph features, and those that need the GPU specs too.
NEEDS_FEATURES = {"roofline", "roofline_specs", "ridge_log", "gbm_log"}
NEEDS_SPECS = {"roofline", "roofline_specs"}


@dataclass
class PretrainingResult:
    """Out-of-fold estimates of every method on one split.

    Attributes:
        estimates: J, indexed like the runs, one column per method (NaN: not estimable).
        low, high: interval bounds (J), same shape.
        reasons: same shape, why a run has no estimate (None where it has one).
        models: method -> estimators fitted on each fold (IntervalModel).
    """

    estimates: pd.DataFrame
    low: pd.DataFrame
    high: pd.DataFrame
    reasons: pd.DataFrame
    models: dict[str, list] = field(default_factory=dict)


def _why_not(inputs: RunInputs, method: str, idx) -> str | None:
    """Why ``method`` cannot use run ``idx`` by its inputs (None if it can)."""
    if method in NEEDS_FEATURES and idx in inputs.reasons.index:
        return inputs.reasons[idx]
    if method in NEEDS_SPECS and idx in inputs.spec_reasons.index:
        return inputs.spec_reasons[idx]
    return None


def _usable(inputs: RunInputs, method: str) -> np.ndarray:
    """Rows a method can use (fit or predict)."""
    X = inputs.X
    ok = np.isfinite(_col(X, "epochs")) & np.isfinite(_col(X, "train_samples"))
    ok &= np.isfinite(_col(X, "batch_size"))
    ok &= np.array([_why_not(inputs, method, idx) is None for idx in X.index], dtype=bool)
    if method == "loglinear_baseline":
        ok &= np.isfinite(X["gflops_recorded"].fillna(X["flops_per_sample_forward"]).to_numpy(
            float)) & np.isfinite(_col(X, "params"))
    return ok


def out_of_fold(inputs: RunInputs, energy_j: pd.Series, duration_s: pd.Series,
                splits: Sequence[tuple[np.ndarray, np.ndarray]],
                groups: Sequence | None = None, methods: Sequence[str] | None = None,
                seed: int = 0, coverage: float = 0.9) -> PretrainingResult:
    """Out-of-fold estimates (J) of ``methods`` (default all of :data:`METHODS`) for the
    (train, test) row positions of ``splits``; the interval of each fold comes from a
    leave-one-group-out CV inside its training rows (``groups``, e.g. architectures).

    A method without usable training rows, or a run it cannot use (no features, no GPU spec,
    an unseen lookup key), gets NaN and the reason."""
    X = inputs.X
    methods = list(methods or METHODS)
    y = energy_j.to_numpy(float)
    dur = duration_s.to_numpy(float)
    g = None if groups is None else np.asarray(groups)
    shape = dict(index=X.index, columns=methods)
    est, lo, hi = (pd.DataFrame(np.nan, **shape) for _ in range(3))
    why = pd.DataFrame(None, dtype=object, **shape)
    measured = np.isfinite(y) & (y > 0) & np.isfinite(dur) & (dur > 0)
    models: dict[str, list] = {m: [] for m in methods}
    one_env = X["environment"].nunique() <= 1
    for method in methods:
        if method == "roofline_specs" and one_env and "roofline" in methods[:methods.index(
                method)]:  # one environment: the same fit as the per-environment roofline
            for frame in (est, lo, hi, why):
                frame[method] = frame["roofline"]
            models[method] = models["roofline"]
            continue
        usable = _usable(inputs, method)
        for train, test in splits:
            tr = np.asarray(train)[usable[train] & measured[train]]
            te = np.asarray(test)
            if len(tr) < 2 or len(te) == 0:
                why.iloc[te, methods.index(method)] = [
                    _why_not(inputs, method, X.index[i]) or "fewer than 2 usable training runs"
                    for i in te]
                continue
            model = IntervalModel(METHODS[method][0](seed), coverage).fit(
                X.iloc[tr], y[tr], dur[tr], None if g is None else g[tr])
            models[method].append(model)
            te_ok = te[usable[te]]
            if len(te_ok):
                p = model.predict(X.iloc[te_ok])
                low, high = model.predict_interval(X.iloc[te_ok])
                col = methods.index(method)
                est.iloc[te_ok, col], lo.iloc[te_ok, col], hi.iloc[te_ok, col] = p, low, high
        tested = np.zeros(len(X), dtype=bool)
        for _, test in splits:
            tested[np.asarray(test)] = True
        missing = est[method].isna().to_numpy() & why[method].isna().to_numpy()
        for pos in np.flatnonzero(missing):
            idx = X.index[pos]
            why.iloc[pos, methods.index(method)] = (
                _why_not(inputs, method, idx)
                or ("architecture and batch size never seen in training"
                    if method == "lookup_baseline" else
                    "a feature the fitted model uses is missing (e.g. GPU specifications)"
                    if tested[pos] else "run in no test fold"))
    return PretrainingResult(est, lo, hi, why, models)


def fit_all(inputs: RunInputs, energy_j: pd.Series, duration_s: pd.Series, method: str,
            groups: Sequence | None = None, seed: int = 0,
            coverage: float = 0.9) -> tuple[IntervalModel | None, str]:
    """``method`` fitted on every usable run, its interval from a leave-one-group-out CV
    (``groups``). Returns (the model, '') or (None, why not)."""
    y, dur = energy_j.to_numpy(float), duration_s.to_numpy(float)
    ok = _usable(inputs, method) & np.isfinite(y) & (y > 0) & np.isfinite(dur) & (dur > 0)
    if ok.sum() < 2:
        why = [w for w in (_why_not(inputs, method, i) for i in inputs.X.index) if w]
        return None, why[0] if why else "fewer than 2 usable runs"
    g = None if groups is None else np.asarray(groups)[ok]
    model = IntervalModel(METHODS[method][0](seed), coverage).fit(
        inputs.X[ok], y[ok], dur[ok], g)
    return model, ""


def _dead(estimates: pd.DataFrame, reasons: pd.DataFrame) -> dict[str, str]:
    """Method -> its most frequent reason, for methods without any estimate."""
    out = {}
    for m in estimates.columns[estimates.isna().all().to_numpy()]:
        why = reasons[m].dropna().value_counts() if m in reasons else pd.Series(dtype=int)
        out[m] = why.index[0] if len(why) else "no run estimable"
    return out


@dataclass
class PretrainingScores:
    """Scores of one split on the runs every scored method estimates.

    Attributes:
        errors: one row per method: ``split``, ``method``, ``metric`` ('mape_pct'), ``value``,
            ``ci_low``, ``ci_high`` (bootstrap over whole groups), ``n_runs``, ``n_groups``,
            ``interval_coverage`` (share of runs inside the method's interval; NaN without).
        by_group: MAPE (%) per (environment, architecture) and method.
        not_estimable: method -> why it has no estimate for any run.
        dropped: runs left out (some scored method has no estimate for them), with the reason.
    """

    errors: pd.DataFrame
    by_group: pd.DataFrame
    not_estimable: dict[str, str]
    dropped: pd.DataFrame


def score(result: PretrainingResult, measured_j: pd.Series, split: str, groups: pd.Series,
          environments: pd.Series, extra: pd.DataFrame | None = None, n_boot: int = 1000,
          seed: int = 0) -> PretrainingScores:
    """MAPE (%) of every method of ``result`` (and the columns of ``extra``, e.g. the PRE
    regressions, without intervals) on the runs all of them estimate, with a bootstrap CI that
    resamples whole ``groups`` (architectures: the same resamples for every method), the
    interval coverage and the MAPE per (environment, architecture). All frames indexed like
    ``measured_j``."""
    est = pd.concat([result.estimates, extra], axis=1) if extra is not None else result.estimates
    why = result.reasons.reindex(columns=est.columns)
    dead = _dead(est, why)
    est = est.drop(columns=list(dead))
    y = measured_j.astype(float)
    keep = y.notna() & (y > 0) & est.notna().all(axis=1)
    dropped = [(split, idx, m, why.at[idx, m] if isinstance(why.at[idx, m], str)
                else "estimate missing")
               for m in est.columns for idx in est.index[est[m].isna() & y.notna()]]
    g = groups[keep].to_numpy()
    rows = []
    for m in est.columns:
        p = est.loc[keep, m].to_numpy(float)
        yk = y[keep].to_numpy(float)
        value = float(ev.mape_pct(yk, p)) if keep.any() else np.nan
        lo, hi = ev.bootstrap_ci(yk, p, "mape_pct", n_boot, seed=seed, groups=g)
        cover = np.nan
        if m in result.low:
            inside = ((result.low.loc[keep, m] <= y[keep]) & (y[keep] <= result.high.loc[keep, m]))
            cover = float(inside.mean()) if result.low.loc[keep, m].notna().any() else np.nan
        rows.append((split, m, "mape_pct", value, lo, hi, int(keep.sum()),
                     int(len(np.unique(g))), cover))
    errors = pd.DataFrame(rows, columns=["split", "method", "metric", "value", "ci_low",
                                         "ci_high", "n_runs", "n_groups", "interval_coverage"])
    ape = est[keep].sub(y[keep], axis=0).abs().div(y[keep], axis=0) * 100
    by_group = ape.groupby([environments[keep], groups[keep]]).mean()
    by_group.index.names = ["environment", "architecture"]
    by_group = by_group.reset_index()
    by_group.insert(0, "split", split)
    return PretrainingScores(errors, by_group, dead,
                             pd.DataFrame(dropped, columns=["split", "run", "method", "reason"]))


# --------------------------------------------------------------------------------------------
# Export and prediction for a new architecture and GPU
# --------------------------------------------------------------------------------------------

def export_roofline(model: IntervalModel, dataset: str, path: str | Path) -> dict:
    """Write a fitted roofline model (its coefficients, interval half-width, recipe) as JSON
    to ``path``; returns the dict."""
    inner = model.estimator_
    if not isinstance(inner, RooflineEnergy):
        raise TypeError("only RooflineEnergy models are exported")
    out = {"method": "roofline_specs" if not inner.per_environment else "roofline",
           "dataset": dataset, "recipe": asdict(_recipe(dataset)),
           "coefficients": inner.coefficients(),
           "time_theta": [float(v) for v in inner.time_theta_],
           "power_theta": [float(v) for v in inner.power_theta_],
           "environments": [str(e) for e in inner.environments_],
           "per_environment": bool(inner.per_environment),
           "interval_log_halfwidth": model.log_halfwidth_, "coverage": model.coverage,
           "smooth_max_p": SMOOTH_MAX_P}
    io.write_json(out, path)
    return out


def load_roofline(source: str | Path | dict) -> IntervalModel:
    """An :class:`IntervalModel` around the :class:`RooflineEnergy` of an exported JSON (a
    path or the dict of :func:`export_roofline`)."""
    data = source if isinstance(source, dict) else json.loads(Path(source).read_text())
    inner = RooflineEnergy(per_environment=data["per_environment"])
    inner.time_theta_ = np.asarray(data["time_theta"], float)
    inner.power_theta_ = np.asarray(data["power_theta"], float)
    inner.environments_ = np.asarray(data["environments"])
    model = IntervalModel(inner, data.get("coverage", 0.9))
    model.estimator_ = inner
    model.log_halfwidth_ = float(data["interval_log_halfwidth"])
    return model


#: The exported model of a dataset, under its ``reports/`` folder (notebook 06 writes it).
MODEL_FILE = "06-pretraining-model.json"


def _model_dict(model: str | Path | dict) -> dict:
    """An exported roofline as a dict: the dict itself, a JSON path, or a dataset name (its
    ``data_outputs/<dataset>/reports/06-pretraining-model.json``)."""
    if isinstance(model, dict):
        return model
    path = Path(model)
    if not path.exists() and not path.suffix:
        path = datasets.output_dir(str(model), "reports") / MODEL_FILE
    if not path.exists():
        raise FileNotFoundError(f"{path}: no exported model; run notebook 06 on the dataset "
                                "(make figures DATASETS=<dataset>) or pass its JSON")
    return json.loads(path.read_text())


def predict_training(features: dict | pd.Series, gpu: str | gpu_specs.GPUSpec,
                     batch_size: int, epochs: float, train_size: int,
                     model: str | Path | dict = "ee-training", *, val_size: int = 0,
                     precision: str | None = None, matmul_precision: str | None = None,
                     power_limit_w: float | None = None, frozen_epochs: int = 0,
                     drop_last_train: bool | None = None,
                     drop_last_eval: bool | None = None) -> dict[str, float]:
    """Time, power and energy of a training run before it starts (see
    :func:`predict_training_energy`). Returns ``energy_j``, ``energy_low_j``,
    ``energy_high_j``, ``duration_s``, ``power_w``."""
    data = _model_dict(model)
    fitted = load_roofline(data)
    spec = gpu if isinstance(gpu, gpu_specs.GPUSpec) else gpu_specs.find(gpu)
    if spec is None:
        raise NotEstimableError(f"GPU {gpu!r} not in the spec table")
    recipe = data["recipe"]
    precision = precision or recipe["precision"]
    matmul_precision = matmul_precision or recipe.get("matmul_precision", precision)
    drop = {"drop_last_train": drop_last_train, "drop_last_eval": drop_last_eval}
    drop = {k: recipe.get(k, k == "drop_last_train") if v is None else v
            for k, v in drop.items()}
    row = {c: float(features[c]) for c in arch_table.FEATURE_COLUMNS}
    row |= {"architecture": str(features.get("architecture", "")), "environment": "<new>",
            "batch_size": float(batch_size), "epochs": float(epochs),
            "train_samples": float(train_size), "val_samples": float(val_size),
            "train_steps": float(_steps(train_size, batch_size, drop["drop_last_train"])),
            "val_steps": float(_steps(val_size, batch_size, drop["drop_last_eval"])),
            "frozen_epochs": float(frozen_epochs),
            "peak_conv_flops": spec.peak_tflops(precision) * TFLOPS,
            "peak_matmul_flops": spec.peak_tflops(matmul_precision) * TFLOPS,
            "peak_fp32_flops": spec.peak_tflops("fp32") * TFLOPS,
            "bandwidth_bytes_s": spec.memory_bandwidth_gbs * GBS,
            "power_cap_w": float(power_cap_w(power_limit_w or np.nan, spec.tdp_w)),
            "bytes_factor": 0.5 if precision in ("fp16", "bf16", "amp") else 1.0}
    X = pd.DataFrame([row])
    low, high = fitted.predict_interval(X)
    return {"energy_j": float(fitted.predict(X)[0]), "energy_low_j": float(low[0]),
            "energy_high_j": float(high[0]),
            "duration_s": float(fitted.estimator_.predict_time(X)[0]),
            "power_w": float(fitted.estimator_.predict_power(X)[0])}


def predict_training_energy(features: dict | pd.Series, gpu: str | gpu_specs.GPUSpec,
                            batch_size: int, epochs: float, train_size: int,
                            model: str | Path | dict = "ee-training", **recipe
                            ) -> tuple[float, tuple[float, float]]:
    """Training energy (J) of an architecture on a GPU before training, with its interval.

    ``features``: the architecture's graph features (a row of the feature table, or
    ``helpers.collect.architecture.architecture_features(...)``); ``gpu``: a GPU name or spec
    (:mod:`helpers.core.gpu_specs`); ``batch_size``, ``epochs``, ``train_size`` (training
    samples per epoch); ``model``: an exported roofline (:func:`export_roofline`: a JSON path, its
    dict, or the name of a dataset notebook 06 has run on; default EE-Training's). Keyword
    ``recipe`` overrides: ``val_size`` (evaluation samples per epoch, default 0),
    ``precision`` (convolutions) and ``matmul_precision`` ('fp32', 'tf32', 'fp16', ...),
    ``power_limit_w``, ``frozen_epochs``, ``drop_last_train`` and ``drop_last_eval`` (whether
    an epoch skips its last, partial batch); the precisions and the drop-last flags default to
    the model's recipe.
    Returns (energy J, (low J, high J)). Raises ``NotEstimableError`` for a GPU not in the spec
    table."""
    out = predict_training(features, gpu, batch_size, epochs, train_size, model, **recipe)
    return out["energy_j"], (out["energy_low_j"], out["energy_high_j"])
