"""Notebook 06 executed with papermill, with its default (derived) parameters, on a dataset of one
run (the first of the committed H100 runs, tests/foreign_shapes.py, cleaned by notebook 03's
stage in-process; notebooks 02-05 run through papermill in the other tests here): it ends, writes
its not-estimable table naming what one run does not allow, and saves every figure."""

from __future__ import annotations

from pathlib import Path

import foreign_shapes as fs
import pandas as pd
import pytest

from helpers import runner
from helpers.core import datasets
from helpers.stages import stage03_clean

pytestmark = pytest.mark.slow

NOTEBOOKS = datasets.project_root() / "notebooks"
DATASET = "single-run"


def test_notebook_06_on_a_single_run(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv(datasets.PROJECT_ROOT_ENV, str(tmp_path))
    (tmp_path / "notebooks").symlink_to(NOTEBOOKS)
    fs.write_interim(fs.one_run(fs.h100_interim()), DATASET)
    stage03_clean.clean_and_write(DATASET)
    runner.run_notebook("06-estimator-fitting", DATASET, {"pre_models": ["ridge"]})
    reports = datasets.output_dir(DATASET, "reports")
    skipped = set(pd.read_csv(reports / "06-not-estimable.csv")["analysis"])
    assert {"PRE skipped", "bootstrap confidence intervals",
            "PRE predicted vs measured"} <= skipped
    errors = pd.read_csv(reports / "06-estimator-errors.csv")
    mape = errors[(errors["metric"] == "mape_pct") & (errors["split"] == "all_runs")]
    assert mape.set_index("method")["value"][["ml_co2_impact", "step"]].notna().all()
    assert (mape["n_runs"] == 1).all()
    figures = {p.stem for p in datasets.figures_dir(DATASET).glob("*.png")}
    assert {"06-mape-by-method", "06-predicted-vs-measured", "06-pre-predicted-vs-measured",
            "06-online-error-vs-fraction", "06-sensitivity-stabilisation",
            "06-step-forecaster"} <= figures
