"""Run grid of the collect stage: plan, execute each run in its own process, and log per-run energy.

A grid is architectures x one environment label x repetitions. :func:`plan_grid` shuffles the
(architecture, repetition) pairs with the grid seed and numbers the runs of each architecture
0, 1, ... in execution order, so run numbers follow start order (as the published logs' do).
:func:`run_grid` then, for the plan in order:

1. runs a warm-up process (``warmup_s`` seconds of training the first architecture, nothing
   recorded) so the first measured run does not meet a cold machine (a failing warm-up only
   warns);
2. per run: waits ``cooldown_s`` (not before the first), starts
   ``python -m helpers.collect.grid run --spec <json> --run-dir <dir>`` (the child calls
   :func:`helpers.collect.training.train_run`, or ``runner``), and waits for it. The child's
   output goes to ``<run_dir>/process.log``. A child that dies without recording its end
   (SIGKILL, OOM, ``os._exit``) leaves ``metadata.json`` saying ``running`` or nothing at all;
   the parent then writes ``status: 'failed: return code N'`` and ``return_code: N`` (plus
   header-only ``samples.csv``/``events.csv`` if the child never created them) and goes on;
3. appends one row per run to ``<raw_root>/emissions.csv`` with CodeCarbon's column names
   (:data:`CODECARBON_COLUMNS`) followed by :data:`EXTRA_COLUMNS`.

Energy in ``emissions.csv`` (the run's own samples integrated with the same functions and rules
as the clean stage's run table, :mod:`helpers.core.energy` and :mod:`helpers.core.rules`) covers
the *training window* (:func:`helpers.core.windows.training_window`), from ``warmup_start`` (else
the first ``epoch_start``) to the last ``epoch_end`` (else the last sample); the idle baseline and
model set-up are outside it. Per component, with its method in a ``*_energy_method`` column:

* GPU: NVML counter difference at the window edges where every GPU has readings covering them
  (``nvml_counter``), else the trapezoid of ``gpu_power_w`` on the real time stamps, cut at the
  edges by linear interpolation (``trapezoid``). No GPU in the run: 0 kWh with ``gpu_count`` 0
  and method ``none: no GPU in the run`` (CodeCarbon's convention for GPU-less machines); a GPU
  that was present but not measured: empty.
* CPU: RAPL counter difference (``rapl``), else the trapezoid of ``cpu_power_estimate_w`` with
  the sampler's estimate method (``estimate:tdp_x_utilisation(tdp_w=...)``); else empty.
* RAM: 0.3725 W/GB x process RSS (Green Algorithms), RSS MiB -> GB (1 MiB = 1.048576e-3 GB),
  method ``model:0.3725W_per_GB(process RSS)``.

Powers are window means (energy / duration; CodeCarbon writes its last reading instead).
``energy_consumed`` is the sum of the components, empty if a present component is unmeasured.
``emissions`` = ``energy_consumed`` x carbon intensity; energies kWh, powers W, ``duration`` s,
emissions kg. ``codecarbon_version`` is ``not-codecarbon``.
"""

from __future__ import annotations

import argparse
import csv
import importlib
import io
import json
import math
import os
import random
import shutil
import signal
import subprocess
import sys
import time
import warnings
from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from helpers.core import energy, rules, windows
from helpers.core.datasets import relative_to_project
from helpers.core.errors import InputFormatError
from helpers.core.io import write_json, write_text
from helpers.core.units import DEFAULT_CARBON_INTENSITY_G_PER_KWH, G_PER_KG, J_PER_KWH

if TYPE_CHECKING:  # helpers.collect.training imports torch: only the functions that train need it
    from helpers.collect.training import RunSpec

EMISSIONS_FILE = "emissions.csv"
GRID_FILE = "grid.json"
LOG_FILE = "process.log"
DEFAULT_RUNNER = "helpers.collect.training:train_run"

