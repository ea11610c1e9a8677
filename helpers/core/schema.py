"""Column contracts between pipeline stages. Units are in the names (SI; joules inside).

* ``PROFILING_COLUMNS``: the DL Training Profiling Dataset schema (seed dataset card), exact names
  and units: one row per GPU sample, written by 02-merge to ``interim/profiling.parquet``.
* ``SAMPLE_EXTRA_COLUMNS``: extra per-sample columns kept beside them.
* ``RUN_COLUMNS``: the per-run table written by 03-clean to ``processed/runs.parquet``; 04-06
  read only this (plus ``processed/epochs.parquet`` and the interim samples for time series).
  Every energy, duration and mean says its window (docs/methods.md#energy-windows): columns
  without prefix (``energy_j``, ``duration_s``, ``gpu_power_mean_w``, ...) cover the **run**
  (first to last sample, idle lead-in and tail included), columns ``training_*`` the
  **training window** (warm-up and epochs; the whole run where a source has no epoch events).
  The analyses of notebooks 04-06 use the training window.
* ``EPOCH_COLUMNS``: per-epoch table (runs with epoch events only).
"""

from __future__ import annotations

import pandas as pd

#: name -> meaning (unit). Exactly the dataset card's fields.
PROFILING_COLUMNS: dict[str, str] = {
    "train_strategy": "environment label as in the raw folder (e.g. cloud, local-v2)",
    "architecture": "model architecture",
    "run": "run number within (train_strategy, architecture), by start-stamp order, from 0",
    "timestamp": "sample time, ms since Unix epoch (UTC), int64",
    "gpu_name": "GPU model name",
    "gpu_usage": "GPU utilisation, fraction 0-1",
    "gpu_memory_usage": "GPU memory-controller utilisation, fraction 0-1",
    "gpu_total_memory": "GPU total memory (MB)",
    "gpu_memory_used": "GPU memory used (MB)",
    "gpu_power_draw": "GPU power draw (W)",
    "gpu_max_power": "GPU maximum power limit (W)",
    "gpu_temperature": "GPU temperature (degC)",
    "cpu_usage": "system CPU utilisation (%)",
    "memory_usage": "system RAM used (MB)",
}

#: Extra per-sample columns (present where the source has them; NaN otherwise).
SAMPLE_EXTRA_COLUMNS: dict[str, str] = {
    "dataset": "dataset name",
    "run_id": "unique run key '<train_strategy>/<architecture>/<run:03d>'",
    "time_utc": "sample time, tz-aware UTC datetime",
    "elapsed_s": "seconds since the run's first sample",
    "gpu_index": "GPU index within the run (0 for single-GPU logs)",
    "gpu_power_instant_w": "instant power (W) where the source distinguishes it",
    "gpu_energy_counter_j": "cumulative hardware energy counter (J); NaN where not read",
    "gpu_sm_clock_mhz": "SM clock (MHz)",
    "cpu_temperature_c": "CPU temperature (degC)",
    "process_cpu_pct": "training process CPU (% of one core)",
    "process_rss_mb": "training process resident memory (MB)",
    "cpu_energy_counter_j": "cumulative CPU package energy from RAPL (J); NaN where unreadable",
    "device_power_w": "power (W) of the component the run's energy_j measures (GPU power draw, or "
    "CPU power for CPU-only runs; see the run's energy_source)",
    "cpu_power_w": "CPU package power (W): from RAPL deltas or an estimate (see cpu_energy_method)",
    "cpu_match_gap_s": "|time to the joined CPU/RAM sample| (s); NaN when unmatched",
    "epoch": "epoch number (from 0) from phase events; NaN without events",
    "phase": "phase label from events (idle, train, eval, ...); NaN without events",
    "source_file": "raw file the GPU sample came from (relative path)",
}

