"""helpers.analysis.runs: the run window and the training window of a run with an idle lead-in, a
warm-up, epochs and an idle tail; the training window's energy by the same rules as the run's."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from helpers.analysis import runs as run_tables

T0 = pd.Timestamp("2026-01-01", tz="UTC")
#: idle 0-3 s at 100 W (usage 0), warm-up 3-4 s at 300 W, 3 epochs 4-10 s at 500 W (usage 1),
#: idle tail 10-12 s at 120 W; 10 samples a second.
EVENTS = [("run_start", 0.0, np.nan), ("idle_start", 0.5, np.nan), ("idle_end", 2.9, np.nan),
          ("warmup_start", 3.0, np.nan),
          *[(name, 4.0 + 2 * i + dt, float(i)) for i in range(3)
            for name, dt in (("epoch_start", 0.0), ("epoch_end", 2.0))],
          ("tail_start", 10.0, np.nan)]


def _run(counter: bool = True) -> tuple[pd.DataFrame, pd.DataFrame]:
    t = np.round(np.arange(0.0, 12.0001, 0.1), 3)
    p = np.select([t < 3, t < 4, t <= 10], [100.0, 300.0, 500.0], 120.0)
    cum = np.concatenate([[0.0], np.cumsum(np.diff(t) * (p[1:] + p[:-1]) / 2)])
    samples = pd.DataFrame({
        "run_id": "r", "gpu_index": 0, "gpu_name": "G",
        "time_utc": T0 + pd.to_timedelta(t, unit="s"), "gpu_power_draw": p,
        "device_power_w": p, "gpu_usage": np.where((t >= 4) & (t <= 10), 1.0, 0.0),
        "gpu_energy_counter_j": np.where(np.isin(t, [0, 3, 4, 6, 8, 10, 12]) if counter
                                         else False, 1e6 + cum, np.nan)})
    events = pd.DataFrame({"run_id": "r", "event": [n for n, _, _ in EVENTS],
                           "time_utc": [T0 + pd.Timedelta(seconds=at) for _, at, _ in EVENTS],
                           "epoch": [ep for _, _, ep in EVENTS]})
    return samples, events


def test_training_window_from_the_events_and_its_energy_from_the_counter():
    samples, events = _run()
    row = run_tables.summarise_run(samples, None, events)
    assert row["duration_s"] == pytest.approx(12.0)
    assert row["training_window"] == "warmup_start to last epoch_end"
    assert (row["training_start_s"], row["training_end_s"]) == (3.0, 10.0)
    assert row["training_duration_s"] == pytest.approx(7.0)
    # counter read at the window edges: exactly the integral of the power curve there
    expected = 300 * 1 + 500 * 6 + (500 - 300) * 0.1 / 2  # the 3.9-4.0 s ramp
    assert row["training_energy_j"] == pytest.approx(expected, rel=1e-9)
    assert row["training_energy_source"] == "gpu:nvml_counter"
    assert row["pre_epoch_energy_j"] == pytest.approx(300 + (500 - 300) * 0.1 / 2)
    assert row["energy_j"] > row["training_energy_j"] + 300  # lead-in and tail
    assert row["training_gpu_usage_mean"] == pytest.approx(61 / 71)  # samples 3.0-10.0 s
    assert row["gpu_usage_mean"] == pytest.approx(61 / 121)


def test_without_counter_the_trapezoid_of_the_same_window():
    samples, events = _run(counter=False)
    row = run_tables.summarise_run(samples, None, events)
    assert row["training_energy_source"] == "gpu:trapezoid"
    assert row["training_energy_j"] == pytest.approx(300 + 3000 + 10.0, rel=1e-6)


def test_without_warm_up_mark_the_window_starts_at_the_first_epoch():
    samples, events = _run()
    row = run_tables.summarise_run(samples, None, events[events["event"] != "warmup_start"])
    assert row["training_window"] == "first epoch_start to last epoch_end"
    assert row["training_duration_s"] == pytest.approx(6.0)
    assert row["pre_epoch_energy_j"] == 0.0


def test_without_epoch_events_the_training_window_is_the_run():
    samples, events = _run()
    row = run_tables.summarise_run(samples, None, events[~events["event"].str.startswith(
        ("epoch", "warmup"))])
    assert row["training_window"] == run_tables.WHOLE_RUN
    for col in ("energy_j", "duration_s", "gpu_usage_mean", "gpu_power_mean_w"):
        assert row[f"training_{col}"] == row[col]
    assert np.isnan(row["pre_epoch_energy_j"])


def test_epoch_energies_follow_the_run_rule_and_tile_the_epochs():
    samples, events = _run()
    epochs = run_tables.epoch_table(samples, events)
    assert epochs["energy_method"].eq("gpu:nvml_counter").all()
    assert epochs["energy_j"].tolist() == pytest.approx([1000.0, 1000.0, 1000.0])
    row = run_tables.summarise_run(samples, None, events)
    assert epochs["energy_j"].sum() + row["pre_epoch_energy_j"] == pytest.approx(
        row["training_energy_j"])


def test_a_table_without_training_columns_gets_the_run_values():
    old = pd.DataFrame({"run_id": ["a"], "energy_j": [5.0], "duration_s": [2.0],
                        "energy_source": ["gpu:trapezoid"], "gpu_usage_mean": [0.5],
                        "gpu_power_mean_w": [2.5], "gpu_memory_usage_mean": [0.1]})
    out = run_tables.with_training_columns(old)
    assert out.loc[0, "training_energy_j"] == 5.0 and out.loc[0, "training_duration_s"] == 2.0
    assert out.loc[0, "training_window"] == run_tables.WHOLE_RUN
    assert out.loc[0, "training_device_power_mean_w"] == 2.5
    assert np.isnan(out.loc[0, "training_start_s"])
