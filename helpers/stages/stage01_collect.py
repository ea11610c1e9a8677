"""Stage of notebook 01 (collect): train a grid of models on this machine while the sampler
records power, and read the runs back (docs/methods.md#raw-formats,
docs/methods.md#gpu-measurement).

Each run is a separate process (``python -m helpers.collect.grid run ...``) that trains a
torchvision model from scratch while :class:`helpers.collect.sampler.Sampler` records GPU, CPU
and RAM. Output (``data_inputs/<dataset>/raw/``): one folder per run, ``emissions.csv`` (one
CodeCarbon-compatible row per run, training-window energy) and ``grid.json``.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pandas as pd

from helpers.collect import grid
from helpers.core import datasets, units
from helpers.stages import common
from helpers.stages.common import Section


def setup_display() -> None:
    """Pandas display options of notebook 01."""
    common.setup_display()


def raw_root(dataset: str) -> Path:
    """``data_inputs/<dataset>/raw``; ``ValueError`` for a dataset not in the project's raw
    format (01 writes only that format)."""
    if datasets.get(dataset).raw_format != "project":
        raise ValueError(f"dataset {dataset!r} is not in the project's raw format; 01 writes only "
                         "project-format datasets")
    return datasets.project_root() / "data_inputs" / dataset / "raw"


def grid_config(dataset: str, environment: str, architectures: list[str], repetitions: int,
                run_defaults: dict[str, Any],
                architecture_overrides: dict[str, dict[str, Any]] | None = None,
                warmup_s: float = 3.0, cooldown_s: float = 1.5, seed: int = 0,
                interval_s: float = 0.1, slow_period_s: float = 1.0,
                cpu_tdp_w: float | None = None,
                carbon_intensity_g_per_kwh: float = units.DEFAULT_CARBON_INTENSITY_G_PER_KWH,
                ) -> grid.GridConfig:
    """The grid of ``dataset``: ``architectures`` × ``repetitions`` in ``environment``, every
    run with the ``RunSpec`` fields ``run_defaults`` (epochs, batch_size, device, ...) unless
    ``architecture_overrides`` replaces them; the sampler reads every ``interval_s`` seconds
    (slow readings every ``slow_period_s``), with ``cpu_tdp_w`` (W) for the CPU power estimate
    (None: the sampler's default)."""
    sampler_kwargs: dict[str, Any] = {"interval_s": interval_s, "slow_period_s": slow_period_s}
    if cpu_tdp_w is not None:
        sampler_kwargs["cpu_tdp_w"] = cpu_tdp_w
    return grid.GridConfig(
        raw_root=raw_root(dataset),
        environment=environment,
        architectures=tuple(architectures),
        repetitions=repetitions,
        seed=seed,
        run_defaults=run_defaults,
        architecture_overrides=architecture_overrides or {},
        warmup_s=warmup_s,
        cooldown_s=cooldown_s,
        carbon_intensity_g_per_kwh=carbon_intensity_g_per_kwh,
        sampler_kwargs=sampler_kwargs,
        project_name=dataset,
    )


def plan(config: grid.GridConfig) -> Section:
    """The runs in execution order: architecture, run number, seed, device, training size."""
    table = pd.DataFrame([{"order": i, "architecture": s.architecture, "run": s.run,
                           "seed": s.seed, "device": s.device, "train_size": s.train_size}
                          for i, s in enumerate(grid.plan_grid(config))]).set_index("order")
    return Section(tables={"plan": table})


def clear_raw_dir(config: grid.GridConfig) -> Section:
    """Delete the previous collection of this dataset
    (:func:`helpers.collect.grid.clean_raw_dir`)."""
    root = config.raw_root
    shown = datasets.relative_to_project(root)
    return Section([f"removed previous {shown}" if grid.clean_raw_dir(root) else f"new {shown}"])


def run(config: grid.GridConfig, progress: bool = True) -> Section:
    """Run the grid (:func:`helpers.collect.grid.run_grid`); the section gives the wall time."""
    start = time.perf_counter()
    outcomes = grid.run_grid(config, progress=progress)
    return Section([f"{len(outcomes)} runs in {time.perf_counter() - start:.1f} s"])


def collected_runs(config: grid.GridConfig) -> tuple[pd.DataFrame, Section]:
    """The runs read back from ``emissions.csv`` (duration s, energies J, F1), and per
    architecture and status: runs, mean duration (s), mean energy (J), mean F1."""
    runs = grid.runs_table(config.raw_root)
    summary = runs.groupby(["architecture", "status"]).agg(
        runs=("run", "size"), duration_s=("duration_s", "mean"),
        energy_j=("energy_consumed_j", "mean"), f1=("f1", "mean"))
    return runs, Section(tables={"runs": runs, "summary": summary})


def require_success(runs: pd.DataFrame, config: grid.GridConfig) -> None:
    """``RuntimeError`` when no run of the grid succeeded."""
    if not (runs["status"] == "ok").any():
        raise RuntimeError(f"no run succeeded; see the process.log files under {config.raw_root}")
