"""Run grid: planning, crash survival in child processes, emissions.csv rows and energies."""

from __future__ import annotations

import json
import math
import textwrap
from pathlib import Path

import pandas as pd
import pytest
import torch

from helpers.collect import grid, training
from helpers.collect.devices.fake_nvml import FakeNvmlBackend, sine_power
from helpers.collect.training import RunSpec
from helpers.core import energy
from helpers.readers.project import read_run

#: CodeCarbon's emissions.csv header (v2.x), written out independently of helpers.collect.grid.
CODECARBON_NAMES = [
    "timestamp", "project_name", "run_id", "experiment_id", "duration", "emissions",
    "emissions_rate", "cpu_power", "gpu_power", "ram_power", "cpu_energy", "gpu_energy",
    "ram_energy", "energy_consumed", "country_name", "country_iso_code", "region",
    "cloud_provider", "cloud_region", "os", "python_version", "codecarbon_version", "cpu_count",
    "cpu_model", "gpu_count", "gpu_model", "longitude", "latitude", "ram_total_size",
    "tracking_mode", "on_cloud", "pue",
]
TINY = {"train_size": 32, "val_size": 16, "input_size_px": 16, "batch_size": 16, "epochs": 2,
        "idle_s": 0.2, "warmup_batches": 1, "num_threads": 1}


@pytest.fixture(autouse=True)
def _restore_torch_threads():
    """Runs set ``torch.set_num_threads``; give other tests the process default back."""
    threads = torch.get_num_threads()
    yield
    torch.set_num_threads(threads)


def _config(tmp_path: Path, **kw) -> grid.GridConfig:
    base = {"raw_root": tmp_path / "raw", "environment": "test-env",
            "architectures": ("resnet18", "squeezenet1_1"), "repetitions": 2, "seed": 0,
            "run_defaults": TINY, "warmup_s": 0.0, "cooldown_s": 0.0,
            "sampler_kwargs": {"interval_s": 0.05}}
    return grid.GridConfig(**{**base, **kw})


def _order(plan) -> list[tuple[str, int]]:
    return [(s.architecture, s.run) for s in plan]


def test_plan_is_shuffled_deterministically_and_numbered_in_start_order(tmp_path) -> None:
    cfg = _config(tmp_path, architectures=("resnet18", "squeezenet1_1", "vgg16"),
                  repetitions=3, seed=7)
    plan = grid.plan_grid(cfg)
    assert _order(plan) == _order(grid.plan_grid(cfg))
    orders = {tuple(_order(grid.plan_grid(_config(tmp_path, architectures=cfg.architectures,
                                                  repetitions=3, seed=s)))) for s in range(5)}
    assert len(orders) > 1  # the seed changes the order
    assert len(plan) == 9
    for arch in cfg.architectures:  # runs of one architecture numbered 0.. in execution order
        assert [s.run for s in plan if s.architecture == arch] == [0, 1, 2]
    assert all(s.seed == 7 + s.run and s.data_seed == 7 for s in plan)
    assert all(s.epochs == 2 and s.environment == "test-env" for s in plan)
    assert [a for a, _ in _order(plan)] != sorted(a for a, _ in _order(plan))


def test_architecture_overrides_replace_run_defaults_for_that_architecture(tmp_path) -> None:
    cfg = _config(tmp_path, architectures=("resnet18", "vgg16"), repetitions=2,
                  architecture_overrides={"vgg16": {"train_size": 48, "batch_size": 8}})
    sizes = {(s.architecture, s.train_size, s.batch_size) for s in grid.plan_grid(cfg)}
    default = grid.plan_grid(_config(tmp_path, architectures=("resnet18",)))[0]
    assert sizes == {("resnet18", default.train_size, default.batch_size), ("vgg16", 48, 8)}
    assert (48, 8) != (default.train_size, default.batch_size)
    with pytest.raises(ValueError, match="not in the grid"):
        grid.plan_grid(_config(tmp_path, architectures=("resnet18",),
                               architecture_overrides={"vgg16": {"epochs": 1}}))


def test_plan_rejects_unknown_architecture(tmp_path) -> None:
    with pytest.raises(ValueError, match="resnet19"):
        grid.plan_grid(_config(tmp_path, architectures=("resnet19",)))


def test_emissions_columns_are_a_superset_of_codecarbons() -> None:
    assert list(grid.EMISSIONS_COLUMNS[: len(CODECARBON_NAMES)]) == CODECARBON_NAMES
    for extra in ("architecture", "environment", "run", "epochs", "batch_size", "accuracy", "f1",
                  "flops", "status"):
        assert extra in grid.EMISSIONS_COLUMNS