#: Per-run table (processed/runs.parquet). name -> meaning (unit).
RUN_COLUMNS: dict[str, str] = {
    "dataset": "dataset name",
    "run_id": "unique run key",
    "environment": "raw environment label (cloud, local-v2, ...)",
    "environment_name": "display name of the environment (Cloud, Local ML Engineer/Gamer, ...)",
    "architecture": "model architecture",
    "run": "run number within (environment, architecture)",
    "gpu_name": "GPU model name ('none' for CPU-only runs)",
    "start_utc": "first sample, tz-aware UTC",
    "duration_s": "run window: last minus first sample time (s)",
    "n_samples": "GPU samples in the run",
    "sampling_period_s": "median spacing of samples (s)",
    "gpu_energy_j": "GPU energy (J): counter delta where present, else trapezoid of power",
    "gpu_energy_method": "'nvml_counter', 'trapezoid', or 'unmeasured: <reason>'",
    "gpu_energy_trapezoid_j": "trapezoid integral of GPU power (J), kept as a check",
    "cpu_energy_j": "CPU energy (J)",
    "cpu_energy_method": "'rapl', 'estimate:tdp_x_utilisation', or 'unmeasured: <reason>'",
    "ram_energy_j": "RAM energy (J)",
    "ram_energy_method": "e.g. 'model:0.3725W_per_GB'",
    "energy_j": "run window: energy of the run (J), GPU energy where a GPU ran, else CPU "
    "(gpu_energy_j, cpu_energy_j, ram_energy_j and total_energy_j cover the run too)",
    "energy_source": "which component/method energy_j is (e.g. 'gpu:trapezoid')",
    "training_energy_j": "training window: energy (J) of the same component as energy_j, by the "
    "same rules, from warmup_start (else the first epoch_start) to the last epoch_end; energy_j "
    "where the run has no epoch events. The energy 04-06 analyse and estimate",
    "training_duration_s": "training window: its duration (s); duration_s without epoch events",
    "training_energy_scope": "'epochs' (window from epoch events) or 'whole run'",
    "training_window": "how the training window was chosen, e.g. 'warmup_start to last "
    "epoch_end' or 'whole run (no epoch events)'",
    "training_start_s": "training window start, s from the run's first sample (the samples' "
    "elapsed_s clock)",
    "training_end_s": "training window end, s from the run's first sample",
    "training_energy_source": "component/method of training_energy_j (e.g. 'gpu:nvml_counter')",
    "training_device_power_mean_w": "training window: training_energy_j / training_duration_s (W)",
    "training_gpu_power_mean_w": "training window: mean GPU power of its samples (W)",
    "training_gpu_usage_mean": "training window: mean GPU utilisation (fraction 0-1)",
    "training_gpu_memory_usage_mean": "training window: mean GPU memory utilisation (0-1)",
    "pre_epoch_energy_j": "training window before its first epoch_start (the warm-up batches, "
    "J); 0 when it starts at the first epoch, NaN without epoch events",
    "total_energy_j": "GPU + CPU + RAM energy where each is known (J)",
    "energy_kwh": "energy_j in kWh (display)",
    "emissions_g": "energy_kwh x carbon intensity (g CO2e)",
    "carbon_intensity_g_per_kwh": "carbon intensity used (g CO2e/kWh)",
    "gpu_power_mean_w": "run window: mean GPU power (W); the statistics below cover the run",
    "gpu_power_std_w": "std of GPU power (W)",
    "gpu_power_max_w": "max GPU power (W)",
    "gpu_power_limit_w": "GPU power limit / max power (W)",
    "gpu_usage_mean": "mean GPU utilisation (fraction 0-1)",
    "gpu_memory_usage_mean": "mean GPU memory utilisation (fraction 0-1)",
    "gpu_temperature_mean_c": "mean GPU temperature (degC)",
    "cpu_usage_mean_pct": "mean system CPU (%)",
    "ram_used_mean_mb": "mean system RAM used (MB)",
    "batch_size": "batch size",
    "gflops": "GFLOPs (forward pass, per image as published or per batch: see dataset README)",
    "params": "trainable parameters",
    "train_size": "training images per epoch",
    "epochs": "epochs trained",
    "images_seen": "total training images seen",
    "accuracy": "validation/test accuracy (0-1); NaN where the source does not give it",
    "f1": "macro F1 (0-1); NaN where the source does not give it",
    "model_metrics_missing": "which of f1, gflops, accuracy, params the source does not give "
    "(NaN in the table; never a reason to remove a run)",
    "energy_per_image_j": "training window: training_energy_j / images_seen (J)",
    "time_per_image_s": "training window: training_duration_s / images_seen (s)",
    "status": "'ok' or failure description",
    "return_code": "process return code (0 for published runs)",
}

#: Per-epoch table (processed/epochs.parquet).
EPOCH_COLUMNS: dict[str, str] = {
    "dataset": "dataset name",
    "run_id": "unique run key",
    "epoch": "epoch number from 0",
    "start_utc": "epoch start event time",
    "duration_s": "epoch duration (s)",
    "energy_j": "energy of the epoch (J), same component and rules as the run's energy_j",
    "energy_method": "component/method of energy_j (e.g. 'gpu:nvml_counter')",
    "gpu_energy_j": "GPU energy of the epoch (J)",
    "power_mean_w": "mean power over the epoch (W), energy_j / duration_s",
    "val_accuracy": "validation accuracy after the epoch",
    "val_f1": "validation macro-F1 after the epoch",
}


def missing_columns(df: pd.DataFrame, required: dict[str, str] | list[str]) -> list[str]:
    """Return the required columns absent from ``df`` (order preserved)."""
    return [c for c in required if c not in df.columns]


def require_columns(df: pd.DataFrame, required: dict[str, str] | list[str], what: str) -> None:
    """Raise ``KeyError`` naming ``what`` and every missing column."""
    missing = missing_columns(df, required)
    if missing:
        raise KeyError(f"{what} lacks required columns: {', '.join(missing)}")
