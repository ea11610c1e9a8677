"""Notebooks 02-merge and 03-clean under papermill on a few real runs, twice: outputs exist, are
sane, and are byte-identical on rerun.

Outputs go to a temporary project root (``$DLE_PROJECT_ROOT``, holding a link to the real
``notebooks/``), so the real ``data_outputs/`` and ``figures/`` are never touched.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from helpers import runner
from helpers.core import datasets

DATASET = "seaa2023"


def run_02_03(subset: Path) -> dict[str, bytes]:
    """Execute 02 then 03 (in one kernel, its namespace reset between them); return the bytes
    of every interim/processed output file."""
    with runner.SharedKernel() as kernel:
        runner.run_notebook("02-merge", DATASET, {"data_dir": str(subset)}, kernel=kernel)
        runner.run_notebook("03-clean", DATASET, kernel=kernel)
    out = {}
    for kind in ("interim", "processed"):
        folder = datasets.output_dir(DATASET, kind)
        for f in sorted(folder.iterdir()):
            out[f"{kind}/{f.name}"] = f.read_bytes()
    return out


@pytest.mark.slow
def test_02_then_03_on_real_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                 seaa2023_subset: Path) -> None:
    root = tmp_path / "project"
    root.mkdir()
    (root / "notebooks").symlink_to(Path(runner.__file__).resolve().parents[1] / "notebooks")
    monkeypatch.setenv(datasets.PROJECT_ROOT_ENV, str(root))
    assert datasets.project_root() == root.resolve()

    first = run_02_03(seaa2023_subset)

    processed = datasets.output_dir(DATASET, "processed")
    assert processed.is_relative_to(root.resolve())
    assert {"interim/profiling.parquet", "interim/run_index.parquet", "interim/skips.csv",
            "processed/runs.parquet", "processed/all_runs.parquet",
            "processed/cleaning_steps.csv"} <= set(first)
    all_runs = pd.read_parquet(processed / "all_runs.parquet")
    runs = pd.read_parquet(processed / "runs.parquet")
    assert len(all_runs) == 8
    steps = pd.read_csv(processed / "cleaning_steps.csv")
    assert len(runs) == steps["runs_out"].iloc[-1] == 8  # no step removes these runs
    assert np.isfinite(runs["energy_j"]).all() and (runs["energy_j"] > 0).all()
    assert np.isfinite(runs["duration_s"]).all()
    figures = datasets.figures_dir(DATASET)
    for name in ("03-cleaning-funnel", "03-energy-by-architecture-environment"):
        for ext in ("pdf", "png"):
            assert (figures / f"{name}.{ext}").stat().st_size > 1000
    executed = datasets.output_dir(DATASET, "executed")
    assert (executed / "02-merge.ipynb").exists() and (executed / "03-clean.ipynb").exists()

    second = run_02_03(seaa2023_subset)
    assert second.keys() == first.keys()
    changed = [name for name in first if first[name] != second[name]]
    assert changed == [], f"not byte-identical on rerun: {changed}"
