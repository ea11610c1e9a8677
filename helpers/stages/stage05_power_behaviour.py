"""Stage of notebook 05 (power behaviour): mean power against GPU utilisation, power / power
limit, the idle baseline, the stabilisation point with its sensitivity, and power time series of
chosen runs (docs/methods.md#power-behaviour).

Power is the sample column ``device_power_w`` (W; the component whose energy is the run's
``energy_j``: the GPU where a GPU ran, the CPU for CPU-only runs). Everything but the idle
baseline and the time series covers the training window (docs/methods.md#energy-windows): the
per-run means ``training_*``, and the samples cut to the window with time counted from its start
(:func:`helpers.analysis.window_samples.training_samples`). The stabilisation point is the
two-regime change point of :func:`helpers.analysis.power.stabilisation_points`. Parameters left
at None are derived from the data (:mod:`helpers.analysis.parameters`). Tables go to
``data_outputs/<dataset>/reports/05-*.csv``, the summary to ``05-summary.json``, what could not
be computed to ``05-not-estimable.csv``, figures to ``figures/<dataset>/05-*`` (a panel that
cannot be drawn says why).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq

from helpers.analysis import parameters, power
from helpers.analysis import runs as run_tables
from helpers.analysis.window_samples import (
    training_samples,
    window_sample_counts,
    with_elapsed,
)
from helpers.core import datasets, io
from helpers.core.schema import EPOCH_COLUMNS, RUN_COLUMNS, require_columns
from helpers.plots import power as plots_power
from helpers.plots.style import note_figure
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
        samples: per-sample power of those runs over the whole run
            (:data:`helpers.analysis.power.SAMPLE_COLUMNS` that the profiling table has).
        training: the same samples cut to each run's training window, ``elapsed_s`` counted
            from its start.
        power_col: the sample column holding each run's power (W).
    """

    dataset: str
    runs: pd.DataFrame
    epochs: pd.DataFrame
    samples: pd.DataFrame
    training: pd.DataFrame
    power_col: str
    reports: Path

    @property
    def meta(self) -> pd.DataFrame:
        """Environment, architecture and GPU name by run_id."""
        return self.runs.set_index("run_id")[["environment", "architecture", "gpu_name"]]

    @property
    def has_gpu(self) -> bool:
        """Whether the runs have GPU utilisation and GPU power values."""
        return bool(self.runs["training_gpu_usage_mean"].notna().any()
                    and self.runs["training_gpu_power_mean_w"].notna().any())

    @property
    def has_samples(self) -> bool:
        """Whether the runs have power samples (a per-run source such as CodeCarbon has none)."""
        return bool(len(self.training)) and bool(self.training[self.power_col].notna().any())


#: Why the time-series analyses are not estimable without samples.
NO_SAMPLES = "no power samples (per-run energies only, e.g. CodeCarbon rows)"


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


def _read_samples(dataset: str, runs: pd.DataFrame) -> tuple[pd.DataFrame, str]:
    """The interim power samples of ``runs`` and the power column (an empty table when the
    dataset has no samples)."""
    path = datasets.output_dir(dataset, "interim") / "profiling.parquet"
    present = set(pq.read_schema(path).names) if path.exists() else set()
    columns = [c for c in (*power.SAMPLE_COLUMNS, "timestamp") if c in present]
    raw = (pd.read_parquet(path, columns=columns) if "run_id" in present
           else pd.DataFrame(columns=["run_id", "elapsed_s", "device_power_w"]))
    if "elapsed_s" not in raw and "timestamp" in raw:
        raw = with_elapsed(raw)
    for col in ("elapsed_s", "device_power_w"):
        if col not in raw:
            raw[col] = np.nan
    return power.power_samples(raw.drop(columns=["timestamp"], errors="ignore"), runs)


