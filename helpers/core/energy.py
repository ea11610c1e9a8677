"""Energy integration on real timestamps. Joules inside; kWh only for display
(docs/methods.md#energy).

* :func:`trapezoid_energy_j` integrates power (W) over time (s) with the trapezoid rule.
* :func:`cumulative_energy_at_j` gives the energy accumulated up to arbitrary instants, with the
  power curve cut at those instants by linear interpolation, so that the energies of adjacent
  windows (epochs) sum exactly to the energy of their union (the run).
* :func:`counter_energy_j` turns a cumulative hardware counter (NVML total energy, RAPL) into
  the energy of a window: the sum of its segments' differences, a step back (reset, glitch)
  starting a new segment (:func:`counter_increments_j`); wrap-around is handled when the counter
  range is given.
* :func:`gpu_energy_j`, :func:`cpu_energy_j` and :func:`ram_energy_j` integrate one run's arrays
  over a window and apply the rules of :mod:`helpers.core.rules` (which measurement counts, and
  its method tag). The grid's ``emissions.csv`` and the clean stage's run table both call them.

Constants (J per kWh, W per GB of RAM, carbon intensity) live in :mod:`helpers.core.units`.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy.integrate import cumulative_trapezoid, trapezoid

from helpers.core import bounds, rules
from helpers.core.units import DEFAULT_CARBON_INTENSITY_G_PER_KWH, J_PER_KWH
from helpers.core.windows import Window


def _clean(time_s: np.ndarray, power_w: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    time_s = np.asarray(time_s, dtype=float)
    power_w = np.asarray(power_w, dtype=float)
    if time_s.shape != power_w.shape:
        raise ValueError(f"time ({time_s.shape}) and power ({power_w.shape}) differ in shape")
    keep = np.isfinite(time_s) & np.isfinite(power_w)
    time_s, power_w = time_s[keep], power_w[keep]
    if np.any(np.diff(time_s) < 0):
        raise ValueError("timestamps must be non-decreasing")
    return time_s, power_w


def trapezoid_energy_j(time_s: np.ndarray, power_w: np.ndarray) -> float:
    """Integrate power (W) over time (s) with the trapezoid rule on the given timestamps.

    Samples with NaN power are skipped (the curve is bridged linearly over them). Returns NaN
    with fewer than two valid samples.
    """
    t, p = _clean(time_s, power_w)
    if len(t) < 2:
        return float("nan")
    return float(trapezoid(p, t))


def cumulative_energy_at_j(time_s: np.ndarray, power_w: np.ndarray,
                           at_s: np.ndarray) -> np.ndarray:
    """Energy (J) accumulated from the first sample up to each instant in ``at_s``.

    Power between samples is linear (the trapezoid model), so the curve is cut at each instant
    by linear interpolation. Instants before the first sample give 0; after the last, the total.
    """
    t, p = _clean(time_s, power_w)
    at = np.asarray(at_s, dtype=float)
    if len(t) < 2:
        return np.full(at.shape, np.nan)
    cum = cumulative_trapezoid(p, t, initial=0.0)
    at_c = np.clip(at, t[0], t[-1])
    i = np.clip(np.searchsorted(t, at_c, side="right") - 1, 0, len(t) - 2)
    dt = t[i + 1] - t[i]
    frac = np.divide(at_c - t[i], dt, out=np.zeros_like(at_c), where=dt > 0)
    p_at = p[i] + frac * (p[i + 1] - p[i])
    return cum[i] + (at_c - t[i]) * (p[i] + p_at) / 2.0


def window_energies_j(time_s: np.ndarray, power_w: np.ndarray, starts_s: np.ndarray,
                      ends_s: np.ndarray) -> np.ndarray:
    """Energy (J) inside each window [start, end], curve cut at the edges by interpolation."""
    e0 = cumulative_energy_at_j(time_s, power_w, starts_s)
    e1 = cumulative_energy_at_j(time_s, power_w, ends_s)
    return e1 - e0


def window_trapezoid_j(t: np.ndarray, p: np.ndarray, t0: float, t1: float) -> float:
    """Trapezoid integral (J) of power ``p`` (W) over [t0, t1] (s), cut at the edges by linear
    interpolation; NaN points are dropped; NaN if fewer than two points or the window is not
    covered by the samples."""
    ok = np.isfinite(p)
    if ok.sum() < 2 or t0 < t[ok][0] or t1 > t[ok][-1] or t1 <= t0:
        return float("nan")
    return float(window_energies_j(t[ok], p[ok], [t0], [t1])[0])


def counter_increments_j(counter_j: np.ndarray, time_s: np.ndarray | None = None,
                         wrap_j: float | None = None) -> np.ndarray:
    """Increments (J) between successive non-NaN readings of a cumulative counter, one per
    reading (0 at the first): the counter's energy up to each reading is their running sum.

    A counter runs in *segments*: a step back (a driver reload resets NVML's counter; a glitch
    or a wrap) ends one and the next reading starts another, and the step across adds 0 (the
    energy of that one interval is not in the counter; the trapezoid beside it is the check).
    With ``wrap_j`` (the counter range) a step back is a wrap-around and adds ``step + wrap_j``.
    With ``time_s`` a step implying more than
    :data:`helpers.core.bounds.COUNTER_MAX_POWER_W` (a corrupt reading) also starts a segment.
    NaN readings add 0."""
    c = np.asarray(counter_j, dtype=float)
    out = np.zeros(c.shape)
    idx = np.flatnonzero(np.isfinite(c))
    if idx.size < 2:
        return out
    d = np.diff(c[idx])
    if wrap_j is not None:
        d = np.where(d < 0, d + wrap_j, d)
    ok = d >= 0
    if time_s is not None:
        dt = np.diff(np.asarray(time_s, dtype=float)[idx])
        ok &= bounds.counter_step_ok(d, dt, bounds.COUNTER_MAX_POWER_W)
    out[idx[1:]] = np.where(ok, d, 0.0)
    return out


def window_counter_j(t: np.ndarray, c: np.ndarray, t0: float, t1: float) -> float:
    """Energy (J) of a cumulative counter between t0 and t1: the sum of its segments'
    differences (:func:`counter_increments_j`), interpolated between its readings; NaN unless
    readings cover the window."""
    ok = np.isfinite(c)
    t, c = np.asarray(t, dtype=float)[ok], np.asarray(c, dtype=float)[ok]
    if len(t) < 2 or t0 < t[0] or t1 > t[-1] or t1 <= t0:
        return float("nan")
    total = np.cumsum(counter_increments_j(c, t))
    return float(np.interp(t1, t, total) - np.interp(t0, t, total))


def counter_energy_j(counter_j: np.ndarray, wrap_j: float | None = None,
                     time_s: np.ndarray | None = None) -> float:
    """Energy (J) from a cumulative counter: the sum of its segments' differences
    (:func:`counter_increments_j`: a step back starts a new segment, or is a wrap-around when
    ``wrap_j``, the counter range, is given; ``time_s`` also ends a segment at an implausibly
    fast rise). Never raises on a step back. Fewer than two readings give NaN."""
    c = np.asarray(counter_j, dtype=float)
    if np.count_nonzero(np.isfinite(c)) < 2:
        return float("nan")
    return float(counter_increments_j(c, time_s, wrap_j).sum())


def _power_j(t: np.ndarray, power_w: np.ndarray, window: Window | None) -> float:
    """Trapezoid (J) of ``power_w`` over ``window``, or over its own valid samples (None)."""
    if window is None:
        return trapezoid_energy_j(t, power_w)
    return window_trapezoid_j(t, power_w, window.start_s, window.end_s)


def _counter_j(t: np.ndarray, counter_j: np.ndarray, window: Window | None) -> float:
    """Counter difference (J) over ``window``; None: first to last reading, NaN where the
    readings stop short of the rows' span (first to last row) by more than their largest gap
    between readings (readings left out as implausible at an edge: the counter no longer
    measures the whole series, and the trapezoid is used)."""
    if window is None:
        t = np.asarray(t, dtype=float)
        read = t[np.isfinite(np.asarray(counter_j, dtype=float)) & np.isfinite(t)]
        if read.size >= 2:
            gap = float(np.max(np.diff(read)))
            if read[0] - np.nanmin(t) > gap or np.nanmax(t) - read[-1] > gap:
                return float("nan")
        return counter_energy_j(counter_j, time_s=t)
    return window_counter_j(t, counter_j, window.start_s, window.end_s)


def gpu_energy_j(per_gpu: Sequence[tuple[np.ndarray, np.ndarray, np.ndarray]],
                 unmeasured_reason: str, window: Window | None = None,
                 ) -> tuple[float, str, float]:
    """(energy J, method, trapezoid J) of a run's GPUs (:func:`helpers.core.rules.gpu_energy_rule`).

    ``per_gpu``: one ``(time s, power W, energy counter J)`` triple of arrays per GPU (NaN where
    not read). ``window``: integrate over it, with counters interpolated and power cut at its edges
    (a series not covering it gives NaN); ``None``: each series over its own valid samples (first
    to last). The trapezoid total is returned beside the chosen energy as a check (NaN unless
    every GPU has one)."""
    counters = [_counter_j(t, c, window) for t, _, c in per_gpu]
    traps = [_power_j(t, p, window) for t, p, _ in per_gpu]
    energy_j, method = rules.gpu_energy_rule(counters, traps, unmeasured_reason)
    trap_j = sum(traps) if traps and np.all(np.isfinite(traps)) else float("nan")
    return energy_j, method, trap_j


def cpu_energy_j(time_s: np.ndarray, rapl_counter_j: np.ndarray, estimate_power_w: np.ndarray,
                 estimate_method: str | None, unmeasured_reason: str,
                 window: Window | None = None) -> tuple[float, str]:
    """(energy J, method) of the CPU, by :func:`helpers.core.rules.cpu_energy_rule`: RAPL counter
    (J) difference, else the trapezoid of ``estimate_power_w`` (W) tagged ``estimate_method``.
    ``time_s``: one row per sampling instant; ``window`` as in :func:`gpu_energy_j`."""
    rapl_j = _counter_j(time_s, np.asarray(rapl_counter_j, dtype=float), window)
    estimate_j = _power_j(time_s, np.asarray(estimate_power_w, dtype=float), window)
    return rules.cpu_energy_rule(rapl_j, estimate_j, estimate_method, unmeasured_reason)


def ram_energy_j(time_s: np.ndarray, used_mib: np.ndarray, basis: str, unmeasured_reason: str,
                 window: Window | None = None) -> tuple[float, str]:
    """(energy J, method) of RAM: the trapezoid of :func:`helpers.core.rules.ram_power_w` of
    ``used_mib`` (MiB in use; ``basis`` names what, e.g. ``rules.PROCESS_RSS``), tagged by
    :func:`helpers.core.rules.ram_energy_rule`. ``window`` as in :func:`gpu_energy_j`."""
    power_w = rules.ram_power_w(np.asarray(used_mib, dtype=float))
    return rules.ram_energy_rule(_power_j(time_s, power_w, window), basis, unmeasured_reason)


def j_to_kwh(energy_j: float | np.ndarray) -> float | np.ndarray:
    """Joules to kWh (display only)."""
    return np.asarray(energy_j, dtype=float) / J_PER_KWH


def emissions_g(energy_j: float | np.ndarray,
                carbon_intensity_g_per_kwh: float = DEFAULT_CARBON_INTENSITY_G_PER_KWH,
                ) -> float | np.ndarray:
    """Emissions (g CO2e) = energy in kWh × carbon intensity (g CO2e/kWh)."""
    return j_to_kwh(energy_j) * carbon_intensity_g_per_kwh