#: CodeCarbon emissions.csv columns, in CodeCarbon's order.
CODECARBON_COLUMNS: tuple[str, ...] = (
    "timestamp", "project_name", "run_id", "experiment_id", "duration", "emissions",
    "emissions_rate", "cpu_power", "gpu_power", "ram_power", "cpu_energy", "gpu_energy",
    "ram_energy", "energy_consumed", "country_name", "country_iso_code", "region",
    "cloud_provider", "cloud_region", "os", "python_version", "codecarbon_version", "cpu_count",
    "cpu_model", "gpu_count", "gpu_model", "longitude", "latitude", "ram_total_size",
    "tracking_mode", "on_cloud", "pue",
)
#: Extra columns after CodeCarbon's: name -> meaning (unit).
EXTRA_COLUMNS: dict[str, str] = {
    "architecture": "model architecture",
    "environment": "environment label (raw folder name)",
    "run": "run number within (environment, architecture)",
    "dataset": "image dataset trained on (synthetic, digits, ...)",
    "device": "torch device of the run",
    "epochs": "epochs trained",
    "batch_size": "images per batch",
    "train_size": "training images (images per epoch when divisible by batch_size)",
    "input_size_px": "image side (px)",
    "accuracy": "final validation accuracy (0-1)",
    "f1": "final validation macro-F1 (0-1)",
    "flops": "forward FLOPs per image (FlopCounterMode)",
    "flops_per_batch": "forward FLOPs of one batch",
    "params": "trainable parameters",
    "status": "'ok' or 'failed: ...'",
    "return_code": "exit status of the run's process",
    "energy_window": "what duration and energies cover",
    "gpu_energy_method": "how gpu_energy was obtained",
    "cpu_energy_method": "how cpu_energy was obtained",
    "ram_energy_method": "how ram_energy was obtained",
    "carbon_intensity_g_per_kwh": "carbon intensity used (g CO2e/kWh)",
}
EMISSIONS_COLUMNS: tuple[str, ...] = (*CODECARBON_COLUMNS, *EXTRA_COLUMNS)


