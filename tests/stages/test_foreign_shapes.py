"""Notebooks 03-06 (their stage functions, in-process) on data of shapes this project did not
make, built from the committed H100 runs (tests/foreign_shapes.py): every shape ends with
results or named not-estimable entries, never an exception, and every figure panel shows data
or says why not. On the H100 runs themselves: the training window's energy agrees with the NVML
counter, and the estimators are scored on that window with inputs from it.
"""

from __future__ import annotations

import json
import re

import foreign_shapes as fs
import numpy as np
import pandas as pd
import pytest
from figure_checks import assert_drawn
from matplotlib.figure import Figure

from helpers.analysis.clean import NoRunsLeftError
from helpers.core import datasets
from helpers.stages import common, stage03_clean

#: Shapes analysed in-process (notebook 06 also runs through papermill on one-run).
SHAPES = ["h100", "no-metrics", "foreign-profiler", "one-run", "cpu-only", "five-epochs",
          "codecarbon"]
#: Shapes whose PRE fits are worth their time here.
PRE_SHAPES = {"h100", "foreign-profiler"}


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    """A temporary project root for the module; figures are built but neither laid out nor
    written (what is drawn on them is checked; saving is tested in test_common)."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv(datasets.PROJECT_ROOT_ENV, str(tmp_path_factory.mktemp("shapes")))
        mp.setattr(common, "save_figure", lambda *args, **kwargs: [])
        mp.setattr(Figure, "tight_layout", lambda self, *args, **kwargs: None)
        yield fs.h100_interim()


@pytest.fixture(scope="module")
def analysed(project):
    """shape -> sections by notebook, computed once per shape."""
    done = {}

    def run(shape: str) -> dict:
        if shape not in done:
            fs.write_interim(fs.SHAPES[shape](project), shape)
            done[shape] = fs.run_analysis(shape, ("ridge",) if shape in PRE_SHAPES else ())
        return done[shape]
    return run


def _table(dataset: str, kind: str, name: str) -> pd.DataFrame:
    path = datasets.output_dir(dataset, kind) / name
    return pd.read_parquet(path) if name.endswith(".parquet") else pd.read_csv(path)


def _not_estimable(dataset: str, notebook: str) -> dict[str, str]:
    table = _table(dataset, "reports", f"{notebook}-not-estimable.csv")
    assert list(table.columns) == ["analysis", "reason"]
    assert table["reason"].fillna("").str.strip().ne("").all(), "an entry without a reason"
    return dict(zip(table["analysis"], table["reason"], strict=True))


def _mape(dataset: str, split: str = "all_runs") -> pd.Series:
    e = _table(dataset, "reports", "06-estimator-errors.csv")
    e = e[(e["metric"] == "mape_pct") & (e["split"] == split)]
    return e.set_index("method")["value"]


@pytest.mark.parametrize("shape", SHAPES)
def test_each_shape_ends_with_results_or_named_entries(project, analysed, shape):
    sections = analysed(shape)
    n_runs = len(fs.SHAPES[shape](project).run_index)
    assert_drawn([(f"{nb}:{name}", fig) for nb, secs in sections.items() for s in secs
                  for name, fig in s.figures.items()])
    for notebook in ("03", "04", "05", "06"):
        _not_estimable(shape, notebook)
    runs = _table(shape, "processed", "runs.parquet")
    assert len(runs) == n_runs  # no run removed: every shape keeps its runs
    assert np.isfinite(runs["training_energy_j"]).all()
    assert json.loads((fs.reports(shape) / "04-headlines.json").read_text())["n_runs"] == n_runs
    assert np.isfinite(_mape(shape)).any()


def test_h100_training_energy_is_the_counter_difference_over_the_same_window(analysed):
    """(a) read independently from the raw files: the NVML counter (J) interpolated at
    warmup_start and the last epoch_end."""
    analysed("h100")
    runs = _table("h100", "processed", "runs.parquet").set_index("run_id")
    assert (runs["training_window"] == "warmup_start to last epoch_end").all()
    for run_id, run in runs.iterrows():
        folder = fs.H100_RAW / run_id
        samples = pd.read_csv(folder / "samples.csv")
        events = pd.read_csv(folder / "events.csv")
        t0 = events.loc[events["event"] == "warmup_start", "monotonic_s"].min()
        t1 = events.loc[events["event"] == "epoch_end", "monotonic_s"].max()
        read = samples.dropna(subset=["gpu_energy_counter_j"])
        counter = np.interp([t0, t1], read["monotonic_s"], read["gpu_energy_counter_j"])
        assert run["training_energy_j"] == pytest.approx(counter[1] - counter[0], rel=0.005)
        assert run["training_duration_s"] == pytest.approx(t1 - t0, abs=2e-3)
        # the run window adds the idle lead-in and tail: several percent more
        assert run["energy_j"] > 1.03 * run["training_energy_j"]


def test_h100_time_window_step_at_20_percent_of_the_training_window(analysed):
    """(b) MAPE <= 3 %, scored against training_energy_j; the table names the window."""
    analysed("h100")
    assert _mape("h100")["step_time_f20"] <= 3.0
    errors = _table("h100", "reports", "06-estimator-errors.csv")
    assert errors["window"].str.startswith("training window (warmup_start to last "
                                           "epoch_end: 10 runs)").all()


def test_h100_ml_co2_impact_uses_the_training_duration(analysed):
    """(c) Ê = power limit × training_duration_s, not the run's duration."""
    sections = analysed("h100")
    runs = _table("h100", "processed", "runs.parquet").set_index("run_id")
    without = next(s for s in sections["06"] if "estimates (MJ)" in s.tables)
    mean_mj = without.tables["estimates (MJ)"].loc["ml_co2_impact", "mean"]
    expected = (runs["gpu_power_limit_w"] * runs["training_duration_s"]).mean() / 1e6
    assert mean_mj == pytest.approx(expected, abs=1e-3)
    assert expected < 0.9 * (runs["gpu_power_limit_w"] * runs["duration_s"]).mean() / 1e6