def load_inputs(dataset: str) -> tuple[PowerInputs, Section]:
    """Read the processed runs and epochs and the interim power samples of ``dataset``, and cut
    the samples to each run's training window; the section counts them and names the power
    column and the windows."""
    processed = datasets.output_dir(dataset, "processed")
    runs = run_tables.with_training_columns(pd.read_parquet(processed / "runs.parquet"))
    require_columns(runs, RUN_COLUMNS, str(processed / "runs.parquet"))
    epochs = _read_epochs(processed / "epochs.parquet", runs["run_id"])
    samples, power_col = _read_samples(dataset, runs)
    values = [c for c in power.VALUE_COLUMNS if c in samples]
    training = training_samples(samples, runs, values)
    data = PowerInputs(dataset, runs, epochs, samples, training, power_col,
                       datasets.output_dir(dataset, "reports"))
    windows = ", ".join(f"{n} runs {w!r}"
                        for w, n in runs["training_window"].value_counts().items())
    notes = [
        f"{len(runs)} runs; {len(epochs)} epoch rows"
        + ("" if len(epochs) else " (no epoch events: per-epoch analyses skipped)"),
        f"{len(samples)} samples of {samples['run_id'].nunique()} runs, {len(training)} in the "
        f"training windows ({windows}); power column {power_col}; GPU values "
        f"{'present' if data.has_gpu else 'absent (CPU-only dataset)'}"]
    return data, Section(notes, headlines={"dataset": dataset, "n_runs": len(runs),
                                           "power_column": power_col})


@dataclass
class PowerParameters:
    """Parameters of notebook 05 (given, or derived from the data)."""

    window: int
    sensitivity_windows: list[int]
    estimate_starts_s: list[float]
    estimate_windows_s: list[float]


def resolve_parameters(data: PowerInputs, window: int | None = None,
                       sensitivity_windows: Sequence[int] | None = None,
                       estimate_starts_s: Sequence[float] | None = None,
                       estimate_windows_s: Sequence[float] | None = None
                       ) -> tuple[PowerParameters, Section]:
    """Each parameter given, or derived from the runs (:mod:`helpers.analysis.parameters`:
    block window from the samples per training window, time grids from its length); the
    section shows the values and how each was obtained."""
    par = parameters.Parameters()
    counts = window_sample_counts(data.training) if len(data.training) else pd.Series(
        dtype=float)
    w = par.set("window", window, parameters.derive_block_window(counts))
    par.set("sensitivity_windows", None if sensitivity_windows is None
            else list(sensitivity_windows),
            (parameters.block_grid(w, (0.5, 1, 2, 3)), f"window {w} x (0.5, 1, 2, 3)"))
    unit, how = parameters.derive_time_unit(data.runs["training_duration_s"])
    par.set("estimate_starts_s", None if estimate_starts_s is None else list(estimate_starts_s),
            (parameters.multiples(unit, parameters.ESTIMATE_STARTS_UNITS),
             f"time unit {unit:g} s ({how}) x {parameters.ESTIMATE_STARTS_UNITS}"))
    par.set("estimate_windows_s",
            None if estimate_windows_s is None else list(estimate_windows_s),
            (parameters.multiples(unit, parameters.ESTIMATE_WINDOWS_UNITS),
             f"time unit {unit:g} s x {parameters.ESTIMATE_WINDOWS_UNITS}"))
    resolved = PowerParameters(**par.values)
    return resolved, Section(tables={"parameters": par.table()},
                             headlines={"parameters": {k: v for k, v in par.values.items()}})


def power_vs_usage(data: PowerInputs) -> Section:
    """Spearman ρ and least-squares fit of mean power (W) against mean GPU utilisation, both
    over the training window, per environment (``05-power-vs-usage.csv``, figure
    ``05-power-vs-usage``)."""
    name = "05-power-vs-usage"
    if not data.has_gpu:
        why = ("no GPU utilisation / GPU power in this dataset (CPU-only runs, or a source "
               "without utilisation)")
        return Section([f"skipped: {why}"], {"fits": pd.DataFrame()},
                       save_and_close(note_figure(f"Mean power vs GPU utilisation: {why}"),
                                      data.dataset, name),
                       not_estimable=[("mean power vs GPU utilisation", why)])
    fits = power.power_vs_usage(data.runs)
    io.write_csv(fits, data.reports / "05-power-vs-usage.csv")
    fig = plots_power.power_vs_usage_figure(data.runs, fits)
    return Section(tables={"fits": fits},
                   figures=save_and_close(fig, data.dataset, name),
                   headlines={"spearman_power_gpu_usage": {
                       str(r.environment): float(r.rho) for r in fits.itertuples()
                       if np.isfinite(r.rho)}},
                   not_estimable=[(f"Spearman rho power vs usage in {r.environment}", r.note)
                                  for r in fits[fits["rho"].isna()].itertuples()])


