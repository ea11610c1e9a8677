"""One energy rule, three users: the sampler's running totals, the grid's emissions.csv
(``grid.run_energy``) and the clean stage's run table (``project_merge`` + ``analysis.runs``)
give the same joules for GPU, CPU and RAM over the same window.

Where the numbers can differ, and by how much (asserted as bounds, not loose tolerances):

* Counters (NVML, RAPL) are stored exactly and differenced at the same readings: equal to 1e-9.
* Trapezoids: the sampler integrates full-precision times and powers as it goes; the raw file
  keeps ``monotonic_s`` to the microsecond and powers to 10 significant digits; the merged table
  the clean stage reads has millisecond UTC stamps. So each trapezoid may move by at most what
  rounding every time stamp by half a step can do (:func:`rounding_bound_j`).
* CPU estimate (no RAPL): ``emissions.csv`` integrates the sampler's machine-wide estimate (TDP x
  system utilisation), the run table the process-attributed one (TDP x process CPU / cores);
  different power series by design, so the test checks each against its own series.
* No GPU: ``emissions.csv`` writes 0 kWh (CodeCarbon's convention), the run table NaN.
"""

from __future__ import annotations

import math
import time
from pathlib import Path

import numpy as np
import pytest

from helpers.analysis import runs
from helpers.collect import grid
from helpers.collect.devices import cpu as cpu_devices
from helpers.collect.devices.fake_nvml import FakeNvmlBackend, sine_power
from helpers.collect.sampler import Sampler, SamplerSummary
from helpers.core import energy, rules, windows
from helpers.readers import project_merge
from helpers.readers.project import read_run

RAPL_W = 40.0  # power (W) of the clock-driven RAPL stand-in
#: Most two stored clocks of one sample can disagree by (s): millisecond UTC stamps vs
#: ``monotonic_s`` kept to the microsecond; and the latter vs the sampler's own float.
MS_HALF_STEP = 0.5e-3 + 0.5e-6
US_HALF_STEP = 0.5e-6 + 1e-9
ENV = "rules-env"


# -- the rules on their own ------------------------------------------------------------------
def test_gpu_rule_needs_every_gpu_for_a_method() -> None:
    assert rules.gpu_energy_rule([10.0, 20.0], [11.0, 19.0], "r") == (30.0, "nvml_counter")
    assert rules.gpu_energy_rule([10.0, math.nan], [11.0, 19.0], "r") == (30.0, "trapezoid")
    j, method = rules.gpu_energy_rule([10.0, math.nan], [11.0, math.nan], "no samples")
    assert math.isnan(j) and method == "unmeasured: no samples"
    j, method = rules.gpu_energy_rule([], [], "NVML unavailable")  # no GPU: NaN, never 0
    assert math.isnan(j) and method == "unmeasured: NVML unavailable"


def test_cpu_rule_prefers_rapl_and_tags_estimates() -> None:
    tag = "estimate:tdp_x_utilisation(tdp_w=48.0)"
    assert rules.cpu_energy_rule(5.0, 7.0, tag, "r") == (5.0, "rapl")
    assert rules.cpu_energy_rule(math.nan, 7.0, tag, "r") == (7.0, tag)
    assert rules.cpu_energy_rule(math.nan, 7.0, None, "r") == (7.0, "estimate:unspecified")
    j, method = rules.cpu_energy_rule(math.nan, math.nan, tag, "no data")
    assert math.isnan(j) and method == "unmeasured: no data"
    with pytest.raises(ValueError, match="estimate:"):
        rules.cpu_energy_rule(math.nan, 7.0, "tdp", "r")  # an untagged estimate


def test_ram_power_counts_mib_as_decimal_gb() -> None:
    # 1000 MiB = 1.048576 GB: the old MB/1000 reading was 4.86 % low
    assert rules.ram_power_w(1000.0) == pytest.approx(1.048576 * 0.3725, rel=1e-12)
    assert rules.ram_power_w(np.array([0.0, 2000.0]))[1] == pytest.approx(2 * 1.048576 * 0.3725)
    assert rules.ram_energy_rule(3.0, rules.PROCESS_RSS, "r") == (
        3.0, "model:0.3725W_per_GB(process RSS)")


