"""Notebooks 04 (trade-offs) and 05 (power behaviour) executed with papermill.

* seaa2023: the processed outputs of notebooks 02-03 are copied into a temporary project root,
  both notebooks run there, and their headline numbers are checked against values computed here
  with plain pandas/scipy from ``runs.parquet`` (and the published numbers, loosely).
* a synthetic CPU-only dataset (GPU columns NaN, epoch and phase labels present) checks that both
  notebooks complete, skip the GPU-only parts with a printed reason and use the epoch table.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import nbformat
import numpy as np
import pandas as pd
import pytest
from scipy import stats as ss

from helpers import runner
from helpers.core import datasets
from helpers.core.schema import EPOCH_COLUMNS, PROFILING_COLUMNS, RUN_COLUMNS, SAMPLE_EXTRA_COLUMNS

pytestmark = pytest.mark.slow

NOTEBOOKS = datasets.project_root() / "notebooks"
FAST_05 = {"sensitivity_runs": 8, "sensitivity_windows": [5, 10],
           "sensitivity_penalties": [None, 30.0], "estimate_starts_s": [0, 120, 300],
           "estimate_windows_s": [60, 300]}


def _execute(name: str, root: Path, monkeypatch, dataset: str, **params) -> str:
    """Run notebook ``name`` through ``helpers.runner`` with the project root at ``root`` (its
    ``notebooks/`` a link to the real one); return the notebook's printed text."""
    monkeypatch.setenv(datasets.PROJECT_ROOT_ENV, str(root))
    if not (root / "notebooks").exists():
        (root / "notebooks").symlink_to(NOTEBOOKS)
    out = runner.run_notebook(name, dataset, params)
    nb = nbformat.read(out, as_version=4)
    return "\n".join(o.get("text", "") for c in nb.cells if c.cell_type == "code"
                     for o in c.get("outputs", []) if o.get("output_type") == "stream")


def _reports(root: Path, dataset: str) -> Path:
    return root / "data_outputs" / dataset / "reports"