def test_window_integrals_cut_at_the_edges() -> None:
    t = pd.Series([0.0, 1.0, 2.5, 4.0]).to_numpy()
    p = 2.0 * t + 10.0  # linear power: trapezoid is exact
    exact = (4.0**2 - 0.5**2) + 10.0 * 3.5  # integral of 2t + 10 over [0.5, 4]
    assert energy.window_trapezoid_j(t, p, 0.5, 4.0) == pytest.approx(exact)
    assert math.isnan(energy.window_trapezoid_j(t, p, -1.0, 2.0))  # window not covered
    counter = 100.0 + (t**2 + 10.0 * t)
    counter[1] = math.nan  # not read at every sample
    assert energy.window_counter_j(t, counter, 0.0, 4.0) == pytest.approx(16.0 + 40.0)


def _crash_module(tmp_path: Path) -> Path:
    """A runner module for the child: dies differently per architecture."""
    folder = tmp_path / "mods"
    folder.mkdir()
    (folder / "crashy_runner.py").write_text(textwrap.dedent("""
        import os
        import time

        from helpers.collect.sampler import Sampler
        from helpers.collect.training import train_run


        def run(spec, run_dir, sampler_kwargs):
            if spec.architecture == "squeezenet1_1":  # dies hard with the sampler running
                Sampler(run_dir, interval_s=0.05).start()
                time.sleep(0.2)
                os._exit(3)
            if spec.architecture == "mobilenet_v3_small":  # dies before any sampler
                os._exit(4)
            if spec.architecture == "shufflenet_v2_x0_5":  # raises inside the sampler
                with Sampler(run_dir, interval_s=0.05):
                    raise RuntimeError("injected failure")
            return train_run(spec, run_dir, sampler_kwargs)
    """))
    return folder


