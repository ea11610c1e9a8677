"""End to end: collected runs -> merge -> clean -> STEP, on committed GPU runs and on live CPU
training (grid in subprocesses, real torch).

On collected runs with epochs: STEP after the stabilisation point lies
within 3% of the measured training energy. Asserted on the committed H100 runs (``gpu-h100``,
collected by notebook 01: 8 epochs of ~3 s, energy from the NVML counter), where every run is
within 0.9%. On live CPU training in CI the energy is the tagged CPU estimate attributed to the
training process (TDP x process utilisation; no RAPL on CI machines), and the shared 2-core VM
makes ~7% of sub-second epochs 10-45% slower at full process CPU, sometimes several in a row: STEP
erred up to 10.6% there (CI runs of 2026-11-22). That test checks the pipeline end to end
(epochs tile the training window; STEP within 25%, which catches unit, order or scope errors),
not the hardware's stationarity.
"""

from __future__ import annotations

import numpy as np
import pytest

from helpers.collect import grid
from helpers.core import datasets
from helpers.estimate import online
from helpers.readers import project_merge
from helpers.stages import stage03_clean

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def collected(tmp_path_factory) -> stage03_clean.CleanOutputs:
    raw = tmp_path_factory.mktemp("collected") / "raw"
    config = grid.GridConfig(
        raw_root=raw, environment="cpu-test", architectures=("mobilenet_v3_small",),
        repetitions=1, seed=0, warmup_s=0.0, cooldown_s=0.5,
        # epochs of ~0.5 s hold ~5 samples at 10 Hz: epoch energies are not dominated by
        # which tick lands in which epoch
        run_defaults={"epochs": 10, "train_size": 128, "val_size": 64, "batch_size": 32,
                      "input_size_px": 32, "idle_s": 1.0, "num_threads": 1},
    )
    outcomes = grid.run_grid(config, progress=False)
    assert [o.return_code for o in outcomes] == [0]
    merged = project_merge.merge_project(raw, "collected-test")
    return stage03_clean.clean_dataset(merged, "collected-test", min_epochs=1, contamination=None)


def test_epochs_tile_the_training_window(collected: stage03_clean.CleanOutputs) -> None:
    runs, epochs = collected.runs, collected.epochs
    assert len(runs) == 1 and (runs["status"] == "ok").all()
    assert (epochs.groupby("run_id").size() == 10).all()
    assert (runs["training_energy_scope"] == "epochs").all()
    # the idle baseline is part of the run but not of the training epochs
    assert (runs["training_energy_j"] < runs["energy_j"]).all()
    assert runs["energy_source"].str.startswith("cpu:estimate:tdp_x_process_utilisation").all()


def _step_errors(clean: stage03_clean.CleanOutputs, stabilisation: int, window: int
                 ) -> dict[str, float]:
    """run_id -> |STEP forecast / measured training energy - 1| (the training window starts
    with the warm-up batches: STEP adds their energy, observed before epoch 0)."""
    out = {}
    for run in clean.runs.itertuples():
        ep = clean.epochs[clean.epochs["run_id"] == run.run_id].sort_values("epoch")
        before_j = run.pre_epoch_energy_j if np.isfinite(run.pre_epoch_energy_j) else 0.0
        step = online.step_energy_j(ep["energy_j"].to_numpy(), int(run.epochs),
                                    stabilisation, window, before_epochs_j=before_j)
        assert np.isfinite(step), run.run_id
        out[run.run_id] = abs(step / run.training_energy_j - 1)
    return out


def test_step_on_committed_gpu_runs_within_3pct() -> None:
    raw = datasets.project_root() / "data_inputs" / "gpu-h100" / "raw"
    merged = project_merge.merge_project(raw, "gpu-h100")
    clean = stage03_clean.clean_dataset(merged, "gpu-h100", min_epochs=1, contamination=None)
    errors = _step_errors(clean, 2, 3)  # epochs 2-4 of 8 observed, 5-7 forecast
    assert len(errors) == 10
    # acceptance 3 %; measured 0.08-0.83 % against the NVML counter over the training window
    # (warm-up included; epoch energies from the counter, which NVML refreshes every 100 ms:
    # +-50 J on a 1.5-kJ epoch), deterministic on committed data, so hold it to 1 %
    assert max(errors.values()) < 0.01, errors


def test_step_on_live_cpu_training(collected: stage03_clean.CleanOutputs) -> None:
    # a gross check of the live pipeline (units, epoch order, training scope), not of accuracy:
    # epochs on this VM drift enough that STEP erred up to 10.6 % on a run (CI, 2026-11-22)
    errors = _step_errors(collected, 3, 4)  # epochs 3-6 of 10 observed
    assert max(errors.values()) < 0.25, errors
