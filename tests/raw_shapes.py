"""Input folders of every shape a user may bring, written to disk for notebook 02 to detect and
read: the committed H100 runs in our raw format as they are and changed (no model metrics, one
run, cut after 5 epochs, CPU only), their CodeCarbon ``emissions.csv`` alone, and the same runs
as another profiler's tidy samples CSV with a mapping file. The published seaa2023 logs come
from the ``seaa2023_subset`` fixture (tests/conftest.py).

Each builder writes ``<folder>`` (a new directory) and returns nothing; :data:`RAW_SHAPES`
names them.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path

import pandas as pd

#: The committed H100 runs (project raw format).
H100_RAW = Path(__file__).resolve().parents[1] / "data_inputs" / "gpu-h100" / "raw"
#: Mapping file of :func:`tidy_samples` (docs/own-data.md).
FOREIGN_MAPPING = """kind: samples
files: "power.csv"
environment: other-h100
columns: {timestamp: t_ms, power: power_W, run_id: job, utilisation: util, gpu_name: gpu,
          power_limit: limit_W}
units: {timestamp: ms}
events:
  file: phases.csv
  columns: {run_id: job, timestamp: t_ms, event: name, epoch: epoch}
  names: {train_begin: epoch_start, train_end: epoch_end}
runs_file: runs.csv
"""

#: Metadata keys of model metrics (docs/raw-format.md) that the "no metrics" shape drops.
METRIC_KEYS = ("f1", "accuracy", "gflops_per_image", "flops_per_image", "flops_per_forward",
               "params", "val_f1", "val_accuracy")


def _run_dirs(limit: int | None = None) -> list[Path]:
    dirs = sorted(H100_RAW.glob("h100/*/*"))
    return dirs[:limit] if limit else dirs


def _copy_runs(folder: Path, limit: int | None = None) -> list[Path]:
    out = []
    for src in _run_dirs(limit):
        dest = folder / "raw" / src.relative_to(H100_RAW)
        shutil.copytree(src, dest)
        out.append(dest)
    return out


def _edit_metadata(run_dir: Path, edit: Callable[[dict], None]) -> None:
    path = run_dir / "metadata.json"
    meta = json.loads(path.read_text())
    edit(meta)
    path.write_text(json.dumps(meta, indent=2))


def ours(folder: Path) -> None:
    """The 10 H100 runs as committed: idle lead-in and tail, 8 epochs, F1 and FLOPs."""
    _copy_runs(folder)


def ours_without_metrics(folder: Path) -> None:
    """The same without any model metric in the metadata."""
    for run_dir in _copy_runs(folder):
        _edit_metadata(run_dir, lambda m: [m.pop(k, None) for k in METRIC_KEYS])


def ours_one_run(folder: Path) -> None:
    """A single run."""
    _copy_runs(folder, limit=1)


def ours_five_epochs(folder: Path, keep_epochs: int = 5, tail_s: float = 2.0) -> None:
    """Runs that end ``tail_s`` after epoch ``keep_epochs - 1`` ends (events after it dropped,
    metadata says ``keep_epochs`` epochs)."""
    for run_dir in _copy_runs(folder):
        events = pd.read_csv(run_dir / "events.csv", keep_default_na=False)
        end = events[(events["event"] == "epoch_end")
                     & (events["epoch"].astype(str) == str(keep_epochs - 1))]
        cut_s = float(end["monotonic_s"].iloc[0])
        events = events[events["monotonic_s"].astype(float) <= cut_s]
        events.to_csv(run_dir / "events.csv", index=False)
        samples = pd.read_csv(run_dir / "samples.csv", keep_default_na=False, dtype=str)
        samples = samples[samples["monotonic_s"].astype(float) <= cut_s + tail_s]
        samples.to_csv(run_dir / "samples.csv", index=False)

        def edit(meta: dict) -> None:
            meta.update(epochs=keep_epochs, epochs_planned=keep_epochs,
                        epochs_trained=keep_epochs)
            meta.pop("step_forecast", None)
            meta.pop("summary", None)
        _edit_metadata(run_dir, edit)


def ours_cpu_only(folder: Path) -> None:
    """No GPU: every GPU column empty, no GPU in the metadata; the CPU estimate is the power."""
    for run_dir in _copy_runs(folder, limit=4):
        samples = pd.read_csv(run_dir / "samples.csv", keep_default_na=False, dtype=str)
        gpu = [c for c in samples.columns if c.startswith("gpu_")]
        samples = samples.drop_duplicates("monotonic_s").assign(**{c: "" for c in gpu})
        samples.to_csv(run_dir / "samples.csv", index=False)

        def edit(meta: dict) -> None:
            meta.update(gpus=[], device="cpu", device_name="cpu")
            meta.pop("summary", None)
        _edit_metadata(run_dir, edit)


def codecarbon(folder: Path) -> None:
    """The runs' CodeCarbon-style ``emissions.csv`` only: energies per run, no samples."""
    folder.mkdir(parents=True)
    shutil.copy(H100_RAW / "emissions.csv", folder / "emissions.csv")


def tidy_samples(folder: Path) -> None:
    """Another profiler's log: power (W, no counter), utilisation, GPU name and limit per
    sample, epoch events under other names, a runs file with the architecture only."""
    folder.mkdir(parents=True)
    samples, events, runs = [], [], []
    for run_dir in _run_dirs():
        job = f"{run_dir.parent.name}-{run_dir.name}"
        s = pd.read_csv(run_dir / "samples.csv")
        samples.append(pd.DataFrame({"job": job, "t_ms": s["timestamp_ms"],
                                     "power_W": s["gpu_power_w"], "util": s["gpu_usage_pct"],
                                     "gpu": s["gpu_name"], "limit_W": s["gpu_power_limit_w"]}))
        e = pd.read_csv(run_dir / "events.csv")
        e = e[e["event"].isin(["epoch_start", "epoch_end"])]
        events.append(pd.DataFrame({"job": job, "t_ms": e["timestamp_ms"], "epoch": e["epoch"],
                                    "name": e["event"].map({"epoch_start": "train_begin",
                                                            "epoch_end": "train_end"})}))
        runs.append({"job": job, "architecture": run_dir.parent.name})
    pd.concat(samples).to_csv(folder / "power.csv", index=False)
    pd.concat(events).to_csv(folder / "phases.csv", index=False)
    pd.DataFrame(runs).to_csv(folder / "runs.csv", index=False)
    (folder / "dl-energy-mapping.yaml").write_text(FOREIGN_MAPPING)


#: Shape name -> builder of its input folder.
RAW_SHAPES: dict[str, Callable[[Path], None]] = {
    "ours": ours,
    "ours-no-metrics": ours_without_metrics,
    "ours-one-run": ours_one_run,
    "ours-five-epochs": ours_five_epochs,
    "ours-cpu-only": ours_cpu_only,
    "codecarbon": codecarbon,
    "tidy-samples": tidy_samples,
}
