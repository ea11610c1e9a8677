"""The run grid through submitit: jobs on submitit's local executor write the same raw run
folders and emissions.csv rows as a local grid, a job that dies or raises is recorded as failed
with its state, and the Slurm settings become the sbatch options of one job array."""

from __future__ import annotations

import json
import math
import os
import signal
import stat
import sys
import textwrap
from pathlib import Path

import pandas as pd
import pytest

submitit = pytest.importorskip("submitit")

from helpers.collect import grid, slurm  # noqa: E402
from helpers.readers.project import read_run  # noqa: E402

TINY = {"train_size": 32, "val_size": 16, "input_size_px": 16, "batch_size": 16, "epochs": 2,
        "idle_s": 0.2, "warmup_batches": 1, "num_threads": 1}
ARCHS = ("resnet18", "mobilenet_v3_small")


def _config(tmp_path: Path, **kw) -> grid.GridConfig:
    base = {"raw_root": tmp_path / "raw", "environment": "cluster-test", "architectures": ARCHS,
            "repetitions": 1, "seed": 0, "run_defaults": TINY, "warmup_s": 0.0,
            "cooldown_s": 0.0, "sampler_kwargs": {"interval_s": 0.05}}
    return grid.GridConfig(**{**base, **kw})


def _runner_module(tmp_path: Path) -> Path:
    """A runner for the run's child: trains with a fake one-GPU NVML backend."""
    folder = tmp_path / "mods"
    folder.mkdir()
    (folder / "job_runner.py").write_text(textwrap.dedent("""
        from helpers.collect.devices.fake_nvml import FakeNvmlBackend
        from helpers.collect.training import train_run


        def run(spec, run_dir, sampler_kwargs):
            return train_run(spec, run_dir, {**sampler_kwargs, "gpu_backend": FakeNvmlBackend()})
    """))
    return folder


@pytest.mark.slow
def test_grid_runs_as_local_submitit_jobs_with_the_local_grids_output(tmp_path,
                                                                      monkeypatch) -> None:
    monkeypatch.setenv("PYTHONPATH", str(_runner_module(tmp_path)))
    executor = submitit.LocalExecutor(folder=tmp_path / "jobs")
    executor.update_parameters(timeout_min=3)
    cfg = _config(tmp_path, runner="job_runner:run")
    plan = [(s.architecture, s.run) for s in grid.plan_grid(cfg)]

    outcomes = grid.run_grid(cfg, progress=False, executor=executor)

    assert [(o.run_dir.parent.name, int(o.run_dir.name)) for o in outcomes] == plan
    rows = grid.read_emissions(cfg.raw_root)
    assert list(rows["architecture"]) == [a for a, _ in plan]  # appended in plan order
    by_arch = rows.set_index("architecture")
    for arch in ARCHS:
        run_dir = cfg.raw_root / "cluster-test" / arch / "000"
        run = read_run(run_dir)  # every folder reads as a raw run, the killed one too
        job = json.loads((run_dir / "metadata.json").read_text())["job"]
        assert job == {"executor": "LocalExecutor", "job_id": job["job_id"],
                       "state": "FINISHED"}
        assert run.metadata["status"] == "ok" and by_arch.loc[arch, "status"] == "ok"
        assert by_arch.loc[arch, "return_code"] == 0 and by_arch.loc[arch, "epochs"] == 2
        assert by_arch.loc[arch, "gpu_energy_method"] == "nvml_counter"
        assert by_arch.loc[arch, "gpu_energy"] > 0 and by_arch.loc[arch, "gpu_count"] == 1
        assert (run_dir / grid.LOG_FILE).is_file()
        assert list(run.events["event"]).count("epoch_end") == 2
    assert [o.status for o in outcomes] == ["ok", "ok"]
    recorded = json.loads((cfg.raw_root / grid.GRID_FILE).read_text())["executor"]
    assert recorded["kind"] == "LocalExecutor" and recorded["job_array"] is True
    assert grid.clean_raw_dir(cfg.raw_root)  # submitit's files went elsewhere


def test_a_job_killed_on_its_node_is_recorded_with_its_state(tmp_path, monkeypatch) -> None:
    """A job that dies without a result (as under Slurm's time or memory limit) leaves a run
    folder that reads as a failed, empty run, with the job's state in the status table."""
    monkeypatch.setattr(slurm, "RESULT_GRACE_S", 0.2)
    cfg = _config(tmp_path, architectures=("resnet18",))
    (spec,) = grid.plan_grid(cfg)
    executor = submitit.LocalExecutor(folder=tmp_path / "jobs")
    job = executor.submit(os._exit, 9)  # the job's process dies at once
    outcome = slurm.GridJobs(cfg, executor).collect(spec, job)
    meta = json.loads((outcome.run_dir / "metadata.json").read_text())
    state = meta["job"]["state"]
    assert outcome.status == (f"failed: job {job.job_id} {state} without a result (killed: "
                              "time limit, memory, cancelled or node failure?)")
    assert meta["status"] == outcome.status and meta["return_code"] is None
    assert outcome.return_code is None
    run = read_run(outcome.run_dir)
    assert run.samples.empty and run.events.empty
    row = grid.read_emissions(cfg.raw_root).iloc[0]
    assert row["status"] == outcome.status and math.isnan(row["return_code"])
    assert math.isnan(row["energy_consumed"])
    table = grid.runs_table(cfg.raw_root)  # the grid's status table shows the failed job
    assert table["status"].tolist() == [outcome.status]


