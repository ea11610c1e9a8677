"""Training driver: FLOPs, data, metrics, learning, and one measured run under the sampler."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import torch
from torch import nn

from helpers.collect import training
from helpers.collect.devices.fake_nvml import FakeNvmlBackend
from helpers.collect.training import RunSpec
from helpers.readers.project import read_run


@pytest.fixture(autouse=True)
def _restore_torch_threads():
    """Runs set ``torch.set_num_threads``; give other tests the process default back."""
    threads = torch.get_num_threads()
    yield
    torch.set_num_threads(threads)


def test_count_flops_equals_analytic_count_for_conv_and_linear() -> None:
    n, c_in, c_out, k, side, classes = 3, 3, 5, 3, 8, 4
    model = nn.Sequential(nn.Conv2d(c_in, c_out, k, padding=1), nn.ReLU(), nn.Flatten(),
                          nn.Linear(c_out * side * side, classes))
    conv = 2 * n * c_out * side * side * c_in * k * k  # multiply-add = 2 FLOPs, bias not counted
    linear = 2 * n * (c_out * side * side) * classes
    assert training.count_flops(model, (n, c_in, side, side)) == conv + linear
    assert model.training  # mode restored


def test_model_flops_positive_and_proportional_to_batch() -> None:
    one = training.count_model_flops("resnet18", 10, 32, 1)
    four = training.count_model_flops("resnet18", 10, 32, 4)
    assert one > 0
    assert four == 4 * one


@pytest.mark.parametrize("arch", sorted(training.ARCHITECTURES))
def test_every_architecture_builds_untrained_with_num_classes(arch: str) -> None:
    with torch.device("meta"):
        model = training.build_model(arch, 7, 32)
        out = model.eval()(torch.zeros(2, 3, 32, 32))
    assert tuple(out.shape) == (2, 7)
    momenta = [m.momentum for m in model.modules()
               if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    assert all(m >= training.MIN_BN_MOMENTUM for m in momenta)


def test_unknown_names_raise_with_the_known_ones() -> None:
    with pytest.raises(ValueError, match="resnet18"):
        training.build_model("resnet19", 10, 32)
    with pytest.raises(ValueError, match="synthetic"):
        training.load_data(RunSpec(architecture="resnet18", dataset="cifar10"))


def test_synthetic_data_is_seeded_balanced_and_standardised() -> None:
    spec = RunSpec(architecture="resnet18", train_size=60, val_size=30, num_classes=6,
                   input_size_px=16, data_seed=5)
    a, b = training.load_data(spec), training.load_data(spec)
    c = training.load_data(RunSpec(**{**spec.to_dict(), "data_seed": 6}))
    assert torch.equal(a.x_train, b.x_train) and torch.equal(a.y_val, b.y_val)
    assert not torch.equal(a.x_train, c.x_train)
    assert a.x_train.shape == (60, 3, 16, 16) and a.base_px == 16
    assert np.bincount(a.y_train.numpy()).tolist() == [10] * 6
    assert a.x_train.mean(dim=(0, 2, 3)).abs().max() < 1e-5


def test_digits_dataset_is_split_without_overlap() -> None:
    spec = RunSpec(architecture="resnet18", dataset="digits", train_size=100, val_size=50)
    data = training.load_data(spec)
    assert data.x_train.shape == (100, 3, 8, 8) and data.num_classes == 10
    with pytest.raises(ValueError, match="1797"):
        training.load_data(RunSpec(architecture="resnet18", dataset="digits", train_size=1800))


def test_macro_f1_counts_absent_classes() -> None:
    y = np.array([0, 0, 1, 1])
    assert training.macro_f1(y, y, 2) == 1.0
    assert training.macro_f1(y, y, 4) == 0.5  # two classes never present nor predicted


@pytest.mark.parametrize("seed", range(5))
def test_macro_f1_equals_scikit_learn(seed: int) -> None:
    from sklearn.metrics import f1_score

    rng = np.random.default_rng(seed)
    y_true, y_pred = rng.integers(0, 6, 40), rng.integers(0, 5, 40)
    expected = f1_score(y_true, y_pred, labels=list(range(7)), average="macro", zero_division=0)
    assert training.macro_f1(y_true, y_pred, 7) == pytest.approx(expected, abs=1e-12)


def test_early_stopping_patience_on_validation_loss() -> None:
    stopper = training._EarlyStopping(patience=2, min_delta=0.0)
    assert [stopper.should_stop(v) for v in (1.0, 0.9, 0.95, 0.91)] == [False, False, False, True]
    assert not any(training._EarlyStopping(None, 0.0).should_stop(1.0) for _ in range(5))


def test_learnable_synthetic_data_is_learnt_above_chance() -> None:
    torch.set_num_threads(1)
    spec = RunSpec(architecture="resnet18", train_size=64, val_size=60, input_size_px=16,
                   batch_size=16, synthetic_noise_std=1.0, seed=1)
    training.seed_everything(spec.seed)
    data = training.load_data(spec)
    model = training.build_model(spec.architecture, data.num_classes, spec.input_size_px)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    gen = torch.Generator().manual_seed(spec.seed)
    losses = [training.train_epoch(model, optimizer, data, spec, gen) for _ in range(3)]
    _, accuracy, f1 = training.evaluate(model, data, spec)
    assert 0.0 <= f1 <= 1.0 and 0.0 <= accuracy <= 1.0
    assert losses[-1] < losses[0]
    assert f1 > 0.5  # chance is 0.1


def _events(run_dir) -> pd.DataFrame:
    return read_run(run_dir).events


def meta_training_s(run_dir) -> float:
    return json.loads((run_dir / "metadata.json").read_text())["training_duration_s"]


def test_train_run_marks_phases_and_records_metadata(tmp_path) -> None:
    spec = RunSpec(architecture="resnet18", environment="test-env", run=2, train_size=32,
                   val_size=16, input_size_px=16, batch_size=16, epochs=2, idle_s=0.2,
                   tail_s=0.3, warmup_batches=1, num_threads=1, seed=3)
    run_dir = tmp_path / "raw" / "test-env" / "resnet18" / "002"
    fake = FakeNvmlBackend()
    result = training.train_run(spec, run_dir, {"interval_s": 0.05, "gpu_backend": fake})
    assert result.status == "ok" and result.epochs_trained == 2
    events = _events(run_dir)
    assert events["event"].tolist() == [
        "run_start", "idle_start", "idle_end", "warmup_start",
        "epoch_start", "eval_start", "epoch_end", "epoch_start", "eval_start", "epoch_end",
        "tail_start", "run_end"]
    t = events.set_index("event")["monotonic_s"]
    assert t["run_end"] - t["tail_start"] >= 0.3  # the recorded idle tail
    assert meta_training_s(run_dir) < t["run_end"] - t["warmup_start"] - 0.25  # tail excluded
    ends = events[events["event"] == "epoch_end"]
    assert ends["epoch"].tolist() == [0, 1]
    info = ends["info"].iloc[-1]
    assert {"val_accuracy", "val_f1", "train_loss", "val_loss"} <= set(info)
    meta = json.loads((run_dir / "metadata.json").read_text())
    assert meta["status"] == "ok" and meta["return_code"] == 0
    assert meta["architecture"] == "resnet18" and meta["run"] == 2
    assert meta["flops_per_forward"] == training.count_model_flops("resnet18", 10, 16, 16)
    assert meta["flops_per_image"] == meta["flops_per_forward"] / 16 > 0
    assert meta["params"] == result.params > 0
    assert meta["epochs_trained"] == 2 and meta["epochs_planned"] == 2
    assert meta["f1"] == info["val_f1"] and 0.0 <= meta["f1"] <= 1.0
    assert meta["dataset"] == "synthetic" and meta["train_size"] == 32
    assert meta["torch_version"] == torch.__version__ and meta["device"] == "cpu"


def test_train_run_failure_is_recorded_and_raised(tmp_path) -> None:
    spec = RunSpec(architecture="resnet18", train_size=8, batch_size=16, idle_s=0.0)
    run_dir = tmp_path / "e" / "resnet18" / "000"
    with pytest.raises(ValueError, match="smaller than batch_size"):
        training.train_run(spec, run_dir, {"gpu_backend": FakeNvmlBackend(unavailable="x")})
    meta = json.loads((run_dir / "metadata.json").read_text())
    assert meta["status"].startswith("failed: ValueError") and meta["return_code"] == 1


def test_same_spec_gives_identical_metrics(tmp_path) -> None:
    spec = RunSpec(architecture="mobilenet_v3_small", train_size=32, val_size=16,
                   input_size_px=16, batch_size=16, epochs=2, idle_s=0.0, num_threads=1, seed=4)
    kwargs = {"interval_s": 0.05, "gpu_backend": FakeNvmlBackend(unavailable="test")}
    first = training.train_run(spec, tmp_path / "a" / "x" / "000", kwargs)
    kwargs["gpu_backend"] = FakeNvmlBackend(unavailable="test")
    second = training.train_run(spec, tmp_path / "b" / "x" / "000", kwargs)
    strip = [(e.train_loss, e.val_loss, e.val_accuracy, e.val_f1) for e in first.epochs]
    assert strip == [(e.train_loss, e.val_loss, e.val_accuracy, e.val_f1) for e in second.epochs]
