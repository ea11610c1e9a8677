"""Notebook 06's "before training" section (stage06_estimators.before_training) on small
datasets of three shapes: two GPUs, CPU-only runs, too few runs."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from figure_checks import assert_drawn
from matplotlib.figure import Figure

from helpers.core import datasets
from helpers.core.io import write_parquet
from helpers.estimate import pretraining as pt
from helpers.stages import common
from helpers.stages import stage06_estimators as study

ARCHS = ("resnet18", "resnet50", "mobilenet_v2", "vgg16", "efficientnet_b0")
COEF = {"eta_compute": 0.5, "eta_memory": 0.6, "kernel_us": 5.0, "host_op_us": 12.0,
        "host_sample_us": 100.0, "idle": 0.3, "busy_compute": 0.95, "busy_memory": 0.75}


def _write(root, name: str, gpus: dict[str, str], archs=ARCHS) -> None:
    rows = [{"run_id": f"{env}/{a}/{bs:03d}", "dataset": name, "environment": env,
             "architecture": a, "gpu_name": gpu, "batch_size": bs, "epochs": 4,
             "train_size": 1024, "val_size": 256, "input_size_px": 224, "gflops": np.nan,
             "params": np.nan, "gpu_power_limit_w": np.nan, "gpu_usage_mean": 0.9}
            for env, gpu in gpus.items() for a in archs for bs in (32, 64)]
    runs = pd.DataFrame(rows)
    X = pt.run_inputs(runs).X
    times = pt.epoch_times(X, COEF)
    runs["duration_s"] = 4 * np.nan_to_num(times.epoch_s, nan=1.0)
    cap = X["power_cap_w"].fillna(50.0).to_numpy()
    frac = np.nan_to_num(pt.power_fraction(times, COEF), nan=0.5)
    runs["energy_j"] = runs["duration_s"] * cap * frac
    write_parquet(runs, root / "data_outputs" / name / "processed" / "runs.parquet")


@pytest.fixture
def root(tmp_path, monkeypatch):
    """A temporary project root; figures are built and checked but neither laid out nor
    written (saving is tested in test_common)."""
    monkeypatch.setenv(datasets.PROJECT_ROOT_ENV, str(tmp_path))
    monkeypatch.setattr(common, "save_figure", lambda *args, **kwargs: [])
    monkeypatch.setattr(Figure, "tight_layout", lambda self, *args, **kwargs: None)
    return tmp_path


def _section(name: str):
    inputs = study.load_inputs(name)
    splits, _ = study.make_splits(inputs.runs)
    fits = study.PreFits(splits, study.pre_estimates(inputs.runs, splits, []))
    return study.before_training(name, inputs, fits, n_boot=50)


def test_two_gpus_every_split_and_the_exported_model(root):
    _write(root, "two", {"a100": "NVIDIA A100-SXM4-80GB", "l4": "NVIDIA L4"})
    errors, section = _section("two")
    assert set(errors["split"]) == {"random_30pct_test", "leave_one_architecture_out",
                                    "leave_one_environment_out"}
    loao = errors[errors["split"] == "leave_one_architecture_out"].set_index("method")
    # runs made by a roofline: it predicts unseen architectures and GPUs almost exactly
    assert loao.loc["roofline_specs", "value"] < 5
    loeo = errors[errors["split"] == "leave_one_environment_out"].set_index("method")
    assert loeo.loc["roofline_specs", "value"] < 5
    assert loao["n_runs"].eq(20).all() and loao["n_groups"].eq(5).all()
    assert ("lookup_baseline on leave_one_architecture_out",
            "architecture and batch size never seen in training") in section.not_estimable
    reports = datasets.output_dir("two", "reports")
    model = json.loads((reports / study.PRETRAINING_MODEL_FILE).read_text())
    assert model["coefficients"]["eta_compute"] == pytest.approx(0.5, rel=0.1)
    assert (reports / "06-pretraining-by-architecture.csv").exists()
    table = section.tables["acceptance"]
    assert table["check"].str.contains("roofline_specs on leave_one_environment_out").any()
    assert_drawn(list(section.figures.items()))
    assert set(section.figures) == {"06-pretraining-predicted-vs-measured",
                                    "06-pretraining-mape"}


def test_cpu_runs_are_not_estimable_by_the_roofline_with_the_reason(root):
    _write(root, "cpu", {"cpu-local": "none"})
    errors, section = _section("cpu")
    reasons = dict(section.not_estimable)
    assert "CPU-only run" in reasons["roofline on leave_one_architecture_out"]
    assert "CPU-only run" in reasons["exported roofline model"]
    assert "ridge_log" in set(errors["method"])  # graph features alone still predict
    assert_drawn(list(section.figures.items()))


def test_too_few_runs_says_why(root):
    _write(root, "few", {"a100": "NVIDIA A100-SXM4-80GB"}, archs=ARCHS[:2])
    errors, section = _section("few")
    assert errors.empty
    assert section.not_estimable == [("before-training estimates",
                                      "no evaluation split (needs at least 10 runs)")]
    assert_drawn(list(section.figures.items()))