def _limits_known(data: PowerInputs) -> bool:
    """GPU values, and a positive GPU power limit in some sample."""
    samples = data.training
    return data.has_gpu and {"gpu_power_draw", "gpu_max_power"} <= set(samples.columns) \
        and bool(samples["gpu_max_power"].gt(0).any())


def power_limit_ratio(data: PowerInputs) -> Section:
    """Power / power limit per sample of the training window (``gpu_power_draw /
    gpu_max_power``) and per run (its mean power / limit), per GPU and architecture
    (``05-power-limit-ratio.csv``, figure ``05-power-limit-ratio``); a note without a known
    limit."""
    name = "05-power-limit-ratio"
    if not _limits_known(data):
        why = "no GPU power limit in the samples of this dataset"
        return Section([f"skipped: {why}"],
                       figures=save_and_close(note_figure(f"Power / power limit: {why}"),
                                              data.dataset, name),
                       not_estimable=[("power / power limit", why)])
    samples = data.training.assign(power_limit_ratio=power.power_limit_ratio(
        data.training, "gpu_power_draw", "gpu_max_power"))
    runs = data.runs.assign(power_limit_ratio=power.power_limit_ratio(data.runs))
    ratio = power.power_limit_ratio_table(samples)
    io.write_csv(ratio, data.reports / "05-power-limit-ratio.csv")
    fig = plots_power.power_limit_ratio_figure(samples, runs)
    shown = ratio[["gpu_name", "architecture", "count", "5%", "50%", "95%"]].round(3)
    return Section(tables={"power / limit quantiles": shown},
                   figures=save_and_close(fig, data.dataset, name))


def idle_baseline(data: PowerInputs) -> Section:
    """Idle power (W) per GPU name: samples labelled ``idle`` where phase events exist, else
    samples at zero GPU utilisation (``05-idle-baseline.csv``); over the whole run, since the
    idle lead-in lies before the training window."""
    if not data.has_samples:
        return Section(["skipped: " + NO_SAMPLES], headlines={"idle_baseline_w": {}},
                       not_estimable=[("idle baseline", NO_SAMPLES)])
    idle = power.idle_baseline(data.samples, power=data.power_col)
    io.write_csv(idle, data.reports / "05-idle-baseline.csv")
    found = idle[idle["n_samples"] > 0]
    headline = {str(r.gpu_name): {"idle_power_w": float(r.idle_power_w), "method": r.method,
                                  "n_samples": int(r.n_samples)} for r in found.itertuples()}
    return Section(tables={"idle baseline": idle}, headlines={"idle_baseline_w": headline},
                   not_estimable=[(f"idle baseline of {r.gpu_name}", r.note)
                                  for r in idle[idle["n_samples"] == 0].itertuples()])


