"""The project's raw run-folder format: file names, columns and phase events.

One run is a folder holding ``samples.csv`` (one row per GPU per sampling instant, or one CPU-only
row), ``events.csv`` (phase marks) and ``metadata.json``. The sampler writes this contract and the
project reader checks files against it; ``docs/raw-format.md`` documents it for users.
"""

from __future__ import annotations

RAW_FORMAT_VERSION = 1
SAMPLES_FILE = "samples.csv"
EVENTS_FILE = "events.csv"
METADATA_FILE = "metadata.json"

#: samples.csv columns, in file order: name -> meaning (unit). Empty cell = not measured.
SAMPLE_COLUMNS: dict[str, str] = {
    "timestamp_ms": "UTC wall clock, ms since Unix epoch (int; start wall clock + monotonic delta)",
    "monotonic_s": "time.monotonic() of the sample (s)",
    "gpu_index": "run-local GPU index (CUDA index in the process); empty on CPU-only rows",
    "gpu_name": "GPU model name",
    "gpu_power_w": "best available GPU power (W): instant where readable, else the average",
    "gpu_power_source": "'instant_field', 'power_usage_avg' or 'unsupported'",
    "gpu_power_instant_w": "NVML_FI_DEV_POWER_INSTANT (W)",
    "gpu_power_avg_w": "nvmlDeviceGetPowerUsage (W; a 1-s average on H100/H200)",
    "gpu_energy_counter_j": "NVML total energy since driver load (J); empty where not read",
    "gpu_usage_pct": "GPU utilisation (%)",
    "gpu_memory_usage_pct": "GPU memory-controller utilisation (%)",
    "gpu_memory_used_mb": "GPU memory used (MiB)",
    "gpu_memory_total_mb": "GPU memory total (MiB)",
    "gpu_temperature_c": "GPU temperature (degC)",
    "gpu_sm_clock_mhz": "SM clock (MHz)",
    "gpu_power_limit_w": "power management limit (W)",
    "cpu_usage_pct": "system CPU utilisation over the last window (%, all cores)",
    "process_cpu_pct": "training process tree CPU over the last window (% of one core)",
    "process_rss_mb": "training process tree resident memory (MiB, summed)",
    "system_ram_used_mb": "system RAM used (MiB, psutil 'used')",
    "cpu_energy_counter_j": "RAPL package energy since sampler start (J); empty if unreadable",
    "cpu_power_estimate_w": "TDP x system utilisation (W); method in metadata cpu_power",
    "gap_reason": "why GPU fields (or the energy counter) are missing on this row; else empty",
}
#: events.csv columns.
EVENT_COLUMNS: dict[str, str] = {
    "timestamp_ms": "UTC wall clock of the event (ms since Unix epoch), same clock as samples",
    "monotonic_s": "time.monotonic() of the event (s); a sample row carries the same value",
    "event": "event name (run_start, epoch_start, ..., or free text)",
    "epoch": "epoch number (from 0) where given; else empty",
    "info": "JSON object of extra keyword arguments given to mark()",
}
#: Phase events the pipeline understands (free strings are allowed too).
PHASE_EVENTS: tuple[str, ...] = (
    "run_start",
    "idle_start",
    "idle_end",
    "warmup_start",
    "epoch_start",
    "eval_start",
    "epoch_end",
    "tail_start",
    "run_end",
)
