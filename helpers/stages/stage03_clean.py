"""Stage of notebook 03 (clean): per-run energies, model metrics and emissions, the cleaning
sequence with a reason for every removed run, and per-epoch energies (docs/methods.md#energy,
docs/methods.md#cleaning).

Reads the interim tables of notebook 02. Processed outputs (``data_outputs/<dataset>/
processed/``): ``runs.parquet`` (kept runs), ``all_runs.parquet`` (every run, before cleaning),
``epochs.parquet``, ``cleaning_steps.csv``, ``removed_runs.csv``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from helpers.analysis import clean, runs
from helpers.analysis.clean import CleaningLedger, NoRunsLeftError, clean_runs
from helpers.core import datasets, energy, io, units
from helpers.core.schema import RUN_COLUMNS
from helpers.plots import clean as plots_clean
from helpers.readers.merge import MergeOutputs
from helpers.stages import common
from helpers.stages.common import Section, save_and_close, wrote
from helpers.stages.stage02_merge import read_interim


@dataclass
class CleanOutputs:
    """Per-run table (all runs, before cleaning), kept runs, epochs and the ledger."""

    all_runs: pd.DataFrame
    runs: pd.DataFrame
    epochs: pd.DataFrame
    ledger: CleaningLedger

    def write(self, dataset: str) -> dict[str, Path]:
        """Write processed tables atomically under ``data_outputs/<dataset>/processed``."""
        d = datasets.output_dir(dataset, "processed")
        return {
            "runs": io.write_parquet(self.runs, d / "runs.parquet"),
            "all_runs": io.write_parquet(self.all_runs, d / "all_runs.parquet"),
            "epochs": io.write_parquet(self.epochs, d / "epochs.parquet"),
            "steps": io.write_csv(self.ledger.steps_table(), d / "cleaning_steps.csv"),
            "removed": io.write_csv(self.ledger.removed_table(), d / "removed_runs.csv"),
        }


def _timed_samples(profiling: pd.DataFrame) -> pd.DataFrame:
    """The profiling samples with tz-aware ``time_utc`` (derived from ``timestamp`` ms if the
    column is absent)."""
    if "time_utc" in profiling:
        return profiling
    return profiling.assign(time_utc=pd.to_datetime(profiling["timestamp"], unit="ms", utc=True))


#: Per-run columns that a source without samples (CodeCarbon rows) may carry in its run index.
_PER_RUN_COLUMNS = [c for c in RUN_COLUMNS if c not in {"dataset", "run_id", "environment",
                                                       "environment_name", "architecture",
                                                       "run"}]
#: Model metrics a run table always has (NaN where the source does not give them).
_METRIC_COLUMNS = ("batch_size", "gflops", "params", "train_size", "epochs", "images_seen",
                   "accuracy", "f1")


def _ram_coverage(samples: pd.DataFrame) -> pd.Series:
    """Share of a run's samples with a RAM reading (a matched host sample), by run_id."""
    if samples.empty:
        return pd.Series(dtype="float64")
    if "cpu_match_gap_s" in samples:
        has = samples["cpu_match_gap_s"].notna()
    elif "memory_usage" in samples:
        has = samples["memory_usage"].notna()
    else:
        has = pd.Series(False, index=samples.index)
    return has.groupby(samples["run_id"]).mean()


def _with_whole_run_training(table: pd.DataFrame) -> pd.DataFrame:
    """Runs without samples (per-run sources): training window = the whole run."""
    out = table.copy()
    whole = out["training_window"].isna() if "training_window" in out \
        else pd.Series(True, index=out.index)
    for run_col, train_col in (("duration_s", "training_duration_s"),
                               ("energy_j", "training_energy_j"),
                               ("energy_source", "training_energy_source"),
                               *((k, f"training_{k}") for k in runs.WINDOW_STATS)):
        base = out[train_col] if train_col in out else pd.Series(np.nan, index=out.index)
        out[train_col] = base.mask(whole, out[run_col])
    for col in ("device_power_mean_w", "training_device_power_mean_w"):
        if col not in out:
            out[col] = np.nan
    out["device_power_mean_w"] = out["device_power_mean_w"].fillna(
        out["energy_j"] / out["duration_s"])
    out["training_device_power_mean_w"] = out["training_device_power_mean_w"].where(
        ~whole, out["device_power_mean_w"])
    out.loc[whole, "training_window"] = runs.WHOLE_RUN
    out.loc[whole, "training_energy_scope"] = "whole run"
    return out


