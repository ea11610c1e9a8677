"""End to end on real CPU training: grid (subprocesses, real torch) -> merge -> clean -> STEP.

Acceptance of issue 5 on collected runs with epochs: STEP after the stabilisation point lies
within 3% of the measured training energy (mean over the runs; each run within 6%). Energy here
is the tagged CPU estimate attributed to the training process (TDP x process utilisation; no
RAPL on CI machines). Why a mean: on a shared 2-core VM about 7% of ~0.7-s epochs take 10-45%
longer with the process at full CPU (it computes slower), and a slow epoch the window does not see
moves a 14-epoch run's total by up to 3%. Resampling the epoch energies of six such runs, one run
with a 6-epoch window misses 3% in ~5% of cases; this test (three runs) fails in ~0.4%.
"""

from __future__ import annotations

import numpy as np
import pytest

from helpers import estimators, grid, pipeline
from helpers.readers import project_merge

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def collected(tmp_path_factory) -> pipeline.CleanOutputs:
    raw = tmp_path_factory.mktemp("collected") / "raw"
    config = grid.GridConfig(
        raw_root=raw, environment="cpu-test", architectures=("mobilenet_v3_small",),
        repetitions=3, seed=0, warmup_s=0.0, cooldown_s=0.5,
        # epochs of ~0.7 s hold ~7 samples at 10 Hz: epoch energies are not dominated by
        # which tick lands in which epoch
        run_defaults={"epochs": 14, "train_size": 192, "val_size": 64, "batch_size": 32,
                      "input_size_px": 32, "idle_s": 1.0, "num_threads": 1},
    )
    outcomes = grid.run_grid(config, progress=False)
    assert [o.return_code for o in outcomes] == [0, 0, 0]
    merged = project_merge.merge_project(raw, "collected-test")
    return pipeline.clean_dataset(merged, "collected-test", min_epochs=1, contamination=None)


def test_epochs_tile_the_training_window(collected: pipeline.CleanOutputs) -> None:
    runs, epochs = collected.runs, collected.epochs
    assert len(runs) == 3 and (runs["status"] == "ok").all()
    assert (epochs.groupby("run_id").size() == 14).all()
    assert (runs["training_energy_scope"] == "epochs").all()
    # the idle baseline is part of the run but not of the training epochs
    assert (runs["training_energy_j"] < runs["energy_j"]).all()
    assert runs["energy_source"].str.startswith("cpu:estimate:tdp_x_process_utilisation").all()


def test_step_after_stabilisation_within_3pct(collected: pipeline.CleanOutputs) -> None:
    errors = {}
    for run in collected.runs.itertuples():
        ep = collected.epochs[collected.epochs["run_id"] == run.run_id].sort_values("epoch")
        energies = ep["energy_j"].to_numpy()
        forecast = estimators.step_energy_j(energies, int(run.epochs), 4, 6)  # epochs 4-9 of 14
        assert np.isfinite(forecast), run.run_id
        errors[run.run_id] = abs(forecast / run.training_energy_j - 1)
    assert max(errors.values()) < 0.06, errors
    assert np.mean(list(errors.values())) < 0.03, errors
