"""Which measurement a component's energy comes from, and its method tag (docs/methods.md#energy).

The choice between measurements and the method strings are defined here once. The sampler
(running totals while a run goes on), the grid's ``emissions.csv`` and the clean stage's run table
(:mod:`helpers.core.energy` integrates their arrays over a window) all call these functions; only
how each obtains the per-GPU and CPU numbers differs.

* GPU: :data:`NVML_COUNTER` (counter differences) where every GPU has one, else
  :data:`TRAPEZOID` (of sampled power) where every GPU has one, else NaN ``unmeasured: <reason>``.
  Several GPUs are summed.
* CPU: :data:`RAPL` (counter difference) where readable, else the TDP x utilisation estimate with
  its own tag (``estimate:...``), else NaN ``unmeasured: <reason>``.
* RAM: not metered; Green Algorithms' :data:`~helpers.core.units.RAM_W_PER_GB` x decimal GB in
  use, tagged ``model:0.3725W_per_GB(<basis>)``.

Pure Python (no numpy), so the sampler can use it on its running sums.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from helpers.core.units import RAM_W_PER_GB, mib_to_gb

#: GPU energy from NVML's total-energy counter (J), differenced over the window.
NVML_COUNTER = "nvml_counter"
#: GPU energy from the trapezoid of sampled power (W) over real time stamps (s).
TRAPEZOID = "trapezoid"
#: CPU energy from the RAPL package counter (J), differenced over the window.
RAPL = "rapl"
#: ``emissions.csv`` only: a run without GPU reports 0 kWh for it (CodeCarbon's convention).
NO_GPU = "none: no GPU in the run"
#: Tag of a CPU estimate whose source did not name its method.
UNSPECIFIED_ESTIMATE = "estimate:unspecified"
#: RAM model bases: what the memory in use is.
PROCESS_RSS = "process RSS"
SYSTEM_RAM_USED = "system RAM used"

_UNMEASURED = "unmeasured: "
_ESTIMATE = "estimate:"


def unmeasured(reason: str) -> str:
    """Method tag of a quantity that could not be measured: ``'unmeasured: <reason>'``."""
    return f"{_UNMEASURED}{reason}"


def unmeasured_reason(method: str) -> str:
    """The reason of an :func:`unmeasured` tag (the tag itself otherwise)."""
    return method.removeprefix(_UNMEASURED)


def _all_finite(values: Sequence[float]) -> bool:
    return bool(values) and all(math.isfinite(v) for v in values)


def gpu_energy_rule(counter_j_per_gpu: Sequence[float], trapezoid_j_per_gpu: Sequence[float],
                    unmeasured_reason: str) -> tuple[float, str]:
    """(energy J, method) of all GPUs of a run over one window.

    ``counter_j_per_gpu``: each GPU's energy-counter difference (J; NaN where it has no counter
    readings covering the window); ``trapezoid_j_per_gpu``: each GPU's power trapezoid (J; NaN
    with fewer than two valid samples). Counters where every GPU has one, else trapezoids where
    every GPU has one, summed; else ``(nan, 'unmeasured: <unmeasured_reason>')`` (also for no
    GPU at all)."""
    if _all_finite(counter_j_per_gpu):
        return sum(counter_j_per_gpu), NVML_COUNTER
    if _all_finite(trapezoid_j_per_gpu):
        return sum(trapezoid_j_per_gpu), TRAPEZOID
    return math.nan, unmeasured(unmeasured_reason)


def cpu_energy_rule(rapl_j: float, estimate_j: float, estimate_method: str | None,
                    unmeasured_reason: str) -> tuple[float, str]:
    """(energy J, method) of the CPU over one window: the RAPL difference ``rapl_j`` (J) where
    finite, else ``estimate_j`` (J, trapezoid of an estimated power) tagged ``estimate_method``
    (``None`` -> :data:`UNSPECIFIED_ESTIMATE`; a tag must start with ``'estimate:'``), else
    ``(nan, 'unmeasured: <unmeasured_reason>')``."""
    if math.isfinite(rapl_j):
        return rapl_j, RAPL
    method = estimate_method or UNSPECIFIED_ESTIMATE
    if not method.startswith(_ESTIMATE):
        raise ValueError(f"a CPU estimate's method must start with {_ESTIMATE!r}: {method!r}")
    if math.isfinite(estimate_j):
        return estimate_j, method
    return math.nan, unmeasured(unmeasured_reason)


def ram_power_w(used_mib: float) -> float:
    """Modelled RAM power (W) of ``used_mib`` MiB in use: :data:`RAM_W_PER_GB` (W per decimal
    GB) x MiB converted to GB (x 1.048576e-3). Numpy arrays work element-wise."""
    return mib_to_gb(used_mib) * RAM_W_PER_GB


def ram_energy_rule(energy_j: float, basis: str, unmeasured_reason: str) -> tuple[float, str]:
    """(energy J, method) of RAM: ``energy_j`` (J, the trapezoid of :func:`ram_power_w` over the
    window) tagged ``'model:0.3725W_per_GB(<basis>)'``, or NaN ``unmeasured: <reason>``."""
    if math.isfinite(energy_j):
        return energy_j, f"model:{RAM_W_PER_GB}W_per_GB({basis})"
    return math.nan, unmeasured(unmeasured_reason)


def cpu_power_estimate_w(tdp_w: float, cpu_usage_pct):
    """System-wide CPU power estimate (W): TDP (W) x system utilisation (%, all cores), the
    package scope RAPL would measure. Works on floats and arrays alike."""
    return tdp_w * cpu_usage_pct / 100.0


def cpu_estimate_method(tdp_w: float) -> str:
    """Method tag of :func:`cpu_power_estimate_w`."""
    return f"{_ESTIMATE}tdp_x_utilisation(tdp_w={tdp_w:.1f})"


def process_cpu_power_estimate_w(tdp_w: float, process_cpu_pct, logical_cores: float):
    """CPU power (W) attributed to one process tree: TDP (W) x process CPU (% of one core) /
    (100 x logical cores), so that other work on a shared machine does not count."""
    return tdp_w * process_cpu_pct / (100.0 * logical_cores)


def process_cpu_estimate_method(tdp_w: float) -> str:
    """Method tag of :func:`process_cpu_power_estimate_w`."""
    return f"{_ESTIMATE}tdp_x_process_utilisation(tdp_w={tdp_w:.1f})"
