"""NVIDIA GPUs over NVML (package ``nvidia-ml-py``, module ``pynvml``).

:class:`NvmlBackend` implements :class:`helpers.collect.devices.gpu.GpuBackend`. Units: watts,
joules, MB (= MiB, 2**20 bytes, as nvidia-smi reports), degC, MHz, percent 0-100.

Facts this follows (docs/methods.md#gpu-measurement): the field ``NVML_FI_DEV_POWER_INSTANT`` gives
instant power; ``nvmlDeviceGetPowerUsage`` is a 1-second average on H100/H200 (other GPUs may
average differently; it is always tagged ``power_usage_avg``); the energy
counter ``nvmlDeviceGetTotalEnergyConsumption`` costs about 3 ms per call, so the *sampler* reads it
only at phase edges and every ``counter_period_s``; this module only exposes the read.

Devices belonging to the run follow ``CUDA_VISIBLE_DEVICES`` (integer indices or ``GPU-<uuid>``
prefixes, see :func:`visible_nvml_indices`). Integer indices are taken in NVML (PCI bus) order,
which equals CUDA's order only with ``CUDA_DEVICE_ORDER=PCI_BUS_ID``; a note says so in the status.
MIG instances (``MIG-<uuid>``) are not supported: they are left out with a note, because NVML's
power and energy belong to the whole parent GPU.

If NVML cannot start (no driver, no library), the backend has zero devices and ``status`` holds the
reason, e.g. ``'NVML unavailable: NVMLError_LibraryNotFound: NVML Shared Library Not Found'``;
the sampler then writes NaN GPU fields with that reason, never zeros.
"""

from __future__ import annotations

import math
import os

import pynvml

from helpers.collect.devices.gpu import (
    NAN,
    SLOW_METRICS,
    SOURCE_AVERAGE,
    SOURCE_INSTANT,
    SOURCE_UNSUPPORTED,
    GpuInfo,
    GpuReadError,
    GpuReading,
    package_version,
)
from helpers.core.units import BYTES_PER_MIB as MB


def nvml_error_text(err: BaseException) -> str:
    """``'NVMLError_LibraryNotFound: NVML Shared Library Not Found'`` style text of an error."""
    try:
        text = str(err)
    except Exception:  # pynvml's __str__ may itself call into a missing library
        text = repr(err)
    return f"{type(err).__name__}: {text}" if text else type(err).__name__


def visible_nvml_indices(env_value: str | None, uuids: list[str]) -> tuple[list[int], list[str]]:
    """Map a ``CUDA_VISIBLE_DEVICES`` value onto NVML indices, following CUDA's rules.

    ``uuids`` are the NVML device UUIDs in NVML index order. Unset (``None``) means all devices.
    Entries are integers or ``GPU-<uuid>`` (a unique prefix is enough); CUDA stops at the first
    invalid entry, and so does this. ``MIG-`` entries are left out with a note. Returns
    ``(indices, notes)``.
    """
    if env_value is None:
        return list(range(len(uuids))), []
    indices: list[int] = []
    notes: list[str] = []
    used_integer = False
    for raw in env_value.split(","):
        token = raw.strip()
        if token.lstrip("-").isdigit():
            k = int(token)
            if not 0 <= k < len(uuids):
                notes.append(f"CUDA_VISIBLE_DEVICES entry {token!r} invalid; later entries ignored")
                break
            used_integer = True
            chosen = k
        elif token.startswith("GPU-"):
            matches = [i for i, u in enumerate(uuids) if u.startswith(token)]
            if len(matches) != 1:
                notes.append(
                    f"CUDA_VISIBLE_DEVICES entry {token!r} matches {len(matches)} GPUs; "
                    "later entries ignored"
                )
                break
            chosen = matches[0]
        elif token.startswith("MIG-"):
            notes.append(
                f"MIG device {token!r} not measured: NVML power/energy belong to the whole GPU"
            )
            continue
        else:
            if token:
                notes.append(f"CUDA_VISIBLE_DEVICES entry {token!r} invalid; later ignored")
            break
        if chosen not in indices:
            indices.append(chosen)
    if used_integer and len(uuids) > 1 and os.environ.get("CUDA_DEVICE_ORDER") != "PCI_BUS_ID":
        notes.append(
            "integer CUDA_VISIBLE_DEVICES taken in NVML (PCI bus) order; set "
            "CUDA_DEVICE_ORDER=PCI_BUS_ID so CUDA uses the same order"
        )
    return indices, notes


