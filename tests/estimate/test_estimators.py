"""Estimators (helpers.estimate): each formula against a hand-computed case, online estimators
without look-ahead, the STEP forecaster, and PRE without leakage."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from helpers.estimate import baselines, common, forecaster, online, pre
from helpers.estimate import evaluation as ev

# ---------------------------------------------------------------------------------- baselines


def test_ml_co2_impact_hand_computed():
    assert baselines.ml_co2_impact_energy_j(3600, 250) == pytest.approx(900_000)
    assert baselines.ml_co2_impact_energy_j(3600, 250, pue=1.5) == pytest.approx(1_350_000)
    np.testing.assert_allclose(baselines.ml_co2_impact_energy_j([10, 20], [100, 300]), [1000, 6000])


def test_green_algorithms_gpu_only_and_full():
    assert baselines.green_algorithms_energy_j(3600, 250, 0.5) == pytest.approx(450_000)
    # 250*0.5 + 16 GB*0.3725 + 4 cores*12 W*0.5 = 154.96 W; x 3600 s x PUE 1.2
    full = baselines.green_algorithms_energy_j(3600, 250, 0.5, ram_gb=16, cpu_cores=4,
                                         cpu_w_per_core=12, cpu_usage=0.5, pue=1.2)
    assert full == pytest.approx(154.96 * 3600 * 1.2)


def test_green_algorithms_rejects_percentages():
    with pytest.raises(ValueError, match="fractions"):
        baselines.green_algorithms_energy_j(3600, 250, 50)


# ------------------------------------------------------------------------ epoch-based online

ENERGIES = [200.0, 120.0, 100.0, 100.0, 102.0, 98.0]
DURATIONS = [10.0, 8.0, 5.0, 5.0, 5.0, 5.0]


def test_carbontracker_hand_computed():
    assert online.carbontracker_energy_j([100, 90, 80], 10) == pytest.approx(1000)
    assert online.carbontracker_energy_j([100, 90, 80], 10, k=2, pue=2) == pytest.approx(1900)
    with pytest.raises(common.NotEstimableError, match="needs 4"):
        online.carbontracker_energy_j([100, 90, 80], 10, k=4)


def test_step_hand_computed():
    # 200 + 120 before s=2, then mean(100, 100, 102) x (10 - 2)
    expected = 320 + (302 / 3) * 8
    assert online.step_energy_j(ENERGIES, 10, 2, 3) == pytest.approx(expected)
    with pytest.raises(common.NotEstimableError, match="needs epochs up to 6"):
        online.step_energy_j(ENERGIES, 10, 2, 5)


def test_online_power_hand_computed():
    # window epochs 2..4: 302 J over 15 s = 20.133 W, x T = 60 s
    estimate_j = online.online_power_energy_j(ENERGIES, DURATIONS, 60, 2, 3)
    assert estimate_j == pytest.approx(302 / 15 * 60)


def test_stabilisation_rule():
    e = [150, 80, 81, 79, 100, 101, 99, 100]
    assert online.stabilisation_epoch_rule(e, window=3, cv_tol=0.05) == 1
    assert online.stabilisation_epoch_rule(e, window=3, cv_tol=0.05, min_epoch=4) == 4
    assert online.stabilisation_epoch_rule(e[:3], window=3, cv_tol=0.05) is None


# --------------------------------------------------------------------------- power curves


def test_pseudo_epochs_cut_by_interpolation():
    t = np.array([0.0, 30.0, 70.0, 100.0])
    p = t.copy()  # P = t W: energy over [a, b] = (b² - a²) / 2
    pe = online.pseudo_epochs(t, p, 2)
    np.testing.assert_allclose(pe["energy_j"], [1250, 3750])
    np.testing.assert_allclose(pe["duration_s"], [50, 50])
    assert pe["energy_j"].sum() == pytest.approx(5000)


def _step_curve(T: float = 1000.0, change_s: float = 100.0):
    t = np.arange(0.0, T + 1)
    return t, np.where(t < change_s, 50.0, 200.0)


def test_online_time_window_hand_computed():
    t, p = _step_curve()
    true = 50 * 99 + (50 + 200) / 2 + 200 * 900  # trapezoid of the whole curve
    step = online.online_time_window_energy_j(t, p, 0.2, 1000, stabilisation_s=110)
    assert step == pytest.approx(true)
    power = online.online_time_window_energy_j(t, p, 0.2, 1000, stabilisation_s=110,
                                            method="power")
    assert power == pytest.approx(200 * 1000)
    # window of the last 50 s only: same mean power here
    estimate_j = online.online_time_window_energy_j(t, p, 0.2, 1000, 0, window_s=50)
    assert estimate_j == pytest.approx(true)


def test_online_time_window_has_no_look_ahead():
    t, p = _step_curve()
    later = p.copy()
    later[t > 200] = 1e6  # whatever happens after the observed 20% must not matter
    a = online.online_time_window_energy_j(t, p, 0.2, 1000, stabilisation_s=110)
    b = online.online_time_window_energy_j(t, later, 0.2, 1000, stabilisation_s=110)
    assert a == b


def test_online_time_window_not_estimable_before_stabilisation():
    t, p = _step_curve()
    with pytest.raises(common.NotEstimableError, match="not passed"):
        online.online_time_window_energy_j(t, p, 0.1, 1000, stabilisation_s=150)


def _samples_and_runs():
    t, p = _step_curve()
    samples = pd.DataFrame({"run_id": "a", "elapsed_s": t, "device_power_w": p})
    true = float(np.trapezoid(p, t))
    runs = pd.DataFrame({"run_id": ["a", "b"], "duration_s": [1000.0, 500.0],
                         "epochs": [20, 10], "energy_j": [true, 1.0]})
    return samples, runs, true


def test_per_run_tables():
    samples, runs, true = _samples_and_runs()
    pe = online.pseudo_epoch_table(samples, runs)
    assert list(pe["run_id"].unique()) == ["a"] and len(pe) == 20
    assert pe["energy_j"].sum() == pytest.approx(true)
    ests, why = online.epoch_method_estimates(pe, runs, stabilisation_epoch=4, window_epochs=3)
    assert ests.loc["a", "step"] == pytest.approx(true)  # stationary after 100 s = 2 epochs
    assert math.isnan(ests.loc["b", "step"]) and why.loc["b", "step"] == "no epoch data"
    fractions = online.online_fraction_estimates(samples, runs, [0.2], stabilisation=110.0)
    a = fractions[(fractions.run_id == "a") & (fractions.method == "step_time")]
    assert a["estimate_j"].iloc[0] == pytest.approx(true)
    assert (fractions.loc[fractions.run_id == "b", "reason"] == "no samples").all()
    cp = online.online_fraction_estimates(samples, runs.iloc[:1], [0.3])
    assert cp["stabilisation_s"].iloc[0] == pytest.approx(100, abs=10)


# ------------------------------------------------------------------------ STEP forecaster


def _synthetic_epochs(seed: int, n: int = 80) -> np.ndarray:
    """Collected-style epoch energies (J): a costly first epoch (caching, autotuning), ten
    frozen-backbone epochs at 60%, then a stationary regime with 2% noise."""
    rng = np.random.default_rng(seed)
    base = np.full(n, 5000.0)
    base[0] *= 1.4
    base[1:10] *= 0.6
    return base * (1 + 0.02 * rng.standard_normal(n))


def test_forecaster_hand_computed_interval():
    f = forecaster.StepForecaster(10, window=3, stabilisation_epoch=1)
    outs = [f.update(i, e) for i, e in enumerate([100, 50, 50, 52])]
    assert not outs[2].stable and math.isnan(outs[2].energy_j)
    last = outs[3]
    assert last.stable and last.stabilisation_epoch == 1
    mean, sd, m, k = 152 / 3, np.std([50, 50, 52], ddof=1), 6, 3
    assert last.energy_j == pytest.approx(252 + m * mean)
    half = stats.t.ppf(0.975, k - 1) * sd * math.sqrt(m * m / k + m)
    assert last.high_j == pytest.approx(252 + m * mean + half)
    assert last.low_j == pytest.approx(252 + m * mean - half)


def test_forecaster_rejects_out_of_order_epochs():
    f = forecaster.StepForecaster(10)
    f.update(0, 1.0)
    with pytest.raises(ValueError, match="expected epoch 1"):
        f.update(2, 1.0)


@pytest.mark.parametrize("seed", range(5))
def test_step_after_stabilisation_within_3_percent(seed):
    e = _synthetic_epochs(seed)
    true = e.sum()
    assert abs(online.step_energy_j(e, len(e), 10, 5) - true) / true < 0.03
    f = forecaster.StepForecaster(len(e), window=3, cv_tol=0.05, min_epoch=10)
    forecasts = [f.update(i, x) for i, x in enumerate(e[:16])]
    assert not forecasts[8].stable  # stabilisation not passed during the frozen epochs
    final = forecasts[-1]
    assert final.stable and final.stabilisation_epoch >= 10
    assert abs(final.energy_j - true) / true < 0.03


def test_forecaster_interval_coverage():
    """The 95% prediction interval covers the true total in most synthetic runs."""
    hits = []
    for seed in range(200):
        e = _synthetic_epochs(seed)
        f = forecaster.StepForecaster(len(e), stabilisation_epoch=10, window=5)
        fc = [f.update(i, x) for i, x in enumerate(e[:20])][-1]
        hits.append(fc.low_j <= e.sum() <= fc.high_j)
    assert 0.90 <= np.mean(hits) <= 0.99


# ---------------------------------------------------------------------------------- PRE


def _pre_runs(n_per: int = 12, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    rows = []
    for gpu, limit in (("NVIDIA GeForce RTX 3090", 350.0), ("NVIDIA GeForce RTX 3070", 240.0)):
        for arch, gflops in (("a", 0.5), ("b", 2.0), ("c", 4.0), ("d", 8.0)):
            for _ in range(n_per):
                power = limit * (0.3 + 0.06 * gflops) * (1 + 0.01 * rng.standard_normal())
                epochs = int(rng.integers(40, 100))
                t_epoch = 20 + 5 * gflops
                rows.append({"architecture": arch, "environment": gpu, "gpu_name": gpu,
                             "gpu_power_limit_w": limit, "gflops": gflops, "batch_size": 32,
                             "params": np.nan, "epochs": epochs,
                             "duration_s": epochs * t_epoch,
                             "energy_j": power * epochs * t_epoch})
    return pd.DataFrame(rows)


def test_pre_features_from_specs():
    runs = _pre_runs(2)
    runs.loc[0, "gpu_power_limit_w"] = np.nan
    feats = pre.pre_training_features(runs)
    assert feats.dropped["params"] == "all values missing"
    assert feats.X.loc[0, "gpu_power_limit_w"] == 350.0  # RTX 3090 spec TDP
    assert any("filled from the spec-table TDP" in n for n in feats.notes)
    assert set(feats.X["gpu_cuda_cores"]) == {10496.0, 5888.0}
    np.testing.assert_allclose(feats.y["epoch_time_s"], runs["duration_s"] / runs["epochs"])


def test_nested_cv_scaler_sees_only_training_rows():
    runs = _pre_runs()
    feats = pre.pre_training_features(runs)
    groups = runs["architecture"].to_numpy()
    splits = ev.leave_one_group_out(groups)
    res = pre.nested_cv_predict(feats.X, feats.y["power_w"], splits, "ridge", groups)
    assert len(res.folds) == 4
    for fold in res.folds:
        pipe = fold.estimator.regressor_
        np.testing.assert_allclose(pipe.named_steps["scale"].mean_,
                                   feats.X.iloc[fold.train].mean().to_numpy())
        assert fold.estimator.transformer_.mean_[0] == pytest.approx(
            feats.y["power_w"].iloc[fold.train].mean())
        assert fold.inner_cv.startswith("GroupKFold")
        assert not set(groups[fold.train]) & set(groups[fold.test])
    assert res.predictions.notna().all()


def test_pre_modes_on_a_learnable_relation():
    runs = _pre_runs()
    feats = pre.pre_training_features(runs)
    splits = ev.random_split(len(runs), 0.3, seed=1)
    out, fits = pre.pre_estimates_j(runs, feats, splits, models=("gradient_boosting",))
    test = splits[0][1]
    assert out.iloc[splits[0][0]].isna().all().all()  # training rows get no estimate
    for mode in pre.PRE_MODES:
        col = f"pre_gradient_boosting_{mode}"
        assert ev.mape_pct(runs["energy_j"].iloc[test], out[col].iloc[test]) < 5
    assert ("gradient_boosting", "power_fraction") in fits


def test_pre_energy_modes_formulae():
    assert pre.pre_energy_j("true_duration", power_w=[100], duration_s=[10])[0] == 1000
    assert pre.pre_energy_j("pre_training", power_w=[100], epoch_time_s=[2], n_epochs=[5])[0] \
        == 1000
    assert pre.pre_energy_j("epoch_energy", epoch_energy_j=[200], n_epochs=[5])[0] == 1000
    with pytest.raises(ValueError, match="unknown PRE mode"):
        pre.pre_energy_j("oracle")


# --------------------------------------------------------------------------- training window


def test_step_adds_the_energy_observed_before_the_first_epoch():
    plain = online.step_energy_j(ENERGIES, 10, 2, 3)
    assert online.step_energy_j(ENERGIES, 10, 2, 3, before_epochs_j=50.0) == pytest.approx(
        plain + 50.0)


def test_forecaster_adds_the_energy_before_the_first_epoch():
    a = forecaster.StepForecaster(10, window=3, stabilisation_epoch=1)
    b = forecaster.StepForecaster(10, window=3, stabilisation_epoch=1, before_epochs_j=40.0)
    for i, e in enumerate([100, 50, 50, 52]):
        fa, fb = a.update(i, e), b.update(i, e)
    assert fb.energy_j == pytest.approx(fa.energy_j + 40.0)
    assert fb.low_j == pytest.approx(fa.low_j + 40.0)


def test_per_run_tables_use_the_training_window():
    """T is training_duration_s (not the run's duration) and STEP adds pre_epoch_energy_j."""
    runs = pd.DataFrame({"run_id": ["r"], "epochs": [6], "duration_s": [100.0],
                         "training_duration_s": [38.0], "pre_epoch_energy_j": [30.0]})
    epochs = pd.DataFrame({"run_id": "r", "epoch": range(6), "energy_j": ENERGIES,
                           "duration_s": DURATIONS})
    est, _ = online.epoch_method_estimates(epochs, runs, 2, 3)
    assert est.loc["r", "online_power"] == pytest.approx(302 / 15 * 38.0)
    assert est.loc["r", "step"] == pytest.approx(30 + 320 + 302 / 3 * 4)
    t = np.arange(0.0, 38.01, 0.5)
    samples = pd.DataFrame({"run_id": "r", "elapsed_s": t, "device_power_w": 100.0})
    tw = online.online_fraction_estimates(samples, runs, [0.5], stabilisation=2.0)
    assert tw.set_index("method").loc["online_power_time", "estimate_j"] == pytest.approx(3800)


def test_pre_without_any_power_limit_predicts_the_power_itself():
    rng = np.random.default_rng(0)
    n = 12
    runs = pd.DataFrame({"gpu_name": "none", "gpu_power_limit_w": np.nan,
                         "gflops": rng.uniform(1, 10, n), "batch_size": 32.0,
                         "epochs": 5.0, "training_duration_s": rng.uniform(50, 60, n)})
    runs["training_energy_j"] = 20.0 * runs["gflops"] * runs["training_duration_s"]
    feats = pre.pre_training_features(runs)
    assert "gpu_power_limit_w" not in feats.X
    out, _ = pre.pre_estimates_j(runs, feats, [(np.arange(8), np.arange(8, n))], ["linear"])
    assert np.isfinite(out.iloc[8:]["pre_linear_true_duration"]).all()
