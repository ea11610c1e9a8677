"""Energy integration on real timestamps. Joules inside; kWh only for display.

* :func:`trapezoid_energy_j` integrates power (W) over time (s) with the trapezoid rule.
* :func:`cumulative_energy_at_j` gives the energy accumulated up to arbitrary instants, with the
  power curve cut at those instants by linear interpolation, so that the energies of adjacent
  windows (epochs) sum exactly to the energy of their union (the run).
* :func:`counter_energy_j` turns a cumulative hardware counter (NVML total energy, RAPL) into
  the energy of a window; wrap-around is handled when the counter range is given.
* RAM has no meter: :func:`ram_energy_j` applies the Green Algorithms model (0.3725 W/GB).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.integrate import cumulative_trapezoid, trapezoid

#: Green Algorithms RAM power model (W per GB of memory in use). The study used 0.375 W/GB.
RAM_W_PER_GB = 0.3725
#: Joules per kWh.
J_PER_KWH = 3.6e6
#: Carbon intensity the study used for Spain (g CO2e per kWh).
DEFAULT_CARBON_INTENSITY_G_PER_KWH = 232.0


@dataclass(frozen=True)
class EnergyResult:
    """Energy of one window with how it was obtained.

    Attributes:
        energy_j: energy (J); NaN when it could not be measured.
        method: 'trapezoid', 'nvml_counter', 'rapl', 'model:...', or 'unmeasured: <reason>'.
        n_samples: samples that entered the computation.
    """

    energy_j: float
    method: str
    n_samples: int = 0


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


def window_counter_j(t: np.ndarray, c: np.ndarray, t0: float, t1: float) -> float:
    """Difference (J) of a cumulative counter between t0 and t1, interpolated between its
    readings; NaN unless readings cover the window."""
    ok = np.isfinite(c)
    t, c = t[ok], c[ok]
    if len(t) < 2 or t0 < t[0] or t1 > t[-1] or t1 <= t0:
        return float("nan")
    return float(np.interp(t1, t, c) - np.interp(t0, t, c))


def counter_energy_j(counter_j: np.ndarray, wrap_j: float | None = None) -> float:
    """Energy (J) from a cumulative counter: sum of successive non-NaN differences.

    A negative step is a wrap-around when ``wrap_j`` (the counter range) is given; without it a
    negative step raises ``ValueError`` (a reset cannot be told from a wrap). Fewer than two
    readings give NaN.
    """
    c = np.asarray(counter_j, dtype=float)
    c = c[np.isfinite(c)]
    if len(c) < 2:
        return float("nan")
    d = np.diff(c)
    if np.any(d < 0):
        if wrap_j is None:
            raise ValueError("energy counter decreased and no wrap range was given")
        d = np.where(d < 0, d + wrap_j, d)
    return float(d.sum())


def ram_energy_j(time_s: np.ndarray, ram_used_mb: np.ndarray,
                 w_per_gb: float = RAM_W_PER_GB) -> EnergyResult:
    """RAM energy (J) under the Green Algorithms model: ``w_per_gb`` × GB in use, integrated over
    time. GB = MB / 1000 (the model's GB are decimal). Method tag names the model."""
    power = np.asarray(ram_used_mb, dtype=float) / 1000.0 * w_per_gb
    e = trapezoid_energy_j(time_s, power)
    method = f"model:{w_per_gb}W_per_GB"
    if not np.isfinite(e):
        return EnergyResult(float("nan"), "unmeasured: fewer than two RAM samples")
    return EnergyResult(e, method, int(np.isfinite(power).sum()))


def j_to_kwh(energy_j: float | np.ndarray) -> float | np.ndarray:
    """Joules to kWh (display only)."""
    return np.asarray(energy_j, dtype=float) / J_PER_KWH


def emissions_g(energy_j: float | np.ndarray,
                carbon_intensity_g_per_kwh: float = DEFAULT_CARBON_INTENSITY_G_PER_KWH,
                ) -> float | np.ndarray:
    """Emissions (g CO2e) = energy in kWh × carbon intensity (g CO2e/kWh)."""
    return j_to_kwh(energy_j) * carbon_intensity_g_per_kwh