def _time_points(data: PowerInputs, window: int) -> tuple[pd.DataFrame, Section]:
    """Stabilisation point (s into the training window) of every run on its power samples
    (``window`` samples per block); ``05-stabilisation-time.csv``."""
    stab = power.stabilisation_points(data.training, value_col=data.power_col, window=window)
    stab = stab.join(data.meta, on="run_id")
    io.write_csv(stab, data.reports / "05-stabilisation-time.csv")
    point, fraction = stab["stabilisation"], stab["fraction"]
    skipped = [(f"stabilisation point of {r.run_id}", r.note)
               for r in stab[stab["stabilisation"].isna()].itertuples()]
    if point.isna().all():
        return stab, Section(["stabilisation on time: no run long enough"],
                             not_estimable=skipped)
    notes = [f"stabilisation (s into the training window), window {window}: median "
             f"{point.median():.0f} s, IQR {point.quantile(0.25):.0f}-"
             f"{point.quantile(0.75):.0f} s; as a fraction of the training window: median "
             f"{fraction.median():.3f}",
             f"notes: {stab['note'].replace('', 'ok').value_counts().to_dict()}"]
    headline = {"window": window, "median": float(point.median()),
                "q1": float(point.quantile(0.25)), "q3": float(point.quantile(0.75)),
                "median_fraction": float(fraction.median())}
    by_group = (stab.groupby(["environment", "architecture"])["stabilisation"]
                .describe()[["count", "25%", "50%", "75%"]])
    return stab, Section(notes, {"stabilisation point (s) by group": by_group},
                         headlines={"stabilisation_s": headline}, not_estimable=skipped)


def _epoch_points(data: PowerInputs, epoch_window: int) -> tuple[pd.DataFrame, Section]:
    """Stabilisation epoch of every run on its per-epoch energies (``epoch_window`` epochs per
    block; ``05-stabilisation-epoch.csv``); skipped with a note without epochs."""
    if not len(data.epochs):
        why = "no epoch events (the published logs have none)"
        return pd.DataFrame(), Section([f"per-epoch stabilisation skipped: {why}"],
                                       not_estimable=[("per-epoch stabilisation", why)])
    stab = power.stabilisation_points(data.epochs, value_col="energy_j", pos_col="epoch",
                                      window=epoch_window, min_size=2)
    stab = stab.join(data.meta, on="run_id")
    io.write_csv(stab, data.reports / "05-stabilisation-epoch.csv")
    skipped = [(f"stabilisation epoch of {r.run_id}", r.note)
               for r in stab[stab["stabilisation"].isna()].itertuples()]
    note = (f"stabilisation epoch: median {stab['stabilisation'].median():.1f}; notes: "
            f"{stab['note'].replace('', 'ok').value_counts().to_dict()}")
    return stab, Section([note], headlines={
        "stabilisation_epoch": {"median": float(stab["stabilisation"].median())}},
        not_estimable=skipped)


def stabilisation(data: PowerInputs, window: int, epoch_window: int = 1
                  ) -> tuple[pd.DataFrame, Section]:
    """Stabilisation point on time (s into the training window) for every run and on per-epoch
    energy where epochs exist, with their box plots (figure ``05-stabilisation``). Returns (the
    per-run points on time, the section)."""
    name = "05-stabilisation"
    if not data.has_samples:
        return (pd.DataFrame(columns=["run_id", "stabilisation"]),
                Section([f"skipped: {NO_SAMPLES}"],
                        figures=save_and_close(note_figure(f"Stabilisation point: {NO_SAMPLES}"),
                                               data.dataset, name),
                        not_estimable=[("stabilisation point", NO_SAMPLES)]))
    stab, on_time = _time_points(data, window)
    stab_epochs, on_epochs = _epoch_points(data, epoch_window)
    fig = plots_power.stabilisation_figure(stab, stab_epochs,
                                           on_epochs.not_estimable[0][1]
                                           if not len(stab_epochs) else "")
    return stab, Section(on_time.notes + on_epochs.notes, on_time.tables,
                         save_and_close(fig, data.dataset, name),
                         {**on_time.headlines, **on_epochs.headlines},
                         on_time.not_estimable + on_epochs.not_estimable)


