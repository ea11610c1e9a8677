"""helpers.analysis.clean: each step's reasons and counts on a small synthetic run table, and a
seeded (deterministic) IsolationForest."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from helpers.analysis import clean


def run_table(n: int = 30, seed: int = 1) -> pd.DataFrame:
    """``n`` healthy runs of one (environment, architecture) group with small random spread."""
    rng = np.random.default_rng(seed)
    duration = 3600.0 * (1 + 0.05 * rng.standard_normal(n))
    power = 200.0 * (1 + 0.03 * rng.standard_normal(n))
    return pd.DataFrame({
        "run_id": [f"cloud/vgg16/{i:03d}" for i in range(n)],
        "environment": "cloud", "architecture": "vgg16", "run": range(n),
        "n_samples": 3600, "read_problem": "", "status": "ok", "return_code": 0,
        "f1": 0.9, "gflops": 15.5, "ram_coverage": 1.0, "epochs": 40,
        "duration_s": duration, "sampling_period_s": 1.0,
        "energy_j": duration * power, "gpu_power_mean_w": power, "device_power_mean_w": power,
    })


def broken_runs() -> pd.DataFrame:
    """The healthy table with one run broken per step (row -> expected step and reason)."""
    runs = run_table()
    runs.loc[0, ["n_samples", "read_problem"]] = [0, "empty file"]
    runs.loc[0, "return_code"] = 1  # also failed: must be removed by the first step only
    runs.loc[1, "return_code"] = 137
    runs.loc[2, "status"] = "timeout"
    runs.loc[3, "f1"] = np.nan
    runs.loc[4, ["gflops", "ram_coverage"]] = [np.nan, 0.5]
    runs.loc[5, "epochs"] = 12
    runs.loc[6, ["duration_s", "epochs", "sampling_period_s"]] = [1000.0, 20, 60.0]
    return runs


def test_steps_counts_and_reasons() -> None:
    kept, ledger = clean.clean_runs(broken_runs(), min_epochs=20, contamination=None)
    steps = ledger.steps_table()
    assert steps["step"].tolist() == [
        "unusable raw logs", "failed run (return code / status)",
        "missing RAM / FLOPs / model metrics", "fewer than 20 epochs",
        "sampling period longer than an epoch"]
    assert steps["runs_in"].tolist() == [30, 29, 27, 25, 24]
    assert steps["removed"].tolist() == [1, 2, 2, 1, 1]
    assert steps["runs_out"].tolist() == [29, 27, 25, 24, 23]
    reasons = ledger.removed_table().set_index("run_id")
    assert reasons.loc["cloud/vgg16/000", "step"] == "unusable raw logs"
    assert reasons.loc["cloud/vgg16/000", "reason"] == "fewer than 2 samples: empty file"
    assert reasons.loc["cloud/vgg16/001", "reason"] == "status ok, return code 137"
    assert reasons.loc["cloud/vgg16/002", "reason"] == "status timeout, return code 0"
    assert reasons.loc["cloud/vgg16/003", "reason"] == "no model metrics (F1)"
    assert reasons.loc["cloud/vgg16/004", "reason"] == "no FLOPs; RAM samples for 50.0% of the run"
    assert reasons.loc["cloud/vgg16/005", "reason"] == "trained 12 epochs < 20"
    assert reasons.loc["cloud/vgg16/006", "reason"] == "sampling period 60.0 s > epoch 50.0 s"
    assert len(reasons) == 7  # each removed run listed once, at the first step that caught it
    assert len(kept) == 23
    assert set(kept["run_id"]).isdisjoint(reasons.index)
    assert kept.index.tolist() == list(range(23))


def test_min_epochs_and_coverage_are_parameters() -> None:
    kept, ledger = clean.clean_runs(broken_runs(), min_epochs=10, contamination=None,
                                    min_ram_coverage=0.4)
    removed = ledger.removed_table().set_index("run_id")["reason"]
    assert "cloud/vgg16/005" not in removed.index  # 12 epochs >= 10
    assert removed["cloud/vgg16/004"] == "no FLOPs"  # 50% RAM coverage >= 40%
    assert ledger.steps_table()["step"].tolist()[3] == "fewer than 10 epochs"


def test_isolation_forest_flags_outlier_and_is_deterministic() -> None:
    runs = run_table(30)
    runs.loc[7, ["energy_j", "duration_s"]] = [runs.loc[7, "energy_j"] * 8, 8 * 3600.0]
    first = clean.isolation_outliers(runs, contamination=0.1, seed=0)
    again = clean.isolation_outliers(runs, contamination=0.1, seed=0)
    pd.testing.assert_series_equal(first, again)
    flagged = first[first != ""]
    assert "cloud/vgg16/007" in runs.loc[flagged.index, "run_id"].tolist()
    assert 1 <= len(flagged) <= 4  # contamination 0.1 of 30 runs
    assert flagged.iloc[0].startswith("IsolationForest outlier in cloud/vgg16 (contamination 0.1")
    # through the full sequence, with its count in the ledger
    kept, ledger = clean.clean_runs(runs, contamination=0.1, seed=0)
    last = ledger.steps_table().iloc[-1]
    assert (last["step"], last["runs_in"], last["removed"]) == (
        "IsolationForest outliers", 30, len(flagged))
    kept2, _ = clean.clean_runs(runs, contamination=0.1, seed=0)
    pd.testing.assert_frame_equal(kept, kept2)


def test_isolation_forest_per_group_and_small_groups_left_alone() -> None:
    big = run_table(20, seed=2)
    small = run_table(9, seed=3).assign(environment="local-v2")
    small["run_id"] = [f"local-v2/vgg16/{i:03d}" for i in range(9)]
    small.loc[0, "energy_j"] *= 50  # would be an outlier, but the group has < 10 runs
    runs = pd.concat([big, small], ignore_index=True)
    flags = clean.isolation_outliers(runs, contamination=0.1, seed=0)
    assert (flags[runs["environment"] == "local-v2"] == "").all()
    assert (flags[runs["environment"] == "cloud"] != "").sum() >= 1


def test_isolation_forest_skips_features_with_nan() -> None:
    runs = run_table(20)
    runs["device_power_mean_w"] = np.nan
    runs.loc[3, "energy_j"] *= 10
    flags = clean.isolation_outliers(runs, contamination=0.1, seed=0)
    assert "device_power_mean_w" not in flags[flags != ""].iloc[0]
    runs[list(clean.OUTLIER_FEATURES)] = np.nan
    assert (clean.isolation_outliers(runs) == "").all()


@pytest.mark.parametrize("contamination", [None, 0])
def test_outlier_step_can_be_switched_off(contamination: float | None) -> None:
    _, ledger = clean.clean_runs(run_table(), contamination=contamination)
    assert "IsolationForest outliers" not in ledger.steps_table()["step"].tolist()