def test_a_job_that_raises_is_recorded_with_its_error(tmp_path) -> None:
    """The job function raises on its node: the status names the job's state and the error."""
    cfg = _config(tmp_path, architectures=("resnet18",))
    (spec,) = grid.plan_grid(cfg)
    executor = submitit.LocalExecutor(folder=tmp_path / "jobs")
    outcome = slurm.GridJobs(cfg, executor).collect(
        spec, executor.submit(grid.run_dir_of, "not", "a spec"))
    assert outcome.status.startswith("failed: job ")
    assert "AttributeError: 'str' object has no attribute" in outcome.status
    row = pd.read_csv(cfg.raw_root / grid.EMISSIONS_FILE).iloc[0]
    assert row["status"] == outcome.status and row["run_id"] == "cluster-test/resnet18/000"


class SchedulerTimeout(Exception):
    """Stands for the error submitit raises in a job at Slurm's time-limit signal."""


def test_an_error_while_a_run_waits_stops_its_child_first(tmp_path) -> None:
    """submitit raises inside the job when Slurm announces the time limit: the wait for the
    run's child is interrupted, and the child gets SIGTERM (its sampler then records
    ``failed: SIGTERM``) before the error goes on, so no run outlives its job."""
    marker, log = tmp_path / "terminated", tmp_path / "child.log"
    child = textwrap.dedent(f"""
        import signal, sys, time
        def bye(signum, frame):
            open({str(marker)!r}, "w").write(str(signum))
            sys.exit(143)
        signal.signal(signal.SIGTERM, bye)
        print("ready", flush=True)
        time.sleep(30)
    """)

    def timeout_once_ready(signum, frame) -> None:
        if "ready" not in log.read_text():
            signal.setitimer(signal.ITIMER_REAL, 0.05)  # the child is still starting
            return
        raise SchedulerTimeout

    previous = signal.signal(signal.SIGALRM, timeout_once_ready)
    signal.setitimer(signal.ITIMER_REAL, 0.2)
    try:
        with pytest.raises(SchedulerTimeout):
            grid._call([sys.executable, "-c", child], log, None)
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
    assert marker.read_text() == str(int(signal.SIGTERM))


def _fake_slurm(tmp_path: Path, monkeypatch) -> Path:
    """``srun`` and ``sbatch`` stand-ins on PATH; sbatch keeps the script it was given."""
    bin_dir, captured = tmp_path / "bin", tmp_path / "sbatch.sh"
    bin_dir.mkdir()
    scripts = {"srun": "#!/bin/sh\nexit 0\n",
               "sbatch": f'#!/bin/sh\ncp "$1" {captured}\necho "Submitted batch job 4242"\n'}
    for name, text in scripts.items():
        (bin_dir / name).write_text(text)
        (bin_dir / name).chmod(stat.S_IRWXU)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    return captured


def test_slurm_settings_become_one_job_array(tmp_path, monkeypatch) -> None:
    captured = _fake_slurm(tmp_path, monkeypatch)
    cfg = _config(tmp_path, architectures=(*ARCHS, "squeezenet1_1"))
    settings = slurm.SlurmConfig(partition="gpu", time_min=90, gpus_per_node=2, cpus_per_task=8,
                                 array_parallelism=2, account="proj",
                                 setup=("module load cuda",), additional={"mail-type": "END"},
                                 log_dir=tmp_path / "logs")
    jobs = slurm.GridJobs(cfg, settings)
    submitted = jobs.submit(grid.plan_grid(cfg))
    assert [j.job_id for j in submitted] == ["4242_0", "4242_1", "4242_2"]
    script = captured.read_text()
    for option in ("--array=0-2%2", "--partition=gpu", "--time=90", "--gpus-per-node=2",
                   "--cpus-per-task=8", "--account=proj", "--exclusive", "--mail-type=END",
                   "--job-name=helpers-grid"):
        assert f"#SBATCH {option}\n" in script, option
    assert "module load cuda\n" in script
    assert (tmp_path / "logs").is_dir() and not (cfg.raw_root / "slurm_logs").exists()
    described = jobs.describe()
    assert described["slurm"]["partition"] == "gpu" and described["job_array"] is True
    assert str(tmp_path) not in json.dumps(described)  # no machine paths into grid.json


def test_one_job_per_run_and_bad_executors(tmp_path, monkeypatch) -> None:
    captured = _fake_slurm(tmp_path, monkeypatch)
    cfg = _config(tmp_path, architectures=("resnet18", "vgg16"))
    jobs = slurm.GridJobs(cfg, slurm.SlurmConfig(job_array=False, exclusive=False))
    assert len(jobs.submit(grid.plan_grid(cfg))) == 2
    script = captured.read_text()
    assert "--array" not in script and "--exclusive" not in script
    with pytest.raises(TypeError, match="submitit executor or a SlurmConfig"):
        slurm.GridJobs(cfg, "slurm")
    local = slurm.SlurmConfig(cluster="local", time_min=5).executor(cfg.raw_root)
    assert type(local._executor).__name__ == "LocalExecutor"  # to try a grid on one machine
    assert local.parameters["timeout_min"] == 5
