"""Stage functions called by notebooks 02 (merge) and 03 (clean), one per raw format.

Interim outputs (``data_outputs/<dataset>/interim/``): ``profiling.parquet`` (samples in the
DL Training Profiling Dataset schema + extras), ``run_index.parquet`` (one row per discovered
run: identity, status, training metadata), ``events.parquet`` (phase events, project format),
``skips.csv`` (every recorded skip with file, line, column, reason), ``match_counts.csv``.
Processed outputs (``processed/``): ``runs.parquet``, ``epochs.parquet``,
``cleaning_steps.csv``, ``removed_runs.csv``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from helpers.analysis import runs
from helpers.analysis.clean import CleaningLedger, clean_runs
from helpers.core import datasets, energy, io
from helpers.core.schema import RUN_COLUMNS
from helpers.readers import merge, seaa2023
from helpers.readers.merge import EVENT_COLUMNS, MergeOutputs


def merge_seaa2023(raw_dir: Path, tolerance_s: float = merge.DEFAULT_TOLERANCE_S,
                   tz: str = seaa2023.DEFAULT_TZ, metrics_path: Path | None = None,
                   dataset: str = "seaa2023", workers: int = 2) -> MergeOutputs:
    """Read the published logs, join GPU with CPU/RAM samples, attach model metrics."""
    logs = seaa2023.read_logs(raw_dir, tz=tz, workers=workers)
    merged = merge.merge_nearest(logs.gpu, logs.cpu, tolerance_s)
    ident = logs.runs[["run_id", "environment", "architecture", "run"]]
    samples = merged.samples.merge(ident, on="run_id", how="left", validate="many_to_one")
    samples = merge.add_elapsed(samples)
    profiling = merge.to_profiling_schema(samples, dataset)
    index = logs.runs.drop(columns=["gpu_file", "cpu_file"]).copy()
    index["environment_name"] = index["environment"].map(seaa2023.ENVIRONMENT_NAMES)
    index["status"] = "ok"
    index["return_code"] = 0
    problems = logs.skips[logs.skips["line"].isna() | (logs.skips["line"] == 1)]
    joined = problems.groupby("run_id")["reason"].agg("; ".join)
    # (Series.map + fillna("") warns, and will fail, when no run has a problem: float NaN column)
    index["read_problem"] = [joined.get(run_id, "") for run_id in index["run_id"]]
    if metrics_path is not None:
        metrics = seaa2023.read_model_metrics(metrics_path)
        index = index.merge(metrics, on=["environment", "architecture", "run"], how="left",
                            validate="one_to_one")
    events = pd.DataFrame(columns=EVENT_COLUMNS)
    return MergeOutputs(profiling, index, events, logs.skips, merged.match_counts)


def merge_dataset(dataset: str, tolerance_s: float = merge.DEFAULT_TOLERANCE_S,
                  tz: str = seaa2023.DEFAULT_TZ, data_dir: str | None = None) -> MergeOutputs:
    """Run the merge stage for a registered dataset (dispatch on its raw format)."""
    cfg = datasets.get(dataset)
    if cfg.raw_format == "seaa2023":
        root = datasets.seaa2023_dir(data_dir)
        return merge_seaa2023(root / "raw", tolerance_s, tz,
                              root / "interim" / "model_metrics.gzip", dataset)
    from helpers.readers import project_merge  # imports the sampler; only for this format

    raw = Path(data_dir) if data_dir else datasets.raw_dir(dataset)
    return project_merge.merge_project(raw, dataset, tolerance_s)


def read_interim(dataset: str) -> MergeOutputs:
    """Load the merge stage's outputs of ``dataset``."""
    d = datasets.output_dir(dataset, "interim")
    missing = [f for f in ("profiling.parquet", "run_index.parquet", "events.parquet")
               if not (d / f).exists()]
    if missing:
        raise FileNotFoundError(f"{d} lacks {', '.join(missing)}: run notebook 02-merge first")
    return MergeOutputs(
        pd.read_parquet(d / "profiling.parquet"), pd.read_parquet(d / "run_index.parquet"),
        pd.read_parquet(d / "events.parquet"), pd.read_csv(d / "skips.csv"),
        pd.read_csv(d / "match_counts.csv"),
    )


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
                    carbon_intensity_g_per_kwh: float = energy.DEFAULT_CARBON_INTENSITY_G_PER_KWH,
                    ) -> pd.DataFrame:
    """Per-run energies and statistics joined with the run index (RUN_COLUMNS + extras)."""
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
                  carbon_intensity_g_per_kwh: float = energy.DEFAULT_CARBON_INTENSITY_G_PER_KWH,
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
