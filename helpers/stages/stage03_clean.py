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

from helpers.analysis import runs
from helpers.analysis.clean import CleaningLedger, clean_runs
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


def build_run_table(interim: MergeOutputs, dataset: str,
                    carbon_intensity_g_per_kwh: float = units.DEFAULT_CARBON_INTENSITY_G_PER_KWH,
                    ) -> pd.DataFrame:
    """Per-run energies (J) and statistics joined with the run index (RUN_COLUMNS + extras)."""
    samples = _timed_samples(interim.profiling)
    idx = interim.run_index
    methods = dict(zip(idx["run_id"], idx["cpu_energy_method"], strict=True)) \
        if "cpu_energy_method" in idx else None
    summary = runs.summarise_runs(samples, methods)
    coverage = samples["cpu_match_gap_s"].notna().groupby(samples["run_id"]).mean() \
        if "cpu_match_gap_s" in samples else samples.groupby("run_id")["memory_usage"].apply(
            lambda s: s.notna().mean())
    table = idx.drop(columns=[c for c in ("cpu_energy_method",) if c in idx]).merge(
        summary, on="run_id", how="left", validate="one_to_one")
    table["n_samples"] = table["n_samples"].fillna(0).astype("int64")
    table["ram_coverage"] = table["run_id"].map(coverage).astype("float64")
    gpu_names = samples.groupby("run_id")["gpu_name"].first()
    table["gpu_name"] = table["run_id"].map(gpu_names).fillna("none")
    table["dataset"] = dataset
    table["energy_kwh"] = energy.j_to_kwh(table["energy_j"])
    table["carbon_intensity_g_per_kwh"] = carbon_intensity_g_per_kwh
    table["emissions_g"] = energy.emissions_g(table["energy_j"], carbon_intensity_g_per_kwh)
    for col in ("batch_size", "gflops", "params", "train_size", "epochs", "images_seen",
                "accuracy", "f1"):
        if col not in table:
            table[col] = np.nan
    table["energy_per_image_j"] = table["energy_j"] / table["images_seen"]
    table["time_per_image_s"] = table["duration_s"] / table["images_seen"]
    return _contract_first(table)


def _contract_first(table: pd.DataFrame) -> pd.DataFrame:
    """Columns of RUN_COLUMNS first, in contract order, then the extras."""
    first = [c for c in RUN_COLUMNS if c in table.columns]
    return table[first + [c for c in table.columns if c not in first]]


def clean_dataset(interim: MergeOutputs, dataset: str, min_epochs: int = 20,
                  contamination: float | None = 0.1, seed: int = 0,
                  carbon_intensity_g_per_kwh: float = units.DEFAULT_CARBON_INTENSITY_G_PER_KWH,
                  min_ram_coverage: float = 0.9) -> CleanOutputs:
    """The clean stage: per-run table, cleaning with a ledger, per-epoch table."""
    table = build_run_table(interim, dataset, carbon_intensity_g_per_kwh)
    kept, ledger = clean_runs(table, min_epochs, contamination, seed, min_ram_coverage)
    epochs = runs.epoch_table(_timed_samples(interim.profiling), interim.events)
    epochs.insert(0, "dataset", dataset)
    table, kept = (add_training_energy(t, epochs) for t in (table, kept))
    return CleanOutputs(table, kept, epochs, ledger)


def add_training_energy(table: pd.DataFrame, epochs: pd.DataFrame) -> pd.DataFrame:
    """Add ``training_energy_j`` and ``training_duration_s``: energy and duration of the training
    epochs (sums over the epochs, which tile first epoch start to last epoch end) where epoch
    events exist, else the run's ``energy_j`` / ``duration_s`` (published logs cover training
    only); ``training_energy_scope`` says
    which. Epoch-based estimators (Carbontracker, STEP) target this, not the idle baseline."""
    per_run = epochs.groupby("run_id")[["energy_j", "duration_s"]].sum(min_count=1)
    out = table.copy()
    from_epochs = out["run_id"].map(per_run["energy_j"])
    out["training_energy_j"] = from_epochs.fillna(out["energy_j"]).astype("float64")
    out["training_duration_s"] = out["run_id"].map(per_run["duration_s"]).where(
        from_epochs.notna()).fillna(out["duration_s"]).astype("float64")
    out["training_energy_scope"] = np.where(from_epochs.notna(), "epochs", "whole run")
    return _contract_first(out)


# --------------------------------------------------------------------------------------------
# Notebook sections
# --------------------------------------------------------------------------------------------

def setup_display() -> None:
    """Figure style and pandas display options of notebook 03."""
    common.setup_display()


def clean_and_write(dataset: str, min_epochs: int = 20, contamination: float = 0.1,
                    seed: int = 0,
                    carbon_intensity_g_per_kwh: float = units.DEFAULT_CARBON_INTENSITY_G_PER_KWH,
                    min_ram_coverage: float = 0.9) -> tuple[CleanOutputs, Section]:
    """Read the interim tables, clean them (:func:`clean_dataset`; ``contamination`` 0 turns
    the outlier step off) and write the processed tables; the section lists the files."""
    cleaned = clean_dataset(
        read_interim(dataset), dataset, min_epochs=min_epochs,
        contamination=contamination or None, seed=seed,
        carbon_intensity_g_per_kwh=carbon_intensity_g_per_kwh,
        min_ram_coverage=min_ram_coverage,
    )
    return cleaned, Section(wrote(cleaned.write(dataset)))


def cleaning_steps(cleaned: CleanOutputs, dataset: str) -> Section:
    """Runs in, removed and out per cleaning step, every removed run with its reason, and the
    cleaning funnel figure (``03-cleaning-funnel``)."""
    steps = cleaned.ledger.steps_table()
    return Section(
        tables={"cleaning steps": steps, "removed runs": cleaned.ledger.removed_table()},
        figures=save_and_close(plots_clean.funnel(steps), dataset, "03-cleaning-funnel"))


def energy_by_group(cleaned: CleanOutputs, dataset: str) -> Section:
    """Medians of duration, energy, energy per image and F1 per (environment, architecture) of
    the kept runs, and their energy box plot (``03-energy-by-architecture-environment``)."""
    fig = plots_clean.energy_by_group(cleaned.runs)
    return Section(tables={"medians": plots_clean.energy_summary(cleaned.runs)},
                   figures=save_and_close(fig, dataset, "03-energy-by-architecture-environment"))