def test_windows() -> None:
    names = ["run_start", "warmup_start", "epoch_start", "epoch_end", "epoch_start", "epoch_end",
             "run_end"]
    times = [0.0, 1.0, 1.5, 3.0, 3.01, 5.0, 6.0]
    samples = np.array([0.0, 2.0, 6.0])
    assert windows.run_window(samples) == (0.0, 6.0, "first to last sample")
    w = windows.training_window(names, times, samples)
    assert w == (1.0, 5.0, "warmup_start to last epoch_end") and w.duration_s == 4.0
    no_warmup = windows.training_window(names[2:], times[2:], samples)
    assert no_warmup == (1.5, 5.0, "first epoch_start to last epoch_end")
    assert windows.training_window([], [], samples) == (0.0, 6.0, "first sample to last sample")
    assert windows.training_window(names[:3], times[:3], samples).label == \
        "warmup_start to last sample"  # a run that died in its first epoch
    epochs = [np.nan, np.nan, 0, 0, 1, 1, np.nan]
    assert windows.epoch_event_pairs(names, epochs) == [(0, 2, 3), (1, 4, 5)]
    assert windows.epoch_event_pairs(names[:5], epochs[:5]) == [(0, 2, 3)]  # epoch 1 unfinished


# -- three recorded runs, computed every way ---------------------------------------------------
class ClockRapl(cpu_devices.RaplReader):
    """RAPL stand-in: a package drawing exactly ``RAPL_W`` since :meth:`open`."""

    def open(self) -> bool:
        self._t_open = time.monotonic()
        self._zones = [(Path("fake-package"), 0)]
        self.status = "ok: fake"
        return True

    def read_j(self) -> float:
        return RAPL_W * (time.monotonic() - self._t_open)


class NoRapl(cpu_devices.RaplReader):
    """RAPL unreadable (as in most VMs), whatever the test machine has."""

    def open(self) -> bool:
        self.status = "RAPL unavailable: test"
        return False


def busy(seconds: float) -> None:
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        pass


def record(folder: Path, backend: FakeNvmlBackend) -> SamplerSummary:
    """A ~0.8-s run: idle lead-in, warm-up, two epochs, tail (> 10 ms, so run_end reads the
    energy counter itself). Host readings every 0.1 s for enough RAM samples."""
    with Sampler(folder, interval_s=0.02, flush_every_s=0.5, gpu_backend=backend,
                 counter_period_s=0.1, slow_period_s=0.1, cpu_tdp_w=48.0) as sampler:
        busy(0.1)
        sampler.mark("warmup_start")
        busy(0.1)
        for epoch in range(2):
            sampler.mark("epoch_start", epoch=epoch)
            busy(0.2)
            sampler.mark("epoch_end", epoch=epoch)
        sampler.mark("tail_start")
        busy(0.1)
    return sampler.stop()


@pytest.fixture(scope="module")
def recorded(tmp_path_factory) -> dict:
    """run name -> (run folder, sampler summary, grid run-window energies, run-table row,
    merged samples)."""
    raw = tmp_path_factory.mktemp("rules") / "raw"
    backends = {
        "counter": (FakeNvmlBackend(n_gpus=2, power=sine_power(200.0, 50.0, 0.3)), True),
        "trapezoid": (FakeNvmlBackend(energy_counter=False), False),
        "cpuonly": (FakeNvmlBackend(unavailable="no GPU in this test"), True),
    }
    summaries = {}
    with pytest.MonkeyPatch.context() as mp:
        for name, (backend, rapl) in backends.items():
            mp.setattr(cpu_devices, "RaplReader", ClockRapl if rapl else NoRapl)
            summaries[name] = record(raw / ENV / name / "000", backend)
    merged = project_merge.merge_project(raw, "rules-test")
    methods = dict(zip(merged.run_index["run_id"], merged.run_index["cpu_energy_method"],
                       strict=True))
    table = runs.summarise_runs(merged.profiling, methods).set_index("run_id")
    return {name: (raw / ENV / name / "000", summaries[name],
                   grid.run_energy(raw / ENV / name / "000", window="run"),
                   table.loc[f"{ENV}/{name}/000"], merged.profiling)
            for name in backends}


