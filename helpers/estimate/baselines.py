"""Baselines that need only duration and hardware specs (docs/methods.md#estimators).

* ML CO2 Impact: Ê = P_TDP · T · PUE.
* Green Algorithms: Ê = T · (P_TDP · u + RAM + CPU) · PUE.

Energies in J, powers in W, durations in s; u is the mean GPU utilisation (fraction 0-1).
"""

from __future__ import annotations

import numpy as np

from helpers.core.units import DEFAULT_CPU_TDP_W_PER_CORE, RAM_W_PER_GB
from helpers.estimate.common import nonnegative_array, scalar_or_array


def ml_co2_impact_energy_j(duration_s, tdp_w, pue: float = 1.0) -> float | np.ndarray:
    """ML CO2 Impact: Ê = P_TDP · T · PUE (J). Vectorised over runs."""
    energy_j = nonnegative_array(tdp_w, "tdp_w") * nonnegative_array(duration_s, "duration_s") * pue
    return scalar_or_array(energy_j)


def green_algorithms_energy_j(
    duration_s,
    tdp_w,
    gpu_usage,
    ram_gb=0.0,
    cpu_cores=0.0,
    cpu_w_per_core: float = DEFAULT_CPU_TDP_W_PER_CORE,
    cpu_usage=1.0,
    pue: float = 1.0,
) -> float | np.ndarray:
    """Green Algorithms: Ê = T · (P_TDP · u + M · 0.3725 + cores · W/core · u_cpu) · PUE (J).

    ``gpu_usage`` and ``cpu_usage`` are fractions 0-1 (a value above 1 raises: pass percentages
    divided by 100). With ``ram_gb`` and ``cpu_cores`` left at 0 this is the GPU-only variant
    Ê = P_TDP · u · T, the one the SEAA 2023 comparison uses. Vectorised over runs.
    """
    u = nonnegative_array(gpu_usage, "gpu_usage")
    u_cpu = nonnegative_array(cpu_usage, "cpu_usage")
    if np.any(u > 1) or np.any(u_cpu > 1):
        raise ValueError("gpu_usage and cpu_usage are fractions 0-1 (divide percentages by 100)")
    power_w = (nonnegative_array(tdp_w, "tdp_w") * u
               + nonnegative_array(ram_gb, "ram_gb") * RAM_W_PER_GB
               + nonnegative_array(cpu_cores, "cpu_cores") * cpu_w_per_core * u_cpu)
    return scalar_or_array(nonnegative_array(duration_s, "duration_s") * power_w * pue)