def build_run_table(interim: MergeOutputs, dataset: str,
                    carbon_intensity_g_per_kwh: float = units.DEFAULT_CARBON_INTENSITY_G_PER_KWH,
                    ) -> pd.DataFrame:
    """Per-run energies (J) and statistics, over the run and the training window, joined with
    the run index (RUN_COLUMNS + extras). Runs without samples keep the per-run values their
    source wrote into the run index (CodeCarbon rows); their training window is the run."""
    samples = _timed_samples(interim.profiling)
    idx = interim.run_index
    methods = dict(zip(idx["run_id"], idx["cpu_energy_method"], strict=True)) \
        if "cpu_energy_method" in idx else None
    summary = runs.summarise_runs(samples, methods, interim.events) if len(samples) \
        else pd.DataFrame({"run_id": pd.Series(dtype=object)})
    given = idx.drop(columns=[c for c in ("cpu_energy_method",) if c in idx and len(samples)])
    table = given.merge(summary, on="run_id", how="left", validate="one_to_one",
                        suffixes=("_given", ""))
    for col in [c for c in table.columns if c.endswith("_given")]:
        name = col.removesuffix("_given")
        table[name] = table[name].where(table[name].notna(), table[col])
        table = table.drop(columns=col)
    table["n_samples"] = table["n_samples"].fillna(0).astype("int64") \
        if "n_samples" in table else 0
    table["ram_coverage"] = table["run_id"].map(_ram_coverage(samples)).astype("float64")
    names = samples.groupby("run_id")["gpu_name"].first() \
        if "gpu_name" in samples and len(samples) else pd.Series(dtype=object)
    given = (table["gpu_name"] if "gpu_name" in table
             else pd.Series(None, index=table.index, dtype=object)).astype(object)
    table["gpu_name"] = table["run_id"].map(names).astype(object).where(
        table["run_id"].isin(names.index), given).fillna("none").astype(str)
    for col in (*_PER_RUN_COLUMNS, *_METRIC_COLUMNS):
        if col not in table:
            table[col] = np.nan
    table = _with_whole_run_training(table)
    table["dataset"] = dataset
    table["energy_kwh"] = energy.j_to_kwh(table["energy_j"])
    table["carbon_intensity_g_per_kwh"] = table["carbon_intensity_g_per_kwh"].astype(
        "float64").fillna(carbon_intensity_g_per_kwh)
    table["emissions_g"] = energy.emissions_g(table["energy_j"],
                                              table["carbon_intensity_g_per_kwh"])
    table["model_metrics_missing"] = clean.model_metrics_missing(table)
    return add_per_image(table)


def add_per_image(table: pd.DataFrame) -> pd.DataFrame:
    """``energy_per_image_j`` and ``time_per_image_s``: the training window's energy and
    duration per training image seen (NaN where images_seen is unknown)."""
    images = pd.to_numeric(table["images_seen"], errors="coerce").astype(float)
    images = images.where(images > 0)
    out = table.assign(energy_per_image_j=table["training_energy_j"] / images,
                       time_per_image_s=table["training_duration_s"] / images)
    return _contract_first(out)


def _contract_first(table: pd.DataFrame) -> pd.DataFrame:
    """Columns of RUN_COLUMNS first, in contract order, then the extras."""
    first = [c for c in RUN_COLUMNS if c in table.columns]
    return table[first + [c for c in table.columns if c not in first]]


def fill_epochs_from_events(table: pd.DataFrame, epochs: pd.DataFrame) -> pd.DataFrame:
    """Runs whose source gives no epoch count take the number of epochs in their epoch events
    (and ``images_seen`` = epochs × ``train_size`` where that is known)."""
    counted = epochs.groupby("run_id")["epoch"].nunique() if len(epochs) else pd.Series(
        dtype=float)
    out = table.copy()
    missing = out["epochs"].isna() & out["run_id"].isin(counted.index)
    if not missing.any():
        return out
    out["epochs"] = out["epochs"].astype("float64")
    out.loc[missing, "epochs"] = out.loc[missing, "run_id"].map(counted).astype(float)
    seen = out["epochs"] * pd.to_numeric(out["train_size"], errors="coerce")
    out["images_seen"] = pd.to_numeric(out["images_seen"], errors="coerce").fillna(seen)
    return add_per_image(out)


def clean_dataset(interim: MergeOutputs, dataset: str, min_epochs: int | None = None,
                  contamination: float | None = 0.1, seed: int = 0,
                  carbon_intensity_g_per_kwh: float = units.DEFAULT_CARBON_INTENSITY_G_PER_KWH,
                  min_ram_coverage: float = 0.9) -> CleanOutputs:
    """The clean stage: per-run table, per-epoch table, cleaning with a ledger. ``min_epochs``
    None derives it from the data (docs/methods.md#cleaning). Raises
    :class:`helpers.analysis.clean.NoRunsLeftError` when a step leaves no run; its ``ledger``
    and ``all_runs`` attributes keep what was computed."""
    table = build_run_table(interim, dataset, carbon_intensity_g_per_kwh)
    sources = dict(zip(table["run_id"], table["energy_source"].astype(str), strict=True))
    methods = dict(zip(interim.run_index["run_id"], interim.run_index["cpu_energy_method"],
                       strict=True)) if "cpu_energy_method" in interim.run_index else None
    epochs = runs.epoch_table(_timed_samples(interim.profiling), interim.events, sources,
                              methods)
    epochs.insert(0, "dataset", dataset)
    table = fill_epochs_from_events(table, epochs)
    try:
        kept, ledger = clean_runs(table, min_epochs, contamination, seed, min_ram_coverage)
    except NoRunsLeftError as err:
        err.all_runs = table
        raise
    return CleanOutputs(table, kept, epochs, ledger)


