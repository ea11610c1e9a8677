"""Tests for helpers.core.energy: trapezoid integration on real timestamps, window cuts, counters,
the RAM model and unit conversions."""

from __future__ import annotations

import numpy as np
import pytest

from helpers.core import energy, rules


def irregular_times(n: int, t0: float, t1: float, seed: int = 0) -> np.ndarray:
    """``n`` sorted timestamps in [t0, t1] with random (non-uniform) spacing, ends included."""
    rng = np.random.default_rng(seed)
    inner = np.sort(rng.uniform(t0, t1, n - 2))
    return np.concatenate([[t0], inner, [t1]])


def test_trapezoid_matches_analytic_sine_on_irregular_times() -> None:
    a, b, w = 150.0, 80.0, 2 * np.pi / 37.0  # W, W, rad/s
    t0, t1 = 3.2, 611.7
    t = irregular_times(60_000, t0, t1)
    power = a + b * np.sin(w * t)
    exact = a * (t1 - t0) - b / w * (np.cos(w * t1) - np.cos(w * t0))
    got = energy.trapezoid_energy_j(t, power)
    assert abs(got - exact) / exact < 1e-4
    # the same samples treated as 1 s apart would be far off: timestamps really are used
    assert abs(np.sum((power[1:] + power[:-1]) / 2) - exact) / exact > 0.5


def test_trapezoid_exact_for_piecewise_linear() -> None:
    # 0-1 s ramp 100->200 W (150 J), 1-3 s flat 200 W (400 J), 3-3.5 s ramp to 0 (50 J)
    t = np.array([0.0, 1.0, 3.0, 3.5])
    p = np.array([100.0, 200.0, 200.0, 0.0])
    assert energy.trapezoid_energy_j(t, p) == pytest.approx(600.0, rel=1e-15)
    # a linear ramp on irregular timestamps: P = c + k t integrates exactly
    t = irregular_times(501, 10.0, 250.0, seed=3)
    c, k = 40.0, 0.75
    exact = c * (250.0 - 10.0) + k * (250.0**2 - 10.0**2) / 2
    assert energy.trapezoid_energy_j(t, c + k * t) == pytest.approx(exact, rel=1e-12)


def test_trapezoid_bridges_nan() -> None:
    t = np.array([0.0, 1.0, 2.0, 3.0])
    p = np.array([100.0, np.nan, 100.0, 50.0])
    assert energy.trapezoid_energy_j(t, p) == pytest.approx(275.0)


def test_trapezoid_edge_cases() -> None:
    assert np.isnan(energy.trapezoid_energy_j(np.array([1.0]), np.array([100.0])))
    assert np.isnan(energy.trapezoid_energy_j(np.array([1.0, 2.0]), np.array([np.nan, 5.0])))
    with pytest.raises(ValueError, match="non-decreasing"):
        energy.trapezoid_energy_j(np.array([0.0, 2.0, 1.0]), np.ones(3))
    with pytest.raises(ValueError, match="shape"):
        energy.trapezoid_energy_j(np.array([0.0, 1.0]), np.ones(3))


def test_window_energies_sum_exactly_to_total() -> None:
    rng = np.random.default_rng(7)
    t = irregular_times(400, 0.0, 300.0, seed=7)
    p = 100.0 + 50.0 * rng.random(len(t))
    # cut points fall between samples (none coincides with a timestamp)
    cuts = np.array([0.0, 17.31, 55.555, 101.2, 199.99, 250.05, 300.0])
    assert not np.isin(cuts[1:-1], t).any()
    e = energy.window_energies_j(t, p, cuts[:-1], cuts[1:])
    total = energy.trapezoid_energy_j(t, p)
    assert e.sum() == pytest.approx(total, rel=1e-12)
    assert (e > 0).all()
    # windows inside the run sum to the energy of their union
    inner = energy.window_energies_j(t, p, cuts[1:3], cuts[2:4])
    union = energy.window_energies_j(t, p, cuts[1:2], cuts[3:4])
    assert inner.sum() == pytest.approx(union[0], rel=1e-12)


