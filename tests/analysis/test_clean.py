"""helpers.analysis.clean: each step's reasons and counts on a small synthetic run table, a
seeded (deterministic) IsolationForest, missing model metrics kept, steps that cannot apply
recorded as skipped, and a step that would leave no run stopping with its name."""

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
    runs.loc[0, ["n_samples", "read_problem", "energy_j"]] = [0, "empty file", np.nan]
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
        "unusable raw logs", "failed run (return code / status)", "missing RAM samples",
        "missing model metrics (F1 / FLOPs)", "fewer than 20 epochs",
        "sampling period longer than an epoch"]
    assert steps["runs_in"].tolist() == [30, 29, 27, 26, 26, 25]
    assert steps["removed"].tolist() == [1, 2, 1, 0, 1, 1]
    assert steps["runs_out"].tolist() == [29, 27, 26, 26, 25, 24]
    assert steps["note"].iloc[3].startswith("skipped: 1 without f1: kept")
    reasons = ledger.removed_table().set_index("run_id")
    assert reasons.loc["cloud/vgg16/000", "step"] == "unusable raw logs"
    assert reasons.loc["cloud/vgg16/000", "reason"] == "fewer than 2 samples: empty file"
    assert reasons.loc["cloud/vgg16/001", "reason"] == "status ok, return code 137"
    assert reasons.loc["cloud/vgg16/002", "reason"] == "status timeout, return code 0"
    assert reasons.loc["cloud/vgg16/004", "reason"] == "RAM samples for 50.0% of the run"
    assert reasons.loc["cloud/vgg16/005", "reason"] == "trained 12 epochs < 20"
    assert reasons.loc["cloud/vgg16/006", "reason"] == "sampling period 60.0 s > epoch 50.0 s"
    assert len(reasons) == 6  # each removed run listed once, at the first step that caught it
    assert "cloud/vgg16/003" in set(kept["run_id"])  # no F1: kept, F1 stays NaN
    assert np.isnan(kept.set_index("run_id").loc["cloud/vgg16/003", "f1"])
    assert len(kept) == 24
    assert set(kept["run_id"]).isdisjoint(reasons.index)
    assert kept.index.tolist() == list(range(24))


def test_min_epochs_and_coverage_are_parameters() -> None:
    kept, ledger = clean.clean_runs(broken_runs(), min_epochs=10, contamination=None,
                                    min_ram_coverage=0.4)
    removed = ledger.removed_table().set_index("run_id")["reason"]
    assert "cloud/vgg16/005" not in removed.index  # 12 epochs >= 10
    assert "cloud/vgg16/004" not in removed.index  # 50% RAM coverage >= 40%; no FLOPs: kept
    assert ledger.steps_table()["step"].tolist()[4] == "fewer than 10 epochs"


def test_min_epochs_derived_from_the_data() -> None:
    runs = run_table(12).assign(epochs=8)
    runs.loc[0, "epochs"] = 3  # fewer than half the median (8 / 2 = 4)
    kept, ledger = clean.clean_runs(runs, contamination=None)
    steps = ledger.steps_table().set_index("step")
    assert "fewer than 4 epochs" in steps.index
    assert steps.loc["fewer than 4 epochs", "removed"] == 1
    assert "half the median epochs (8)" in steps.loc["fewer than 4 epochs", "note"]
    # the study's 20 is the upper bound (runs of 40 epochs)
    _, ledger = clean.clean_runs(run_table(), contamination=None)
    assert "fewer than 20 epochs" in ledger.steps_table()["step"].tolist()


def test_missing_metrics_never_remove_a_run() -> None:
    runs = run_table(12).assign(f1=np.nan, gflops=np.nan)
    kept, ledger = clean.clean_runs(runs, contamination=None)
    assert len(kept) == 12
    note = ledger.steps_table().set_index("step").loc["missing model metrics (F1 / FLOPs)",
                                                      "note"]
    assert "12 without f1, 12 without gflops: kept" in note
    assert clean.model_metrics_missing(runs).iloc[0] == "f1, gflops, accuracy, params"


def test_steps_that_cannot_apply_are_recorded_as_skipped() -> None:
    runs = run_table(6).assign(ram_coverage=0.0, epochs=np.nan)
    kept, ledger = clean.clean_runs(runs, contamination=0.1)
    assert len(kept) == 6
    notes = ledger.steps_table().set_index("step")["note"]
    assert notes["missing RAM samples"].startswith("skipped: no run has RAM samples")
    assert notes["too few epochs"].startswith("skipped: no run has an epoch count")
    assert notes["IsolationForest outliers"].startswith("skipped: no (environment, "
                                                        "architecture) group has 10 runs")


def test_runs_from_a_per_run_source_are_not_unusable() -> None:
    """CodeCarbon rows carry an energy but no samples (n_samples 0, RAM coverage NaN)."""
    runs = run_table(4).assign(n_samples=0, ram_coverage=np.nan)
    runs.loc[3, "energy_j"] = np.nan
    kept, ledger = clean.clean_runs(runs, contamination=None)
    assert kept["run_id"].tolist() == [f"cloud/vgg16/{i:03d}" for i in range(3)]
    assert ledger.removed_table()["step"].tolist() == ["unusable raw logs"]


def test_a_step_that_removes_every_run_stops_with_its_name_and_count() -> None:
    runs = run_table(10).assign(epochs=5)
    with pytest.raises(clean.NoRunsLeftError, match=r"'fewer than 20 epochs' removed all 10 "
                                                     r"remaining runs \(trained 5 epochs < 20"):
        clean.clean_runs(runs, min_epochs=20, contamination=None)
    with pytest.raises(clean.NoRunsLeftError, match="'input' removed all 0"):
        clean.clean_runs(runs.iloc[:0], contamination=None)


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