# --------------------------------------------------------------------------------------------
# seaa2023
# --------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def seaa_root(seaa2023_processed_root: Path, tmp_path_factory) -> Path:
    """A fresh project root with copies of the seaa2023 processed/interim outputs (built from
    the shared raw logs by the ``seaa2023_processed_root`` fixture)."""
    src = seaa2023_processed_root / "data_outputs" / "seaa2023"
    root = tmp_path_factory.mktemp("seaa_root")
    for rel in ("processed/runs.parquet", "processed/epochs.parquet",
                "interim/profiling.parquet"):
        (root / "data_outputs" / "seaa2023" / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(src / rel, root / "data_outputs" / "seaa2023" / rel)
    return root


def test_04_seaa2023_headlines(seaa_root, monkeypatch):
    text = _execute("04-trade-offs", seaa_root, monkeypatch, dataset="seaa2023")
    head = json.loads((_reports(seaa_root, "seaa2023") / "04-headlines.json").read_text())
    runs = pd.read_parquet(seaa_root / "data_outputs/seaa2023/processed/runs.parquet")
    per_image = runs["energy_j"] / runs["images_seen"]
    assert np.allclose(per_image, runs["energy_per_image_j"], rtol=1e-9)
    med = per_image.groupby([runs["environment"], runs["architecture"]]).median()
    for env, published in (("local-v2", 80.7), ("cloud", 63.9)):
        saving = 100 * (1 - med[(env, "mobilenet_v2")] / med[(env, "vgg16")])
        got = head["savings"][env]
        assert got["energy_saved_pct"] == pytest.approx(saving, rel=1e-9)
        assert got["energy_saved_pct"] == pytest.approx(published, abs=2.0)
        f1 = runs[runs["environment"] == env].groupby("architecture")["f1"].median()
        assert got["f1_saver"] == pytest.approx(f1["mobilenet_v2"])
        assert got["f1_lost"] == pytest.approx(f1["vgg16"] - f1["mobilenet_v2"])
        assert 0 < got["f1_lost"] < 0.02  # "< 2% F1" (published 0.97 vs 0.99)
        assert f"{saving:.1f}% less energy per image" in text
        assert head["median_energy_per_image_j"][env]["vgg16"] == pytest.approx(
            med[(env, "vgg16")])
    for env, sub in runs.groupby("environment"):
        rho = ss.spearmanr(sub["gpu_power_mean_w"], sub["gpu_usage_mean"]).statistic
        assert head["spearman_power_gpu_usage"][env] == pytest.approx(rho)
        assert rho == pytest.approx(0.98, abs=0.02)
    figs = seaa_root / "figures" / "seaa2023"
    assert {"04-pareto.pdf", "04-pareto.png", "04-interaction.pdf"} <= {
        p.name for p in figs.iterdir()}


def test_05_seaa2023_summary(seaa_root, monkeypatch):
    text = _execute("05-power-behaviour", seaa_root, monkeypatch, dataset="seaa2023", **FAST_05)
    summary = json.loads((_reports(seaa_root, "seaa2023") / "05-summary.json").read_text())
    runs = pd.read_parquet(seaa_root / "data_outputs/seaa2023/processed/runs.parquet")
    for env, sub in runs.groupby("environment"):
        rho = ss.spearmanr(sub["gpu_power_mean_w"], sub["gpu_usage_mean"]).statistic
        assert summary["spearman_power_gpu_usage"][env] == pytest.approx(rho)
    samples = pd.read_parquet(seaa_root / "data_outputs/seaa2023/interim/profiling.parquet",
                              columns=["run_id", "gpu_usage", "device_power_w"])
    samples = samples[samples["run_id"].isin(runs["run_id"])]
    gpu = samples["run_id"].map(runs.set_index("run_id")["gpu_name"])
    idle = samples[samples["gpu_usage"] == 0].groupby(gpu)["device_power_w"].median()
    for name, value in idle.items():
        got = summary["idle_baseline_w"][name]
        assert got["idle_power_w"] == pytest.approx(value) and got["method"] == "zero_utilisation"
    stab = pd.read_csv(_reports(seaa_root, "seaa2023") / "05-stabilisation-time.csv")
    assert len(stab) == len(runs) and stab["stabilisation"].notna().all()
    assert (stab["stabilisation"] <= runs.set_index("run_id").loc[stab["run_id"],
                                                                 "duration_s"].to_numpy()).all()
    assert summary["stabilisation_s"]["median"] == pytest.approx(stab["stabilisation"].median())
    assert "per-epoch stabilisation skipped" in text
    names = {p.name for p in (seaa_root / "figures" / "seaa2023").iterdir()}
    for fig in ("05-power-vs-usage", "05-power-limit-ratio", "05-timeseries",
                "05-stabilisation", "05-sensitivity"):
        assert f"{fig}.pdf" in names


# --------------------------------------------------------------------------------------------
# synthetic CPU-only dataset
# --------------------------------------------------------------------------------------------
def _cpu_only_dataset(root: Path, dataset: str = "synthcpu") -> None:
    """Write runs/epochs/profiling tables of 3 architectures × 5 runs, CPU-only, with events."""
    rng = np.random.default_rng(11)
    base_w = {"mobilenet_v2": 30.0, "resnet18": 45.0, "vgg16": 60.0}
    f1 = {"mobilenet_v2": 0.90, "resnet18": 0.92, "vgg16": 0.93}
    run_rows, epoch_rows, sample_parts = [], [], []
    n_epochs, epoch_s, train_size = 20, 15, 1000
    for arch, watts in base_w.items():
        for run in range(5):
            run_id = f"cpu/{arch}/{run:03d}"
            t = np.arange(20 + n_epochs * epoch_s, dtype=float)
            epoch = np.where(t < 20, np.nan, (t - 20) // epoch_s)
            in_epoch = (t - 20) % epoch_s
            phase = np.where(t < 20, "idle", np.where(in_epoch >= 12, "eval", "train"))
            p = np.where(t < 20, 8.0, watts) + rng.normal(0, 0.5, len(t))
            p[(epoch < 3)] *= 0.8  # warm-up
            sample = {c: np.nan for c in [*PROFILING_COLUMNS, *SAMPLE_EXTRA_COLUMNS]}
            sample.update(train_strategy="cpu", architecture=arch, run=run, gpu_name="none",
                          timestamp=(1_700_000_000_000 + t * 1000).astype("int64"),
                          dataset=dataset, run_id=run_id, elapsed_s=t, device_power_w=p,
                          cpu_power_w=p, cpu_usage=80.0, epoch=epoch, phase=phase,
                          gpu_index=0, source_file="synthetic")
            sample_parts.append(pd.DataFrame(sample))
            energy = float(np.trapezoid(p, t))
            for e in range(n_epochs):
                sel = epoch == e
                e_j = float(np.trapezoid(p[sel], t[sel]))
                epoch_rows.append({"dataset": dataset, "run_id": run_id, "epoch": e,
                                   "start_utc": pd.Timestamp(1_700_000_000 + 20 + e * epoch_s,
                                                             unit="s", tz="UTC"),
                                   "duration_s": float(epoch_s), "energy_j": e_j,
                                   "gpu_energy_j": np.nan, "power_mean_w": e_j / epoch_s,
                                   "val_accuracy": f1[arch], "val_f1": f1[arch]})
            row = {c: np.nan for c in RUN_COLUMNS}
            images = n_epochs * train_size
            row.update(dataset=dataset, run_id=run_id, environment="cpu",
                       environment_name="CPU only", architecture=arch, run=run,
                       gpu_name="none", start_utc=pd.Timestamp(1_700_000_000, unit="s", tz="UTC"),
                       duration_s=float(t[-1]), n_samples=len(t), sampling_period_s=1.0,
                       gpu_energy_method="unmeasured: no GPU", cpu_energy_j=energy,
                       cpu_energy_method="rapl", energy_j=energy, energy_source="cpu:rapl",
                       total_energy_j=energy, energy_kwh=energy / 3.6e6,
                       batch_size=32, train_size=train_size, epochs=n_epochs,
                       images_seen=images, f1=f1[arch] + rng.normal(0, 0.005),
                       accuracy=f1[arch], energy_per_image_j=energy / images,
                       time_per_image_s=float(t[-1]) / images, status="ok", return_code=0)
            run_rows.append(row)
    out = root / "data_outputs" / dataset
    (out / "processed").mkdir(parents=True)
    (out / "interim").mkdir(parents=True)
    pd.DataFrame(run_rows).to_parquet(out / "processed" / "runs.parquet")
    pd.DataFrame(epoch_rows, columns=list(EPOCH_COLUMNS)).to_parquet(
        out / "processed" / "epochs.parquet")
    pd.concat(sample_parts, ignore_index=True).to_parquet(out / "interim" / "profiling.parquet")


def test_notebooks_on_cpu_only_dataset(tmp_path, monkeypatch):
    _cpu_only_dataset(tmp_path)
    text04 = _execute("04-trade-offs", tmp_path, monkeypatch, dataset="synthcpu",
                      headline_envs={"cpu": None, "cloud": 63.9})
    assert "skipped training_gpu_usage_mean: no values" in text04
    skipped04 = pd.read_csv(_reports(tmp_path, "synthcpu") / "04-not-estimable.csv")
    assert {"variable training_gpu_usage_mean",
            "RQ2: environments compared within each architecture"} <= set(skipped04["analysis"])
    assert "RQ2 skipped: one environment only" in text04
    assert "two-way ANOVA skipped" in text04
    assert "headline mobilenet_v2 vs vgg16 on cloud skipped: no runs" in text04
    head = json.loads((_reports(tmp_path, "synthcpu") / "04-headlines.json").read_text())
    runs = pd.read_parquet(tmp_path / "data_outputs/synthcpu/processed/runs.parquet")
    med = runs.groupby("architecture")["energy_per_image_j"].median()
    assert head["savings"]["cpu"]["energy_saved_pct"] == pytest.approx(
        100 * (1 - med["mobilenet_v2"] / med["vgg16"]))
    assert "spearman_power_gpu_usage" not in head or not head["spearman_power_gpu_usage"]

    text05 = _execute("05-power-behaviour", tmp_path, monkeypatch, dataset="synthcpu",
                      **FAST_05)
    assert "GPU values absent (CPU-only dataset)" in text05
    assert "skipped: no GPU utilisation" in text05 and "skipped: no GPU power limit" in text05
    skipped05 = pd.read_csv(_reports(tmp_path, "synthcpu") / "05-not-estimable.csv")
    assert {"mean power vs GPU utilisation", "power / power limit"} <= set(
        skipped05["analysis"])
    summary = json.loads((_reports(tmp_path, "synthcpu") / "05-summary.json").read_text())
    samples = pd.read_parquet(tmp_path / "data_outputs/synthcpu/interim/profiling.parquet")
    idle = samples.loc[samples["phase"] == "idle", "device_power_w"].median()
    assert summary["idle_baseline_w"]["none"]["method"] == "phase:idle"
    assert summary["idle_baseline_w"]["none"]["idle_power_w"] == pytest.approx(idle)
    assert summary["stabilisation_epoch"]["median"] == 3  # warm-up of 3 epochs
    assert summary["stabilisation_s"]["median"] == pytest.approx(20 + 3 * 15, abs=10)
    assert "spearman_power_gpu_usage" not in summary
