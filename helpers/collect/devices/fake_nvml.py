"""FakeNvmlBackend: a scripted stand-in for the NVML backend (no GPU), for tests and benchmarks.

Power follows a known function of time since :meth:`FakeNvmlBackend.init` and the energy counter is
its exact integral, so integrated samples can be checked against analytic values (one curve for
every GPU, or one per GPU with ``gpu_power``). Errors and stalls (a call that blocks, as NVML
does when the driver is busy) can be injected at chosen read calls, and the energy counter can be
declared unsupported.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable, Sequence

from helpers.collect.devices.gpu import SOURCE_INSTANT, GpuInfo, GpuReadError, GpuReading

NAN = math.nan


def sine_power(base_w: float = 250.0, amp_w: float = 100.0, period_s: float = 0.7):
    """(power_w(t), energy_j(t)) of ``base + amp * sin(2 pi t / period)``, energy from t = 0."""
    omega = 2.0 * math.pi / period_s

    def power_w(t: float) -> float:
        return base_w + amp_w * math.sin(omega * t)

    def energy_j(t: float) -> float:
        return base_w * t + amp_w / omega * (1.0 - math.cos(omega * t))

    return power_w, energy_j


class FakeNvmlBackend:
    """Implements the :class:`helpers.collect.devices.gpu.GpuBackend` protocol without any hardware.

    ``error_reads``: 0-based indices of :meth:`read` calls (per GPU) that raise
    :class:`GpuReadError`. ``stall_reads``: 0-based indices of :meth:`read` calls (per GPU) that
    block for ``stall_s`` seconds before returning; :attr:`stall_started` is set when the first
    such call begins. ``counter_offset_j``: counter value at t = 0 (NVML counts from driver load,
    so never 0). ``unavailable``: behave like a machine without NVML (no GPUs, that reason).
    ``gpu_power``: one ``(power_w, energy_j)`` pair per GPU (as :func:`sine_power` returns),
    replacing ``power`` for that GPU.
    """

    def __init__(
        self,
        n_gpus: int = 1,
        power: tuple[Callable[[float], float], Callable[[float], float]] | None = None,
        error_reads: set[int] | frozenset[int] = frozenset(),
        energy_counter: bool = True,
        counter_offset_j: float = 123_456.789,
        power_limit_w: float = 700.0,
        unavailable: str | None = None,
        stall_reads: set[int] | frozenset[int] = frozenset(),
        stall_s: float = 0.0,
        gpu_power: Sequence[tuple[Callable[[float], float], Callable[[float], float]]] = (),
    ) -> None:
        self.power_w, self.energy_j = power if power is not None else sine_power()
        if gpu_power and len(gpu_power) != n_gpus:
            raise ValueError(f"gpu_power has {len(gpu_power)} curves for {n_gpus} GPUs")
        self.curves = list(gpu_power) or [(self.power_w, self.energy_j)] * n_gpus
        self.n_gpus = n_gpus
        self.error_reads = set(error_reads)
        self.energy_counter = energy_counter
        self.counter_offset_j = counter_offset_j
        self.power_limit_w = power_limit_w
        self.unavailable = unavailable
        self.stall_reads = set(stall_reads)
        self.stall_s = stall_s
        self.stall_started = threading.Event()
        self.status = "not initialised"
        self.t0 = NAN
        self.read_calls = [0] * n_gpus
        self.slow_reads = [0] * n_gpus  # reads that included the slow metrics
        self.counter_calls = [0] * n_gpus
        self.shut_down = False

    def init(self) -> None:
        self.t0 = time.monotonic()
        self.status = f"NVML unavailable: {self.unavailable}" if self.unavailable else "ok (fake)"

    def shutdown(self) -> None:
        self.shut_down = True

    def devices(self) -> list[GpuInfo]:
        if self.unavailable:
            return []
        return [
            GpuInfo(
                index=i,
                nvml_index=i,
                name="Fake GPU H100",
                uuid=f"GPU-fake-{i}",
                power_limit_w=self.power_limit_w,
                memory_total_mb=81559.0,
                energy_counter_supported=self.energy_counter,
                unsupported={} if self.energy_counter else {"energy_counter": "fake: disabled"},
            )
            for i in range(self.n_gpus)
        ]

    def elapsed_s(self, monotonic_s: float) -> float:
        """Seconds since :meth:`init` of a ``time.monotonic()`` value."""
        return monotonic_s - self.t0

    def read(self, index: int, slow: bool = True) -> GpuReading:
        call = self.read_calls[index]
        self.read_calls[index] += 1
        if call in self.stall_reads:
            self.stall_started.set()
            time.sleep(self.stall_s)
        if call in self.error_reads:
            raise GpuReadError(f"NVMLError_Unknown: injected failure at read {call}, as scripted")
        p = self.curves[index][0](time.monotonic() - self.t0)
        self.slow_reads[index] += slow
        s = 1.0 if slow else NAN
        return GpuReading(
            power_w=p,
            power_source=SOURCE_INSTANT,
            power_instant_w=p,
            power_avg_w=p * s,
            usage_pct=min(100.0, p / self.power_limit_w * 100.0),
            memory_usage_pct=40.0,
            memory_used_mb=20480.0 * s,
            memory_total_mb=81559.0 * s,
            temperature_c=55.0 * s,
            sm_clock_mhz=1980.0 * s,
        )

    def read_energy_j(self, index: int) -> float:
        self.counter_calls[index] += 1
        if not self.energy_counter:
            return NAN
        return self.counter_offset_j + self.curves[index][1](time.monotonic() - self.t0)

    def versions(self) -> dict[str, str | None]:
        return {"nvidia-ml-py": "fake", "driver": "fake", "nvml": "fake"}
