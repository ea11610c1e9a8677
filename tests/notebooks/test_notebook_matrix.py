"""Notebooks 02-06 through papermill, in order, on input folders of every shape a user may bring
(tests/raw_shapes.py; the published seaa2023 logs, two environments, from the
``seaa2023_subset`` fixture): each notebook of each shape ends, 03-06 each write a not-estimable
table whose entries all carry a reason, and every saved figure panel shows data or a note saying
why not (figures/<dataset>/panels.csv). Outputs go to a temporary project root."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from figure_checks import assert_panels_drawn
from raw_shapes import RAW_SHAPES

from helpers import runner
from helpers.core import datasets
from helpers.plots import style

pytestmark = pytest.mark.slow

NOTEBOOKS = ["02-merge", "03-clean", "04-trade-offs", "05-power-behaviour",
             "06-estimator-fitting"]
#: Parameters that keep the runs short (the defaults derive everything else from the data).
FAST = {"05-power-behaviour": {"sensitivity_runs": 4, "sensitivity_penalties": [None, 30.0]},
        "06-estimator-fitting": {"pre_models": ["ridge"], "n_boot": 50}}
#: Analyses each shape cannot support, which must be named in its not-estimable tables.
EXPECTED_SKIPS: dict[str, set[str]] = {
    "ours-one-run": {"PRE skipped", "bootstrap confidence intervals",
                     "PRE predicted vs measured"},
    "codecarbon": {"method pseudo_carbontracker", "per-epoch energies"},
}


def _run_shape(root: Path, monkeypatch: pytest.MonkeyPatch, dataset: str,
               data_dir: Path | None = None) -> dict[str, dict[str, str]]:
    """Run 02-06 on ``dataset``; returns notebook -> {analysis: reason} of its table."""
    monkeypatch.setenv(datasets.PROJECT_ROOT_ENV, str(root))
    monkeypatch.setenv(style.FORMATS_ENV, "png")  # drafts: what is drawn is the same
    monkeypatch.setenv(style.DPI_ENV, "50")
    skipped = {}
    for stem in NOTEBOOKS:
        params = dict(FAST.get(stem, {}))
        if stem == "02-merge" and data_dir is not None:
            params["data_dir"] = str(data_dir)
        runner.run_notebook(stem, dataset, params)
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


@pytest.mark.parametrize("shape", sorted(RAW_SHAPES))
def test_notebooks_02_to_06_on_each_input_shape(shape, tmp_path, monkeypatch):
    root = _project(tmp_path)
    RAW_SHAPES[shape](root / "data_inputs" / shape)
    skipped = _run_shape(root, monkeypatch, shape)
    named = {analysis for table in skipped.values() for analysis in table}
    missing = {e for e in EXPECTED_SKIPS.get(shape, set())
               if not any(a.startswith(e) for a in named)}
    assert not missing, (missing, skipped)
    if shape == "ours-one-run":  # what one run allows is still computed and drawn
        errors = pd.read_csv(datasets.output_dir(shape, "reports") / "06-estimator-errors.csv")
        mape = errors[(errors["metric"] == "mape_pct") & (errors["split"] == "all_runs")]
        assert mape.set_index("method")["value"][["ml_co2_impact", "step"]].notna().all()
        assert (mape["n_runs"] == 1).all()
        figures = {p.stem for p in datasets.figures_dir(shape).glob("06-*.png")}
        assert {"06-mape-by-method", "06-predicted-vs-measured", "06-pre-predicted-vs-measured",
                "06-online-error-vs-fraction", "06-sensitivity-stabilisation",
                "06-step-forecaster"} <= figures


def test_notebooks_02_to_06_on_published_logs_of_two_environments(seaa2023_subset, tmp_path,
                                                                   monkeypatch):
    root = _project(tmp_path)
    _run_shape(root, monkeypatch, "seaa2023", data_dir=seaa2023_subset)
    runs = pd.read_parquet(datasets.output_dir("seaa2023", "processed") / "runs.parquet")
    assert runs["environment"].nunique() == 2
