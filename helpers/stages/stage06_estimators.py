"""Stage of notebook 06 (estimator fitting): load a dataset's processed runs, compute every
estimator on the same runs, score them per split, and check the published numbers
(docs/methods.md#estimators, docs/methods.md#published-numbers).

Methods (columns of the estimate frames; energies in J):

* ``ml_co2_impact``, ``green_algorithms_gpu``: baselines with the run's GPU power limit (the
  spec-table TDP where the run has none) and mean GPU utilisation.
* ``carbontracker``, ``online_power``, ``step``: epoch-based, on the epoch table, or on
  pseudo-epochs (prefix ``pseudo_``) when the dataset has no epoch events (seaa2023).
* ``step_time``, ``online_power_time``: time-window estimators after observing a fraction of
  each run (suffix ``_f<percent>``), stabilisation found on the observed part only.
* ``pre_<model>_<mode>``: PRE regressions, out-of-fold (``helpers.estimate.pre.pre_estimates_j``).
* Before training (:func:`before_training`, ``helpers.estimate.pretraining``): roofline time x
  utilisation power from the architecture's graph features and the GPU's specs, learned models
  on log features, log-linear and lookup baselines, with intervals; their own error table.

Splits: ``all_runs`` (methods that need no fitting, every run), ``random_<pct>pct_test`` (one
seeded random split; every method scored on the test runs only), ``leave_one_architecture_out``
and ``leave_one_environment_out`` (every run predicted by PRE models that never saw its group).

Window (docs/methods.md#energy-windows): every estimator is scored against the training window's
energy (``training_energy_j``) and given inputs from the same window: its duration, mean GPU
utilisation, epochs, and samples cut to it (time from its start). The error table names the
window in its ``window`` column. Parameters left at None (stabilisation epoch and window,
change-point window, sensitivity grids, bootstrap resamples) are derived from the data
(:mod:`helpers.analysis.parameters`); what cannot be estimated is listed with its reason in
``06-not-estimable.csv`` and said on the figure panel.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np
import pandas as pd
import pyarrow.parquet as pq

from helpers.analysis import parameters
from helpers.analysis import runs as run_tables
from helpers.analysis.window_samples import (
    training_samples,
    window_sample_counts,
    with_elapsed,
)
from helpers.core import datasets, gpu_specs, io
from helpers.estimate import baselines, forecaster, online, pre, pretraining
from helpers.estimate import evaluation as ev
from helpers.plots import estimators as plots
from helpers.plots import pretraining as pretraining_plots
from helpers.stages import common
from helpers.stages.common import Section, save_and_close

#: Columns of the per-sample table the online estimators read (gpu_index where present).
SAMPLE_COLUMNS = ["run_id", "elapsed_s", "device_power_w"]
#: Window of the published-file rows of the error table.
PUBLISHED_WINDOW = "published file: its training duration and energy"
#: Why the sample-based and epoch-based analyses are not estimable on some datasets.
NO_SAMPLES = "no power samples (per-run energies only, e.g. CodeCarbon rows)"
NO_EPOCHS = "no epoch energies (no epoch events, and no samples to cut pseudo-epochs from)"
#: Grouped splits: name -> run column holding the group.
GROUPED_SPLITS = {"leave_one_architecture_out": "architecture",
                  "leave_one_environment_out": "environment"}
#: Fewest runs for which PRE is fitted (nested CV needs a few runs per inner fold).
MIN_RUNS_PRE = 10


@dataclass
class StudyInputs:
    """What notebook 06 reads for one dataset.

    Attributes:
        runs: processed runs (RUN_COLUMNS), index reset, ``run_id`` unique.
        epochs: per-epoch energies (run_id, epoch, duration_s, energy_j): real epoch events, or
            pseudo-epochs when the dataset has none.
        epoch_source: 'epoch events' or 'pseudo-epochs (N equal time slices)'.
        samples: per-sample power of the runs (``SAMPLE_COLUMNS``) cut to each run's training
            window, ``elapsed_s`` counted from its start.
        dataset: the dataset read (its reports folder receives the resolved parameters and the
            per-run estimates); '' writes nothing.
    """

    runs: pd.DataFrame
    epochs: pd.DataFrame
    epoch_source: str
    samples: pd.DataFrame
    dataset: str = ""  # where reports are written ('' : none)

    @property
    def measured_j(self) -> pd.Series:
        """Measured energy (J) by run_id that the estimators target: the training window's
        ``training_energy_j`` (without the idle lead-in and tail)."""
        return self.runs.set_index("run_id")["training_energy_j"]

    @property
    def window(self) -> str:
        """The window scored: 'training window (<label>: <runs>, ...)'."""
        counts = self.runs["training_window"].value_counts()
        return "training window (" + "; ".join(f"{w}: {n} runs" for w, n in counts.items()) \
            + ")"


def load_inputs(dataset: str) -> StudyInputs:
    """Read ``processed/runs.parquet``, ``processed/epochs.parquet`` (absent or empty: pseudo-
    epochs are cut from the power samples) and ``interim/profiling.parquet`` (absent, or
    without power: no samples), the samples cut to each run's training window."""
    processed = datasets.output_dir(dataset, "processed")
    runs = run_tables.with_training_columns(
        pd.read_parquet(processed / "runs.parquet").reset_index(drop=True))
    if runs["run_id"].duplicated().any():
        raise ValueError(f"{processed / 'runs.parquet'}: duplicate run_id values")
    samples = _read_samples(datasets.output_dir(dataset, "interim") / "profiling.parquet")
    samples = samples[samples["run_id"].isin(runs["run_id"])].reset_index(drop=True)
    samples = training_samples(samples, runs, ["device_power_w"])
    epoch_path = processed / "epochs.parquet"
    epochs = pd.read_parquet(epoch_path) if epoch_path.exists() else pd.DataFrame()
    epochs = epochs[epochs["run_id"].isin(runs["run_id"])] if len(epochs) else epochs
    if len(epochs):
        return StudyInputs(runs, epochs[["run_id", "epoch", "duration_s", "energy_j"]],
                           "epoch events", samples, dataset)
    return StudyInputs(runs, online.pseudo_epoch_table(samples, runs),
                       "pseudo-epochs (N equal time slices)", samples, dataset)


def _read_samples(path) -> pd.DataFrame:
    """``SAMPLE_COLUMNS`` (and ``gpu_index``) of the profiling table (``elapsed_s`` computed
    from ``timestamp`` where absent); empty without samples."""
    present = set(pq.read_schema(path).names) if path.exists() else set()
    if "elapsed_s" not in present and "timestamp" in present:
        present |= {"elapsed_s"}  # computed below
    if not set(SAMPLE_COLUMNS) <= present:
        return pd.DataFrame({c: pd.Series(dtype=object if c == "run_id" else float)
                             for c in SAMPLE_COLUMNS})
    names = pq.read_schema(path).names
    columns = [c for c in (*SAMPLE_COLUMNS, "gpu_index", "timestamp") if c in names]
    samples = pd.read_parquet(path, columns=columns)
    if "elapsed_s" not in samples:
        samples = with_elapsed(samples)
    return samples.drop(columns=["timestamp"], errors="ignore")