def rounding_bound_j(t: np.ndarray, p: np.ndarray, half_step_s: float) -> float:
    """Largest change of the trapezoid of ``p`` (W) over ``t`` (s) when every time stamp moves
    by at most ``half_step_s``. E = sum_i t_i (p_(i-1) - p_(i+1)) / 2 + edge terms, so
    |dE| <= half_step_s (sum |p_(i-1) - p_(i+1)| / 2 + (p_0 + p_1) / 2 + (p_(n-2) + p_(n-1)) / 2),
    plus 1e-9 of the powers for their 10 stored digits."""
    ok = np.isfinite(p)
    p = np.abs(p[ok])
    inner = np.abs(p[:-2] - p[2:]).sum() / 2
    return half_step_s * (inner + (p[0] + p[1]) / 2 + (p[-2] + p[-1]) / 2) + 1e-9 * p.sum()


def raw_series(folder: Path, column: str, gpu_index: float | None = None
               ) -> tuple[np.ndarray, np.ndarray]:
    s = read_run(folder).samples
    rows = s[s["gpu_index"] == gpu_index] if gpu_index is not None else \
        s.drop_duplicates("monotonic_s")
    return rows["monotonic_s"].to_numpy(float), rows[column].to_numpy(float)


def test_gpu_counter_run_same_joules_everywhere(recorded) -> None:
    folder, summary, emitted, row, _ = recorded["counter"]
    assert emitted["gpu_energy_method"] == row["gpu_energy_method"] == "nvml_counter"
    assert summary.gpu_energy_method == "nvml_counter"
    assert emitted["gpu_energy_j"] == pytest.approx(row["gpu_energy_j"], rel=1e-9)
    assert emitted["gpu_energy_j"] == pytest.approx(summary.gpu_energy_j, rel=1e-9)
    assert emitted["energy_window"] == "first to last sample"
    # the window is the same samples: durations differ only by the millisecond stamps
    assert abs(emitted["duration_s"] - row["duration_s"]) <= 1e-3
    assert emitted["duration_s"] == pytest.approx(summary.duration_s, abs=1e-6)


@pytest.mark.parametrize("name", ["counter", "cpuonly"])
def test_rapl_runs_same_cpu_joules_everywhere(recorded, name) -> None:
    _, summary, emitted, row, _ = recorded[name]
    assert emitted["cpu_energy_method"] == row["cpu_energy_method"] == "rapl"
    assert summary.cpu_energy_method == "rapl"
    assert emitted["cpu_energy_j"] == pytest.approx(row["cpu_energy_j"], rel=1e-9)
    assert emitted["cpu_energy_j"] == pytest.approx(summary.cpu_energy_j, rel=1e-9)
    assert emitted["cpu_energy_j"] == pytest.approx(RAPL_W * emitted["duration_s"], rel=1e-3)


def test_trapezoid_run_same_gpu_joules_within_time_stamp_rounding(recorded) -> None:
    folder, summary, emitted, row, _ = recorded["trapezoid"]
    assert emitted["gpu_energy_method"] == row["gpu_energy_method"] == "trapezoid"
    assert summary.gpu_energy_method == "trapezoid"
    t, p = raw_series(folder, "gpu_power_w", 0.0)
    ms_bound, us_bound = rounding_bound_j(t, p, MS_HALF_STEP), rounding_bound_j(t, p, US_HALF_STEP)
    assert abs(emitted["gpu_energy_j"] - row["gpu_energy_j"]) <= ms_bound
    assert abs(emitted["gpu_energy_j"] - summary.gpu_energy_j) <= us_bound
    assert emitted["gpu_energy_j"] == pytest.approx(energy.trapezoid_energy_j(t, p), rel=1e-9)
    assert ms_bound / emitted["gpu_energy_j"] < 5e-3  # a bound far below a units error


