"""The stage of notebook 06 (helpers.stages.stage06_estimators) on a small synthetic dataset with
epoch events and a single environment (the shape of data_outputs/collected)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from helpers.core import datasets
from helpers.core.io import write_parquet
from helpers.stages import stage06_estimators as study

N_EPOCHS, EPOCH_S = 30, 10.0


def _write_dataset(root, seed: int = 0) -> None:
    rng = np.random.default_rng(seed)
    runs, samples, epochs = [], [], []
    for arch, level_w in (("small", 150.0), ("large", 250.0)):
        for i in range(7):
            rid = f"h100/{arch}/{i:03d}"
            t = np.arange(0, N_EPOCHS * EPOCH_S + 1)
            p = np.where(t < 3 * EPOCH_S, 100.0, level_w) * (1 + 0.01 * rng.standard_normal(len(t)))
            edges = np.arange(N_EPOCHS + 1) * EPOCH_S
            cum = np.concatenate([[0], np.cumsum(np.diff(t) * (p[1:] + p[:-1]) / 2)])
            e = np.diff(np.interp(edges, t, cum))
            samples.append(pd.DataFrame({"run_id": rid, "elapsed_s": t, "device_power_w": p}))
            epochs.append(pd.DataFrame({"run_id": rid, "epoch": np.arange(N_EPOCHS),
                                        "duration_s": EPOCH_S, "energy_j": e}))
            runs.append({"run_id": rid, "environment": "h100", "architecture": arch,
                         "gpu_name": "NVIDIA H100 80GB HBM3", "duration_s": t[-1],
                         "energy_j": cum[-1], "epochs": N_EPOCHS, "gpu_power_limit_w": np.nan,
                         "gpu_usage_mean": level_w / 700, "gflops": 1.0 if arch == "small"
                         else 4.0, "batch_size": 32, "train_size": 1000, "params": np.nan})
    out = root / "data_outputs" / "synth"
    write_parquet(pd.DataFrame(runs), out / "processed" / "runs.parquet")
    write_parquet(pd.concat(epochs), out / "processed" / "epochs.parquet")
    write_parquet(pd.concat(samples), out / "interim" / "profiling.parquet")


@pytest.fixture
def inputs(tmp_path, monkeypatch):
    monkeypatch.setenv(datasets.PROJECT_ROOT_ENV, str(tmp_path))
    _write_dataset(tmp_path)
    return study.load_inputs("synth")


def test_study_on_epoch_data(inputs):
    assert inputs.epoch_source == "epoch events" and len(inputs.runs) == 14
    base, base_why = study.baseline_estimates(inputs.runs)
    # no power limit recorded: the H100 SXM spec TDP (700 W) is used, and said so
    assert base["ml_co2_impact"].iloc[0] == pytest.approx(700 * 300)
    online, online_why = study.online_estimates(inputs, 0.2, stabilisation_epoch=5,
                                                window_epochs=5)
    measured = inputs.measured_j
    step_err = (online["step"] - measured).abs() / measured
    assert step_err.max() < 0.03
    splits, notes = study.make_splits(inputs.runs, 0.3, seed=0)
    assert [s.name for s in splits] == ["random_30pct_test", "leave_one_architecture_out"]
    assert notes == ["leave_one_environment_out: skipped, only 1 environment value(s)"]
    pre = study.pre_estimates(inputs.runs, splits, ["ridge"])
    fixed = pd.concat([base, online], axis=1)
    why = pd.concat([base_why, online_why], axis=1)
    scores, method_notes = study.score_all(inputs, fixed, why, pre, splits, n_boot=100)
    errors = scores.errors
    assert set(errors["split"]) == {"all_runs", "random_30pct_test",
                                    "leave_one_architecture_out"}
    assert errors.loc[errors["split"] == "random_30pct_test", "n_runs"].eq(5).all()
    assert "pre_ridge_true_duration" in set(errors["method"])
    table = study.acceptance(errors, None, pd.DataFrame(
        columns=["method", "stabilisation", "observed_fraction", "mape_pct", "ci_low",
                 "ci_high", "n_runs"]), 0.2)
    assert table["check"].str.contains("leave_one_architecture_out").any()


def test_unusable_method_is_removed_with_a_note(inputs):
    online, why = study.online_estimates(inputs, 0.2, stabilisation_epoch=40)
    kept, _, notes = study.drop_unusable_methods(online, why)
    assert "step" not in kept.columns and "carbontracker" in kept.columns
    assert any(n.startswith("step: not estimable for any run (needs epochs up to 44")
               for n in notes)


def test_forecaster_coverage_table(inputs):
    cov = study.forecaster_coverage(inputs, [0.3], min_epoch=4)
    assert cov.loc[0, "runs_forecast"] == 14
    assert cov.loc[0, "mape_pct"] < 3


def test_published_check_on_the_authors_file():
    """The 369-run published file reproduces ML CO2 Impact ≈ 60.7% and Green Algorithms
    GPU-only ≈ 34.1% MAPE within 1 point (reads the shared SEAA 2023 copy)."""
    check = study.published_check(study.published_errors(n_boot=100))
    main = check[check["split"] == "published_processed_369"].set_index("method")
    assert main["n_runs"].eq(369).all()
    for method, value in study.PUBLISHED_MAPE_PCT.items():
        assert main.loc[method, "mape_pct"] == pytest.approx(value, abs=1.0)
    assert check.loc[check["split"] != "published_processed_369", "n_runs"].eq(309).all()
