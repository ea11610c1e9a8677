"""helpers.estimate.evaluation: metrics by hand, bootstrap CIs, splitters, same-run scoring,
and the published SEAA 2023 baseline numbers."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from helpers.core import datasets
from helpers.estimate import baselines
from helpers.estimate import evaluation as ev

Y = np.array([100.0, 200.0])
P = np.array([110.0, 180.0])


def test_metrics_hand_computed():
    assert ev.rmse_kj(Y, P) == pytest.approx(np.sqrt((100 + 400) / 2) / 1e3)
    assert ev.mape_pct(Y, P) == pytest.approx(10.0)
    assert ev.r2(Y, P) == pytest.approx(1 - 500 / 5000)
    assert ev.mean_signed_error_j(Y, P) == pytest.approx(-5.0)
    with pytest.raises(ValueError, match="positive"):
        ev.mape_pct([0.0, 1.0], [1.0, 1.0])


def test_bootstrap_ci_seeded_and_brackets_estimate():
    rng = np.random.default_rng(3)
    y = rng.uniform(100, 200, 60)
    p = y * rng.normal(1.1, 0.05, 60)
    a = ev.bootstrap_ci(y, p, "mape_pct", n_boot=500, seed=7)
    b = ev.bootstrap_ci(y, p, "mape_pct", n_boot=500, seed=7)
    assert a == b
    assert a[0] < ev.mape_pct(y, p) < a[1]
    groups = np.repeat(np.arange(6), 10)
    lo, hi = ev.bootstrap_ci(y, p, "mape_pct", n_boot=200, seed=7, groups=groups)
    assert lo < hi


def test_random_split_seeded_disjoint():
    (tr, te), = ev.random_split(100, 0.3, seed=4)
    assert len(te) == 30 and len(tr) == 70 and not set(tr) & set(te)
    (tr2, te2), = ev.random_split(100, 0.3, seed=4)
    assert np.array_equal(te, te2)


def test_grouped_splits_never_share_a_group():
    groups = np.array(list("aabbbccdde"))
    for splits in (ev.leave_one_group_out(groups), ev.group_kfold(groups, 3)):
        ev.check_group_disjoint(splits, groups)
        tested = np.concatenate([te for _, te in splits])
        assert sorted(tested) == list(range(len(groups)))  # every row tested exactly once
    assert len(ev.leave_one_group_out(groups)) == 5
    with pytest.raises(AssertionError, match="both train and test"):
        ev.check_group_disjoint([(np.array([0, 2]), np.array([1]))], groups)


def test_score_methods_same_runs_and_reasons():
    idx = pd.Index(["r1", "r2", "r3", "r4"], name="run_id")
    measured = pd.Series([100.0, 200.0, 300.0, 400.0], index=idx)
    estimates = pd.DataFrame({"good": [110.0, 180.0, 300.0, 400.0],
                              "gappy": [100.0, 200.0, np.nan, 400.0]}, index=idx)
    reasons = pd.DataFrame({"gappy": [None, None, "window not reached", None]}, index=idx)
    res = ev.score_methods(measured, estimates, "all", reasons, n_boot=200)
    assert set(res.errors["n_runs"]) == {3}  # r3 dropped for every method
    assert res.dropped.to_dict("records") == [
        {"split": "all", "run_id": "r3", "method": "gappy", "reason": "window not reached"}]
    good = res.errors.query("method == 'good' and metric == 'mape_pct'").iloc[0]
    assert good["value"] == pytest.approx(ev.mape_pct([100, 200, 400], [110, 180, 400]))
    assert good["ci_low"] <= good["value"] <= good["ci_high"]
    assert set(res.errors["metric"]) == set(ev.METRICS)
    table = ev.wide_table(res.errors)
    assert table.shape == (2, 4)


def test_grouped_mape_counts():
    measured = pd.Series({"a": 100.0, "b": 200.0, "c": 400.0})
    long = pd.DataFrame({"run_id": ["a", "b", "c", "a", "b", "c"],
                         "f": [0.1] * 3 + [0.2] * 3,
                         "estimate_j": [110, 220, np.nan, 100, 200, 400]})
    out = ev.grouped_mape(long, measured, ["f"], n_boot=100).set_index("f")
    assert out.loc[0.1, "mape_pct"] == pytest.approx(10.0)
    assert (out.loc[0.1, "n_runs"], out.loc[0.1, "n_not_estimable"]) == (2, 1)
    assert out.loc[0.2, "mape_pct"] == pytest.approx(0.0)


def test_published_seaa2023_baselines():
    """ML CO2 Impact ≈ 60.7% and Green Algorithms GPU-only ≈ 34.1% MAPE on the authors'
    processed file (369 runs), within 1 point."""
    path = (datasets.seaa2023_dir() / "processed"
            / "dl-training-energy-consumption-dataset.gzip")
    df = pd.read_parquet(path)
    assert len(df) == 369
    duration_s = df["training duration (h)"] * 3600
    measured_j = df["energy (MJ)"] * 1e6
    limit_w = df["max power limit (W)"]
    mlco2 = baselines.ml_co2_impact_energy_j(duration_s, limit_w)
    ga = baselines.green_algorithms_energy_j(duration_s, limit_w, df["gpu usage (%)"] / 100)
    assert ev.mape_pct(measured_j, mlco2) == pytest.approx(60.7, abs=1.0)
    assert ev.mape_pct(measured_j, ga) == pytest.approx(34.1, abs=1.0)


def test_without_resamples_or_with_one_run_there_is_no_interval():
    idx = pd.Index(["r1", "r2", "r3"], name="run_id")
    measured = pd.Series([100.0, 200.0, 300.0], index=idx)
    est = pd.DataFrame({"m": [110.0, 200.0, 300.0]}, index=idx)
    errors = ev.score_methods(measured, est, "all", n_boot=0).errors
    row = errors[errors["metric"] == "mape_pct"].iloc[0]
    assert row["value"] == pytest.approx(10 / 3) and np.isnan(row["ci_low"])
    one = ev.grouped_mape(pd.DataFrame({"run_id": ["r1"], "g": [1], "estimate_j": [110.0]}),
                          measured, ["g"], n_boot=100).iloc[0]
    assert one["mape_pct"] == pytest.approx(10.0) and np.isnan(one["ci_low"])
    assert ev.bootstrap_ci([1.0, 2.0], [1.0, 2.0], "mape_pct", n_boot=0) == (
        pytest.approx(np.nan, nan_ok=True), pytest.approx(np.nan, nan_ok=True))
