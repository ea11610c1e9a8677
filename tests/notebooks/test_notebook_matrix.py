"""Notebooks 02-06 through papermill, in order (in one kernel whose namespace is reset between
notebooks: helpers.runner.SharedKernel), on input folders of every shape a user may bring
(tests/raw_shapes.py; the published seaa2023 logs, two environments, from the
``seaa2023_subset`` fixture): each notebook of each shape ends, 03-06 each write a not-estimable
table whose entries all carry a reason, and every saved figure panel shows data or a note saying
why not (figures/<dataset>/panels.csv). Then what each shape must show (``CHECKS``): on the H100
runs with their idle lead-in and tail, the training window's energy agrees with the NVML counter
and the estimators are scored on that window with inputs from it; runs without model metrics are
kept; another profiler's runs are estimated on their training window; what needs a GPU is named
on CPU-only runs; parameters are derived from 5-epoch runs. Outputs go to a temporary project
root."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from figure_checks import assert_panels_drawn
from raw_shapes import H100_RAW, RAW_SHAPES

from helpers import runner
from helpers.core import datasets
from helpers.plots import style

pytestmark = pytest.mark.slow

NOTEBOOKS = ["02-merge", "03-clean", "04-trade-offs", "05-power-behaviour",
             "06-estimator-fitting"]
#: Parameters that keep the runs short (the defaults derive everything else from the data).
FAST = {"05-power-behaviour": {"sensitivity_runs": 4, "sensitivity_penalties": [None, 30.0]},
        "06-estimator-fitting": {"pre_models": ["ridge"]}}


def _run_shape(root: Path, monkeypatch: pytest.MonkeyPatch, dataset: str,
               data_dir: Path | None = None) -> dict[str, dict[str, str]]:
    """Run 02-06 on ``dataset``; returns notebook -> {analysis: reason} of its table."""
    monkeypatch.setenv(datasets.PROJECT_ROOT_ENV, str(root))
    monkeypatch.setenv(style.FORMATS_ENV, "png")  # drafts: what is drawn is the same
    monkeypatch.setenv(style.DPI_ENV, "50")
    skipped = {}
    with runner.SharedKernel() as kernel:  # namespace reset between notebooks
        for stem in NOTEBOOKS:
            params = dict(FAST.get(stem, {}))
            if stem == "02-merge" and data_dir is not None:
                params["data_dir"] = str(data_dir)
            runner.run_notebook(stem, dataset, params, kernel=kernel)
    for stem in NOTEBOOKS:
        if stem != "02-merge":
            table = pd.read_csv(datasets.output_dir(dataset, "reports")
                                / f"{stem[:2]}-not-estimable.csv")
            assert list(table.columns) == ["analysis", "reason"]
            assert table["reason"].fillna("").str.strip().ne("").all(), table
            skipped[stem[:2]] = dict(zip(table["analysis"], table["reason"], strict=True))
    runs = pd.read_parquet(datasets.output_dir(dataset, "processed") / "runs.parquet")
    assert len(runs) > 0
    assert_panels_drawn(datasets.figures_dir(dataset))
    return skipped


def _project(tmp_path: Path) -> Path:
    root = tmp_path / "project"
    (root / "data_inputs").mkdir(parents=True)
    (root / "notebooks").symlink_to(datasets.project_root() / "notebooks")
    return root


def _table(dataset: str, kind: str, name: str) -> pd.DataFrame:
    path = datasets.output_dir(dataset, kind) / name
    return pd.read_parquet(path) if name.endswith(".parquet") else pd.read_csv(path)


def _mape(dataset: str, split: str = "all_runs") -> pd.Series:
    e = _table(dataset, "reports", "06-estimator-errors.csv")
    e = e[(e["metric"] == "mape_pct") & (e["split"] == split)]
    return e.set_index("method")["value"]


def _parameters(dataset: str) -> dict[str, str]:
    table = _table(dataset, "reports", "06-parameters.csv").astype(str)
    return dict(zip(table["parameter"], table["value"], strict=True))


def check_h100(dataset: str, skipped: dict) -> None:
    """The committed H100 runs: idle lead-in and tail around the training window."""
    runs = _table(dataset, "processed", "runs.parquet").set_index("run_id")
    assert len(runs) == 10
    assert (runs["training_window"] == "warmup_start to last epoch_end").all()
    for run_id, run in runs.iterrows():  # the NVML counter read from the raw files
        samples = pd.read_csv(H100_RAW / run_id / "samples.csv")
        events = pd.read_csv(H100_RAW / run_id / "events.csv")
        t0 = events.loc[events["event"] == "warmup_start", "monotonic_s"].min()
        t1 = events.loc[events["event"] == "epoch_end", "monotonic_s"].max()
        read = samples.dropna(subset=["gpu_energy_counter_j"])
        counter = np.interp([t0, t1], read["monotonic_s"], read["gpu_energy_counter_j"])
        assert run["training_energy_j"] == pytest.approx(counter[1] - counter[0], rel=0.005)
        assert run["training_duration_s"] == pytest.approx(t1 - t0, abs=2e-3)
        assert run["energy_j"] > 1.03 * run["training_energy_j"]  # the run window adds idle
    mape = _mape(dataset)
    assert mape["step_time_f20"] <= 3.0  # the time-window STEP observing 20 % of the window
    assert mape["step"] < 2 and mape["online_power"] < 5  # estimable on 8-epoch runs
    errors = _table(dataset, "reports", "06-estimator-errors.csv")
    assert errors["window"].str.startswith("training window (warmup_start to last "
                                           "epoch_end: 10 runs)").all()
    # ML CO2 Impact: power limit x training duration, not the run's duration
    est = _table(dataset, "reports", "06-estimates.csv")
    co2 = est[est["method"] == "ml_co2_impact"].set_index("run_id")["estimate_j"]
    expected = runs["gpu_power_limit_w"] * runs["training_duration_s"]
    assert co2.loc[runs.index].to_numpy() == pytest.approx(expected.to_numpy(), rel=1e-3)
    assert (expected < 0.9 * runs["gpu_power_limit_w"] * runs["duration_s"]).all()
    values = _parameters(dataset)  # derived from N = 8 epochs and 10 runs
    assert (values["stabilisation_epoch"], values["window_epochs"]) == ("2", "1")
    assert values["n_boot"] == "1000"
    # 05: the stabilisation point is counted from the start of the training window
    stab = _table(dataset, "reports", "05-stabilisation-time.csv")
    assert np.allclose(stab["start"], 0.0, atol=1e-3)
    assert (stab["span"].to_numpy() <= runs.loc[stab["run_id"], "training_duration_s"]
            .to_numpy() + 1e-3).all()


def check_no_metrics(dataset: str, skipped: dict) -> None:
    """No F1, FLOPs, accuracy or parameters in the metadata: runs kept, what needs them named."""
    runs = _table(dataset, "processed", "runs.parquet")
    assert len(runs) == 10 and runs["f1"].isna().all()
    assert (runs["model_metrics_missing"] == "f1, gflops, accuracy, params").all()
    steps = _table(dataset, "processed", "cleaning_steps.csv").set_index("step")
    assert steps.loc["missing model metrics (F1 / FLOPs)", "note"].startswith(
        "skipped: 10 without f1, 10 without gflops: kept")
    assert {"variable f1", "Pareto front (energy per image vs F1)",
            "interaction plot of f1"} <= set(skipped["04"])
    assert np.isfinite(_mape(dataset)[["ml_co2_impact", "step", "step_time_f20"]]).all()


def check_tidy_samples(dataset: str, skipped: dict) -> None:
    """Another profiler's log: no F1, FLOPs or epoch count, no counter, no warm-up mark."""
    runs = _table(dataset, "processed", "runs.parquet").set_index("run_id")
    assert len(runs) == 10
    assert runs["f1"].isna().all() and (runs["epochs"] == 8).all()  # epochs from the events
    assert (runs["training_window"] == "first epoch_start to last epoch_end").all()
    assert (runs["training_energy_source"] == "gpu:trapezoid").all()
    assert (runs["energy_j"] > 1.05 * runs["training_energy_j"]).all()
    assert "variable f1" in skipped["04"]
    mape = _mape(dataset)
    assert mape["ml_co2_impact"] < 60 and mape["step_time_f20"] <= 3.0 and mape["step"] < 3
    stab = _table(dataset, "reports", "05-stabilisation-time.csv")
    assert np.allclose(stab["start"], 0.0, atol=1e-3)  # from the first epoch, not sample


