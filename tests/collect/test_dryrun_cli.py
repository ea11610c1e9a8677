"""Dry-run command (helpers.collect.dryrun): arguments, models, the window loop, and a real
dry run of a tiny model on the CPU."""

from __future__ import annotations

import json

import pytest
import torch

from helpers.collect import dryrun
from helpers.estimate import dryrun as core
from helpers.readers.project import read_run

BASE = ["--model", "shufflenet_v2_x0_5", "--batch-size", "8", "--epochs", "3",
        "--train-size", "64"]


@pytest.fixture(autouse=True)
def _restore_torch_threads():
    """Dry runs set ``torch.set_num_threads``; give other tests the process default back."""
    threads = torch.get_num_threads()
    yield
    torch.set_num_threads(threads)


@pytest.mark.parametrize(("extra", "message"), [
    (["--model", "no_such_net"], "unknown model 'no_such_net'"),
    (["--model", "keras:resnet18"], "prefix must be torchvision: or timm:"),
    (["--batch-size", "0"], "batch size must be >= 1"),
    (["--train-size", "4"], "train size (4) must be at least the batch size (8)"),
    (["--budget-s", "0"], "budget must be in (0, 600]"),
    (["--epochs", "0"], "epochs must be >= 1"),
    (["--device", "tpu"], "device must be auto, cpu, cuda or cuda:N"),
    (["--eval-share", "1"], "eval share must be in [0, 1)"),
    (["--optimizer", "lbfgs"], "optimizer must be adam or sgd"),
])
def test_bad_arguments_exit_2_with_the_reason(extra, message, capsys, tmp_path):
    assert dryrun.main([*BASE, "--out", str(tmp_path), *extra]) == 2
    assert message in capsys.readouterr().err
    assert not any(tmp_path.iterdir())  # nothing measured, nothing written


def test_missing_argument_exits_2(capsys):
    assert dryrun.main(["--model", "resnet18"]) == 2
    assert "required" in capsys.readouterr().err


def test_cuda_without_a_gpu_is_refused_before_measuring():
    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    config = dryrun.DryRunConfig("resnet18", 8, 1, 64, device="cuda")
    with pytest.raises(ValueError, match="CUDA is not available"):
        config.check()


def test_models_come_from_torchvision_first_then_timm():
    assert dryrun.model_source("resnet18") == "torchvision"
    assert dryrun.model_source("timm:resnet18") == "timm"
    assert dryrun.model_source("xception41") == "timm"
    with pytest.raises(ValueError, match="not a torchvision classification model"):
        dryrun.model_source("torchvision:xception41")


def test_timm_model_is_built_untrained_at_the_run_size():
    model = dryrun.build_model("timm:test_vit", num_classes=7, input_size_px=32)
    out = model(torch.zeros(2, 3, 32, 32))
    assert out.shape == (2, 7)


class _Marks:
    """Records what the window loop marks (stands in for the sampler)."""

    def __init__(self) -> None:
        self.marks: list[tuple[str, float]] = []

    def mark(self, event: str, **info: float) -> None:
        self.marks.append((event, info["steps"]))


class _Clock:
    """A virtual clock for the window loop (``monotonic`` and ``perf_counter``)."""

    def __init__(self) -> None:
        self.now = 100.0

    def monotonic(self) -> float:
        return self.now

    perf_counter = monotonic


def test_window_loop_starts_with_one_unit_then_sizes_windows_to_the_target(monkeypatch):
    clock, sampler, units = _Clock(), _Marks(), []
    monkeypatch.setattr(dryrun, "time", clock)

    def work(k: int) -> float:
        clock.now += 0.3 if not units else 0.01 * k  # a slow first unit, then 10 ms a unit
        units.append(k)
        return 2.0 * k

    deadline = clock.now + 5.0
    n = dryrun._run_windows(sampler, work, "train_window_end", deadline, target_s=0.6)
    assert clock.now <= deadline  # no window started that could not fit
    assert units[:3] == [1, 2, 60]  # one unit; 0.6 s at the first unit's pace; then at 10 ms
    assert all(k == 60 for k in units[2:-1])
    assert units[-1] * 0.01 >= dryrun.MIN_WINDOW_S / 2  # the last one cut to fit, not tiny
    assert n == len(units) == len(sampler.marks)
    assert [s for _, s in sampler.marks] == [2.0 * k for k in units]


@pytest.mark.slow
def test_dry_run_of_a_tiny_model_writes_its_run_folder_and_prediction(tmp_path, capsys):
    argv = [*BASE, "--val-size", "16", "--input-size", "32", "--budget-s", "3",
            "--device", "cpu", "--num-threads", "1", "--out", str(tmp_path)]
    assert dryrun.main(argv) == 0
    out = capsys.readouterr().out
    run_dir = tmp_path / "dry-run" / "shufflenet_v2_x0_5" / "000"
    assert f"run folder: {run_dir}" in out
    assert "predicted run: 3 epochs x 8 steps + 2 evaluation batches" in out
    run = read_run(run_dir)
    assert run.metadata["status"] == "ok"
    events = list(run.events["event"])
    assert events[:3] == ["run_start", "warmup_start", core.DRY_RUN_START]
    assert events.count("train_window_end") >= 3 and "eval_window_end" in events
    saved = json.loads((run_dir / dryrun.PREDICTION_FILE).read_text())
    est = saved["estimate"]
    assert est["method"] == core.METHOD
    assert est["energy_method"].startswith("cpu:")
    assert 0 < est["energy_j"] and 0 < est["time_s"]
    # the measured windows: the prediction is about 24 training steps and 6 evaluation batches
    once_s, _, wins, _ = core.dry_run_windows(run)
    train = [w for w in wins if w.kind == core.TRAIN]
    steady_s = sum(w.duration_s for w in train[1:]) / sum(w.steps for w in train[1:])
    assert 24 * steady_s * 0.5 < est["time_s"] < once_s + 24 * steady_s * 3 + 5
    if est["energy_low_j"] is not None:  # null when too few steady windows (a note says so)
        assert est["energy_low_j"] <= est["energy_j"] <= est["energy_high_j"]
    else:
        assert any("no energy interval" in note for note in est["notes"])
    assert saved["config"]["budget_s"] == 3
