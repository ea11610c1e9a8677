"""Pre-training estimators (helpers.estimate.pretraining) on synthetic runs made by a known
roofline, and on run tables shaped like the real datasets."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from helpers.core import gpu_specs
from helpers.estimate import architecture_table
from helpers.estimate import evaluation as ev
from helpers.estimate import pretraining as pt

ARCHS = ["resnet18", "resnet50", "mobilenet_v2", "vgg16", "efficientnet_b0", "vit_b_16",
         "mobilenet_v3_large", "shufflenet_v2_x0_5"]
GPUS = {"a100": "NVIDIA A100-SXM4-80GB", "t4": "Tesla T4", "l4": "NVIDIA L4"}
TRUE_TIME = {"eta_compute": 0.55, "eta_memory": 0.7, "kernel_us": 6.0, "host_op_us": 15.0,
             "host_sample_us": 150.0}
TRUE_POWER = {"idle": 0.3, "busy_compute": 0.95, "busy_memory": 0.7}


def synthetic_runs(noise: float = 0.0, seed: int = 0) -> pd.DataFrame:
    """Runs of torchvision models at 224 px on three GPUs, two batch sizes, whose duration and
    energy come from the roofline with :data:`TRUE_TIME` and :data:`TRUE_POWER`."""
    rng = np.random.default_rng(seed)
    rows = [{"run_id": f"{env}/{a}/{bs}", "dataset": "synthetic", "environment": env,
             "architecture": a, "gpu_name": name, "batch_size": bs, "epochs": 3 + i % 4,
             "train_size": 2000, "val_size": 500, "input_size_px": 224,
             "gpu_power_limit_w": np.nan, "gflops": np.nan}
            for env, name in GPUS.items() for i, a in enumerate(ARCHS) for bs in (32, 128)]
    runs = pd.DataFrame(rows)
    X = pt.run_inputs(runs).X
    times = pt.epoch_times(X, TRUE_TIME)
    duration = X["epochs"].to_numpy() * times.epoch_s
    power = X["power_cap_w"].to_numpy() * pt.power_fraction(times, TRUE_POWER)
    runs["training_duration_s"] = duration * np.exp(noise * rng.standard_normal(len(runs)))
    runs["training_energy_j"] = (runs["training_duration_s"] * power
                                 * np.exp(noise * rng.standard_normal(len(runs))))
    return runs


@pytest.fixture(scope="module")
def clean():
    runs = synthetic_runs()
    return runs, pt.run_inputs(runs)


def test_roofline_recovers_known_coefficients(clean):
    runs, inputs = clean
    model = pt.RooflineEnergy(per_environment=False, prior_weight=1e-6).fit(
        inputs.X, runs["training_energy_j"], runs["training_duration_s"])
    c = model.coefficients()
    for name in ("eta_compute", "eta_memory", "kernel_us"):
        assert c[name] == pytest.approx(TRUE_TIME[name], rel=0.05), name
    for name in ("host_op_us", "host_sample_us"):
        assert c[name]["all"] == pytest.approx(TRUE_TIME[name], rel=0.1), name
    for name, value in TRUE_POWER.items():
        assert c[name] == pytest.approx(value, rel=0.05), name
    pred = model.predict(inputs.X)
    assert np.max(np.abs(pred / runs["training_energy_j"] - 1)) < 0.01


def test_unseen_gpu_is_predicted_from_its_specs(clean):
    runs, inputs = clean
    held = (runs["environment"] == "t4").to_numpy()
    model = pt.RooflineEnergy(per_environment=False, prior_weight=1e-6).fit(
        inputs.X[~held], runs["training_energy_j"][~held], runs["training_duration_s"][~held])
    pred = model.predict(inputs.X[held])
    assert ev.mape_pct(runs["training_energy_j"][held], pred) < 2


def test_intervals_cover_unseen_architectures():
    runs = synthetic_runs(noise=0.1, seed=1)
    inputs = pt.run_inputs(runs)
    res = pt.out_of_fold(inputs, runs["training_energy_j"], runs["training_duration_s"],
                         ev.leave_one_group_out(runs["architecture"]), runs["architecture"],
                         ["roofline_specs"], coverage=0.9)
    y = runs["training_energy_j"]
    inside = (res.low["roofline_specs"] <= y) & (y <= res.high["roofline_specs"])
    assert inside.mean() >= 0.8
    assert (res.high["roofline_specs"] > res.low["roofline_specs"]).all()


def test_grouped_splits_never_see_the_held_out_architecture(clean):
    runs, inputs = clean
    y = runs["training_energy_j"].copy()
    splits = ev.leave_one_group_out(runs["architecture"])
    ev.check_group_disjoint(splits, runs["architecture"])
    base = pt.out_of_fold(inputs, y, runs["training_duration_s"], splits, None,
                          ["roofline", "ridge_log", "lookup_baseline"])  # no intervals
    # the lookup never saw the held-out architecture: nothing to look up
    assert base.estimates["lookup_baseline"].isna().all()
    assert base.reasons["lookup_baseline"].str.contains("never seen").all()
    # spoiling the held-out architecture's measurements changes none of its predictions
    vgg = (runs["architecture"] == "vgg16").to_numpy()
    spoiled = y.where(~vgg, y * 10)
    again = pt.out_of_fold(inputs, spoiled, runs["training_duration_s"], splits, None,
                           ["roofline", "ridge_log"])
    for m in ("roofline", "ridge_log"):
        assert np.allclose(again.estimates[m][vgg], base.estimates[m][vgg]), m


def test_baselines():
    runs = synthetic_runs().query("environment == 'a100'").reset_index(drop=True)
    inputs = pt.run_inputs(runs)
    y = runs["training_energy_j"].to_numpy()
    lookup = pt.LookupBaseline().fit(inputs.X, y)
    assert np.allclose(lookup.predict(inputs.X), y)  # one run per key: it recognises them
    loglin = pt.LogLinearBaseline().fit(inputs.X, y)
    assert loglin.columns_ == ["log_flops", "log_params", "batch_size", "log_epochs"]
    assert np.all(loglin.predict(inputs.X) > 0)


def test_run_inputs_recipes_and_reasons():
    runs = pd.DataFrame({
        "dataset": ["ee-training", "seaa2023", "collected", "collected"],
        "environment": ["rtx", "cloud", "cpu-local", "x"],
        "architecture": ["resnet18", "vgg16", "resnet18", "unknown_net"],
        "gpu_name": ["1 x NVIDIA GeForce RTX 3090", "NVIDIA GeForce RTX 3090", "none",
                     "NVIDIA H100 80GB HBM3"],
        "batch_size": [64, 32, 32, 32], "epochs": [50, 80, 5, 5],
        "train_size": [np.nan, 23807, 96, 96], "val_size": [np.nan, 10203, 96, 96],
        "image_dataset": ["cifar10", None, "synthetic", "synthetic"],
        "input_size_px": [np.nan, np.nan, 32, 32],
        "gpu_power_limit_w": [np.nan, 350.0, np.nan, 500.0]})
    inputs = pt.run_inputs(runs)
    X = inputs.X
    assert X.loc[0, "train_samples"] == 50_000 and X.loc[0, "val_samples"] == 10_000
    assert X.loc[0, "train_steps"] == 781 and X.loc[0, "val_steps"] == 157
    assert X.loc[0, "precision"] == "fp16"
    assert X.loc[0, "peak_conv_flops"] == pytest.approx(71e12)
    assert X.loc[1, "train_steps"] == 23807 // 32 and X.loc[1, "val_steps"] == 10203 // 32
    assert X.loc[1, "frozen_epochs"] == 10
    assert X.loc[1, "peak_conv_flops"] == pytest.approx(35.58e12)
    assert X.loc[2, "train_steps"] == 3 and X.loc[2, "matmul_precision"] == "fp32"
    assert X.loc[3, "power_cap_w"] == 500.0  # a lowered limit caps the 700 W TDP
    assert X.loc[0, "power_cap_w"] == 350.0  # no limit recorded: the spec TDP
    assert "CPU-only" in inputs.spec_reasons[2]
    assert "not in the feature table" in inputs.reasons[3]
    res = pt.out_of_fold(inputs, pd.Series([1e6, 1e6, 50.0, 60.0]),
                         pd.Series([1e3, 1e3, 5.0, 6.0]), [(np.array([0, 1]),
                                                            np.array([2, 3]))])
    assert "CPU-only" in res.reasons.loc[2, "roofline"]
    assert "not in the feature table" in res.reasons.loc[3, "ridge_log"]


def test_power_cap():
    assert list(pt.power_cap_w([240.0, np.nan, 500.0], [220.0, 350.0, np.nan])) == [
        220.0, 350.0, 500.0]


def test_export_and_predict_for_a_new_architecture_and_gpu(clean, tmp_path):
    runs, inputs = clean
    model, why = pt.fit_all(inputs, runs["training_energy_j"], runs["training_duration_s"],
                            "roofline_specs", runs["architecture"])
    assert why == ""
    path = tmp_path / "model.json"
    data = pt.export_roofline(model, "synthetic", path)
    assert json.loads(path.read_text())["coefficients"] == data["coefficients"]
    features = architecture_table.read_table().query(
        "architecture == 'resnet50' and input_size_px == 224 and source == 'torchvision'"
    ).iloc[0].to_dict()
    energy, (low, high) = pt.predict_training_energy(features, "NVIDIA L4", 128, 4, 2000,
                                                     path, val_size=500)
    row = runs.query("environment == 'l4' and architecture == 'resnet50' and batch_size == 128")
    per_epoch = row["training_energy_j"].iloc[0] / row["epochs"].iloc[0]
    assert energy == pytest.approx(4 * per_epoch, rel=0.02)
    assert low < energy < high
    # an RTX 4090 is in no run: predicted from its specs alone, and faster than the L4
    on_4090 = pt.predict_training(features, gpu_specs.lookup("RTX 4090"), 128, 4, 2000, data,
                                  val_size=500)
    on_l4 = pt.predict_training(features, "NVIDIA L4", 128, 4, 2000, data, val_size=500)
    assert on_4090["duration_s"] < on_l4["duration_s"]
    assert on_4090["energy_j"] == pytest.approx(on_4090["duration_s"] * on_4090["power_w"])
    with pytest.raises(pt.NotEstimableError):
        pt.predict_training_energy(features, "Voodoo 2", 128, 4, 2000, data)
    with pytest.raises(FileNotFoundError, match="no exported model"):
        pt.predict_training_energy(features, "NVIDIA L4", 128, 4, 2000, "no-such-dataset")
