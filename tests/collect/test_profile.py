"""``python -m helpers profile`` on real processes: a plain PyTorch script's run folder (read by the
project reader, one phase event per epoch it ran), exit codes passed through (a signal's as
128 + N), SIGTERM forwarded to the command, a second profiler of the same GPUs refused, and bad
use refused before anything is written. The fake GPUs (``--fake-gpus``) stand in for NVML."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from profiled import child_env, only_run, profiler, run_profiler

from helpers.collect import profile
from helpers.collect.devices.fake_nvml import FakeNvmlBackend
from helpers.collect.sampler import Sampler
from helpers.readers.project import discover_runs, read_run

#: A tiny real training on this CPU (about 0.5 s per epoch) that reports to the profiler.
TRAIN_SCRIPT = '''
import sys
import time

import torch

from helpers import marks

torch.manual_seed(0)
torch.set_num_threads(1)
epochs = int(sys.argv[1])
x = torch.randn(2048, 64)
y = (x[:, 0] > 0).long()
model = torch.nn.Sequential(torch.nn.Linear(64, 512), torch.nn.ReLU(), torch.nn.Linear(512, 2))
opt = torch.optim.SGD(model.parameters(), lr=0.05)
marks.metadata(params=sum(p.numel() for p in model.parameters()), batch_size=64,
               epochs_planned=epochs, dataset="synthetic", train_size=len(x))
for epoch in range(epochs):
    marks.epoch_start(epoch)
    began, passes = time.monotonic(), 0
    while passes < 2 or time.monotonic() - began < 0.4:  # at least 0.4 s: 4 samples an epoch
        passes += 1
        for i in range(0, len(x), 64):
            opt.zero_grad()
            torch.nn.functional.cross_entropy(model(x[i:i + 64]), y[i:i + 64]).backward()
            opt.step()
    marks.eval_start(epoch)
    with torch.no_grad():
        accuracy = (model(x).argmax(1) == y).float().mean().item()
    marks.epoch_end(epoch, val_accuracy=accuracy, val_f1=accuracy)
marks.metadata(accuracy=accuracy, f1=accuracy, epochs_trained=epochs)
print("trained", epochs, "epochs")
'''
#: Waits for SIGTERM, then exits 7 (so the exit code proves the signal reached it).
WAIT_SCRIPT = '''
import signal, sys, time
def bye(signum, frame):
    print("child got", signal.Signals(signum).name, flush=True)
    sys.exit(7)
signal.signal(signal.SIGTERM, bye)
print("ready", flush=True)
time.sleep(60)
'''
EPOCHS = 3


@pytest.fixture(scope="module")
def torch_run(tmp_path_factory) -> tuple[subprocess.CompletedProcess, Path]:
    """The training script of 3 epochs through the profiler (no GPU: NVML, if any, else none)."""
    tmp = tmp_path_factory.mktemp("profile_torch")
    (tmp / "train_tiny.py").write_text(TRAIN_SCRIPT)
    done = run_profiler(tmp, "--", sys.executable, "train_tiny.py", str(EPOCHS))
    return done, only_run(tmp)


@pytest.mark.slow
def test_a_plain_pytorch_script_gives_a_run_folder_with_its_epochs(torch_run):
    done, run_dir = torch_run
    assert done.returncode == 0, done.stderr
    assert "trained 3 epochs" in done.stdout
    assert run_dir.parts[-3:] == ("test", "train_tiny", "000")
    run = read_run(run_dir)
    assert run.skips == []
    ev = run.events
    for name in ("epoch_start", "eval_start", "epoch_end"):
        assert ev.loc[ev["event"] == name, "epoch"].tolist() == list(range(EPOCHS)), name
    assert ev["event"].iloc[0] == "run_start" and ev["event"].iloc[-1] == "run_end"
    ends = ev[ev["event"] == "epoch_end"]
    assert all(0.5 <= info["val_accuracy"] <= 1 for info in ends["info"])
    edge_times = set(run.samples["monotonic_s"])
    assert set(ev["monotonic_s"]) <= edge_times, "every event has its edge sample"
    meta = run.metadata
    assert (meta["status"], meta["return_code"]) == ("ok", 0)
    assert meta["params"] == 64 * 512 + 512 + 512 * 2 + 2
    assert (meta["epochs_trained"], meta["train_size"], meta["dataset"]) == (
        EPOCHS, 2048, "synthetic")
    marks_report = meta["profile"]["marks"]
    assert marks_report["counts"]["recorded events"] == 3 * EPOCHS
    assert marks_report["counts"]["recorded metadata"] == 2
    figures = meta["profile"]["energy"]
    assert figures["cpu_energy_j"] > 0 and figures["n_epochs_marked"] == EPOCHS
    assert "kWh" in done.stderr and "CO2e" in done.stderr
    assert figures["cpu_energy_method"] in done.stderr


@pytest.mark.slow
def test_a_profiled_run_goes_through_notebooks_02_to_06(torch_run, tmp_path, monkeypatch):
    """The stage calls of notebooks 02-06 in-process (tests/stage_calls.py) on the folder."""
    import stage_calls as fs

    from helpers.core import datasets
    from helpers.stages import stage02_merge

    _, run_dir = torch_run
    monkeypatch.setenv(datasets.PROJECT_ROOT_ENV, str(tmp_path))
    from helpers.stages import common

    monkeypatch.setattr(common, "save_figure", lambda *args, **kwargs: [])
    merged = stage02_merge.merge_dataset("profiled", data_dir=str(run_dir.parents[2]))
    assert merged.run_index["run_id"].tolist() == ["test/train_tiny/000"]
    assert merged.run_index["epochs"].tolist() == [EPOCHS]
    fs.write_interim(merged, "profiled")
    sections = fs.run_analysis("profiled", ())
    assert set(sections) == {"03", "04", "05", "06"}
    runs = fs.reports("profiled").parent / "processed"
    assert any(runs.iterdir())


def test_the_commands_exit_code_passes_through(tmp_path):
    done = run_profiler(tmp_path, "--fake-gpus", "1", "--", sys.executable, "-c",
                        "import sys; sys.exit(3)")
    assert done.returncode == 3, done.stderr
    meta = json.loads((only_run(tmp_path) / "metadata.json").read_text())
    assert (meta["status"], meta["return_code"]) == ("failed: return code 3", 3)
    assert "exited with code 3" in done.stderr


def test_a_command_killed_by_a_signal_exits_128_plus_n(tmp_path):
    done = run_profiler(tmp_path, "--quiet", "--", sys.executable, "-c",
                        "import os, signal; os.kill(os.getpid(), signal.SIGKILL)")
    assert done.returncode == 128 + signal.SIGKILL
    meta = json.loads((only_run(tmp_path) / "metadata.json").read_text())
    assert meta["status"] == "failed: killed by signal SIGKILL"
    assert meta["return_code"] == -signal.SIGKILL


def test_sigterm_is_forwarded_and_a_second_profiler_of_the_gpus_is_refused(tmp_path):
    (tmp_path / "wait.py").write_text(WAIT_SCRIPT)
    first = subprocess.Popen(profiler(tmp_path, "--fake-gpus", "2", "--", sys.executable,
                                      "wait.py"),
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                             env=child_env(), cwd=tmp_path)
    try:
        assert first.stdout.readline().strip() == "ready"
        second = run_profiler(tmp_path, "--fake-gpus", "2", "--", sys.executable, "-c", "0")
        assert second.returncode == profile.EXIT_PROFILER
        assert "already being profiled" in second.stderr and "GPU-fake-0" in second.stderr
        first.send_signal(signal.SIGTERM)
        out, err = first.communicate(timeout=30)
    finally:
        first.kill()
    assert first.returncode == 7, err
    assert "child got SIGTERM" in out
    (run_dir,) = discover_runs(tmp_path / "raw")  # the refused profiler wrote nothing
    meta = json.loads((run_dir / "metadata.json").read_text())
    assert meta["profile"]["signals_forwarded"] == ["SIGTERM"]
    assert meta["status"] == "failed: return code 7"


@pytest.mark.parametrize(("args", "code", "message"), [
    (["--fake-gpus", "1"], 2, "no command to profile"),
    (["--", "no-such-command-for-helpers"], profile.EXIT_NOT_FOUND, "command not found"),
    (["--", "./not-executable.sh"], profile.EXIT_NOT_EXECUTABLE, "Permission denied"),
    (["--", "./missing.sh"], profile.EXIT_NOT_FOUND, "No such file"),
])
def test_bad_use_is_refused_before_anything_is_written(tmp_path, args, code, message):
    (tmp_path / "not-executable.sh").write_text("echo hi\n")
    done = run_profiler(tmp_path, *args)
    assert done.returncode == code
    assert message in done.stderr
    assert not (tmp_path / "raw").exists()


def test_a_profiler_inside_a_profiled_command_is_refused(tmp_path):
    done = run_profiler(tmp_path, "--fake-gpus", "1", "--", sys.executable, "-m", "helpers",
                        "profile", "--fake-gpus", "1", "--lock-dir", str(tmp_path / "inner"),
                        "--", sys.executable, "-c", "0")
    assert done.returncode == profile.EXIT_PROFILER
    assert "runs under a profiler already" in done.stderr
    assert not (tmp_path / "inner").exists()


def test_labels_and_run_numbers(tmp_path):
    assert profile.command_label(["python", "-u", "scripts/train_resnet.py"]) == "train_resnet"
    assert profile.command_label(["python", "-m", "pkg.trainer", "--x"]) == "trainer"
    assert profile.command_label(["/usr/bin/true"]) == "true"
    assert profile.label("node-01.cluster.org", "environment") == "node-01"
    assert profile.label("my model (v2)", "architecture") == "my-model-v2"
    opts = profile.parse_args(["--raw-root", str(tmp_path), "--environment", "e",
                               "--architecture", "a", "--", "true"])
    assert [profile.claim_run_dir(opts).name for _ in range(3)] == ["000", "001", "002"]


def test_gpus_the_job_never_used_are_left_out(tmp_path):
    run_dir = tmp_path / "env" / "arch" / "000"
    with Sampler(run_dir, gpu_backend=FakeNvmlBackend(n_gpus=2), interval_s=0.02):
        pass
    profile.leave_out_gpus(run_dir, [0])
    run = read_run(run_dir)
    assert set(run.samples["gpu_index"].dropna()) == {1}
    assert [g["index"] for g in run.metadata["gpus"]] == [1]
    assert [g["index"] for g in run.metadata["profile"]["gpus_left_out"]] == [0]
    watcher = profile._JobGpus(FakeNvmlBackend(n_gpus=3).devices(), os.getpid(), fake=False)
    assert watcher.selection()["left_out"] == []  # never seen anywhere: keep every GPU
    watcher.seen = {1}
    assert watcher.selection()["left_out"] == [0, 2]
    assert np.isfinite(profile.run_figures(run_dir, 100.0)["gpu_energy_j"])