def check_cpu_only(dataset: str, skipped: dict) -> None:
    runs = _table(dataset, "processed", "runs.parquet")
    assert runs["training_energy_source"].str.startswith("cpu:").all()
    assert {"mean power vs GPU utilisation", "power / power limit"} <= set(skipped["05"])
    assert skipped["06"]["method ml_co2_impact"].startswith("no GPU power limit")
    assert np.isfinite(_mape(dataset)["step"])


def check_five_epochs(dataset: str, skipped: dict) -> None:
    values = _parameters(dataset)
    assert (values["stabilisation_epoch"], values["window_epochs"]) == ("1", "1")
    assert np.isfinite(_mape(dataset)[["step", "online_power"]]).all()


def check_one_run(dataset: str, skipped: dict) -> None:
    """What one run allows is still computed and drawn."""
    named = set(skipped["06"])
    assert {"PRE skipped", "bootstrap confidence intervals",
            "PRE predicted vs measured"} <= named, named
    errors = _table(dataset, "reports", "06-estimator-errors.csv")
    mape = errors[(errors["metric"] == "mape_pct") & (errors["split"] == "all_runs")]
    assert mape.set_index("method")["value"][["ml_co2_impact", "step"]].notna().all()
    assert (mape["n_runs"] == 1).all()
    figures = {p.stem for p in datasets.figures_dir(dataset).glob("06-*.png")}
    assert {"06-mape-by-method", "06-predicted-vs-measured", "06-pre-predicted-vs-measured",
            "06-online-error-vs-fraction", "06-sensitivity-stabilisation",
            "06-step-forecaster"} <= figures