@dataclass(frozen=True)
class GridConfig:
    """A grid of runs on one machine.

    Attributes:
        raw_root: output folder (``data_inputs/<dataset>/raw``).
        environment: environment label of this machine (raw folder name).
        architectures: architecture names (keys of ``helpers.collect.training.ARCHITECTURES``).
        repetitions: runs per architecture.
        seed: grid seed: run order, data (``data_seed``), and run seeds ``seed + run``.
        run_defaults: ``RunSpec`` fields shared by every run (epochs, batch_size, ...).
        architecture_overrides: architecture -> ``RunSpec`` fields that replace
            ``run_defaults`` for that architecture's runs (e.g. a ``train_size`` per model so
            that every run trains for about the same time).
        warmup_s: seconds of unrecorded training before the first run (0: none).
        cooldown_s: idle seconds between runs.
        carbon_intensity_g_per_kwh: grid carbon intensity for ``emissions`` (g CO2e/kWh).
        sampler_kwargs: JSON-serialisable ``Sampler`` arguments (interval_s, cpu_tdp_w, ...).
        project_name: CodeCarbon ``project_name`` (the dataset name).
        experiment_id: CodeCarbon ``experiment_id`` ('' -> ``<environment>-seed<seed>``).
        runner: ``module:function`` the child calls as ``f(spec, run_dir, sampler_kwargs)``.
        child_output: ``log`` (child stdout/stderr to ``<run_dir>/process.log``) or
            ``inherit`` (to this process's, e.g. to see per-epoch progress bars).
        run_timeout_s: SIGTERM a run after this many seconds (``None``: no limit).
        country_name, country_iso_code, region: location columns of ``emissions.csv``.
    """

    raw_root: Path
    environment: str
    architectures: tuple[str, ...]
    repetitions: int = 3
    seed: int = 0
    run_defaults: dict[str, Any] = field(default_factory=dict)
    architecture_overrides: dict[str, dict[str, Any]] = field(default_factory=dict)
    warmup_s: float = 5.0
    cooldown_s: float = 2.0
    carbon_intensity_g_per_kwh: float = DEFAULT_CARBON_INTENSITY_G_PER_KWH
    sampler_kwargs: dict[str, Any] = field(default_factory=dict)
    project_name: str = "collected"
    experiment_id: str = ""
    runner: str = DEFAULT_RUNNER
    child_output: str = "log"
    run_timeout_s: float | None = None
    country_name: str = ""
    country_iso_code: str = ""
    region: str = ""

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict. ``raw_root`` is written relative to the project root
        (``data_inputs/<dataset>/raw``), or as ``.`` (the folder holding ``grid.json``) when it
        lies outside the project: no absolute path of the machine goes into the file."""
        out = asdict(self)
        out["raw_root"] = portable_raw_root(self.raw_root)
        out["architectures"] = list(self.architectures)
        return out


def portable_raw_root(raw_root: str | os.PathLike[str]) -> str:
    """``raw_root`` as recorded in ``grid.json``: a POSIX path relative to the project root, or
    ``.`` for a folder outside the project."""
    path = relative_to_project(raw_root)
    return "." if Path(path).is_absolute() else path


@dataclass(frozen=True)
class RunOutcome:
    """What the grid recorded for one run (``return_code`` None: a job that died before its
    run's process reported one, :mod:`helpers.collect.slurm`)."""

    run_dir: Path
    return_code: int | None
    status: str
    wall_s: float
    emissions_row: dict[str, Any]


def plan_grid(config: GridConfig) -> list[RunSpec]:
    """The grid's runs (``helpers.collect.training.RunSpec``) in execution order.

    The (architecture, repetition) pairs are shuffled with ``random.Random(config.seed)``; runs
    of one architecture are numbered 0.. in execution order; each run's seed is
    ``config.seed + run`` and all runs share ``data_seed = config.seed``.
    """
    from helpers.collect.training import ARCHITECTURES, RunSpec

    unknown = [a for a in config.architectures if a not in ARCHITECTURES]
    if unknown:
        raise ValueError(f"unknown architecture(s) {unknown}; known: {sorted(ARCHITECTURES)}")
    if len(set(config.architectures)) != len(config.architectures):
        raise ValueError(f"architectures repeat: {list(config.architectures)}")
    if config.repetitions < 1:
        raise ValueError(f"repetitions must be >= 1, got {config.repetitions}")
    stray = sorted(set(config.architecture_overrides) - set(config.architectures))
    if stray:
        raise ValueError(f"architecture_overrides name architectures not in the grid: {stray}")
    pairs = [(a, r) for a in config.architectures for r in range(config.repetitions)]
    random.Random(config.seed).shuffle(pairs)
    counters = dict.fromkeys(config.architectures, 0)
    plan = []
    for arch, _ in pairs:
        run = counters[arch]
        counters[arch] += 1
        base = {**config.run_defaults, **config.architecture_overrides.get(arch, {}),
                "architecture": arch, "environment": config.environment,
                "run": run, "seed": config.seed + run, "data_seed": config.seed}
        plan.append(RunSpec.from_dict(base))
    return plan


def run_dir_of(raw_root: Path, spec: RunSpec) -> Path:
    """``<raw_root>/<environment>/<architecture>/<run:03d>``."""
    return Path(raw_root) / spec.environment / spec.architecture / f"{spec.run:03d}"


def clean_raw_dir(raw_root: Path) -> bool:
    """Delete a raw folder written by :func:`run_grid` (before collecting it afresh).

    Refuses (``ValueError``) a folder holding anything but ``emissions.csv``, ``grid.json`` and
    ``<environment>/<architecture>/<run>`` folders, so a mistyped path cannot delete unrelated
    files. Returns whether something was deleted.
    """
    raw_root = Path(raw_root)
    if not raw_root.exists():
        return False
    allowed_files = {EMISSIONS_FILE, GRID_FILE}
    for path in raw_root.iterdir():
        if path.is_file() and (path.name in allowed_files or path.name.startswith(".")):
            continue
        if path.is_dir() and all(
            arch.is_dir() and all(r.is_dir() and r.name.isdigit() for r in arch.iterdir())
            for arch in path.iterdir()
        ):
            continue
        raise ValueError(f"refusing to delete {raw_root}: {path} is not part of a raw run grid")
    shutil.rmtree(raw_root)
    return True


def run_grid(config: GridConfig, progress: bool = True, executor: Any = None
             ) -> list[RunOutcome]:
    """Execute the planned grid (see the module docstring); returns one outcome per run.

    ``executor``: None runs here, one run after the other; a ``submitit`` executor, or the
    :class:`helpers.collect.slurm.SlurmConfig` to build one, runs each run as a job (on a Slurm
    cluster, or submitit's local executor) with the same output (:mod:`helpers.collect.slurm`).

    Raises ``FileExistsError`` before starting if any planned run folder exists (use
    :func:`clean_raw_dir` first, or another environment label).
    """
    if config.child_output not in ("log", "inherit"):
        raise ValueError(f"child_output must be 'log' or 'inherit', got {config.child_output!r}")
    plan = plan_grid(config)
    raw_root = Path(config.raw_root)
    existing = [str(run_dir_of(raw_root, s)) for s in plan if run_dir_of(raw_root, s).exists()]
    if existing:
        raise FileExistsError(f"run folders exist already (clean_raw_dir first): {existing[:3]}")
    record = {"config": config.to_dict(), "plan": [s.to_dict() for s in plan]}
    if executor is not None:
        from helpers.collect.slurm import GridJobs

        jobs = GridJobs(config, executor)
        record["executor"] = jobs.describe()
    write_json(record, raw_root / GRID_FILE)
    if executor is not None:
        return jobs.run(plan, progress)
    if config.warmup_s > 0:
        _warm_up(config, plan[0])
    from tqdm import tqdm

    outcomes = []
    bar = tqdm(plan, desc="runs", unit="run", disable=not progress, file=sys.stderr)
    for i, spec in enumerate(bar):
        bar.set_postfix_str(f"{spec.architecture} #{spec.run}")
        if i > 0 and config.cooldown_s > 0:
            time.sleep(config.cooldown_s)
        outcomes.append(execute_run(config, spec))
    bar.close()
    return outcomes


def execute_run(config: GridConfig, spec: RunSpec, append: bool = True) -> RunOutcome:
    """Run one planned run in a child process, repair its metadata if it died, and append its
    ``emissions.csv`` row (``append=False``: only return it)."""
    run_dir = run_dir_of(config.raw_root, spec)
    run_dir.mkdir(parents=True, exist_ok=False)
    if config.child_output == "log":
        spec = replace(spec, progress=False)
    cmd = [sys.executable, "-m", "helpers.collect.grid", "run",
           "--spec", json.dumps(spec.to_dict()), "--run-dir", str(run_dir),
           "--sampler", json.dumps(config.sampler_kwargs),
           "--runner", config.runner]
    t0 = time.perf_counter()
    code = _call(cmd, run_dir / LOG_FILE if config.child_output == "log" else None,
                 config.run_timeout_s)
    wall = time.perf_counter() - t0
    meta = finalise_metadata(run_dir, spec, code)
    row = emissions_row(run_dir, config, code)
    if append:
        append_emissions(Path(config.raw_root) / EMISSIONS_FILE, row)
    return RunOutcome(run_dir, code, str(meta.get("status")), wall, row)


def _call(cmd: list[str], log_path: Path | None, timeout_s: float | None) -> int:
    """Run ``cmd``; SIGTERM it at the timeout (SIGKILL 30 s later), and before re-raising any
    exception that interrupts the wait (Ctrl-C, a job scheduler's time-limit signal)."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    with open(log_path, "w") if log_path else nullcontext() as log:
        kwargs = {"stdout": log, "stderr": subprocess.STDOUT} if log_path else {}
        proc = subprocess.Popen(cmd, env=env, **kwargs)
        try:
            return proc.wait(timeout=timeout_s)
        except BaseException as err:
            proc.send_signal(signal.SIGTERM)
            try:
                code = proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                code = proc.wait()
            if not isinstance(err, subprocess.TimeoutExpired):
                raise
            return code


def finalise_metadata(run_dir: Path, spec: RunSpec, return_code: int | None,
                      failure: str | None = None) -> dict[str, Any]:
    """Make ``metadata.json`` record how the child ended; returns the metadata.

    ``failure`` (a job that ended without its result, :mod:`helpers.collect.slurm`): the status
    becomes ``failed: <failure>`` where the child left none, else ``<failed status>; <failure>``
    (an ``ok`` run stays ``ok``); ``return_code`` None keeps the child's own code.

    * Child recorded its end (status not ``running``): ``return_code`` is set to the real exit
      status (kept otherwise).
    * Status still ``running`` or no file (died without an exit path): status becomes
      ``failed: return code N`` (N = ``return_code``; negative = killed by signal -N).
    * A child that never started its sampler also gets header-only ``samples.csv`` and
      ``events.csv`` (as a sampler killed before its first flush leaves), so that the folder
      reads as a valid, empty run.
    """
    from helpers.core.raw_format import (
        EVENT_COLUMNS,
        EVENTS_FILE,
        METADATA_FILE,
        RAW_FORMAT_VERSION,
        SAMPLE_COLUMNS,
        SAMPLES_FILE,
    )

    path = run_dir / METADATA_FILE
    meta: dict[str, Any] = {}
    if path.is_file():
        try:
            meta = json.loads(path.read_text(encoding="utf-8"))
        except json.JSONDecodeError:
            meta = {}
    if not meta:
        meta = {"raw_format_version": RAW_FORMAT_VERSION, "dataset": spec.dataset,
                "environment": spec.environment, "architecture": spec.architecture,
                "run": spec.run, "started_utc": None, "ended_utc": None,
                "spec": spec.to_dict()}
    status = meta.get("status")
    if status in (None, "running") or (status == "ok" and return_code not in (0, None)):
        meta["status"] = f"failed: {failure or f'return code {return_code}'}"
    elif failure and status != "ok":
        meta["status"] = f"{status}; {failure}"
    if return_code is not None or "return_code" not in meta:
        meta["return_code"] = return_code
    write_json(meta, path)
    for name, columns in ((SAMPLES_FILE, SAMPLE_COLUMNS), (EVENTS_FILE, EVENT_COLUMNS)):
        if not (run_dir / name).exists():
            write_text(",".join(columns) + "\n", run_dir / name)
    return meta


# -- energy of a run ---------------------------------------------------------------------------
def _gpu_energy_j(samples: pd.DataFrame, window: windows.Window | None, has_gpu: bool
                  ) -> tuple[float, str]:
    if not has_gpu:
        return 0.0, rules.NO_GPU
    gpu = samples[samples["gpu_index"].notna()]
    per_gpu = [(g["monotonic_s"].to_numpy(float), g["gpu_power_w"].to_numpy(float),
                g["gpu_energy_counter_j"].to_numpy(float)) for _, g in gpu.groupby("gpu_index")]
    reason = f"no GPU power samples covering the {'run' if window is None else 'training'} window"
    energy_j, method, _ = energy.gpu_energy_j(per_gpu, reason, window)
    return energy_j, method


def _host_rows(samples: pd.DataFrame) -> pd.DataFrame:
    """One row per sampling instant (CPU/RAM columns repeat on every GPU row)."""
    return samples.drop_duplicates("monotonic_s", keep="first")


def _cpu_energy_j(host: pd.DataFrame, window: windows.Window | None,
                  estimate_method: str | None) -> tuple[float, str]:
    return energy.cpu_energy_j(
        host["monotonic_s"].to_numpy(dtype=float), host["cpu_energy_counter_j"].to_numpy(float),
        host["cpu_power_estimate_w"].to_numpy(float), estimate_method,
        "no RAPL readings or CPU power estimate in the window", window)


def _ram_energy_j(host: pd.DataFrame, window: windows.Window | None) -> tuple[float, str]:
    return energy.ram_energy_j(
        host["monotonic_s"].to_numpy(dtype=float), host["process_rss_mb"].to_numpy(float),
        rules.PROCESS_RSS, "no process RSS samples in the window", window)


def _unmeasured(meta: dict[str, Any], why: str) -> dict[str, Any]:
    reason = rules.unmeasured(why)
    return {"metadata": meta, "duration_s": math.nan, "energy_window": reason,
            "gpu_energy_j": math.nan, "gpu_energy_method": reason,
            "cpu_energy_j": math.nan, "cpu_energy_method": reason,
            "ram_energy_j": math.nan, "ram_energy_method": reason}


def run_energy(run_dir: Path, window: str = "training") -> dict[str, Any]:
    """Energies (J) of one run folder over its ``'training'`` window (``emissions.csv``) or its
    ``'run'`` window (first to last sample, each series over its own samples, as in the clean
    stage's run table), with methods; both windows are defined in :mod:`helpers.core.windows`.

    Keys: ``metadata``, ``duration_s``, ``energy_window``, ``{gpu,cpu,ram}_energy_j``,
    ``{gpu,cpu,ram}_energy_method``. Energies are NaN where unmeasured, with the reason as the
    method: fewer than two samples, an empty window, or run files the reader rejects (then
    ``metadata`` is what ``metadata.json`` holds, if readable).
    """
    if window not in ("training", "run"):
        raise ValueError(f"window must be 'training' or 'run', got {window!r}")
    from helpers.core.raw_format import METADATA_FILE
    from helpers.readers.project import read_run

    try:
        run = read_run(run_dir)
    except InputFormatError as err:
        try:
            meta = json.loads((Path(run_dir) / METADATA_FILE).read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError):
            meta = {}
        return _unmeasured(meta, f"unreadable run files: {err}")
    meta, samples = run.metadata, run.samples
    if len(samples) < 2:
        return _unmeasured(meta, "fewer than two samples")
    t = samples["monotonic_s"]
    span = (windows.run_window(t) if window == "run" else
            windows.training_window(run.events["event"], run.events["monotonic_s"], t))
    if span.duration_s <= 0:
        return _unmeasured(meta, f"empty {window} window ({span.label})")
    has_gpu = bool(meta.get("gpus")) or bool(samples["gpu_index"].notna().any())
    host = _host_rows(samples)
    estimate = (meta.get("cpu_power") or {}).get("estimate_method")
    cut = None if window == "run" else span  # see helpers.core.windows
    gpu_j, gpu_m = _gpu_energy_j(samples, cut, has_gpu)
    cpu_j, cpu_m = _cpu_energy_j(host, cut, estimate)
    ram_j, ram_m = _ram_energy_j(host, cut)
    return {"metadata": meta, "duration_s": span.duration_s, "energy_window": span.label,
            "gpu_energy_j": gpu_j, "gpu_energy_method": gpu_m,
            "cpu_energy_j": cpu_j, "cpu_energy_method": cpu_m,
            "ram_energy_j": ram_j, "ram_energy_method": ram_m}


def _kwh(energy_j: float) -> float:
    return energy_j / J_PER_KWH


def _mean_w(energy_j: float, duration_s: float) -> float:
    return energy_j / duration_s if duration_s > 0 else math.nan


def emissions_row(run_dir: Path, config: GridConfig, return_code: int) -> dict[str, Any]:
    """The ``emissions.csv`` row of one finished (or failed) run; NaN where unmeasured."""
    e = run_energy(run_dir)
    meta = e["metadata"]
    run_dir = Path(run_dir)  # identity from the folder: <environment>/<architecture>/<run>
    environment, architecture = run_dir.parent.parent.name, run_dir.parent.name
    run = int(run_dir.name)
    host, versions = meta.get("host") or {}, meta.get("versions") or {}
    gpus = meta.get("gpus") or []
    duration = e["duration_s"]
    parts = [e["gpu_energy_j"], e["cpu_energy_j"], e["ram_energy_j"]]
    total_j = sum(parts)  # NaN if any component is unmeasured (no GPU counts as 0)
    emissions_kg = _kwh(total_j) * config.carbon_intensity_g_per_kwh / G_PER_KG
    gpu_names = [g.get("name", "") for g in gpus]
    gpu_model = f"{len(gpu_names)} x {gpu_names[0]}" if gpu_names else ""
    ended = meta.get("ended_utc") or datetime.now(UTC).isoformat(timespec="milliseconds")
    return {
        "timestamp": ended,
        "project_name": config.project_name,
        "run_id": f"{environment}/{architecture}/{run:03d}",
        "experiment_id": config.experiment_id or f"{config.environment}-seed{config.seed}",
        "duration": duration,
        "emissions": emissions_kg,
        "emissions_rate": emissions_kg / duration if duration > 0 else math.nan,
        "cpu_power": _mean_w(e["cpu_energy_j"], duration),
        "gpu_power": _mean_w(e["gpu_energy_j"], duration),
        "ram_power": _mean_w(e["ram_energy_j"], duration),
        "cpu_energy": _kwh(e["cpu_energy_j"]),
        "gpu_energy": _kwh(e["gpu_energy_j"]),
        "ram_energy": _kwh(e["ram_energy_j"]),
        "energy_consumed": _kwh(total_j),
        "country_name": config.country_name,
        "country_iso_code": config.country_iso_code,
        "region": config.region,
        "cloud_provider": "",
        "cloud_region": "",
        "os": host.get("os", ""),
        "python_version": versions.get("python", ""),
        "codecarbon_version": "not-codecarbon",
        "cpu_count": host.get("logical_cores", math.nan),
        "cpu_model": host.get("cpu_model", ""),
        "gpu_count": len(gpu_names),
        "gpu_model": gpu_model,
        "longitude": math.nan,
        "latitude": math.nan,
        "ram_total_size": host.get("ram_gb", math.nan),
        "tracking_mode": "machine",
        "on_cloud": "",
        "pue": 1.0,
        "architecture": architecture,
        "environment": environment,
        "run": run,
        "dataset": meta.get("dataset"),
        "device": meta.get("device", ""),
        "epochs": meta.get("epochs_trained", math.nan),
        "batch_size": meta.get("batch_size", math.nan),
        "train_size": meta.get("train_size", math.nan),
        "input_size_px": meta.get("input_size_px", math.nan),
        "accuracy": meta.get("accuracy", math.nan),
        "f1": meta.get("f1", math.nan),
        "flops": meta.get("flops_per_image", math.nan),
        "flops_per_batch": meta.get("flops_per_forward", math.nan),
        "params": meta.get("params", math.nan),
        "status": meta.get("status", ""),
        "return_code": return_code,
        "energy_window": e["energy_window"],
        "gpu_energy_method": e["gpu_energy_method"],
        "cpu_energy_method": e["cpu_energy_method"],
        "ram_energy_method": e["ram_energy_method"],
        "carbon_intensity_g_per_kwh": config.carbon_intensity_g_per_kwh,
    }


def _cell(value: Any) -> str:
    """CSV cell: empty for None/NaN, repr-exact floats, text as is."""
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return ""
    if isinstance(value, float):
        return repr(value)
    return str(value)


def append_emissions(path: Path, row: dict[str, Any]) -> None:
    """Append ``row`` to ``path`` (header written for a new file); atomic rewrite. Raises
    ``ValueError`` if an existing file has another header."""
    header = list(EMISSIONS_COLUMNS)
    text = path.read_text(encoding="utf-8") if path.exists() else ""
    if text and text.splitlines()[0].split(",") != header:
        raise ValueError(f"{path}: header differs from the grid's emissions columns")
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    if not text:
        writer.writerow(header)
    writer.writerow([_cell(row.get(c)) for c in header])
    write_text(text + buf.getvalue(), path)


def read_emissions(raw_root: Path) -> pd.DataFrame:
    """``<raw_root>/emissions.csv`` as a DataFrame (empty cells -> NaN)."""
    return pd.read_csv(Path(raw_root) / EMISSIONS_FILE)


def runs_table(raw_root: Path) -> pd.DataFrame:
    """Compact per-run view of ``emissions.csv`` for display: identity, status, duration (s),
    energies (J), F1, methods."""
    df = read_emissions(raw_root)
    out = df[["environment", "architecture", "run", "status", "return_code", "epochs"]].copy()
    out["duration_s"] = df["duration"]
    for part in ("gpu", "cpu", "ram"):
        out[f"{part}_energy_j"] = df[f"{part}_energy"] * J_PER_KWH
    out["energy_consumed_j"] = df["energy_consumed"] * J_PER_KWH
    out["emissions_g"] = df["emissions"] * G_PER_KG
    out["accuracy"], out["f1"] = df["accuracy"], df["f1"]
    out["cpu_energy_method"] = df["cpu_energy_method"]
    return out


# -- child process entry points -------------------------------------------------------------
def _load_runner(target: str) -> Callable[..., Any]:
    """Resolve ``'module:function'``."""
    module, _, name = target.partition(":")
    if not module or not name:
        raise ValueError(f"runner must be 'module:function', got {target!r}")
    return getattr(importlib.import_module(module), name)


def _warm_up(config: GridConfig, spec: RunSpec) -> None:
    """Train ``spec``'s model for ``config.warmup_s`` seconds in a child process, unrecorded."""
    cmd = [sys.executable, "-m", "helpers.collect.grid", "warmup", "--spec",
           json.dumps(spec.to_dict()), "--seconds", str(config.warmup_s)]
    code = _call(cmd, None, config.run_timeout_s)
    if code != 0:  # the runs themselves will record what goes wrong; do not stop the grid
        warnings.warn(f"warm-up process ended with return code {code}; grid goes on",
                      RuntimeWarning, stacklevel=3)


def warm_up(spec: RunSpec, seconds: float) -> int:
    """Train ``spec``'s model for about ``seconds`` (whole epochs; nothing written). Returns the
    epochs run."""
    import torch

    from helpers.collect import training

    if spec.num_threads is not None:
        torch.set_num_threads(spec.num_threads)
    training.seed_everything(spec.seed)
    device = training.resolve_device(spec.device)
    data = training.load_data(spec)
    data = training.ImageData(data.name, data.x_train.to(device), data.y_train.to(device),
                              data.x_val.to(device), data.y_val.to(device), data.num_classes,
                              data.base_px)
    model = training.build_model(spec.architecture, data.num_classes, spec.input_size_px,
                                 spec.bn_momentum_min).to(device)
    optimizer = torch.optim.SGD(model.parameters(), lr=1e-3)
    generator = torch.Generator().manual_seed(spec.seed)
    end, epochs = time.perf_counter() + seconds, 0
    while time.perf_counter() < end:
        training.train_epoch(model, optimizer, data, spec, generator)
        epochs += 1
    return epochs


def main(argv: list[str] | None = None) -> int:
    """``python -m helpers.collect.grid run|warmup ...`` (the grid's child processes)."""
    from helpers.collect.training import RunSpec

    parser = argparse.ArgumentParser(prog="python -m helpers.collect.grid")
    sub = parser.add_subparsers(dest="command", required=True)
    run_p = sub.add_parser("run", help="one measured training run")
    run_p.add_argument("--spec", required=True, help="RunSpec as JSON")
    run_p.add_argument("--run-dir", required=True, type=Path)
    run_p.add_argument("--sampler", default="{}", help="Sampler kwargs as JSON")
    run_p.add_argument("--runner", default=DEFAULT_RUNNER, help="module:function")
    warm_p = sub.add_parser("warmup", help="unrecorded warm-up training")
    warm_p.add_argument("--spec", required=True, help="RunSpec as JSON")
    warm_p.add_argument("--seconds", required=True, type=float)
    args = parser.parse_args(argv)
    spec = RunSpec.from_dict(json.loads(args.spec))
    if args.command == "warmup":
        warm_up(spec, args.seconds)
        return 0
    _load_runner(args.runner)(spec, args.run_dir, json.loads(args.sampler))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
