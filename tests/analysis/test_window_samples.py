"""helpers.analysis.window_samples: samples cut to each run's training window, the curves cut at
its edges by linear interpolation, time counted from its start."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from helpers.analysis.window_samples import training_samples, window_sample_counts, with_elapsed
from helpers.core.energy import trapezoid_energy_j


def _samples(run_id: str = "r", gpus: int = 1) -> pd.DataFrame:
    t = np.arange(0.0, 10.01, 1.0)
    return pd.concat([pd.DataFrame({"run_id": run_id, "gpu_index": g, "elapsed_s": t,
                                    "device_power_w": 100.0 * t + g, "phase": "train"})
                      for g in range(gpus)], ignore_index=True)


def test_edges_between_samples_are_interpolated_and_time_starts_at_zero():
    runs = pd.DataFrame({"run_id": ["r"], "training_start_s": [2.5], "training_end_s": [7.25]})
    cut = training_samples(_samples(), runs, ["device_power_w"])
    assert cut["elapsed_s"].tolist() == pytest.approx([0, 0.5, 1.5, 2.5, 3.5, 4.5, 4.75])
    assert cut["device_power_w"].iloc[0] == pytest.approx(250.0)
    assert cut["device_power_w"].iloc[-1] == pytest.approx(725.0)
    assert (cut["phase"] == "train").all() and (cut["run_id"] == "r").all()
    # the cut curve integrates to the energy of the window (a line: exact)
    assert trapezoid_energy_j(cut["elapsed_s"], cut["device_power_w"]) == pytest.approx(
        (250 + 725) / 2 * 4.75)


def test_edges_on_samples_add_nothing_and_a_run_without_window_keeps_all():
    runs = pd.DataFrame({"run_id": ["r", "u"], "training_start_s": [2.0 + 1e-4, np.nan],
                         "training_end_s": [8.0, np.nan]})
    cut = training_samples(pd.concat([_samples("r"), _samples("u")]), runs, ["device_power_w"])
    r, u = cut[cut["run_id"] == "r"], cut[cut["run_id"] == "u"]
    assert len(r) == 7 and r["device_power_w"].iloc[0] == 200.0  # within 0.5 ms of a sample
    assert len(u) == 11 and u["elapsed_s"].iloc[0] == 0.0


def test_each_gpu_is_cut_on_its_own_and_counted_once():
    runs = pd.DataFrame({"run_id": ["r"], "training_start_s": [0.5], "training_end_s": [9.5]})
    cut = training_samples(_samples(gpus=2), runs, ["device_power_w"])
    first = cut[cut["gpu_index"] == 1]
    assert first["device_power_w"].iloc[0] == pytest.approx(51.0)
    assert window_sample_counts(cut).to_dict() == {"r": 11}


def test_runs_table_without_windows_and_samples_without_elapsed():
    samples = _samples().drop(columns="elapsed_s").assign(
        timestamp=lambda d: 1_700_000_000_000 + (np.arange(len(d)) * 1000))
    with_t = with_elapsed(samples)
    assert with_t["elapsed_s"].tolist() == list(np.arange(11.0))
    cut = training_samples(with_t, pd.DataFrame({"run_id": ["r"]}), ["device_power_w"])
    assert len(cut) == 11