def check_codecarbon(dataset: str, skipped: dict) -> None:
    """Per-run energies only: what the tracker measured is the training window."""
    runs = _table(dataset, "processed", "runs.parquet")
    assert (runs["training_energy_j"] == runs["energy_j"]).all()
    assert runs["training_window"].notna().all() and (runs["n_samples"] == 0).all()
    assert "stabilisation point" in skipped["05"]
    assert {"time-window estimators and pseudo-epochs",
            "method pseudo_carbontracker"} <= set(skipped["06"])
    assert "per-epoch energies (epochs.parquet)" in skipped["03"]
    assert np.isfinite(_mape(dataset)["ml_co2_impact"])


#: Shape -> what its outputs must show (given its not-estimable tables by notebook).
CHECKS: dict[str, Callable[[str, dict], None]] = {
    "ours": check_h100,
    "ours-no-metrics": check_no_metrics,
    "ours-one-run": check_one_run,
    "ours-five-epochs": check_five_epochs,
    "ours-cpu-only": check_cpu_only,
    "codecarbon": check_codecarbon,
    "tidy-samples": check_tidy_samples,
}


@pytest.mark.parametrize("shape", sorted(RAW_SHAPES))
def test_notebooks_02_to_06_on_each_input_shape(shape, tmp_path, monkeypatch):
    root = _project(tmp_path)
    RAW_SHAPES[shape](root / "data_inputs" / shape)
    skipped = _run_shape(root, monkeypatch, shape)
    CHECKS[shape](shape, skipped)


def _merge_clean_outputs(dataset: str) -> dict[str, bytes]:
    """The bytes of every interim/processed output file of ``dataset``."""
    return {f"{kind}/{f.name}": f.read_bytes() for kind in ("interim", "processed")
            for f in sorted(datasets.output_dir(dataset, kind).iterdir())}


def test_notebooks_02_to_06_on_published_logs_of_two_environments(seaa2023_subset, tmp_path,
                                                                   monkeypatch):
    """8 published runs (2 architectures x 2 runs x 2 environments); then 02 and 03 again:
    their outputs are byte-identical on rerun."""
    root = _project(tmp_path)
    _run_shape(root, monkeypatch, "seaa2023", data_dir=seaa2023_subset)
    first = _merge_clean_outputs("seaa2023")
    assert {"interim/profiling.parquet", "interim/run_index.parquet", "interim/skips.csv",
            "processed/runs.parquet", "processed/all_runs.parquet",
            "processed/cleaning_steps.csv"} <= set(first)
    processed = datasets.output_dir("seaa2023", "processed")
    assert processed.is_relative_to(root.resolve())
    runs = pd.read_parquet(processed / "runs.parquet")
    assert runs["environment"].nunique() == 2
    assert len(pd.read_parquet(processed / "all_runs.parquet")) == 8
    steps = pd.read_csv(processed / "cleaning_steps.csv")
    assert len(runs) == steps["runs_out"].iloc[-1] == 8  # no step removes these runs
    assert np.isfinite(runs["energy_j"]).all() and (runs["energy_j"] > 0).all()
    assert np.isfinite(runs["duration_s"]).all()
    with runner.SharedKernel() as kernel:
        runner.run_notebook("02-merge", "seaa2023", {"data_dir": str(seaa2023_subset)},
                            kernel=kernel)
        runner.run_notebook("03-clean", "seaa2023", kernel=kernel)
    second = _merge_clean_outputs("seaa2023")
    assert second.keys() == first.keys()
    changed = [name for name in first if first[name] != second[name]]
    assert changed == [], f"not byte-identical on rerun: {changed}"