def test_cpu_estimate_each_on_its_own_power_series(recorded) -> None:
    folder, summary, emitted, row, profiling = recorded["trapezoid"]
    meta = read_run(folder).metadata
    assert emitted["cpu_energy_method"] == summary.cpu_energy_method == \
        f"estimate:tdp_x_utilisation(tdp_w={meta['cpu_power']['tdp_w']:.1f})"
    assert row["cpu_energy_method"] == \
        rules.process_cpu_estimate_method(meta["cpu_power"]["tdp_w"])
    t, system_w = raw_series(folder, "cpu_power_estimate_w")
    assert emitted["cpu_energy_j"] == pytest.approx(
        energy.trapezoid_energy_j(t, system_w), rel=1e-9)
    assert abs(emitted["cpu_energy_j"] - summary.cpu_energy_j) <= \
        rounding_bound_j(t, system_w, US_HALF_STEP)
    _, process_pct = raw_series(folder, "process_cpu_pct")
    cores = meta["host"]["logical_cores"]
    process_w = meta["cpu_power"]["tdp_w"] * process_pct / (100.0 * cores)
    assert abs(row["cpu_energy_j"] - energy.trapezoid_energy_j(t, process_w)) <= \
        rounding_bound_j(t, process_w, MS_HALF_STEP)


@pytest.mark.parametrize("name", ["counter", "trapezoid", "cpuonly"])
def test_ram_same_joules_and_unit(recorded, name) -> None:
    folder, _, emitted, row, _ = recorded[name]
    assert emitted["ram_energy_method"] == row["ram_energy_method"] == \
        "model:0.3725W_per_GB(process RSS)"
    t, rss_mib = raw_series(folder, "process_rss_mb")
    by_hand_j = energy.trapezoid_energy_j(t, rss_mib * 2**20 / 1e9 * 0.3725)
    assert emitted["ram_energy_j"] == pytest.approx(by_hand_j, rel=1e-9)
    assert abs(emitted["ram_energy_j"] - row["ram_energy_j"]) <= \
        rounding_bound_j(t, rss_mib * 2**20 / 1e9 * 0.3725, MS_HALF_STEP)


def test_cpu_only_run_gpu_conventions(recorded) -> None:
    folder, summary, emitted, row, _ = recorded["cpuonly"]
    assert math.isnan(row["gpu_energy_j"]) and row["gpu_energy_method"].startswith("unmeasured")
    assert math.isnan(summary.gpu_energy_j)
    assert summary.gpu_energy_method == "unmeasured: NVML unavailable: no GPU in this test"
    assert emitted["gpu_energy_j"] == 0.0 and emitted["gpu_energy_method"] == rules.NO_GPU
    assert row["energy_source"] == "cpu:rapl" and row["energy_j"] == row["cpu_energy_j"]


def test_emissions_row_is_run_energy_over_the_training_window(recorded) -> None:
    folder, _, _, _, _ = recorded["counter"]
    train = grid.run_energy(folder)
    events = read_run(folder).events.set_index("event")["monotonic_s"]
    assert train["energy_window"] == "warmup_start to last epoch_end"
    assert train["duration_s"] == pytest.approx(events["epoch_end"].max() - events["warmup_start"])
    cfg = grid.GridConfig(raw_root=folder.parents[2], environment=ENV, architectures=("x",))
    row = grid.emissions_row(folder, cfg, 0)
    for part in ("gpu", "cpu", "ram"):
        assert row[f"{part}_energy"] * 3.6e6 == pytest.approx(train[f"{part}_energy_j"], rel=1e-12)
        assert row[f"{part}_energy_method"] == train[f"{part}_energy_method"]
    assert row["carbon_intensity_g_per_kwh"] == 232.0
    total_kwh = sum(train[f"{p}_energy_j"] for p in ("gpu", "cpu", "ram")) / 3.6e6
    assert row["emissions"] == pytest.approx(total_kwh * 232.0 / 1000.0, rel=1e-12)


def test_merged_table_keeps_the_window_of_the_samples(recorded) -> None:
    folder, _, emitted, row, profiling = recorded["counter"]
    mine = profiling[profiling["run_id"] == f"{ENV}/counter/000"]
    stamps = mine["time_utc"].astype("datetime64[ms, UTC]").astype("int64") / 1e3
    assert row["duration_s"] == pytest.approx(stamps.max() - stamps.min())
    assert row["n_samples"] == len(read_run(folder).samples) / 2  # rows of the first GPU
