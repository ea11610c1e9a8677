"""CPU cost of each NVML read the sampler could use, as the sampler pays it.

The sampler reads once every 100 ms and sleeps in between; in a VM each read after a sleep costs
several times what it costs in a tight loop. For every call this takes ``--reps`` readings, each
after a ``--sleep-s`` pause, and reports the median thread CPU time (µs), besides the tight-loop
median. It also reads the energy counter through the field API
(``NVML_FI_DEV_TOTAL_ENERGY_CONSUMPTION``) and checks it against
``nvmlDeviceGetTotalEnergyConsumption``.

Run on a GPU machine: ``python benchmarks/nvml_costs.py --out DIR`` (about 40 s); writes
``DIR/nvml_costs.json``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import pynvml


def _field(handle, *ids: int):
    return pynvml.nvmlDeviceGetFieldValues(handle, list(ids))


def calls(handle) -> dict:
    fi = pynvml
    return {
        "power_instant_field": lambda: _field(handle, fi.NVML_FI_DEV_POWER_INSTANT),
        "power_usage_avg": lambda: pynvml.nvmlDeviceGetPowerUsage(handle),
        "power_average_field": lambda: _field(handle, fi.NVML_FI_DEV_POWER_AVERAGE),
        "power_instant_and_average_fields": lambda: _field(
            handle, fi.NVML_FI_DEV_POWER_INSTANT, fi.NVML_FI_DEV_POWER_AVERAGE),
        "utilization": lambda: pynvml.nvmlDeviceGetUtilizationRates(handle),
        "memory_info": lambda: pynvml.nvmlDeviceGetMemoryInfo(handle),
        "temperature": lambda: pynvml.nvmlDeviceGetTemperature(handle, fi.NVML_TEMPERATURE_GPU),
        "sm_clock": lambda: pynvml.nvmlDeviceGetClockInfo(handle, fi.NVML_CLOCK_SM),
        "energy_counter": lambda: pynvml.nvmlDeviceGetTotalEnergyConsumption(handle),
        "energy_counter_field": lambda: _field(handle, fi.NVML_FI_DEV_TOTAL_ENERGY_CONSUMPTION),
    }


def cost_us(fn, reps: int, sleep_s: float) -> tuple[float, float]:
    """(median CPU µs after a pause, median CPU µs in a tight loop)."""
    cold, hot = [], []
    for _ in range(reps):
        time.sleep(sleep_s)
        t = time.thread_time_ns()
        fn()
        cold.append(time.thread_time_ns() - t)
    for _ in range(reps):
        t = time.thread_time_ns()
        fn()
        hot.append(time.thread_time_ns() - t)
    return statistics.median(cold) / 1e3, statistics.median(hot) / 1e3


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--reps", type=int, default=30)
    parser.add_argument("--sleep-s", type=float, default=0.1)
    args = parser.parse_args()
    pynvml.nvmlInit()
    handle = pynvml.nvmlDeviceGetHandleByIndex(0)
    result = {"gpu": pynvml.nvmlDeviceGetName(handle), "sleep_s": args.sleep_s, "calls": {}}
    for name, fn in calls(handle).items():
        try:
            cold, hot = cost_us(fn, args.reps, args.sleep_s)
            result["calls"][name] = {"after_pause_us": cold, "tight_loop_us": hot}
        except pynvml.NVMLError as err:
            result["calls"][name] = {"error": str(err)}
        print(f"{name:<34} {result['calls'][name]}", flush=True)
    value = _field(handle, pynvml.NVML_FI_DEV_TOTAL_ENERGY_CONSUMPTION)[0]
    direct = pynvml.nvmlDeviceGetTotalEnergyConsumption(handle)
    result["energy_field_vs_function"] = {
        "field_return": value.nvmlReturn, "field_value_type": value.valueType,
        "field_ull": value.value.ullVal, "function_mj": direct}
    print(result["energy_field_vs_function"], flush=True)
    pynvml.nvmlShutdown()
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "nvml_costs.json").write_text(json.dumps(result, indent=1, default=str))


if __name__ == "__main__":
    main()
