"""helpers.analysis.power: power vs usage, power/limit, idle baseline, stabilisation (synthetic)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats as ss

from helpers.analysis import power
from helpers.analysis.window_samples import training_samples


def _step_run(warmup_s: int = 300, total_s: int = 2000, seed: int = 0) -> pd.DataFrame:
    """1 Hz power with a 15 s start-up ramp near idle, a warm-up regime at 150 W until
    ``warmup_s`` and a stationary regime at 250 W with 5-s evaluation dips every 60 s."""
    rng = np.random.default_rng(seed)
    t = np.arange(total_s) + rng.uniform(-0.05, 0.05, total_s)
    t[0] = 0.0
    p = np.where(np.arange(total_s) < warmup_s, 150.0, 250.0) + rng.normal(0, 5, total_s)
    p[:15] = 30.0 + rng.normal(0, 2, 15)
    dips = (np.arange(total_s) >= warmup_s) & (np.arange(total_s) % 60 < 5)
    p[dips] = 150.0
    return pd.DataFrame({"elapsed_s": t, "device_power_w": p})


def test_stabilisation_point_recovers_step():
    run = _step_run(warmup_s=300)
    point, note = power.stabilisation_point(run.device_power_w, run.elapsed_s, window=10)
    assert note == ""
    assert abs(point - 300) <= 20


@pytest.mark.parametrize("warmup", [120, 450, 900])
def test_stabilisation_points_per_run(warmup):
    runs = pd.concat([_step_run(warmup, seed=1).assign(run_id="r1"),
                      _step_run(warmup, seed=2).assign(run_id="r2")])
    tab = power.stabilisation_points(runs)
    assert list(tab.run_id) == ["r1", "r2"]
    assert (abs(tab.stabilisation - warmup) <= 20).all()
    assert (tab.fraction == tab.stabilisation / tab.span).all()


def test_stabilisation_point_on_epochs():
    rng = np.random.default_rng(3)
    energy = np.r_[np.full(4, 800.0), np.full(26, 1000.0)] + rng.normal(0, 10, 30)
    epochs = pd.DataFrame({"run_id": "e", "epoch": np.arange(30), "energy_j": energy})
    tab = power.stabilisation_points(epochs, value_col="energy_j", pos_col="epoch", window=1)
    assert tab.stabilisation.iloc[0] == 4


def test_stabilisation_point_excludes_idle_phase():
    run = _step_run(warmup_s=300).assign(run_id="r", phase="train")
    idle = pd.DataFrame({"elapsed_s": -np.arange(1, 200)[::-1], "device_power_w": 20.0,
                         "run_id": "r", "phase": "idle"})
    tab = power.stabilisation_points(pd.concat([idle, run]))
    assert abs(tab.stabilisation.iloc[0] - 300) <= 20


def test_stabilisation_point_excludes_the_idle_tail_after_training():
    run = _step_run(warmup_s=300, total_s=1000).assign(run_id="r", phase="train")
    tail = pd.DataFrame({"elapsed_s": 1000.0 + np.arange(600), "device_power_w": 60.0,
                         "run_id": "r", "phase": "tail"})
    with_tail = pd.concat([run, tail])
    assert abs(power.stabilisation_points(with_tail).stabilisation.iloc[0] - 300) <= 20
    # unlabelled, the 600-s drop at the end would be the strongest change
    unlabelled = with_tail.drop(columns="phase")
    assert power.stabilisation_points(unlabelled).stabilisation.iloc[0] > 900


def test_estimate_grid_on_the_training_window():
    """Samples cut to the training window (idle lead-in and tail left out, time from its start)
    are scored against training_energy_j; a run without a window keeps all its samples."""
    t = np.arange(0.0, 45.05, 0.1)
    p = np.select([t < 10, t < 40], [100.0, 500.0], 120.0)
    samples = pd.concat([pd.DataFrame({"run_id": r, "elapsed_s": t, "device_power_w": p})
                         for r in ("W", "U")])
    whole = float(np.trapezoid(p, t))
    runs = pd.DataFrame({"run_id": ["W", "U"], "training_start_s": [10.05, np.nan],
                         "training_end_s": [39.85, np.nan],
                         "training_energy_j": [500.0 * 29.8, whole]})
    cut = training_samples(samples, runs, ["device_power_w"])
    w = cut[cut["run_id"] == "W"]
    assert w["elapsed_s"].min() == pytest.approx(0.0) and w["elapsed_s"].max() == pytest.approx(
        29.8)
    assert (w["device_power_w"] == 500.0).all()  # edges interpolated on the 500 W plateau
    grid = power.estimate_error_grid(cut, runs, [0.0], [5.0]).set_index("run_id")
    assert grid.loc["W", "error_pct"] == pytest.approx(0.0, abs=1e-9)
    # the run without a window: mean of its first 5 s (idle, 100 W) x its whole 45 s span
    assert grid.loc["U", "estimate_j"] == pytest.approx(100.0 * 45.0)


def test_stabilisation_penalty_modes():
    run = _step_run(warmup_s=300)
    two, _ = power.stabilisation_point(run.device_power_w, run.elapsed_s)
    low, note = power.stabilisation_point(run.device_power_w, run.elapsed_s, penalty=5)
    assert low == two and note == ""  # a clear step is worth any modest penalty
    high, note = power.stabilisation_point(run.device_power_w, run.elapsed_s, penalty=1e9)
    assert high == 0.0 and "stationary from the start" in note
    rng = np.random.default_rng(4)
    flat = 200 + rng.normal(0, 5, 600)
    forced, _ = power.stabilisation_point(flat, np.arange(600.0))
    assert forced > 0  # two regimes are always fitted without a penalty
    point, note = power.stabilisation_point(flat, np.arange(600.0), penalty=50)
    assert point == 0.0 and "<= penalty 50" in note


def test_stabilisation_point_edge_cases():
    point, note = power.stabilisation_point([1.0, 2.0, 3.0], [0.0, 1.0, 2.0], window=10)
    assert np.isnan(point) and "too short" in note
    point, note = power.stabilisation_point(np.full(100, 5.0), np.arange(100.0) + 3)
    assert point == 3.0 and "constant" in note
    with pytest.raises(ValueError, match="differ in shape"):
        power.stabilisation_point([1.0, 2.0], [0.0])
    with pytest.raises(ValueError, match="window"):
        power.stabilisation_point([1.0, 2.0], [0.0, 1.0], window=0)


def test_stabilisation_sensitivity_grid():
    runs = pd.concat([_step_run(300, total_s=800, seed=s).assign(run_id=f"r{s}")
                      for s in range(3)])
    tab = power.stabilisation_sensitivity(runs, windows=[5, 10, 20], penalties=[None, 1e9])
    assert len(tab) == 3 * 3 * 2
    two = tab[tab.penalty.isna()]
    assert len(two) == 9 and (abs(two.stabilisation - 300) <= 40).all()
    assert (tab[tab.penalty == 1e9].stabilisation == 0.0).all()
    direct = power.stabilisation_points(runs, window=20).set_index("run_id").stabilisation
    grid = two[two.window == 20].set_index("run_id").stabilisation
    assert grid.to_dict() == direct.to_dict()


def test_window_estimate_error():
    t = np.arange(0, 1001, 1.0)
    p = np.where(t < 100, 100.0, 200.0)
    energy = np.trapezoid(p, t)
    tab = power.window_estimate_error(p, t, energy, starts_s=[0, 200, 950], windows_s=[50, 100])
    # after the step the window mean is exactly 200 W
    row = tab[(tab.start_s == 200) & (tab.window_s == 100)].iloc[0]
    assert row.estimate_j == pytest.approx(200.0 * 1000)
    assert row.error_pct == pytest.approx(100 * (200_000 - energy) / energy)
    # [0, 50]: 100 W throughout
    assert tab[(tab.start_s == 0) & (tab.window_s == 50)].estimate_j.item() == pytest.approx(1e5)
    # window cut inside a sample interval: [50, 150] holds 100 W for ~50 s, 200 W for ~50 s
    mid = power.window_estimate_error(p, t, energy, [50.5], [100]).estimate_j.item()
    assert mid == pytest.approx(np.trapezoid(np.interp(np.linspace(50.5, 150.5, 100001), t, p),
                                             np.linspace(50.5, 150.5, 100001)) / 100 * 1000,
                                rel=1e-6)
    assert np.isnan(tab[(tab.start_s == 950) & (tab.window_s == 100)].estimate_j.item())


def test_power_vs_usage():
    rng = np.random.default_rng(5)
    u = rng.uniform(0.1, 1.0, 60)
    runs = pd.DataFrame({"environment": np.repeat(["a", "b"], 30),
                         "training_gpu_usage_mean": u,
                         "training_gpu_power_mean_w": 50 + 200 * u + rng.normal(0, 2, 60)})
    tab = power.power_vs_usage(runs).set_index("environment")
    sub = runs[runs.environment == "a"]
    assert tab.loc["a", "rho"] == pytest.approx(
        ss.spearmanr(sub.training_gpu_usage_mean, sub.training_gpu_power_mean_w).statistic)
    assert tab.loc["a", "slope_w"] == pytest.approx(200, rel=0.05)
    assert tab.loc["b", "intercept_w"] == pytest.approx(50, abs=5)
    runs["training_gpu_usage_mean"] = np.nan
    empty = power.power_vs_usage(runs)
    assert empty.rho.isna().all() and empty.slope_w.isna().all()


def test_power_limit_ratio():
    df = pd.DataFrame({"training_gpu_power_mean_w": [100.0, 50.0, 30.0],
                       "gpu_power_limit_w": [200.0, 0.0, np.nan]})
    r = power.power_limit_ratio(df)
    assert r.iloc[0] == 0.5 and r.iloc[1:].isna().all()


def test_idle_baseline_methods():
    samples = pd.DataFrame({
        "gpu_name": ["A"] * 6 + ["B"] * 4 + ["C"] * 2,
        "phase": ["idle", "idle", "idle", "train", "train", "train"] + [np.nan] * 6,
        "gpu_usage": [0, 0, 0, 0.9, 0.9, 0.9, 0, 0, 0.5, 0.6, 0.4, 0.5],
        "device_power_w": [20, 22, 24, 200, 210, 205, 40, 50, 150, 160, 100, 110],
    })
    tab = power.idle_baseline(samples).set_index("gpu_name")
    assert tab.loc["A", "method"] == "phase:idle" and tab.loc["A", "idle_power_w"] == 22
    assert tab.loc["B", "method"] == "zero_utilisation" and tab.loc["B", "idle_power_w"] == 45
    assert np.isnan(tab.loc["C", "idle_power_w"]) and "no idle samples" in tab.loc["C", "note"]
    no_usage = samples.drop(columns=["gpu_usage", "phase"])
    assert (power.idle_baseline(no_usage).method == "none").all()


def test_power_samples_keeps_kept_runs_joins_identity_and_picks_the_power_column():
    runs = pd.DataFrame({"run_id": ["a", "b"], "environment": ["e1", "e2"],
                         "architecture": ["x", "y"], "gpu_name": ["G1", "G2"]})
    samples = pd.DataFrame({"run_id": ["a", "a", "b", "c"], "elapsed_s": [0.0, 1.0, 0.0, 0.0],
                            "gpu_power_draw": [10.0, 11.0, 12.0, 13.0],
                            "device_power_w": [np.nan] * 4, "gpu_name": ["old"] * 4})
    out, col = power.power_samples(samples, runs)
    assert col == "gpu_power_draw"  # device power present but empty
    assert list(out["run_id"].astype(str)) == ["a", "a", "b"]  # run c was removed by cleaning
    assert list(out["gpu_name"]) == ["G1", "G1", "G2"] and list(out["environment"]) == [
        "e1", "e1", "e2"]
    _, col = power.power_samples(samples.assign(device_power_w=20.0), runs)
    assert col == "device_power_w"
    _, col = power.power_samples(samples.drop(columns="device_power_w"), runs)
    assert col == "gpu_power_draw"