@pytest.mark.slow
def test_grid_survives_crashing_runs_and_records_return_codes(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("PYTHONPATH", str(_crash_module(tmp_path)))
    archs = ("squeezenet1_1", "mobilenet_v3_small", "shufflenet_v2_x0_5", "resnet18")
    # a seed whose order puts the real training run last, after all three crashes
    seed = next(s for s in range(50)
                if _order(grid.plan_grid(_config(tmp_path, architectures=archs, repetitions=1,
                                                 seed=s)))[-1][0] == "resnet18")
    cfg = _config(tmp_path, architectures=archs, repetitions=1, seed=seed,
                  runner="crashy_runner:run")
    outcomes = grid.run_grid(cfg, progress=False)
    by_arch = {o.run_dir.parent.name: o for o in outcomes}
    assert [o.run_dir.parent.name for o in outcomes][-1] == "resnet18"
    assert by_arch["squeezenet1_1"].return_code == 3
    assert by_arch["squeezenet1_1"].status == "failed: return code 3"
    assert by_arch["mobilenet_v3_small"].return_code == 4
    assert by_arch["mobilenet_v3_small"].status == "failed: return code 4"
    assert by_arch["shufflenet_v2_x0_5"].return_code == 1
    assert by_arch["shufflenet_v2_x0_5"].status.startswith("failed: RuntimeError: injected")
    assert by_arch["resnet18"].return_code == 0 and by_arch["resnet18"].status == "ok"
    for o in outcomes:  # every folder reads as a project run with the recorded status
        run = read_run(o.run_dir)
        assert run.metadata["return_code"] == o.return_code
        assert run.metadata["status"] == o.status
    emissions = grid.read_emissions(cfg.raw_root)
    assert list(emissions.columns) == list(grid.EMISSIONS_COLUMNS)
    assert emissions["architecture"].tolist() == [o.run_dir.parent.name for o in outcomes]
    assert emissions["return_code"].tolist() == [o.return_code for o in outcomes]
    died = emissions[emissions["architecture"] == "mobilenet_v3_small"].iloc[0]
    assert math.isnan(died["cpu_energy"]) and math.isnan(died["energy_consumed"])  # never 0
    ok = emissions[emissions["architecture"] == "resnet18"].iloc[0]
    assert ok["status"] == "ok" and ok["epochs"] == 2 and 0 <= ok["f1"] <= 1
    assert ok["cpu_energy"] > 0 and ok["ram_energy"] > 0 and ok["duration"] > 0
    assert ok["gpu_count"] == 0 and ok["gpu_energy"] == 0  # no GPU here, as CodeCarbon writes
    assert ok["energy_consumed"] == pytest.approx(ok["cpu_energy"] + ok["ram_energy"])
    assert ok["emissions"] == pytest.approx(ok["energy_consumed"] * 232 / 1000)
    assert ok["cpu_energy_method"].startswith("estimate:tdp_x_utilisation")
    assert ok["flops"] == training.count_model_flops("resnet18", 10, 16, 1)
    plan = json.loads((cfg.raw_root / grid.GRID_FILE).read_text())["plan"]
    assert [(p["architecture"], p["run"]) for p in plan] == _order(grid.plan_grid(cfg))
    with pytest.raises(FileExistsError):
        grid.run_grid(cfg, progress=False)
    assert grid.clean_raw_dir(cfg.raw_root) and not cfg.raw_root.exists()


def test_grid_json_records_raw_root_without_machine_paths(tmp_path, monkeypatch) -> None:
    """Inside the project: relative to its root (``data_inputs/<dataset>/raw``); elsewhere:
    ``.``, the folder holding grid.json. Never an absolute path of the machine."""
    project = tmp_path / "project"
    monkeypatch.setenv("DLE_PROJECT_ROOT", str(project))
    inside = _config(tmp_path, raw_root=project / "data_inputs" / "mine" / "raw")
    assert inside.to_dict()["raw_root"] == "data_inputs/mine/raw"
    monkeypatch.chdir(project.parent)
    assert _config(tmp_path, raw_root=Path("project/data_inputs/x/raw")).to_dict()[
        "raw_root"] == "data_inputs/x/raw"
    outside = _config(tmp_path)
    assert outside.to_dict()["raw_root"] == "."
    assert str(tmp_path) not in json.dumps(inside.to_dict()) + json.dumps(outside.to_dict())


def test_committed_grids_record_project_relative_raw_roots() -> None:
    data_inputs = Path(grid.__file__).resolve().parents[2] / "data_inputs"
    grids = sorted(data_inputs.glob("*/raw/" + grid.GRID_FILE))
    assert grids
    for path in grids:
        raw_root = json.loads(path.read_text())["config"]["raw_root"]
        assert raw_root.startswith("data_inputs/") and raw_root.endswith("/raw"), path


def test_clean_raw_dir_refuses_unrelated_folders(tmp_path) -> None:
    (tmp_path / "notes.txt").write_text("keep me")
    with pytest.raises(ValueError, match="notes.txt"):
        grid.clean_raw_dir(tmp_path)
    assert (tmp_path / "notes.txt").exists()
    assert grid.clean_raw_dir(tmp_path / "absent") is False


def test_emissions_row_uses_gpu_counter_over_training_window(tmp_path) -> None:
    fake = FakeNvmlBackend(power=sine_power(base_w=200.0, amp_w=50.0, period_s=0.3))
    spec = RunSpec(architecture="resnet18", environment="gpu-env", **TINY)
    run_dir = tmp_path / "raw" / "gpu-env" / "resnet18" / "000"
    training.train_run(spec, run_dir, {"interval_s": 0.05, "gpu_backend": fake})
    cfg = _config(tmp_path, environment="gpu-env", carbon_intensity_g_per_kwh=100.0)
    row = grid.emissions_row(run_dir, cfg, 0)
    events = read_run(run_dir).events.set_index("event")["monotonic_s"]
    t0, t1 = events["warmup_start"], events["epoch_end"].max()
    _, energy = sine_power(base_w=200.0, amp_w=50.0, period_s=0.3)
    expected_j = energy(fake.elapsed_s(t1)) - energy(fake.elapsed_s(t0))
    assert row["gpu_energy_method"] == "nvml_counter"
    # the counter is read microseconds after the sample time stamp: agreement to 1e-3
    assert row["gpu_energy"] * grid.J_PER_KWH == pytest.approx(expected_j, rel=1e-3)
    assert row["duration"] == pytest.approx(t1 - t0)
    assert row["gpu_count"] == 1 and row["gpu_model"] == "1 x Fake GPU H100"
    assert row["energy_window"] == "warmup_start to last epoch_end"
    assert row["run_id"] == "gpu-env/resnet18/000"
    total_kwh = row["gpu_energy"] + row["cpu_energy"] + row["ram_energy"]
    assert row["energy_consumed"] == pytest.approx(total_kwh)
    assert row["emissions"] == pytest.approx(total_kwh * 100.0 / 1000.0)


def test_finalise_metadata_for_a_child_that_never_started(tmp_path) -> None:
    spec = RunSpec(architecture="resnet18", environment="e")
    run_dir = tmp_path / "raw" / "e" / "resnet18" / "000"
    run_dir.mkdir(parents=True)
    meta = grid.finalise_metadata(run_dir, spec, -9)
    assert meta["status"] == "failed: return code -9" and meta["return_code"] == -9
    run = read_run(run_dir)  # header-only CSVs: a valid, empty run
    assert run.samples.empty and run.events.empty
    row = grid.emissions_row(run_dir, _config(tmp_path, environment="e"), -9)
    assert math.isnan(row["cpu_energy"]) and math.isnan(row["duration"])
    assert row["gpu_energy_method"].startswith("unmeasured")
    (run_dir / "samples.csv").write_text("not,the,header\n")  # a file the reader rejects
    row = grid.emissions_row(run_dir, _config(tmp_path, environment="e"), -9)
    assert row["cpu_energy_method"].startswith("unmeasured: unreadable run files")
    assert row["run_id"] == "e/resnet18/000" and row["status"] == "failed: return code -9"


def test_warm_up_trains_whole_epochs_without_writing() -> None:
    spec = RunSpec(architecture="resnet18", **TINY)
    assert grid.warm_up(spec, 0.01) == 1