def test_window_cut_by_linear_interpolation() -> None:
    # P = 10 t sampled at 0, 1, 2 s: the window [0.5, 1.5] holds 5 (1.5^2 - 0.5^2) = 10 J
    t = np.array([0.0, 1.0, 2.0])
    p = 10.0 * t
    assert energy.window_energies_j(t, p, np.array([0.5]), np.array([1.5]))[0] == \
        pytest.approx(10.0, rel=1e-14)
    cum = energy.cumulative_energy_at_j(t, p, np.array([-5.0, 0.0, 0.5, 2.0, 9.0]))
    np.testing.assert_allclose(cum, [0.0, 0.0, 1.25, 20.0, 20.0], rtol=1e-14)


def test_counter_energy() -> None:
    assert energy.counter_energy_j(np.array([1000.0, 1500.0, np.nan, 2500.0])) == 1500.0
    wrap = 2.0**32 / 1000.0  # a 32-bit millijoule counter, in joules
    readings = np.array([wrap - 10.0, wrap - 4.0, 3.0, 8.0])
    assert energy.counter_energy_j(readings, wrap_j=wrap) == pytest.approx(18.0)
    # without the range, the step back starts a new segment: 6 J + (not counted) + 5 J
    assert energy.counter_energy_j(readings) == pytest.approx(11.0)
    assert np.isnan(energy.counter_energy_j(np.array([5.0, np.nan])))


def test_counter_reset_starts_a_new_segment_never_an_error() -> None:
    # a driver reload at t = 3: the counter restarts near 0 and goes on
    t = np.arange(7.0)
    c = np.array([5000.0, 5100.0, 5200.0, 4.0, 104.0, 204.0, 304.0])
    np.testing.assert_allclose(energy.counter_increments_j(c, t),
                               [0, 100, 100, 0, 100, 100, 100])
    assert energy.counter_energy_j(c, time_s=t) == pytest.approx(500.0)
    # windows across the reset add up to the whole, and to the sum of segment deltas
    parts = [energy.window_counter_j(t, c, a, b) for a, b in ((0, 2.5), (2.5, 3.5), (3.5, 6))]
    assert sum(parts) == pytest.approx(500.0)
    assert parts[1] == pytest.approx(50.0)  # 2.5-3 of the interval before, 3-3.5 after
    # a step implying more than COUNTER_MAX_POWER_W (a corrupt reading) also starts one
    jump = np.array([100.0, 200.0, 200.0 + 1e9, 1e9 + 300.0])
    assert energy.counter_energy_j(jump, time_s=np.arange(4.0)) == pytest.approx(200.0)
    assert energy.counter_energy_j(jump) == pytest.approx(1e9 + 200.0)  # no time: no rate


def test_counter_cut_short_by_dropped_readings_is_not_the_run_energy() -> None:
    # the counter's last readings were left out as implausible: it stops 6 s before the last
    # row, more than its largest gap between readings (1 s), so the trapezoid is used
    t = np.arange(12.0)
    power = np.full(12, 100.0)
    counter = np.where(t < 6, 1000.0 + 100.0 * t, np.nan)
    e, method, trap = energy.gpu_energy_j([(t, power, counter)], "none")
    assert (e, method) == (pytest.approx(1100.0), rules.TRAPEZOID)
    assert trap == pytest.approx(1100.0)
    counter = np.where(t % 2 == 0, 1000.0 + 100.0 * t, np.nan)  # every 2 s to t = 10 of 11
    e, method, _ = energy.gpu_energy_j([(t, power, counter)], "none")
    assert (e, method) == (pytest.approx(1000.0), rules.NVML_COUNTER)


def test_ram_model_by_hand() -> None:
    t = np.array([0.0, 40.0, 100.0])
    used_mib = np.full(3, 16_000.0)  # 16 000 MiB = 16.777216 GB for 100 s at 0.3725 W/GB
    energy_j, method = energy.ram_energy_j(t, used_mib, "process RSS", "no RAM samples")
    assert energy_j == pytest.approx(16_000 * 2**20 / 1e9 * 0.3725 * 100)  # 624.97 J
    assert method == "model:0.3725W_per_GB(process RSS)"
    lone_j, lone = energy.ram_energy_j(t[:1], used_mib[:1], "process RSS", "no RAM samples")
    assert np.isnan(lone_j) and lone == "unmeasured: no RAM samples"


def test_units_and_emissions() -> None:
    assert energy.j_to_kwh(3.6e6) == pytest.approx(1.0)
    assert energy.emissions_g(3.6e6) == pytest.approx(232.0)
    assert energy.emissions_g(7.2e6, carbon_intensity_g_per_kwh=100.0) == pytest.approx(200.0)