@dataclass
class StudyParameters:
    """Parameters of notebook 06 (given, or derived from the data)."""

    stabilisation_epoch: int
    window_epochs: int
    change_point_window: int
    stabilisation_epochs: list[int]
    windows_epochs: list[int]
    stabilisation_s: list[float]
    change_point_windows: list[int]
    n_boot: int


def resolve_parameters(inputs: StudyInputs, observed_fraction: float = 0.2,
                       stabilisation_epoch: int | None = None, window_epochs: int | None = None,
                       change_point_window: int | None = None,
                       stabilisation_epochs: list[int] | None = None,
                       windows_epochs: list[int] | None = None,
                       stabilisation_s: list[float] | None = None,
                       change_point_windows: list[int] | None = None,
                       n_boot: int | None = None) -> tuple[StudyParameters, Section]:
    """Each parameter given, or derived from the runs (:mod:`helpers.analysis.parameters`):
    stabilisation epoch and window from the fewest epochs of a run, change-point window from
    the samples in the observed fraction of the training window, time grid from its median
    length, bootstrap resamples from the number of runs. The section shows the values and how
    each was obtained."""
    par = parameters.Parameters()
    derived, how = parameters.derive_stabilisation(inputs.runs)
    if derived is None:
        derived = (parameters.STUDY_STABILISATION_EPOCH, parameters.STUDY_WINDOW_EPOCHS)
        how += ": the study's values"
    s = par.set("stabilisation_epoch", stabilisation_epoch, (derived[0], how))
    w = par.set("window_epochs", window_epochs, (derived[1], how))
    counts = window_sample_counts(inputs.samples) if len(inputs.samples) else pd.Series(
        dtype=float)
    cp = par.set("change_point_window", change_point_window,
                 parameters.derive_block_window(counts, observed_fraction))
    starts, widths = parameters.epoch_grids(s, w, parameters.fewest_epochs(inputs.runs))
    par.set("stabilisation_epochs", stabilisation_epochs,
            (starts, f"s = {s} x {parameters.STABILISATION_EPOCH_FACTORS}, below N"))
    par.set("windows_epochs", windows_epochs,
            (widths, f"w = {w} x {parameters.WINDOW_EPOCH_FACTORS}"))
    unit, unit_how = parameters.derive_time_unit(inputs.runs["training_duration_s"])
    par.set("stabilisation_s", stabilisation_s,
            (parameters.multiples(unit, parameters.FIXED_STABILISATION_UNITS),
             f"time unit {unit:g} s ({unit_how}) x {parameters.FIXED_STABILISATION_UNITS}"))
    par.set("change_point_windows", change_point_windows,
            (parameters.block_grid(cp, (0.5, 1, 3)), f"change-point window {cp} x (0.5, 1, 3)"))
    par.set("n_boot", n_boot, parameters.derive_bootstrap(len(inputs.runs)))
    table = par.table()
    notes = []
    if inputs.dataset:
        path = io.write_csv(table, datasets.output_dir(inputs.dataset, "reports")
                            / "06-parameters.csv")
        notes.append(f"wrote {datasets.relative_to_project(path)}")
    return StudyParameters(**par.values), Section(notes, tables={"parameters": table})


# --------------------------------------------------------------------------------------------
# Estimates of the methods that need no fitting
# --------------------------------------------------------------------------------------------

def power_limit_w(runs: pd.DataFrame) -> tuple[pd.Series, pd.Series]:
    """(GPU power limit W, reason) per run: the run's ``gpu_power_limit_w``, else the spec-table
    TDP; NaN with the reason for CPU-only runs or unknown GPUs."""
    specs = gpu_specs.spec_features(runs["gpu_name"].where(runs["gpu_name"] != "none", ""))
    limit = runs["gpu_power_limit_w"].astype(float)
    filled = limit.fillna(specs["gpu_tdp_w"])
    reason = pd.Series("", index=runs.index, dtype=object)
    reason[limit.isna() & filled.notna()] = "power limit from the spec-table TDP"
    reason[filled.isna()] = "no GPU power limit: " + specs.loc[filled.isna(), "gpu_spec_status"]
    return filled, reason