def test_h100_derived_parameters_and_windowed_analyses(analysed):
    sections = analysed("h100")
    resolved = next(s for s in sections["06"] if "parameters" in s.tables).tables["parameters"]
    values = dict(zip(resolved["parameter"], resolved["value"], strict=True))
    assert (values["stabilisation_epoch"], values["window_epochs"]) == ("2", "1")  # N = 8
    assert values["n_boot"] == "1000"
    mape = _mape("h100")
    assert mape["step"] < 2 and mape["online_power"] < 5  # estimable on 8-epoch runs
    # 05: the stabilisation point is counted from the start of the training window
    stab = _table("h100", "reports", "05-stabilisation-time.csv")
    runs = _table("h100", "processed", "runs.parquet").set_index("run_id")
    assert np.allclose(stab["start"], 0.0, atol=1e-3)
    assert (stab["span"].to_numpy() <= runs.loc[stab["run_id"], "training_duration_s"]
            .to_numpy() + 1e-3).all()


def test_runs_without_model_metrics_are_kept(analysed):
    """Our format without F1, FLOPs, accuracy or parameters in the metadata."""
    analysed("no-metrics")
    runs = _table("no-metrics", "processed", "runs.parquet")
    assert len(runs) == 10 and runs["f1"].isna().all()
    assert (runs["model_metrics_missing"] == "f1, gflops, accuracy, params").all()
    steps = _table("no-metrics", "processed", "cleaning_steps.csv").set_index("step")
    assert steps.loc["missing model metrics (F1 / FLOPs)", "note"].startswith(
        "skipped: 10 without f1, 10 without gflops: kept")
    skipped = _not_estimable("no-metrics", "04")
    assert {"variable f1", "Pareto front (energy per image vs F1)",
            "interaction plot of f1"} <= set(skipped)
    assert np.isfinite(_mape("no-metrics")[["ml_co2_impact", "step", "step_time_f20"]]).all()


def test_foreign_profiler_runs_are_kept_and_estimated_on_the_training_window(analysed):
    """Another profiler's tidy samples CSV: no F1, FLOPs or epoch count, no counter, no warm-up
    mark; idle lead-in and tail."""
    analysed("foreign-profiler")
    runs = _table("foreign-profiler", "processed", "runs.parquet").set_index("run_id")
    assert runs["f1"].isna().all() and (runs["epochs"] == 8).all()  # epochs from the events
    assert (runs["training_window"] == "first epoch_start to last epoch_end").all()
    assert (runs["training_energy_source"] == "gpu:trapezoid").all()
    assert (runs["energy_j"] > 1.05 * runs["training_energy_j"]).all()
    assert "variable f1" in _not_estimable("foreign-profiler", "04")
    mape = _mape("foreign-profiler")
    assert mape["ml_co2_impact"] < 60 and mape["step_time_f20"] <= 3.0
    assert mape["step"] < 3
    # 05: stabilisation counted from the first epoch, not from the first sample
    stab = _table("foreign-profiler", "reports", "05-stabilisation-time.csv")
    assert np.allclose(stab["start"], 0.0, atol=1e-3)


def test_cpu_only_runs_name_what_needs_a_gpu(analysed):
    analysed("cpu-only")
    runs = _table("cpu-only", "processed", "runs.parquet")
    assert runs["training_energy_source"].str.startswith("cpu:").all()
    assert {"mean power vs GPU utilisation", "power / power limit"} <= set(
        _not_estimable("cpu-only", "05"))
    skipped = _not_estimable("cpu-only", "06")
    assert skipped["method ml_co2_impact"].startswith("no GPU power limit")
    assert np.isfinite(_mape("cpu-only")["step"])


def test_five_epoch_runs_derive_their_stabilisation_epoch(analysed):
    sections = analysed("five-epochs")
    resolved = next(s for s in sections["06"] if "parameters" in s.tables).tables["parameters"]
    values = dict(zip(resolved["parameter"], resolved["value"], strict=True))
    assert (values["stabilisation_epoch"], values["window_epochs"]) == ("1", "1")
    assert np.isfinite(_mape("five-epochs")[["step", "online_power"]]).all()


def test_codecarbon_rows_have_per_run_results_only(analysed):
    analysed("codecarbon")
    runs = _table("codecarbon", "processed", "runs.parquet")
    # what the tracker measured is the training window (the file says which)
    assert (runs["training_energy_j"] == runs["energy_j"]).all()
    assert runs["training_window"].notna().all() and (runs["n_samples"] == 0).all()
    assert "stabilisation point" in _not_estimable("codecarbon", "05")
    assert "time-window estimators and pseudo-epochs" in _not_estimable("codecarbon", "06")
    assert np.isfinite(_mape("codecarbon")["ml_co2_impact"])


def test_a_step_that_leaves_no_run_stops_with_its_name(project):
    fs.write_interim(project, "too-short")
    with pytest.raises(NoRunsLeftError, match=re.escape(
            "cleaning step 'fewer than 50 epochs' removed all 10 remaining runs")):
        stage03_clean.clean_and_write("too-short", min_epochs=50)
    steps = _table("too-short", "processed", "cleaning_steps.csv")
    assert steps["runs_out"].iloc[-1] == 0
