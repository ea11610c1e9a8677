"""The GPU device abstraction: what a backend reports and the protocol the sampler talks to.

Backends, one file per vendor: :mod:`helpers.collect.devices.nvml` (NVIDIA, the real one) and
:mod:`helpers.collect.devices.fake_nvml` (a scripted test double, shipped so that tests,
benchmarks and users' own tests can run without a GPU). Units: watts, joules, MB (= MiB, 2**20
bytes, as nvidia-smi reports), degC, MHz, percent 0-100.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from importlib import metadata as importlib_metadata
from typing import Protocol

NAN = math.nan

#: Metrics a reading may skip (``read(slow=False)``): they change slowly (temperature, clock,
#: memory) or are a 1-s average; instant power and utilisation are read on every tick.
SLOW_METRICS: tuple[str, ...] = ("power_avg", "memory", "temperature", "sm_clock")

#: ``gpu_power_source`` values.
SOURCE_INSTANT = "instant_field"
SOURCE_AVERAGE = "power_usage_avg"
SOURCE_UNSUPPORTED = "unsupported"


class GpuReadError(RuntimeError):
    """A per-tick GPU read failed; the message is ``'<NVMLErrorClass>: <text>'``."""


@dataclass(frozen=True)
class GpuInfo:
    """Static facts about one GPU of the run.

    ``index`` is the run-local index (position in :meth:`GpuBackend.devices`, i.e. the CUDA index
    inside the process); ``nvml_index`` the system-wide NVML index. ``unsupported`` maps a metric
    name (``power_instant``, ``power_avg``, ``utilization``, ``memory``, ``temperature``,
    ``sm_clock``, ``energy_counter``) to the reason it reads NaN for the whole run.
    """

    index: int
    nvml_index: int
    name: str
    uuid: str
    power_limit_w: float
    memory_total_mb: float
    energy_counter_supported: bool
    unsupported: dict[str, str] = field(default_factory=dict)


@dataclass(slots=True)
class GpuReading:
    """One tick of one GPU. ``power_w`` is the best available power (instant if readable, else the
    averaged reading) and ``power_source`` says which; unreadable metrics are NaN."""

    power_w: float
    power_source: str
    power_instant_w: float
    power_avg_w: float
    usage_pct: float
    memory_usage_pct: float
    memory_used_mb: float
    memory_total_mb: float
    temperature_c: float
    sm_clock_mhz: float


class GpuBackend(Protocol):
    """What the sampler needs from a GPU source (real: :class:`NvmlBackend`; tests: a fake)."""

    #: ``'ok'`` or why there are no GPUs / what is limited (set by :meth:`init`).
    status: str

    def init(self) -> None:
        """Start the library and discover devices; never raises for a missing driver."""

    def shutdown(self) -> None:
        """Release the library (idempotent)."""

    def devices(self) -> list[GpuInfo]:
        """GPUs belonging to the run (empty when unavailable)."""

    def read(self, index: int, slow: bool = True) -> GpuReading:
        """Fast per-tick read of run-local GPU ``index``; raises :class:`GpuReadError`.
        ``slow=False`` skips the slowly changing metrics (:data:`SLOW_METRICS`: NaN)."""

    def read_energy_j(self, index: int) -> float:
        """Cumulative hardware energy counter (J); slow (~3 ms). Raises :class:`GpuReadError`."""

    def versions(self) -> dict[str, str | None]:
        """Library and driver versions (None where unknown)."""


def package_version(name: str) -> str | None:
    """Installed version of distribution ``name``, or None when it is not installed."""
    try:
        return importlib_metadata.version(name)
    except importlib_metadata.PackageNotFoundError:
        return None