def baseline_estimates(runs: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """ML CO2 Impact and Green Algorithms (GPU-only) for every run, over its training window
    (``training_duration_s``, ``training_gpu_usage_mean``): (estimates J, reasons), both
    indexed by run_id."""
    limit, why = power_limit_w(runs)
    duration = runs["training_duration_s"]
    usage = runs["training_gpu_usage_mean"]
    out = pd.DataFrame({
        "ml_co2_impact": baselines.ml_co2_impact_energy_j(duration, limit),
        "green_algorithms_gpu": baselines.green_algorithms_energy_j(duration, limit, usage),
    }, index=pd.Index(runs["run_id"], name="run_id"))
    reasons = pd.DataFrame({c: why.to_numpy() for c in out.columns}, index=out.index)
    reasons.loc[usage.isna().to_numpy(), "green_algorithms_gpu"] = "no GPU utilisation"
    return out, reasons.where(out.isna(), None)


def online_estimates(inputs: StudyInputs, observed_fraction: float = 0.2,
                     stabilisation_epoch: int = 10, window_epochs: int = 5,
                     change_point_window: int = 10) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Epoch-based (Carbontracker k=1, online power, STEP at (s, w)) and time-window (STEP and
    online power after ``observed_fraction``, change-point stabilisation) estimates for every
    run: (estimates J, reasons), indexed by run_id."""
    prefix = "pseudo_" if inputs.epoch_source.startswith("pseudo") else ""
    ep, ep_why = online.epoch_method_estimates(inputs.epochs, inputs.runs, stabilisation_epoch,
                                            window_epochs, prefix=prefix)
    tw = online.online_fraction_estimates(inputs.samples, inputs.runs, [observed_fraction],
                                       change_point_window=change_point_window)
    tag = f"_f{round(observed_fraction * 100)}"
    tw_est = tw.pivot(index="run_id", columns="method", values="estimate_j").add_suffix(tag)
    tw_why = tw.pivot(index="run_id", columns="method", values="reason").add_suffix(tag)
    return (pd.concat([ep, tw_est.reindex(ep.index)], axis=1),
            pd.concat([ep_why, tw_why.reindex(ep.index).replace("", None)], axis=1))


# --------------------------------------------------------------------------------------------
# Splits and PRE
# --------------------------------------------------------------------------------------------

@dataclass
class Split:
    """One evaluation split: outer (train, test) row positions and the group labels."""

    name: str
    splits: list[tuple[np.ndarray, np.ndarray]]
    groups: np.ndarray | None
    note: str = ""


def make_splits(runs: pd.DataFrame, test_fraction: float = 0.3, seed: int = 0
                ) -> tuple[list[Split], list[str]]:
    """The random split and the grouped splits that this dataset allows, plus notes for those
    it does not (fewer than two groups, or fewer than ``MIN_RUNS_PRE`` runs in all)."""
    if len(runs) < MIN_RUNS_PRE:
        return [], [f"PRE skipped: {len(runs)} runs, fewer than {MIN_RUNS_PRE}"]
    out = [Split(f"random_{round(test_fraction * 100)}pct_test",
                 ev.random_split(len(runs), test_fraction, seed), None)]
    notes = []
    for name, col in GROUPED_SPLITS.items():
        groups = runs[col].to_numpy()
        n = len(np.unique(groups))
        if n < 2:
            notes.append(f"{name}: skipped, only {n} {col} value(s)")
            continue
        splits = ev.leave_one_group_out(groups)
        ev.check_group_disjoint(splits, groups)
        out.append(Split(name, splits, groups, f"{n} groups by {col}"))
    return out, notes


@dataclass
class PreResult:
    """PRE out-of-fold estimates per split, and the fits (selected hyper-parameters)."""

    estimates: dict[str, pd.DataFrame] = field(default_factory=dict)
    fits: dict[str, dict] = field(default_factory=dict)

    def best_params(self) -> pd.DataFrame:
        """Selected hyper-parameters per split, model, target and outer fold."""
        rows = []
        for split, fits in self.fits.items():
            for (model, target), res in fits.items():
                for fold in res.folds:
                    rows.append({"split": split, "model": model, "target": target,
                                 "fold": fold.fold, "inner_cv": fold.inner_cv,
                                 "best_params": fold.best_params})
        return pd.DataFrame(rows)


def pre_estimates(runs: pd.DataFrame, splits: list[Split], models: list[str],
                  relative_power: bool = True, seed: int = 0) -> PreResult:
    """Out-of-fold PRE estimates (J) of every model and mode for each split."""
    feats = pre.pre_training_features(runs)
    res = PreResult()
    for split in splits:
        out, fits = pre.pre_estimates_j(runs, feats, split.splits, models, split.groups,
                                        relative_power, seed)
        res.estimates[split.name] = out.set_axis(pd.Index(runs["run_id"], name="run_id"))
        res.fits[split.name] = fits
    return res


# --------------------------------------------------------------------------------------------
# Scoring
# --------------------------------------------------------------------------------------------

def drop_unusable_methods(estimates: pd.DataFrame, reasons: pd.DataFrame
                          ) -> tuple[pd.DataFrame, pd.DataFrame, list[str]]:
    """Remove methods that no run can be estimated with (so that they do not empty the common
    run set); returns the kept frames and a note per removed method."""
    dead = [c for c in estimates.columns if estimates[c].isna().all()]
    notes = []
    for c in dead:
        why = reasons[c].dropna().value_counts() if c in reasons else pd.Series(dtype=int)
        notes.append(f"{c}: not estimable for any run ({why.index[0] if len(why) else '?'})")
    return estimates.drop(columns=dead), reasons.drop(columns=dead, errors="ignore"), notes


def score_all(inputs: StudyInputs, fixed: pd.DataFrame, fixed_reasons: pd.DataFrame,
              pre: PreResult, splits: list[Split], n_boot: int = 1000,
              seed: int = 0) -> tuple[ev.ScoreResult, list[str]]:
    """Score every method per split on the same runs (see the module docstring)."""
    measured = inputs.measured_j
    fixed, fixed_reasons, notes = drop_unusable_methods(fixed, fixed_reasons)
    results = [ev.score_methods(measured, fixed, "all_runs", fixed_reasons, n_boot,
                                seed=seed)]
    for split in splits:
        pre_est = pre.estimates[split.name]
        tested = np.unique(np.concatenate([t for _, t in split.splits]))
        rows = measured.index[tested]
        pre_est, _, pre_notes = drop_unusable_methods(pre_est.loc[rows], pre_est.loc[rows])
        notes += [f"{split.name}: {n}" for n in pre_notes]
        both = pd.concat([fixed.loc[rows], pre_est], axis=1)
        pre_why = pd.DataFrame(np.where(pre_est.isna(), "PRE not estimable (missing feature)",
                                        None), index=rows, columns=pre_est.columns)
        reasons = pd.concat([fixed_reasons.loc[rows], pre_why], axis=1)
        results.append(ev.score_methods(measured.loc[rows], both, split.name, reasons,
                                        n_boot, seed=seed))
    return ev.ScoreResult(pd.concat([r.errors for r in results], ignore_index=True),
                          pd.concat([r.dropped for r in results], ignore_index=True)), notes


# --------------------------------------------------------------------------------------------
# Online estimators: error vs fraction observed, sensitivity, a forecast trajectory
# --------------------------------------------------------------------------------------------

def fraction_curve(inputs: StudyInputs, fractions: list[float], stabilisation_epoch: int = 10,
                   change_point_window: int = 10, n_boot: int = 1000,
                   seed: int = 0) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Time-window STEP and online power after observing each fraction, with the stabilisation
    point from the observed part ('change_point') or at pseudo-epoch ``stabilisation_epoch``
    ('pseudo_epoch'). Returns (long estimates, MAPE table with CIs and run counts)."""
    parts = []
    for mode in ("change_point", "pseudo_epoch"):
        long = online.online_fraction_estimates(inputs.samples, inputs.runs, fractions, mode,
                                             stabilisation_epoch, change_point_window)
        parts.append(long.assign(stabilisation=mode))
    long = pd.concat(parts, ignore_index=True)
    curve = ev.grouped_mape(long, inputs.measured_j,
                            ["method", "stabilisation", "observed_fraction"], n_boot, seed=seed)
    return long, curve


def epoch_sensitivity(inputs: StudyInputs, stabilisation_epochs: list[int],
                      windows_epochs: list[int], n_boot: int = 1000,
                      seed: int = 0) -> pd.DataFrame:
    """MAPE of the epoch-based online power and STEP for every (stabilisation epoch, window),
    with the mean share of the run observed, (s + w) / N."""
    long = online.epoch_sensitivity(inputs.epochs, inputs.runs, stabilisation_epochs,
                                 windows_epochs)
    long = long[long["method"].isin(["online_power", "step"])]
    out = ev.grouped_mape(long, inputs.measured_j,
                          ["method", "stabilisation_epoch", "window_epochs"], n_boot, seed=seed)
    n = inputs.runs["epochs"].to_numpy(float)
    out["observed_fraction_mean"] = [
        float(np.mean(np.minimum((s + w) / n, 1))) for s, w in
        zip(out["stabilisation_epoch"], out["window_epochs"], strict=True)]
    return out


def time_sensitivity(inputs: StudyInputs, observed_fraction: float,
                     stabilisation_s: list[float], change_point_windows: list[int],
                     n_boot: int = 1000, seed: int = 0) -> pd.DataFrame:
    """MAPE of the time-window estimators at one observed fraction for fixed stabilisation
    times (s) and for change-point detection with several block windows (samples)."""
    parts = []
    for s in stabilisation_s:
        parts.append(online.online_fraction_estimates(
            inputs.samples, inputs.runs, [observed_fraction], float(s)).assign(
            setting="fixed_s", value=float(s)))
    for w in change_point_windows:
        parts.append(online.online_fraction_estimates(
            inputs.samples, inputs.runs, [observed_fraction], "change_point",
            change_point_window=w).assign(setting="change_point_window", value=float(w)))
    long = pd.concat(parts, ignore_index=True)
    return ev.grouped_mape(long, inputs.measured_j, ["method", "setting", "value"], n_boot,
                           seed=seed)


def _before_epochs_j(inputs: StudyInputs, run_id: str) -> float:
    """Energy (J) of the run's training window before its first epoch (0 where unknown)."""
    value = inputs.runs.set_index("run_id")["pre_epoch_energy_j"].get(run_id, np.nan)
    return float(value) if np.isfinite(value) else 0.0


def forecast_trajectory(inputs: StudyInputs, run_id: str, **forecaster_kwargs) -> pd.DataFrame:
    """Feed one run's epoch energies to ``StepForecaster`` epoch by epoch (with the energy
    before its first epoch); one row per epoch: epoch, energy_j, low_j, high_j, stable,
    measured_j (the run's training energy). Empty without epochs or an epoch count."""
    sub = inputs.epochs[inputs.epochs["run_id"] == run_id].sort_values("epoch")
    n_planned = inputs.runs.set_index("run_id").loc[run_id, "epochs"]
    if sub.empty or not np.isfinite(n_planned) or n_planned < 1:
        return pd.DataFrame(columns=["epoch", "energy_j", "low_j", "high_j", "stable",
                                     "stabilisation_epoch", "measured_j"])
    f = forecaster.StepForecaster(int(n_planned), before_epochs_j=_before_epochs_j(
        inputs, run_id), **forecaster_kwargs)
    rows = [asdict(f.update(i, e)) | {"epoch": i}
            for i, e in enumerate(sub["energy_j"].to_numpy(float))]
    return pd.DataFrame(rows).assign(measured_j=inputs.measured_j[run_id])


def forecaster_coverage(inputs: StudyInputs, fractions: list[float],
                        **forecaster_kwargs) -> pd.DataFrame:
    """``StepForecaster`` over every run, stopped after each fraction of its planned epochs:
    runs with a forecast (stabilisation passed), MAPE (%) of the forecast against the training
    energy, and the share of runs whose measured energy lies inside the forecast interval
    (empirical coverage)."""
    arrays = online.epoch_arrays(inputs.epochs)
    measured = inputs.measured_j
    rows = []
    for frac in fractions:
        ape, hits = [], []
        for run in inputs.runs[["run_id", "epochs"]].itertuples(index=False):
            energies = arrays.get(run.run_id, (np.array([]),))[0]
            true = measured[run.run_id]
            if not (np.isfinite(run.epochs) and run.epochs >= 1 and np.isfinite(true)
                    and true > 0):
                continue
            n_seen = min(max(int(round(frac * run.epochs)), 1), len(energies))
            if n_seen == 0:
                continue
            f = forecaster.StepForecaster(int(run.epochs), before_epochs_j=_before_epochs_j(
                inputs, run.run_id), **forecaster_kwargs)
            for i, e in enumerate(energies[:n_seen]):
                fc = f.update(i, e)
            if fc.stable:
                ape.append(abs(fc.energy_j - true) / true * 100)
                hits.append(fc.low_j <= true <= fc.high_j)
        rows.append({"epochs_observed_fraction": frac, "runs_forecast": len(ape),
                     "runs": len(inputs.runs), "mape_pct": np.mean(ape) if ape else np.nan,
                     "interval_coverage": np.mean(hits) if hits else np.nan})
    return pd.DataFrame(rows)


# --------------------------------------------------------------------------------------------
# Published SEAA 2023 check
# --------------------------------------------------------------------------------------------

#: Published MAPE (%) of the baselines on the authors' processed file (369 runs)
#: (docs/methods.md#published-numbers).
PUBLISHED_MAPE_PCT = {"ml_co2_impact": 60.7, "green_algorithms_gpu": 34.1}


def published_baselines(data_dir: str | None = None) -> tuple[pd.Series, pd.DataFrame,
                                                                pd.Series]:
    """Baselines on the authors' processed SEAA 2023 file: (measured J, estimates J, GPU name),
    indexed by '<environment>/<architecture>/<run>'. Columns used: 'training duration (h)',
    'max power limit (W)', 'gpu usage (%)', 'energy (MJ)'."""
    path = (datasets.seaa2023_dir(data_dir) / "processed"
            / "dl-training-energy-consumption-dataset.gzip")
    df = pd.read_parquet(path)
    key = (df["training environment"] + "/" + df["architecture"] + "/"
           + df["run"].astype(str))
    duration_s = df["training duration (h)"].to_numpy() * 3600
    limit = df["max power limit (W)"].to_numpy()
    estimates = pd.DataFrame({
        "ml_co2_impact": baselines.ml_co2_impact_energy_j(duration_s, limit),
        "green_algorithms_gpu": baselines.green_algorithms_energy_j(
            duration_s, limit, df["gpu usage (%)"].to_numpy() / 100),
    }, index=pd.Index(key, name="run_id"))
    measured = pd.Series(df["energy (MJ)"].to_numpy() * 1e6, index=estimates.index)
    return measured, estimates, pd.Series(df["gpu model"].to_numpy(), index=estimates.index)


def published_errors(n_boot: int = 1000, seed: int = 0) -> pd.DataFrame:
    """Error table (``evaluation.score_methods``) of the baselines on the authors' processed
    file: split ``published_processed_369`` (all runs) and ``published_processed_no_gtx750ti``
    (without the 60 GTX 750 Ti runs, whose raw logs are not published)."""
    measured, estimates, gpu = published_baselines()
    no_750 = ~gpu.str.contains("750 Ti").to_numpy()
    return pd.concat([
        ev.score_methods(measured, estimates, "published_processed_369", n_boot=n_boot,
                         seed=seed).errors,
        ev.score_methods(measured[no_750], estimates[no_750], "published_processed_no_gtx750ti",
                         n_boot=n_boot, seed=seed).errors,
    ], ignore_index=True)


def published_check(errors: pd.DataFrame) -> pd.DataFrame:
    """MAPE rows of ``published_errors`` beside the published numbers (369-run split only)."""
    out = errors[errors["metric"] == "mape_pct"].drop(columns="metric")
    out = out.rename(columns={"value": "mape_pct"})
    published = out["method"].map(PUBLISHED_MAPE_PCT)
    out["published_mape_pct"] = published.where(out["split"] == "published_processed_369")
    return out.reset_index(drop=True)


def acceptance(errors: pd.DataFrame, published: pd.DataFrame | None,
               fraction_curve: pd.DataFrame, observed_fraction: float = 0.2) -> pd.DataFrame:
    """The acceptance checks as a table: check, MAPE (%) with its CI, runs, target, met."""
    mape = errors[errors["metric"] == "mape_pct"].set_index(["split", "method"])
    rows = []
    if published is not None:
        for r in published[published["published_mape_pct"].notna()].itertuples():
            rows.append((f"{r.method} on the published file", r.mape_pct, r.ci_low, r.ci_high,
                         r.n_runs, f"{r.published_mape_pct} ± 1",
                         abs(r.mape_pct - r.published_mape_pct) <= 1))
    curve = fraction_curve[np.isclose(fraction_curve["observed_fraction"], observed_fraction)]
    for r in curve.itertuples():
        rows.append((f"{r.method} ({r.stabilisation}) observing {observed_fraction:.0%}",
                     r.mape_pct, r.ci_low, r.ci_high, r.n_runs, "<= 2", r.mape_pct <= 2))
    checks = [(s, "true_duration", "<= 5", 5) for s in mape.index.levels[0]
              if s.startswith("random")]
    checks += [(s, "pre_training", "<= 20 (goal)", 20) for s in GROUPED_SPLITS]
    for split, mode, target, limit in checks:
        if split not in mape.index.get_level_values(0):
            continue
        sub = mape.loc[split]
        for m in sorted(m for m in sub.index if m.startswith("pre_") and m.endswith(mode)):
            r = sub.loc[m]
            rows.append((f"{m} on {split}", r["value"], r["ci_low"], r["ci_high"], r["n_runs"],
                         target, r["value"] <= limit))
    return pd.DataFrame(rows, columns=["check", "mape_pct", "ci_low", "ci_high", "n_runs",
                                       "target", "met"])


# --------------------------------------------------------------------------------------------
# Notebook sections
# --------------------------------------------------------------------------------------------

@dataclass
class FixedEstimates:
    """Estimates (J) of the methods that need no fitting, and why a run has none (None where it
    has one); both indexed by run_id, one column per method."""

    estimates: pd.DataFrame
    reasons: pd.DataFrame


@dataclass
class PreFits:
    """The evaluation splits this dataset allows and the PRE out-of-fold estimates on them."""

    splits: list[Split]
    result: PreResult


def setup_display() -> None:
    """Figure style and pandas display options of notebook 06."""
    common.setup_display(max_columns=20)


def load(dataset: str) -> tuple[StudyInputs, Section]:
    """:func:`load_inputs`; the section counts runs, epochs and samples, names the window the
    estimators are scored on, and shows the runs, mean training energy (MJ), training duration
    (s) and epochs per environment × architecture."""
    inputs = load_inputs(dataset)
    runs = inputs.runs
    notes = [f"{len(runs)} runs, {runs['architecture'].nunique()} architectures, "
             f"{runs['environment'].nunique()} environments; epochs: {inputs.epoch_source} "
             f"({len(inputs.epochs)} rows); {len(inputs.samples)} power samples in the training "
             "windows",
             f"every estimator is scored against training_energy_j over the {inputs.window}, "
             "with inputs from the same window"]
    table = runs.groupby(["environment", "architecture"]).agg(
        runs=("run_id", "size"),
        training_energy_mj=("training_energy_j", lambda e: e.mean() / 1e6),
        training_duration_s=("training_duration_s", "mean"), epochs=("epochs", "mean"))
    skipped = [] if len(inputs.samples) else [
        ("time-window estimators and pseudo-epochs", NO_SAMPLES)]
    return inputs, Section(notes, {"runs": table}, not_estimable=skipped)


def published_baselines_check(dataset: str, n_boot: int = 1000, seed: int = 0
                              ) -> tuple[pd.DataFrame | None, Section]:
    """For seaa2023: the baselines' errors on the authors' processed file
    (:func:`published_errors`) and their MAPE beside the published numbers. Returns (the error
    rows, or None for other datasets; the section)."""
    if dataset != "seaa2023":
        why = f"the published file holds seaa2023 runs, not {dataset}"
        return None, Section([f"skipped: {why}"],
                             not_estimable=[("baselines on the published file", why)])
    try:
        errors = published_errors(n_boot, seed).assign(window=PUBLISHED_WINDOW)
    except FileNotFoundError as exc:  # no published copy found, or one without processed/
        why = f"the published processed file is not there ({exc})"
        return None, Section([f"skipped: {why}"],
                             not_estimable=[("baselines on the published file", why)])
    return errors, Section(tables={"published check": published_check(errors)})


def _dead_methods(estimates: pd.DataFrame, reasons: pd.DataFrame) -> list[tuple[str, str]]:
    """(method, most frequent reason) of every method without an estimate for any run."""
    out = []
    for c in estimates.columns[estimates.isna().all().to_numpy()]:
        why = reasons[c].dropna().value_counts() if c in reasons else pd.Series(dtype=int)
        out.append((f"method {c}", why.index[0] if len(why) else "no run estimable"))
    return out


def methods_without_fitting(inputs: StudyInputs, params: StudyParameters,
                            observed_fraction: float = 0.2) -> tuple[FixedEstimates, Section]:
    """Baselines (:func:`baseline_estimates`) and online estimators (:func:`online_estimates`)
    for every run, at the resolved stabilisation epoch, window and change-point window; the
    section describes the estimates in MJ and lists the methods no run can be estimated
    with."""
    base, base_why = baseline_estimates(inputs.runs)
    live, live_why = online_estimates(inputs, observed_fraction, params.stabilisation_epoch,
                                      params.window_epochs, params.change_point_window)
    fixed = FixedEstimates(pd.concat([base, live], axis=1), pd.concat([base_why, live_why], axis=1))
    notes = []
    if inputs.dataset:
        path = io.write_csv(estimates_long(fixed, inputs),
                            datasets.output_dir(inputs.dataset, "reports") / "06-estimates.csv")
        notes.append(f"wrote {datasets.relative_to_project(path)}")
    return fixed, Section(notes,
                          {"estimates (MJ)": (fixed.estimates / 1e6).describe().T.round(3)},
                          not_estimable=_dead_methods(fixed.estimates, fixed.reasons))


def estimates_long(fixed: FixedEstimates, inputs: StudyInputs) -> pd.DataFrame:
    """One row per run and method without fitting: ``estimate_j`` (NaN where the method cannot
    estimate that run, with ``reason``), the run's measured ``training_energy_j`` and the
    window scored."""
    est = fixed.estimates.rename_axis("run_id").reset_index().melt(
        id_vars="run_id", var_name="method", value_name="estimate_j")
    why = fixed.reasons.reindex(columns=fixed.estimates.columns).rename_axis("run_id") \
        .reset_index().melt(id_vars="run_id", var_name="method", value_name="reason")
    out = est.merge(why, on=["run_id", "method"], how="left")
    out["training_energy_j"] = out["run_id"].map(inputs.measured_j)
    out["window"] = inputs.window
    return out[["run_id", "method", "estimate_j", "reason", "training_energy_j", "window"]]


def _params_table(params: pd.DataFrame) -> pd.DataFrame:
    """The distinct selected hyper-parameters per split, model and target."""
    if not len(params):
        return params
    return params.groupby(["split", "model", "target"])["best_params"].agg(
        lambda p: "; ".join(sorted({str(x) for x in p}))).reset_index()


def pre_fits(inputs: StudyInputs, test_fraction: float = 0.3, seed: int = 0,
             models: list[str] | None = None, relative_power: bool = True
             ) -> tuple[PreFits, Section]:
    """The splits (:func:`make_splits`) and PRE out-of-fold estimates of ``models`` on them
    (:func:`pre_estimates`); the section lists the features and the selected
    hyper-parameters."""
    splits, split_notes = make_splits(inputs.runs, test_fraction, seed)
    features = pre.pre_training_features(inputs.runs)
    result = pre_estimates(inputs.runs, splits, list(models or []), relative_power, seed)
    notes = [f"features: {list(features.X.columns)}", f"dropped: {features.dropped}",
             *features.notes, *split_notes]
    skipped = [(n.split(":", 1)[0], n.split(":", 1)[1].strip()) for n in split_notes]
    if splits and features.X.shape[1] == 0:
        skipped.append(("PRE", "no pre-training feature in this dataset (none of "
                        f"{', '.join(features.dropped)})"))
    return PreFits(splits, result), Section(
        notes, {"selected hyper-parameters": _params_table(result.best_params())},
        not_estimable=skipped)


def error_table(dataset: str, inputs: StudyInputs, fixed: FixedEstimates, fits: PreFits,
                published: pd.DataFrame | None = None, n_boot: int = 1000, seed: int = 0
                ) -> tuple[pd.DataFrame, Section]:
    """Score every method per split (:func:`score_all`) against the training window's energy;
    write the errors, with the window scored (column ``window``) and the published rows, to
    ``06-estimator-errors.csv`` and figure ``06-mape-by-method``. Returns (the error rows, the
    section with the runs left out and the MAPE / RMSE table)."""
    scores, method_notes = score_all(inputs, fixed.estimates, fixed.reasons, fits.result,
                                     fits.splits, n_boot, seed)
    errors = scores.errors.assign(window=inputs.window)
    dropped = scores.dropped.groupby(["split", "method", "reason"]).size().rename("runs")
    report = io.write_csv(pd.concat([errors, published], ignore_index=True),
                          datasets.output_dir(dataset, "reports") / "06-estimator-errors.csv")
    notes = [*method_notes] or ["every method estimable for some run"]
    scored = errors[errors["metric"] == "mape_pct"]
    skipped = [(f"{r.method} on {r.split}", "no run estimable by every method of the split")
               for r in scored[scored["n_runs"] == 0].itertuples()]
    if n_boot == 0 or len(inputs.runs) < parameters.MIN_RUNS_BOOTSTRAP:
        skipped.append(("bootstrap confidence intervals",
                        f"{len(inputs.runs)} run(s): fewer than {parameters.MIN_RUNS_BOOTSTRAP}"
                        if n_boot else "no resamples (n_boot = 0)"))
    wide = ev.wide_table(errors[errors["metric"].isin(["mape_pct", "rmse_kj"])]) \
        if len(errors) else pd.DataFrame()
    return errors, Section(
        [*notes, f"scored against training_energy_j over the {inputs.window}",
         f"wrote {datasets.relative_to_project(report)}"],
        {"runs left out": dropped.reset_index(), "errors": wide},
        save_and_close(plots.mape_by_method(errors), dataset, "06-mape-by-method"),
        not_estimable=skipped)


def predicted_vs_measured(dataset: str, inputs: StudyInputs, fixed: FixedEstimates,
                          fits: PreFits, models: list[str], figure_model: str = "kernel_ridge"
                          ) -> Section:
    """Predicted against measured training energy: the methods without fitting on all runs
    (figure ``06-predicted-vs-measured``) and PRE with ``figure_model``, out-of-fold, per split
    and mode (figure ``06-pre-predicted-vs-measured``, when that model was fitted). A method
    without any estimate says so on its panel, with the reason."""
    arch = inputs.runs.set_index("run_id")["architecture"]
    why = dict(_dead_methods(fixed.estimates, fixed.reasons))
    fig = plots.predicted_vs_measured(inputs.measured_j, fixed.estimates, hue=arch,
                                      title="methods without fitting, all runs",
                                      reasons={m.removeprefix("method "): r
                                               for m, r in why.items()})
    figures = save_and_close(fig, dataset, "06-predicted-vs-measured")
    estimates = fits.result.estimates
    skipped = []
    if estimates and figure_model in models:
        cols = {f"{split}: {mode}": estimates[split][f"pre_{figure_model}_{mode}"]
                for split in estimates for mode in pre.PRE_MODES}
        fig = plots.predicted_vs_measured(inputs.measured_j, pd.DataFrame(cols), hue=arch,
                                          ncols=3, title=f"PRE ({figure_model}), out-of-fold")
        figures |= save_and_close(fig, dataset, "06-pre-predicted-vs-measured")
    elif not estimates:
        reason = f"no evaluation split (PRE needs at least {MIN_RUNS_PRE} runs)"
        figures |= save_and_close(plots.note(f"PRE predicted vs measured: {reason}"),
                                  dataset, "06-pre-predicted-vs-measured")
        skipped.append(("PRE predicted vs measured", reason))
    return Section(figures=figures, not_estimable=skipped)


#: MAPE bars (%) of the before-training methods: dataset -> split -> target; other datasets
#: get :data:`PRETRAINING_DEFAULT_TARGETS_PCT`.
PRETRAINING_TARGETS_PCT = {"ee-training": {"leave_one_architecture_out": 15.0},
                           "seaa2023": {"leave_one_architecture_out": 25.0,
                                        "leave_one_environment_out": 20.0}}
PRETRAINING_DEFAULT_TARGETS_PCT = {"leave_one_architecture_out": 25.0,
                                   "leave_one_environment_out": 20.0}
#: The exported roofline model (fitted on every run) under ``reports/``.
PRETRAINING_MODEL_FILE = pretraining.MODEL_FILE


def _pretraining_acceptance(dataset: str, errors: pd.DataFrame) -> pd.DataFrame:
    """Each grouped split's before-training methods against the bar, and against the
    log-linear baseline of the same split."""
    targets = PRETRAINING_TARGETS_PCT.get(dataset, PRETRAINING_DEFAULT_TARGETS_PCT)
    rows = []
    for split, target in targets.items():
        sub = errors[errors["split"] == split].set_index("method")
        base = sub["value"].get("loglinear_baseline", np.nan)
        for m in (m for m in sub.index if m in pretraining.METHODS or m.startswith("pre_")):
            r = sub.loc[m]
            rows.append((f"{m} on {split}", r["value"], r["ci_low"], r["ci_high"], r["n_runs"],
                         f"<= {target:g}", bool(r["value"] <= target),
                         bool(r["value"] < base) if np.isfinite(base) else None))
    return pd.DataFrame(rows, columns=["check", "mape_pct", "ci_low", "ci_high", "n_runs",
                                       "target", "met", "below_loglinear"])


def before_training(dataset: str, inputs: StudyInputs, fits: PreFits, n_boot: int = 1000,
                    seed: int = 0, coverage: float = 0.9) -> tuple[pd.DataFrame, Section]:
    """Pre-training estimates from the graph and the GPU specs
    (:mod:`helpers.estimate.pretraining`: roofline, learned models, log-linear and lookup
    baselines, beside the PRE regressions' ``pre_training`` mode) on the same runs, per split of
    ``fits`` (random, leave one architecture out, leave one environment out), each with an
    interval from a grouped CV inside its training runs. Writes ``06-pretraining-errors.csv``
    (MAPE with a CI resampling whole architectures, interval coverage),
    ``06-pretraining-by-architecture.csv``, the roofline fitted on every run
    (:data:`PRETRAINING_MODEL_FILE`) and figures ``06-pretraining-predicted-vs-measured`` and
    ``06-pretraining-mape``. Returns (the error rows, the section)."""
    reports = datasets.output_dir(dataset, "reports")
    if not fits.splits:
        why = f"no evaluation split (needs at least {MIN_RUNS_PRE} runs)"
        figs = save_and_close(plots.note(f"before training: {why}"), dataset,
                              "06-pretraining-predicted-vs-measured")
        return pd.DataFrame(), Section([f"skipped: {why}"], figures=figs,
                                       not_estimable=[("before-training estimates", why)])
    runs = inputs.runs
    run_ids = pd.Index(runs["run_id"], name="run_id")
    inp = pretraining.run_inputs(runs)
    energy, duration = runs["training_energy_j"], runs["training_duration_s"]
    arch, env = runs["architecture"].astype(str), runs["environment"].astype(str)
    errors, by_arch, skipped, dropped = [], [], [], []
    panels: dict[str, dict] = {"estimates": {}, "low": {}, "high": {}}
    panel_why: dict[tuple[str, str], str] = {}
    for split in fits.splits:
        result = pretraining.out_of_fold(inp, energy, duration, split.splits, arch.to_numpy(),
                                         seed=seed, coverage=coverage)
        tested = np.unique(np.concatenate([t for _, t in split.splits]))
        pre_cols = fits.result.estimates.get(split.name, pd.DataFrame(index=run_ids))
        extra = pd.DataFrame({c.removesuffix("_pre_training"): pre_cols[c].to_numpy()
                              for c in pre_cols if c.endswith("_pre_training")},
                             index=runs.index)
        sub = pretraining.PretrainingResult(*(f.iloc[tested] for f in (
            result.estimates, result.low, result.high, result.reasons)))
        scores = pretraining.score(sub, energy.iloc[tested], split.name, arch.iloc[tested],
                                   env.iloc[tested], extra.iloc[tested], n_boot, seed)
        errors.append(scores.errors)
        dropped.append(scores.dropped)
        skipped += [(f"{m} on {split.name}", why) for m, why in scores.not_estimable.items()]
        if split.groups is not None:
            by_arch.append(scores.by_group)
            for key, frame in (("estimates", result.estimates), ("low", result.low),
                               ("high", result.high)):
                panels[key][split.name] = frame.set_axis(run_ids)
            panel_why |= {(split.name, m): w for m, w in scores.not_estimable.items()}
    errors = pd.concat(errors, ignore_index=True)
    by_arch = pd.concat(by_arch, ignore_index=True) if by_arch else pd.DataFrame()
    io.write_csv(errors, reports / "06-pretraining-errors.csv")
    io.write_csv(by_arch, reports / "06-pretraining-by-architecture.csv")
    notes = [*inp.notes, f"wrote {datasets.relative_to_project(reports)}/06-pretraining-*"]
    notes += [f"{n} runs without graph features: {why}"
              for why, n in inp.reasons.value_counts().items()]
    notes += [f"{n} runs without GPU specifications: {why}"
              for why, n in inp.spec_reasons.value_counts().items()]
    coefficients = _export_roofline(dataset, inp, energy, duration, arch, coverage, seed)
    notes += coefficients.notes
    skipped += coefficients.not_estimable
    figs = save_and_close(pretraining_plots.predicted_vs_measured(
        inputs.measured_j, panels["estimates"], panels["low"], panels["high"],
        arch.set_axis(run_ids), panel_why), dataset, "06-pretraining-predicted-vs-measured")
    figs |= save_and_close(pretraining_plots.mape_by_split(
        errors, PRETRAINING_TARGETS_PCT.get(dataset, PRETRAINING_DEFAULT_TARGETS_PCT)),
        dataset, "06-pretraining-mape")
    wide = errors.assign(cell=[f"{v:.1f} [{lo:.1f}, {hi:.1f}]" for v, lo, hi in
                               zip(errors["value"], errors["ci_low"], errors["ci_high"],
                                   strict=True)])
    table = wide.pivot_table(index="method", columns="split", values="cell", aggfunc="first",
                             sort=False)
    coverage_table = wide.pivot_table(index="method", columns="split",
                                      values="interval_coverage", aggfunc="first", sort=False)
    tables = {"MAPE (%) [95% CI, architectures resampled]": table,
              f"interval coverage (nominal {coverage:.0%})": coverage_table.round(2),
              "MAPE (%) per architecture": by_arch.round(1),
              "acceptance": _pretraining_acceptance(dataset, errors),
              **coefficients.tables}
    if dropped and len(pd.concat(dropped)):
        tables["runs left out"] = pd.concat(dropped).groupby(
            ["split", "method", "reason"]).size().rename("runs").reset_index()
    return errors, Section(notes, tables, figs, not_estimable=skipped)


def _export_roofline(dataset: str, inp: pretraining.RunInputs, energy: pd.Series,
                     duration: pd.Series, arch: pd.Series, coverage: float,
                     seed: int) -> Section:
    """Fit the spec-based roofline on every usable run (interval from leave one architecture
    out) and write it to :data:`PRETRAINING_MODEL_FILE`; the section shows its coefficients."""
    model, reason = pretraining.fit_all(inp, energy, duration, "roofline_specs",
                                        arch.to_numpy(), seed, coverage)
    if model is None:
        return Section(not_estimable=[("exported roofline model", reason)])
    path = datasets.output_dir(dataset, "reports") / PRETRAINING_MODEL_FILE
    out = pretraining.export_roofline(model, dataset, path)
    coef = {k: (v if not isinstance(v, dict) else "; ".join(f"{e}: {x:.4g}"
                                                           for e, x in v.items()))
            for k, v in out["coefficients"].items()}
    return Section([f"wrote {datasets.relative_to_project(path)} (roofline_specs fitted on "
                    f"every run; interval ×/÷ {np.exp(out['interval_log_halfwidth']):.3g})"],
                   {"roofline coefficients (all runs)": pd.Series(coef, name="value")
                    .to_frame()})


def online_error_vs_fraction(dataset: str, inputs: StudyInputs, fractions: list[float],
                             params: StudyParameters, observed_fraction: float = 0.2,
                             seed: int = 0) -> tuple[pd.DataFrame, Section]:
    """MAPE of the time-window online estimators against the observed fraction of the training
    window (:func:`fraction_curve`; figure ``06-online-error-vs-fraction``). Returns (the curve,
    the section with its MAPE and run-count tables)."""
    long, curve = fraction_curve(inputs, fractions, params.stabilisation_epoch,
                                 params.change_point_window, params.n_boot, seed)
    fig = plots.error_vs_fraction(curve, budget_fraction=observed_fraction)
    index, columns = ["method", "stabilisation"], "observed_fraction"
    keys = ["method", "stabilisation", "observed_fraction"]
    why = (long[long["reason"].fillna("") != ""].groupby(keys)["reason"]
           .agg(lambda r: r.value_counts().index[0]))
    skipped = [(f"{r.method} ({r.stabilisation}) observing {r.observed_fraction:.0%}",
                why.get((r.method, r.stabilisation, r.observed_fraction), "no run estimable"))
               for r in curve[curve["mape_pct"].isna()].itertuples()]
    if inputs.samples.empty:
        skipped = [("time-window estimators vs fraction observed", NO_SAMPLES)]
    return curve, Section(
        tables={"MAPE (%)": curve.pivot_table(index=index, columns=columns,
                                              values="mape_pct").round(2),
                "runs": curve.pivot_table(index=index, columns=columns, values="n_runs")},
        figures=save_and_close(fig, dataset, "06-online-error-vs-fraction"),
        not_estimable=skipped)


def stabilisation_sensitivity(dataset: str, inputs: StudyInputs, observed_fraction: float,
                              params: StudyParameters, seed: int = 0) -> Section:
    """MAPE of the online estimators against the stabilisation point and the window, on epochs
    (:func:`epoch_sensitivity`) and on time (:func:`time_sensitivity`); figure
    ``06-sensitivity-stabilisation``."""
    epoch_sens = epoch_sensitivity(inputs, params.stabilisation_epochs, params.windows_epochs,
                                   params.n_boot, seed)
    time_sens = time_sensitivity(inputs, observed_fraction, params.stabilisation_s,
                                 params.change_point_windows, params.n_boot, seed)
    epoch_table = epoch_sens.pivot_table(index=["method", "window_epochs"],
                                         columns="stabilisation_epoch", values="mape_pct")
    skipped = []
    if epoch_sens["mape_pct"].isna().all():
        skipped.append(("sensitivity on epochs", NO_EPOCHS if inputs.epochs.empty else
                        "no (stabilisation epoch, window) estimable for any run"))
    if time_sens["mape_pct"].isna().all():
        skipped.append(("sensitivity on time", NO_SAMPLES if inputs.samples.empty
                        else "no time-window estimate for any run"))
    return Section(
        tables={"MAPE (%) on epochs": epoch_table.round(2), "on time": time_sens.round(2)},
        figures=save_and_close(plots.sensitivity(epoch_sens, time_sens), dataset,
                               "06-sensitivity-stabilisation"),
        not_estimable=skipped)


def step_forecaster(dataset: str, inputs: StudyInputs, forecast_fractions: list[float],
                    params: StudyParameters, systematic_rel: float = 0.01) -> Section:
    """``StepForecaster`` over every run, from the resolved stabilisation epoch on: coverage of
    its interval without and with the drift allowance ``systematic_rel``
    (:func:`forecaster_coverage`), and the trajectory of the run of median training energy
    (figure ``06-step-forecaster``; a note when it never forecasts)."""
    s = params.stabilisation_epoch
    coverage = pd.concat([
        forecaster_coverage(inputs, forecast_fractions, min_epoch=s,
                            systematic_rel=r).assign(systematic_rel=r)
        for r in (0.0, systematic_rel)], ignore_index=True)
    order = inputs.runs.sort_values("training_energy_j")["run_id"]
    example = order.iloc[len(order) // 2]
    trajectory = forecast_trajectory(inputs, example, min_epoch=s,
                                     systematic_rel=systematic_rel)
    reason = ""
    if trajectory.empty:
        reason = "no epoch energies or epoch count for this run"
    elif trajectory["energy_j"].isna().all():
        reason = (f"the stabilisation rule (3 epochs within 5 %, from epoch {s}) is never met "
                  f"in the {len(trajectory)} epochs")
    skipped = [(f"STEP forecaster after {r.epochs_observed_fraction:.0%} of the epochs",
                f"no run met the stabilisation rule (3 epochs within 5 %, from epoch {s}) by "
                "then")
               for r in coverage[(coverage["runs_forecast"] == 0)
                                 & (coverage["systematic_rel"] == 0)].itertuples()]
    if reason:
        skipped.append((f"STEP forecaster trajectory of {example}", reason))
    if inputs.epochs.empty:
        reason = NO_EPOCHS
        skipped = [("STEP forecaster", reason)]
    return Section(
        tables={"coverage": coverage.round(3),
                f"forecast of {example}": trajectory.dropna(subset=["energy_j"]).head(5)},
        figures=save_and_close(plots.forecast(trajectory, example, reason), dataset,
                               "06-step-forecaster"),
        not_estimable=skipped)


def acceptance_checks(errors: pd.DataFrame, published: pd.DataFrame | None,
                      curve: pd.DataFrame, observed_fraction: float = 0.2) -> Section:
    """:func:`acceptance` of the error rows, the published check (``published`` rows of
    :func:`published_errors`, or None) and the online curve."""
    check = None if published is None else published_check(published)
    return Section(tables={"acceptance": acceptance(errors, check, curve, observed_fraction)})


def write_not_estimable(dataset: str, sections: list[Section]) -> Section:
    """``reports/06-not-estimable.csv``: every analysis of the sections that could not run."""
    return common.write_not_estimable(sections, dataset, "06")
