"""helpers.readers.project_merge: rows between host readings (slow_period_s) still count as
covered by CPU/RAM data, within the nearest-join tolerance."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest

from helpers.collect.devices.fake_nvml import FakeNvmlBackend
from helpers.collect.sampler import Sampler
from helpers.readers import project_merge
from helpers.readers.project_merge import _host_gap_s
from helpers.stages import stage03_clean


@pytest.fixture(scope="module")
def slow_host_raw(tmp_path_factory) -> Path:
    """One run of the fake GPU whose host readings are taken every 0.05 s of 0.01-s ticks."""
    raw = tmp_path_factory.mktemp("raw")
    with Sampler(raw / "env" / "arch" / "000", interval_s=0.01, slow_period_s=0.05,
                 gpu_backend=FakeNvmlBackend(), metadata={"epochs_trained": 1}) as sampler:
        sampler.mark("epoch_start", epoch=0)
        time.sleep(0.5)
        sampler.mark("epoch_end", epoch=0)
    return raw


def test_host_gap_is_the_distance_to_the_nearest_host_row():
    t = np.array([0.0, 0.1, 0.2, 0.5, 0.9, 1.0, 3.0])
    host = np.array([1, 0, 0, 0, 0, 1, 0], dtype=bool)
    gap = _host_gap_s(t, host, tolerance_s=1.0)
    np.testing.assert_allclose(gap[:6], [0.0, 0.1, 0.2, 0.5, 0.1, 0.0])
    assert np.isnan(gap[6])  # 2 s from the nearest host row
    assert np.isnan(_host_gap_s(t, np.zeros(7, dtype=bool), 1.0)).all()


def test_slow_host_rows_keep_full_ram_coverage(slow_host_raw):
    merged = project_merge.merge_project(slow_host_raw, "slow-host-test")
    p = merged.profiling
    unread = p["memory_usage"].isna()
    assert unread.mean() > 0.5  # most rows have no host reading of their own
    assert p["cpu_match_gap_s"].notna().all() and p["cpu_match_gap_s"].max() < 0.1
    runs = stage03_clean.build_run_table(merged, "slow-host-test")
    assert runs["ram_coverage"].iloc[0] == 1.0
    assert runs["ram_energy_j"].iloc[0] > 0 and np.isfinite(runs["cpu_energy_j"].iloc[0])


def test_rows_beyond_the_tolerance_are_uncovered(slow_host_raw):
    merged = project_merge.merge_project(slow_host_raw, "slow-host-test", tolerance_s=0.0)
    runs = stage03_clean.build_run_table(merged, "slow-host-test")
    assert runs["ram_coverage"].iloc[0] < 0.5
