"""A 2-rank ``torchrun`` job (gloo on this CPU) under one profiler with 2 fake GPUs: each GPU is
sampled once (one row per GPU per instant), the total GPU energy equals the analytic integral of
the scripted power curves within 0.1 %, phase events come from local rank 0 only (rank 1's are
counted), and wrapping each rank in its own profiler is refused."""

from __future__ import annotations

import sys

import numpy as np
import pytest
from profiled import child_env, only_run, profiler, run_profiler

from helpers.collect import profile
from helpers.core import energy
from helpers.readers.project import discover_runs, read_run

pytestmark = pytest.mark.slow

#: Two DDP ranks on gloo; both send marks (rank 1's phase marks are not recorded).
DDP_SCRIPT = '''
import torch
import torch.distributed as dist

from helpers import marks

dist.init_process_group("gloo")
rank = dist.get_rank()
torch.manual_seed(0)
model = torch.nn.parallel.DistributedDataParallel(torch.nn.Linear(16, 2))
opt = torch.optim.SGD(model.parameters(), lr=0.1)
x, y = torch.randn(256, 16), torch.randint(0, 2, (256,))
if rank == 0:
    marks.metadata(params=16 * 2 + 2, batch_size=32, train_size=256)
for epoch in range(2):
    marks.epoch_start(epoch)
    for i in range(rank * 128, rank * 128 + 128, 32):
        opt.zero_grad()
        torch.nn.functional.cross_entropy(model(x[i:i + 32]), y[i:i + 32]).backward()
        opt.step()
    dist.barrier()
    marks.epoch_end(epoch, val_accuracy=0.5)
marks.mark("rank_done")
dist.destroy_process_group()
'''
TORCHRUN = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node",
            "2"]


def analytic_gpu_energy_j(index: int, t0_s: float, t_first_s: float, t_last_s: float) -> float:
    """Energy (J) of fake GPU ``index`` between two monotonic times (s)."""
    _, energy_j = profile.fake_gpu_curve(index)
    return energy_j(t_last_s - t0_s) - energy_j(t_first_s - t0_s)


def test_torchrun_under_one_profiler_counts_each_gpu_once(tmp_path):
    (tmp_path / "ddp.py").write_text(DDP_SCRIPT)
    done = run_profiler(tmp_path, "--fake-gpus", "2", "--", *TORCHRUN, "ddp.py", timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]
    run = read_run(only_run(tmp_path))
    s, meta = run.samples, run.metadata
    assert [g["uuid"] for g in meta["gpus"]] == ["GPU-fake-0", "GPU-fake-1"]
    assert not s.duplicated(["gpu_index", "monotonic_s"]).any()
    per_instant = s.groupby("monotonic_s")["gpu_index"].apply(sorted)
    assert all(v == [0, 1] for v in per_instant), "one row per GPU at every instant"
    t0 = meta["profile"]["fake_gpus"]["t0_monotonic_s"]
    figures = meta["profile"]["energy"]
    expected = []
    for index, g in s.groupby("gpu_index"):
        t = g["monotonic_s"].to_numpy(float)
        expected.append(analytic_gpu_energy_j(int(index), t0, t[0], t[-1]))
        measured = figures["gpus"][int(index)]["energy_j"]
        assert measured == pytest.approx(expected[-1], rel=1e-3)
        trapezoid = energy.trapezoid_energy_j(t, g["gpu_power_w"].to_numpy(float))
        assert trapezoid == pytest.approx(expected[-1], rel=1e-3)
    assert figures["gpu_energy_j"] == pytest.approx(sum(expected), rel=1e-3)
    assert figures["gpu_energy_j"] == pytest.approx(sum(g["energy_j"] for g in figures["gpus"]))
    ev = run.events
    assert ev.loc[ev["event"] == "epoch_start", "epoch"].tolist() == [0, 1]
    assert ev.loc[ev["event"] == "epoch_end", "epoch"].tolist() == [0, 1]
    done_marks = ev[ev["event"] == "rank_done"]["info"].tolist()
    assert sorted(d.get("rank", 0) for d in done_marks) == [0, 1]  # free marks: every rank
    report = meta["profile"]["marks"]
    assert report["counts"]["other rank"] == 4  # rank 1's epoch_start/epoch_end
    assert set(report["by_rank"]) == {"0", "1"}
    assert meta["params"] == 34
    assert np.isfinite(figures["cpu_energy_j"]) and figures["cpu_energy_j"] > 0


def test_a_profiler_per_rank_is_refused(tmp_path):
    """``torchrun … -m helpers profile -- python script``: the second rank's profiler finds the
    GPUs locked and refuses, so the job fails instead of counting every GPU twice."""
    wrapped = [*TORCHRUN, "-m", *profiler(tmp_path, "--fake-gpus", "2", "--quiet")[2:],
               "--", sys.executable, "-c", "import time; time.sleep(20)"]
    import subprocess

    done = subprocess.run(wrapped, capture_output=True, text=True, env=child_env(),
                          cwd=tmp_path, timeout=120, check=False)
    assert done.returncode != 0
    assert "already being profiled" in done.stderr
    runs = discover_runs(tmp_path / "raw") if (tmp_path / "raw").exists() else []
    assert len(runs) <= 1