# --------------------------------------------------------------------------------------------
# Notebook sections
# --------------------------------------------------------------------------------------------

def setup_display() -> None:
    """Figure style and pandas display options of notebook 03."""
    common.setup_display()


def _write_partial(err: NoRunsLeftError, dataset: str) -> None:
    """Write what a cleaning that left no run computed (every run and the ledger so far)."""
    d = datasets.output_dir(dataset, "processed")
    io.write_parquet(err.all_runs, d / "all_runs.parquet")
    io.write_csv(err.ledger.steps_table(), d / "cleaning_steps.csv")
    io.write_csv(err.ledger.removed_table(), d / "removed_runs.csv")


def _not_estimable(cleaned: CleanOutputs) -> list[tuple[str, str]]:
    """What the clean stage could not compute on this dataset, with the reason."""
    kept, out = cleaned.runs, []
    if cleaned.epochs.empty:
        out.append(("per-epoch energies (epochs.parquet)", "no run has epoch events"))
    no_images = kept["energy_per_image_j"].isna()
    if no_images.any():
        out.append(("energy and time per image", f"{int(no_images.sum())} of {len(kept)} runs "
                    "have no images_seen (epochs x training-set size unknown)"))
    for method_col, what in (("gpu_energy_method", "GPU energy"),
                             ("ram_energy_method", "RAM energy")):
        unmeasured = kept[method_col].astype(str).str.startswith("unmeasured")
        if unmeasured.all():
            reasons = kept[method_col].astype(str).str.removeprefix("unmeasured: ").unique()
            out.append((what, "; ".join(sorted(reasons))))
    steps = cleaned.ledger.steps_table()
    for r in steps[steps["note"].str.startswith("skipped: ")].itertuples():
        out.append((f"cleaning step: {r.step}", r.note.removeprefix("skipped: ")))
    return out


def clean_and_write(dataset: str, min_epochs: int | None = None, contamination: float = 0.1,
                    seed: int = 0,
                    carbon_intensity_g_per_kwh: float = units.DEFAULT_CARBON_INTENSITY_G_PER_KWH,
                    min_ram_coverage: float = 0.9) -> tuple[CleanOutputs, Section]:
    """Read the interim tables, clean them (:func:`clean_dataset`; ``min_epochs`` None derives
    it from the data, ``contamination`` 0 turns the outlier step off) and write the processed
    tables; the section lists the files and what could not be computed. A step that leaves no
    run writes every run and the ledger so far, then stops with its error."""
    try:
        cleaned = clean_dataset(
            read_interim(dataset), dataset, min_epochs=min_epochs,
            contamination=contamination or None, seed=seed,
            carbon_intensity_g_per_kwh=carbon_intensity_g_per_kwh,
            min_ram_coverage=min_ram_coverage,
        )
    except NoRunsLeftError as err:
        _write_partial(err, dataset)
        raise
    return cleaned, Section(wrote(cleaned.write(dataset)),
                            not_estimable=_not_estimable(cleaned))


def energy_windows(cleaned: CleanOutputs) -> Section:
    """The two windows of every kept run (docs/methods.md#energy-windows): run and training
    duration (s) and energy (J), the training share of the run energy, and the window used."""
    r = cleaned.runs
    table = pd.DataFrame({
        "run_id": r["run_id"], "duration_s": r["duration_s"],
        "training_duration_s": r["training_duration_s"], "energy_j": r["energy_j"],
        "training_energy_j": r["training_energy_j"],
        "training_share_pct": 100 * r["training_energy_j"] / r["energy_j"],
        "training_window": r["training_window"]})
    counts = r["training_window"].value_counts()
    notes = [f"training window: {n} runs {label!r}" for label, n in counts.items()]
    return Section(notes, {"run and training windows": table.round(3)})


def cleaning_steps(cleaned: CleanOutputs, dataset: str) -> Section:
    """Runs in, removed and out per cleaning step (with the note of a skipped step), every
    removed run with its reason, and the cleaning funnel figure (``03-cleaning-funnel``)."""
    steps = cleaned.ledger.steps_table()
    return Section(
        tables={"cleaning steps": steps, "removed runs": cleaned.ledger.removed_table()},
        figures=save_and_close(plots_clean.funnel(steps), dataset, "03-cleaning-funnel"))


def energy_by_group(cleaned: CleanOutputs, dataset: str) -> Section:
    """Medians of duration, energy (run and training window), energy per image and F1 per
    (environment, architecture) of the kept runs, and their training-energy box plot
    (``03-energy-by-architecture-environment``)."""
    fig = plots_clean.energy_by_group(cleaned.runs)
    return Section(tables={"medians": plots_clean.energy_summary(cleaned.runs)},
                   figures=save_and_close(fig, dataset, "03-energy-by-architecture-environment"))


def write_not_estimable(sections: list[Section], dataset: str) -> Section:
    """``reports/03-not-estimable.csv``: every analysis of the sections that could not run."""
    return common.write_not_estimable(sections, dataset, "03")