def _field_value(value: pynvml.c_nvmlFieldValue_t) -> float:
    """Numeric value of an NVML field result, by its declared type."""
    member = {
        pynvml.NVML_VALUE_TYPE_DOUBLE: "dVal",
        pynvml.NVML_VALUE_TYPE_UNSIGNED_INT: "uiVal",
        pynvml.NVML_VALUE_TYPE_UNSIGNED_LONG: "ulVal",
        pynvml.NVML_VALUE_TYPE_UNSIGNED_LONG_LONG: "ullVal",
        pynvml.NVML_VALUE_TYPE_SIGNED_LONG_LONG: "sllVal",
        pynvml.NVML_VALUE_TYPE_SIGNED_INT: "siVal",
        pynvml.NVML_VALUE_TYPE_UNSIGNED_SHORT: "usVal",
    }.get(value.valueType, "uiVal")
    return float(getattr(value.value, member))


class NvmlBackend:
    """GPU backend over NVML. Construct cheaply; :meth:`init` does the work."""

    def __init__(self) -> None:
        self.status = "not initialised"
        self._handles: list[object] = []
        self._devices: list[GpuInfo] = []
        self._driver: str | None = None
        self._nvml_version: str | None = None
        self._started = False

    # -- lifecycle -------------------------------------------------------------------------
    def init(self) -> None:
        """Start NVML and probe the run's GPUs; on failure record the reason and keep 0 GPUs."""
        try:
            pynvml.nvmlInit()
        except Exception as err:  # NVMLError_LibraryNotFound, DriverNotLoaded, OSError...
            self.status = f"NVML unavailable: {nvml_error_text(err)}"
            return
        self._started = True
        try:
            self._driver = _as_str(pynvml.nvmlSystemGetDriverVersion())
            self._nvml_version = _as_str(pynvml.nvmlSystemGetNVMLVersion())
            count = pynvml.nvmlDeviceGetCount()
            all_handles = [pynvml.nvmlDeviceGetHandleByIndex(i) for i in range(count)]
            uuids = [_as_str(pynvml.nvmlDeviceGetUUID(h)) for h in all_handles]
        except Exception as err:
            self.status = f"NVML device discovery failed: {nvml_error_text(err)}"
            self.shutdown()
            return
        chosen, notes = visible_nvml_indices(os.environ.get("CUDA_VISIBLE_DEVICES"), uuids)
        for local, nvml_index in enumerate(chosen):
            handle = all_handles[nvml_index]
            self._handles.append(handle)
            self._devices.append(self._probe(local, nvml_index, uuids[nvml_index], handle))
        if not self._devices:
            notes.insert(0, f"no GPU visible to the run ({count} on the system)")
        self.status = "; ".join(["ok", *notes]) if self._devices else "; ".join(notes)

    def shutdown(self) -> None:
        if self._started:
            try:
                pynvml.nvmlShutdown()
            except Exception:  # already shut down or library gone: nothing left to release
                pass
            self._started = False

    def devices(self) -> list[GpuInfo]:
        return list(self._devices)

    def versions(self) -> dict[str, str | None]:
        return {
            "nvidia-ml-py": package_version("nvidia-ml-py"),
            "driver": self._driver,
            "nvml": self._nvml_version,
        }

    # -- probing ---------------------------------------------------------------------------
    def _probe(self, local: int, nvml_index: int, uuid: str, handle: object) -> GpuInfo:
        """Read static facts and find which per-tick metrics this GPU supports."""
        unsupported: dict[str, str] = {}

        def attempt(metric: str, fn, *args):
            try:
                return fn(handle, *args)
            except Exception as err:
                unsupported[metric] = nvml_error_text(err)
                return None

        name = attempt("name", pynvml.nvmlDeviceGetName)
        limit_mw = attempt("power_limit", pynvml.nvmlDeviceGetPowerManagementLimit)
        mem = attempt("memory", pynvml.nvmlDeviceGetMemoryInfo)
        if attempt("power_instant", self._instant_mw) is None:
            unsupported.setdefault("power_instant", "NVML_FI_DEV_POWER_INSTANT not readable")
        attempt("power_avg", pynvml.nvmlDeviceGetPowerUsage)
        attempt("utilization", pynvml.nvmlDeviceGetUtilizationRates)
        attempt("temperature", pynvml.nvmlDeviceGetTemperature, pynvml.NVML_TEMPERATURE_GPU)
        attempt("sm_clock", pynvml.nvmlDeviceGetClockInfo, pynvml.NVML_CLOCK_SM)
        attempt("energy_counter", pynvml.nvmlDeviceGetTotalEnergyConsumption)
        return GpuInfo(
            index=local,
            nvml_index=nvml_index,
            name=_as_str(name) if name is not None else "unknown",
            uuid=uuid,
            power_limit_w=limit_mw / 1000.0 if limit_mw is not None else NAN,
            memory_total_mb=mem.total / MB if mem is not None else NAN,
            energy_counter_supported="energy_counter" not in unsupported,
            unsupported=unsupported,
        )

    @staticmethod
    def _instant_mw(handle: object) -> float | None:
        """Instant power (mW) from the field API, or None when the field is not readable."""
        value = pynvml.nvmlDeviceGetFieldValues(handle, [pynvml.NVML_FI_DEV_POWER_INSTANT])[0]
        if value.nvmlReturn != pynvml.NVML_SUCCESS:
            return None
        return _field_value(value)

    # -- per tick --------------------------------------------------------------------------
    def read(self, index: int, slow: bool = True) -> GpuReading:
        """Read power, utilisation, memory, temperature and SM clock (30 us on an H100 in a tight
        loop, ~380 us after a 100-ms pause; docs/gpu-measurements.md). ``slow=False`` leaves
        :data:`SLOW_METRICS` NaN (the 1-s average is still read when instant power is not)."""
        handle = self._handles[index]
        skip = set(self._devices[index].unsupported)
        if not slow:
            skip |= set(SLOW_METRICS) - ({"power_avg"} if "power_instant" in skip else set())
        try:
            instant = avg = NAN
            if "power_instant" not in skip:
                mw = self._instant_mw(handle)
                instant = mw / 1000.0 if mw is not None else NAN
            if "power_avg" not in skip:
                avg = pynvml.nvmlDeviceGetPowerUsage(handle) / 1000.0
            usage = mem_usage = used = total = temp = clock = NAN
            if "utilization" not in skip:
                util = pynvml.nvmlDeviceGetUtilizationRates(handle)
                usage, mem_usage = float(util.gpu), float(util.memory)
            if "memory" not in skip:
                mem = pynvml.nvmlDeviceGetMemoryInfo(handle)
                used, total = mem.used / MB, mem.total / MB
            if "temperature" not in skip:
                temp = float(pynvml.nvmlDeviceGetTemperature(handle, pynvml.NVML_TEMPERATURE_GPU))
            if "sm_clock" not in skip:
                clock = float(pynvml.nvmlDeviceGetClockInfo(handle, pynvml.NVML_CLOCK_SM))
        except pynvml.NVMLError as err:
            raise GpuReadError(nvml_error_text(err)) from err
        if not math.isnan(instant):
            power, source = instant, SOURCE_INSTANT
        elif not math.isnan(avg):
            power, source = avg, SOURCE_AVERAGE
        else:
            power, source = NAN, SOURCE_UNSUPPORTED
        return GpuReading(
            power_w=power,
            power_source=source,
            power_instant_w=instant,
            power_avg_w=avg,
            usage_pct=usage,
            memory_usage_pct=mem_usage,
            memory_used_mb=used,
            memory_total_mb=total,
            temperature_c=temp,
            sm_clock_mhz=clock,
        )

    def read_energy_j(self, index: int) -> float:
        """Cumulative energy since the driver loaded (J; NVML gives mJ). NaN if unsupported."""
        if not self._devices[index].energy_counter_supported:
            return NAN
        try:
            return pynvml.nvmlDeviceGetTotalEnergyConsumption(self._handles[index]) / 1000.0
        except pynvml.NVMLError as err:
            raise GpuReadError(nvml_error_text(err)) from err


def _as_str(value: str | bytes) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)
