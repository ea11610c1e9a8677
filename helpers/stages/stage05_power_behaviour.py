"""Stage of notebook 05 (power behaviour): mean power against GPU utilisation, power / power
limit, the idle baseline, the stabilisation point with its sensitivity, and power time series of
chosen runs (docs/methods.md#power-behaviour).

Power is the sample column ``device_power_w`` (W; the component whose energy is the run's
``energy_j``: the GPU where a GPU ran, the CPU for CPU-only runs). GPU-only parts are skipped
with a note when the dataset has no GPU values. The stabilisation point is the two-regime change
point of :func:`helpers.analysis.power.stabilisation_points`. Tables go to
``data_outputs/<dataset>/reports/05-*.csv``, the summary to ``05-summary.json``, figures to
``figures/<dataset>/05-*``.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq

from helpers.analysis import power
from helpers.core import datasets, io
from helpers.core.schema import EPOCH_COLUMNS, RUN_COLUMNS, require_columns
from helpers.plots import power as plots_power
from helpers.stages import common
from helpers.stages.common import Section, save_and_close

#: Summary key left out of the printed summary (a long grid; it is in ``05-summary.json``).
LONG_SUMMARY_KEY = "online_estimate_median_abs_error_pct"


@dataclass
class PowerInputs:
    """The cleaned runs, their epochs and power samples, and where the reports go.

    Attributes:
        runs: processed runs (RUN_COLUMNS).
        epochs: per-epoch energies of those runs (EPOCH_COLUMNS); empty without epoch events.
        samples: per-sample power of those runs (:data:`helpers.analysis.power.SAMPLE_COLUMNS`
            that the profiling table has).
        power_col: the sample column holding each run's power (W).
    """

    dataset: str
    runs: pd.DataFrame
    epochs: pd.DataFrame
    samples: pd.DataFrame
    power_col: str
    reports: Path

    @property
    def meta(self) -> pd.DataFrame:
        """Environment, architecture and GPU name by run_id."""
        return self.runs.set_index("run_id")[["environment", "architecture", "gpu_name"]]

    @property
    def has_gpu(self) -> bool:
        """Whether the runs have GPU utilisation and GPU power values."""
        return bool(self.runs["gpu_usage_mean"].notna().any()
                    and self.runs["gpu_power_mean_w"].notna().any())


def setup_display() -> None:
    """Figure style and pandas display options of notebook 05."""
    common.setup_display(max_columns=30, precision=4)


def _read_epochs(path: Path, run_ids: pd.Series) -> pd.DataFrame:
    """``epochs.parquet`` restricted to ``run_ids`` (checked against EPOCH_COLUMNS); an empty
    frame when the file is absent or empty."""
    epochs = pd.read_parquet(path) if path.exists() else pd.DataFrame()
    if len(epochs):
        require_columns(epochs, EPOCH_COLUMNS, str(path))
        epochs = epochs[epochs["run_id"].isin(run_ids)]
    return epochs


def load_inputs(dataset: str) -> tuple[PowerInputs, Section]:
    """Read the processed runs and epochs and the interim power samples of ``dataset``; the
    section counts them and names the power column."""
    processed = datasets.output_dir(dataset, "processed")
    runs = pd.read_parquet(processed / "runs.parquet")
    require_columns(runs, RUN_COLUMNS, str(processed / "runs.parquet"))
    epochs = _read_epochs(processed / "epochs.parquet", runs["run_id"])
    samples_path = datasets.output_dir(dataset, "interim") / "profiling.parquet"
    present = set(pq.read_schema(samples_path).names)
    samples, power_col = power.power_samples(
        pd.read_parquet(samples_path, columns=[c for c in power.SAMPLE_COLUMNS if c in present]),
        runs)
    data = PowerInputs(dataset, runs, epochs, samples, power_col,
                       datasets.output_dir(dataset, "reports"))
    notes = [
        f"{len(runs)} runs; {len(epochs)} epoch rows"
        + ("" if len(epochs) else " (no epoch events: per-epoch analyses skipped)"),
        f"{len(samples)} samples of {samples['run_id'].nunique()} runs; power column "
        f"{power_col}; GPU values "
        f"{'present' if data.has_gpu else 'absent (CPU-only dataset)'}"]
    return data, Section(notes, headlines={"dataset": dataset, "n_runs": len(runs),
                                           "power_column": power_col})


def power_vs_usage(data: PowerInputs) -> Section:
    """Spearman ρ and least-squares fit of mean power (W) against mean GPU utilisation per
    environment (``05-power-vs-usage.csv``, figure ``05-power-vs-usage``)."""
    if not data.has_gpu:
        return Section(["skipped: no GPU utilisation / GPU power in this dataset (CPU-only runs)"],
                       {"fits": pd.DataFrame()})
    fits = power.power_vs_usage(data.runs)
    io.write_csv(fits, data.reports / "05-power-vs-usage.csv")
    fig = plots_power.power_vs_usage_figure(data.runs, fits)
    return Section(tables={"fits": fits},
                   figures=save_and_close(fig, data.dataset, "05-power-vs-usage"),
                   headlines={"spearman_power_gpu_usage": {
                       str(r.environment): float(r.rho) for r in fits.itertuples()}})


def _limits_known(data: PowerInputs) -> bool:
    """GPU values, and a positive GPU power limit in some sample."""
    samples = data.samples
    return data.has_gpu and {"gpu_power_draw", "gpu_max_power"} <= set(samples.columns) \
        and bool(samples["gpu_max_power"].gt(0).any())


def power_limit_ratio(data: PowerInputs) -> Section:
    """Power / power limit per sample (``gpu_power_draw / gpu_max_power``) and per run (mean
    power / limit), per GPU and architecture (``05-power-limit-ratio.csv``, figure
    ``05-power-limit-ratio``); skipped with a note without a known limit."""
    if not _limits_known(data):
        return Section(["skipped: no GPU power limit in this dataset"])
    samples = data.samples.assign(power_limit_ratio=power.power_limit_ratio(
        data.samples, "gpu_power_draw", "gpu_max_power"))
    runs = data.runs.assign(power_limit_ratio=power.power_limit_ratio(data.runs))
    ratio = power.power_limit_ratio_table(samples)
    io.write_csv(ratio, data.reports / "05-power-limit-ratio.csv")
    fig = plots_power.power_limit_ratio_figure(samples, runs)
    shown = ratio[["gpu_name", "architecture", "count", "5%", "50%", "95%"]].round(3)
    return Section(tables={"power / limit quantiles": shown},
                   figures=save_and_close(fig, data.dataset, "05-power-limit-ratio"))


def idle_baseline(data: PowerInputs) -> Section:
    """Idle power (W) per GPU name: samples labelled ``idle`` where phase events exist, else
    samples at zero GPU utilisation (``05-idle-baseline.csv``)."""
    idle = power.idle_baseline(data.samples, power=data.power_col)
    io.write_csv(idle, data.reports / "05-idle-baseline.csv")
    headline = {str(r.gpu_name): {"idle_power_w": float(r.idle_power_w), "method": r.method,
                                  "n_samples": int(r.n_samples)} for r in idle.itertuples()}
    return Section(tables={"idle baseline": idle}, headlines={"idle_baseline_w": headline})


def _time_points(data: PowerInputs, window: int) -> tuple[pd.DataFrame, Section]:
    """Stabilisation point (s) of every run on its power samples (``window`` samples per
    block); ``05-stabilisation-time.csv``."""
    stab = power.stabilisation_points(data.samples, value_col=data.power_col, window=window)
    stab = stab.join(data.meta, on="run_id")
    io.write_csv(stab, data.reports / "05-stabilisation-time.csv")
    point, fraction = stab["stabilisation"], stab["fraction"]
    notes = [f"stabilisation (s), window {window}: median {point.median():.0f} s, "
             f"IQR {point.quantile(0.25):.0f}-{point.quantile(0.75):.0f} s; as a fraction of "
             f"the run: median {fraction.median():.3f}",
             f"notes: {stab['note'].replace('', 'ok').value_counts().to_dict()}"]
    headline = {"window": window, "median": float(point.median()),
                "q1": float(point.quantile(0.25)), "q3": float(point.quantile(0.75)),
                "median_fraction": float(fraction.median())}
    by_group = (stab.groupby(["environment", "architecture"])["stabilisation"]
                .describe()[["count", "25%", "50%", "75%"]])
    return stab, Section(notes, {"stabilisation point (s) by group": by_group},
                         headlines={"stabilisation_s": headline})


def _epoch_points(data: PowerInputs, epoch_window: int) -> tuple[pd.DataFrame, Section]:
    """Stabilisation epoch of every run on its per-epoch energies (``epoch_window`` epochs per
    block; ``05-stabilisation-epoch.csv``); skipped with a note without epochs."""
    if not len(data.epochs):
        return pd.DataFrame(), Section(["per-epoch stabilisation skipped: no epoch table (the "
                                        "published logs have no epochs)"])
    stab = power.stabilisation_points(data.epochs, value_col="energy_j", pos_col="epoch",
                                      window=epoch_window, min_size=2)
    stab = stab.join(data.meta, on="run_id")
    io.write_csv(stab, data.reports / "05-stabilisation-epoch.csv")
    note = (f"stabilisation epoch: median {stab['stabilisation'].median():.1f}; notes: "
            f"{stab['note'].replace('', 'ok').value_counts().to_dict()}")
    return stab, Section([note], headlines={
        "stabilisation_epoch": {"median": float(stab["stabilisation"].median())}})


def stabilisation(data: PowerInputs, window: int = 10, epoch_window: int = 1
                  ) -> tuple[pd.DataFrame, Section]:
    """Stabilisation point on time for every run and on per-epoch energy where epochs exist,
    with their box plots (figure ``05-stabilisation``). Returns (the per-run points on time,
    the section)."""
    stab, on_time = _time_points(data, window)
    stab_epochs, on_epochs = _epoch_points(data, epoch_window)
    fig = plots_power.stabilisation_figure(stab, stab_epochs)
    return stab, Section(on_time.notes + on_epochs.notes, on_time.tables,
                         save_and_close(fig, data.dataset, "05-stabilisation"),
                         {**on_time.headlines, **on_epochs.headlines})


def timeseries(data: PowerInputs, stab: pd.DataFrame, examples_per_environment: int = 2
               ) -> Section:
    """Power time series of example runs (:func:`helpers.analysis.power.pick_example_runs`) with
    their stabilisation points (figure ``05-timeseries``)."""
    examples = power.pick_example_runs(data.runs, examples_per_environment)
    fig = plots_power.timeseries_figure(data.samples, examples, data.power_col,
                                        stab.set_index("run_id")["stabilisation"])
    return Section([f"examples: {examples}"],
                   figures=save_and_close(fig, data.dataset, "05-timeseries"))


def sensitivity(data: PowerInputs, stab: pd.DataFrame, sensitivity_runs: int,
                windows: Sequence[int], penalties: Sequence[float | None],
                estimate_starts_s: Sequence[float], estimate_windows_s: Sequence[float],
                seed: int = 0) -> Section:
    """On a seeded sample of ``sensitivity_runs`` runs: the stabilisation point against the
    block window and the penalty (``05-stabilisation-sensitivity.csv``), and the error (%) of the
    online power estimate against its start s and window w (``05-online-estimate-error.csv``);
    figure ``05-sensitivity``."""
    rng = np.random.default_rng(seed)
    ids = data.runs["run_id"].to_numpy()
    chosen = rng.choice(ids, size=min(sensitivity_runs, len(ids)), replace=False)
    samples = data.samples[data.samples["run_id"].isin(chosen)]
    sens = power.stabilisation_sensitivity(samples, windows, penalties,
                                           value_col=data.power_col)
    io.write_csv(sens, data.reports / "05-stabilisation-sensitivity.csv")
    errors = power.estimate_error_grid(samples, data.runs, estimate_starts_s,
                                       estimate_windows_s, power_col=data.power_col)
    io.write_csv(errors, data.reports / "05-online-estimate-error.csv")
    err_table = power.error_table(errors)
    fig, has_estimate = plots_power.sensitivity_figure(sens, err_table,
                                                       stab["stabilisation"].median())
    notes = [] if has_estimate else [
        "no online estimate: every start s is beyond the runs; set estimate_starts_s"]
    headline = {f"start={int(s)},window={int(w)}": float(v)
                for (s, w), v in err_table.stack().items()}
    return Section(
        notes,
        {"median stabilisation point (s): window (rows) x penalty (columns; -1 = none)":
             power.sensitivity_table(sens).round(0),
         "median |error| (%) of the online estimate: start s (rows) x window w (columns)":
             err_table.round(2)},
        save_and_close(fig, data.dataset, "05-sensitivity"),
        {LONG_SUMMARY_KEY: headline})


def write_summary(data: PowerInputs, sections: list[Section]) -> Section:
    """Write the headline numbers of ``sections`` (in order) to ``05-summary.json``; the section
    prints them, but for the long online-estimate grid."""
    summary = common.merge_headlines(sections)
    io.write_json(summary, data.reports / "05-summary.json")
    shown = {k: v for k, v in summary.items() if k != LONG_SUMMARY_KEY}
    return Section([json.dumps(shown, indent=1, default=str)])
