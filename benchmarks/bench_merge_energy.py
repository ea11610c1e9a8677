"""Benchmark: read + merge + per-run energy of every published SEAA 2023 run.

Times ``helpers.stages.stage02_merge.merge_seaa2023`` (split into its phases: reading and
parsing the logs, the nearest GPU<->CPU join, the rest: labels, schema export, metrics) and
``helpers.analysis.runs.summarise_runs`` (per-run energy), ``--repeats`` times; the best repeat
counts.
Acceptance: best total <= 10 s on the 2-core development machine. Wall and CPU seconds are both
recorded, with the load average, because other processes may share the machine.

    .venv/bin/python benchmarks/bench_merge_energy.py [--repeats 3] [--workers 2]

Writes ``benchmarks/results/merge_energy.json``.
"""

from __future__ import annotations

import argparse
import os
import platform
import resource
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from helpers.analysis import runs
from helpers.core import datasets, io
from helpers.readers import merge, seaa2023
from helpers.stages import stage02_merge

RESULTS = Path(__file__).resolve().parent / "results"
ACCEPTANCE_S = 10.0


def cpu_seconds() -> float:
    """User + system CPU seconds of this process and its finished children (the pool)."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


@contextmanager
def timed_attr(module: object, name: str, times: dict[str, float]) -> Iterator[None]:
    """Replace ``module.name`` by a wrapper adding its wall seconds to ``times[name]``."""
    original: Callable = getattr(module, name)

    def wrapper(*args, **kwargs):
        start = time.perf_counter()
        try:
            return original(*args, **kwargs)
        finally:
            times[name] = times.get(name, 0.0) + time.perf_counter() - start

    setattr(module, name, wrapper)
    try:
        yield
    finally:
        setattr(module, name, original)


def one_repeat(raw_dir: Path, workers: int) -> dict:
    """Wall seconds per phase of one read + merge + energy pass, and its CPU seconds."""
    inner: dict[str, float] = {}
    cpu0 = cpu_seconds()
    start = time.perf_counter()
    with timed_attr(seaa2023, "read_logs", inner), timed_attr(merge, "merge_nearest", inner):
        merged = stage02_merge.merge_seaa2023(raw_dir, workers=workers)
    t_merge = time.perf_counter()
    table = runs.summarise_runs(merged.profiling)
    end = time.perf_counter()
    phases = {
        "read_parse": inner["read_logs"],
        "nearest_join": inner["merge_nearest"],
        "labels_schema": t_merge - start - inner["read_logs"] - inner["merge_nearest"],
        "energy_per_run": end - t_merge,
    }
    return {"phases_s": phases, "total_s": end - start, "cpu_s": cpu_seconds() - cpu0,
            "runs": len(table), "gpu_samples": len(merged.profiling),
            "energy_runs_finite": int(table["gpu_energy_j"].notna().sum())}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--workers", type=int, default=2, help="reader processes")
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--out", type=Path, default=RESULTS / "merge_energy.json")
    args = parser.parse_args(argv)
    raw_dir = datasets.seaa2023_dir(args.data_dir) / "raw"
    load_before = os.getloadavg()
    repeats = []
    for i in range(args.repeats):
        r = one_repeat(raw_dir, args.workers)
        repeats.append(r)
        print(f"repeat {i + 1}: " + "  ".join(f"{k} {v:6.2f} s" for k, v in r["phases_s"].items())
              + f"  | total {r['total_s']:6.2f} s (cpu {r['cpu_s']:.2f} s)", flush=True)
    best = min(repeats, key=lambda r: r["total_s"])
    result = {
        "benchmark": "read + merge + per-run energy, all SEAA 2023 runs",
        "command": "python benchmarks/bench_merge_energy.py "
                   f"--repeats {args.repeats} --workers {args.workers}",
        "runs": best["runs"], "gpu_samples": best["gpu_samples"],
        "energy_runs_finite": best["energy_runs_finite"],
        "workers": args.workers, "cpu_count": os.cpu_count(),
        "python": platform.python_version(), "machine": platform.machine(),
        "load_average_before": [round(x, 2) for x in load_before],
        "load_average_after": [round(x, 2) for x in os.getloadavg()],
        "repeats": repeats, "best_total_s": best["total_s"], "best_phases_s": best["phases_s"],
        "acceptance_s": ACCEPTANCE_S, "passed": best["total_s"] <= ACCEPTANCE_S,
    }
    io.write_json(result, args.out)
    print(f"best of {args.repeats}: {best['total_s']:.2f} s for {best['runs']} runs, "
          f"{best['gpu_samples']:,} GPU samples (acceptance <= {ACCEPTANCE_S:g} s: "
          f"{'PASS' if result['passed'] else 'FAIL'}); load average before "
          f"{load_before[0]:.2f}; wrote {args.out}")
    return 0 if result["passed"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