def timeseries(data: PowerInputs, stab: pd.DataFrame, examples_per_environment: int = 2
               ) -> Section:
    """Power time series of example runs (:func:`helpers.analysis.power.pick_example_runs`)
    over the whole run, the training window marked, with their stabilisation points (figure
    ``05-timeseries``)."""
    name = "05-timeseries"
    if not data.has_samples:
        return Section(figures=save_and_close(note_figure(f"Power time series: {NO_SAMPLES}"),
                                              data.dataset, name),
                       not_estimable=[("power time series", NO_SAMPLES)])
    examples = power.pick_example_runs(data.runs, examples_per_environment)
    runs = data.runs.set_index("run_id")
    start = runs["training_start_s"].fillna(0.0)
    points = stab.set_index("run_id")["stabilisation"] + start.reindex(stab["run_id"]).to_numpy()
    fig = plots_power.timeseries_figure(data.samples, examples, data.power_col, points,
                                        runs[["training_start_s", "training_end_s"]])
    return Section([f"examples: {examples}"], figures=save_and_close(fig, data.dataset, name))


def sensitivity(data: PowerInputs, stab: pd.DataFrame, sensitivity_runs: int,
                windows: Sequence[int], penalties: Sequence[float | None],
                estimate_starts_s: Sequence[float], estimate_windows_s: Sequence[float],
                seed: int = 0) -> Section:
    """On a seeded sample of ``sensitivity_runs`` runs, over their training windows: the
    stabilisation point against the block window and the penalty
    (``05-stabilisation-sensitivity.csv``), and the error (%) of the online power estimate
    against its start s and window w (``05-online-estimate-error.csv``); figure
    ``05-sensitivity``."""
    name = "05-sensitivity"
    if not data.has_samples:
        return Section(figures=save_and_close(note_figure(f"Sensitivity: {NO_SAMPLES}"),
                                              data.dataset, name),
                       headlines={LONG_SUMMARY_KEY: {}},
                       not_estimable=[("stabilisation and online-estimate sensitivity",
                                       NO_SAMPLES)])
    rng = np.random.default_rng(seed)
    ids = data.runs["run_id"].to_numpy()
    chosen = rng.choice(ids, size=min(sensitivity_runs, len(ids)), replace=False)
    samples = data.training[data.training["run_id"].isin(chosen)]
    sens = power.stabilisation_sensitivity(samples, windows, penalties,
                                           value_col=data.power_col)
    io.write_csv(sens, data.reports / "05-stabilisation-sensitivity.csv")
    errors = power.estimate_error_grid(samples, data.runs, estimate_starts_s,
                                       estimate_windows_s, power_col=data.power_col)
    io.write_csv(errors, data.reports / "05-online-estimate-error.csv")
    err_table = power.error_table(errors)
    median = stab["stabilisation"].median() if len(stab) else np.nan
    fig, has_estimate = plots_power.sensitivity_figure(sens, err_table, median)
    skipped = [] if has_estimate else [
        ("online power estimate error", "every start s + window w runs past the training "
         "windows; set estimate_starts_s / estimate_windows_s")]
    if sens["stabilisation"].isna().all():
        skipped.append(("stabilisation sensitivity", "every run too short for every window"))
    headline = {f"start={s:g},window={w:g}": float(v)
                for (s, w), v in err_table.stack().items()}
    return Section(
        [],
        {"median stabilisation point (s): window (rows) x penalty (columns; -1 = none)":
             power.sensitivity_table(sens).round(0),
         "median |error| (%) of the online estimate: start s (rows) x window w (columns)":
             err_table.round(2)},
        save_and_close(fig, data.dataset, name),
        {LONG_SUMMARY_KEY: headline}, skipped)


def write_summary(data: PowerInputs, sections: list[Section]) -> Section:
    """Write the headline numbers of ``sections`` (in order) to ``05-summary.json``; the section
    prints them, but for the long online-estimate grid."""
    summary = common.merge_headlines(sections)
    io.write_json(summary, data.reports / "05-summary.json")
    shown = {k: v for k, v in summary.items() if k != LONG_SUMMARY_KEY}
    return Section([json.dumps(shown, indent=1, default=str)])


def write_not_estimable(data: PowerInputs, sections: list[Section]) -> Section:
    """``reports/05-not-estimable.csv``: every analysis of the sections that could not run."""
    return common.write_not_estimable(sections, data.dataset, "05")
