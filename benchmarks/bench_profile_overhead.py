"""Cost of ``python -m helpers profile``: the profiler process's CPU, and the cost of a mark.

1. Profiler CPU: the profiler runs a child that sleeps for ``--seconds`` (default 20) at
   ``--interval-s`` (default 0.1 s = 10 Hz), once with the machine's GPUs through NVML (on a
   machine without a GPU: no GPU, the host read on every tick) and once with 2 fake GPUs (the
   GPU mode: instant power every tick, the slow readings once a second). The profiler process's
   own CPU time (user + system, psutil; its child not included) is read 2 s after the start
   (start-up done) and 1 s before the child ends; reported as % of one core over that span, with
   the sampler's own accounting (``metadata.sampler.overhead_pct_of_core``) beside it.
   Acceptance: <= 1 % of one core.
2. Marks: the time of one ``helpers.marks`` call (``epoch_end`` with two metrics; median and
   90th percentile of per-call wall times, ``time.perf_counter_ns``, and median CPU time of the
   calling thread, ``time.thread_time_ns``) in four settings: no profiler (the variable unset: a
   no-op); a profiler receiving (this script re-runs itself as the profiled command; each call
   becomes an event with an edge sample), with the calls back to back (then more than the
   kernel queues arrive between two of the profiler's 50-ms collections and calls wait for
   room) and 20 ms apart (the process computing in between, as between real marks); and a
   profiler gone (the variable names a socket nobody reads: each message is
   dropped and counted). A control row times ``json.dumps`` of a two-key dict 20 ms apart: on a
   loaded machine any small call after other processes ran in between meets cold caches and
   costs tens of microseconds, whatever it does. Acceptance: <= 20 us per call (median, back to
   back).

Run: ``.venv/bin/python benchmarks/bench_profile_overhead.py`` (about 60 s); results are printed
as a table and written to benchmarks/results/profile_overhead.json. On a shared machine repeat
it: other processes' load inflates both figures.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results" / "profile_overhead.json"
MARK_CALLS = 1000


def profiler_cpu(workdir: Path, seconds: float, interval_s: float, fake_gpus: int) -> dict:
    """Run the profiler on a sleeping child; its CPU (% of one core) after start-up."""
    name = f"fake{fake_gpus}" if fake_gpus else "nvml"
    cmd = [sys.executable, "-m", "helpers", "profile", "--quiet", "--raw-root",
           str(workdir / name), "--lock-dir", str(workdir / "locks"), "--environment", "bench",
           "--interval-s", str(interval_s), "--fake-gpus", str(fake_gpus), "--",
           sys.executable, "-c", f"import time; time.sleep({seconds})"]
    env = {k: v for k, v in os.environ.items() if k != "HELPERS_PROFILE_MARKS"}
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env)
    me = psutil.Process(proc.pid)
    time.sleep(2.0)
    c0, t0 = me.cpu_times(), time.monotonic()
    time.sleep(seconds - 3.0)
    c1, t1 = me.cpu_times(), time.monotonic()
    proc.wait()
    (meta_path,) = (workdir / name).glob("*/*/*/metadata.json")
    meta = json.loads(meta_path.read_text())
    cpu_s = (c1.user + c1.system) - (c0.user + c0.system)
    return {"backend": name, "gpus": len(meta["gpus"]), "interval_s": interval_s,
            "span_s": t1 - t0, "profiler_cpu_s": cpu_s,
            "profiler_pct_of_core": 100.0 * cpu_s / (t1 - t0),
            "sampler_pct_of_core": meta["sampler"]["overhead_pct_of_core"],
            "return_code": proc.returncode}


def time_marks(calls: int, pace_s: float, control: bool = False) -> dict:
    """Median / p90 wall time and median thread CPU time (us) of one ``marks.epoch_end`` call
    (``control``: of ``json.dumps`` of a small dict), ``calls`` times, ``pace_s`` apart
    (busy-waiting in between, as a training step would)."""
    from helpers import marks

    def call(i: int) -> None:
        if control:
            json.dumps({"epoch": i, "val_accuracy": 0.5})
        else:
            marks.epoch_end(i, val_accuracy=0.5, val_f1=0.25)

    wall, cpu = [], []
    for i in range(calls):
        c, t = time.thread_time_ns(), time.perf_counter_ns()
        call(i)
        wall.append((time.perf_counter_ns() - t) / 1000.0)
        cpu.append((time.thread_time_ns() - c) / 1000.0)
        until = time.perf_counter() + pace_s
        while time.perf_counter() < until:
            pass
    wall.sort()
    return {"calls": calls, "pace_s": pace_s, "median_us": statistics.median(wall),
            "p90_us": wall[int(0.9 * len(wall))], "cpu_median_us": statistics.median(cpu),
            "dropped": marks.dropped()}


def marks_costs(workdir: Path) -> list[dict]:
    """The four settings of part 2 (the receiving ones in a child under the profiler)."""
    out = []
    env = {k: v for k, v in os.environ.items() if k != "HELPERS_PROFILE_MARKS"}
    script = [sys.executable, str(Path(__file__).resolve()), "--marks-child"]

    def profiled(run: str, calls: int, pace_s: float) -> list[str]:
        return [sys.executable, "-m", "helpers", "profile", "--quiet", "--raw-root",
                str(workdir / run), "--lock-dir", str(workdir / "locks"), "--", *script,
                str(calls), str(pace_s)]

    settings = [
        ("no profiler (no-op)", [*script, str(MARK_CALLS), "0"], env),
        ("profiler, back to back", profiled("hot", MARK_CALLS, 0.0), env),
        ("profiler, 20 ms apart", profiled("paced", MARK_CALLS // 4, 0.02), env),
        ("profiler gone (dropped)", [*script, str(MARK_CALLS), "0"],
         {**env, "HELPERS_PROFILE_MARKS": str(workdir / "nobody.sock")}),
        ("control: json.dumps, 20 ms", [*script, str(MARK_CALLS // 4), "0.02", "--control"],
         env),
    ]
    for name, cmd, child_env in settings:
        done = subprocess.run(cmd, cwd=ROOT, env=child_env, capture_output=True, text=True,
                              check=True)
        out.append({"setting": name, **json.loads(done.stdout.strip().splitlines()[-1])})
    return out


def table(cpu: list[dict], costs: list[dict]) -> str:
    lines = ["profiler process CPU (sleeping child, after start-up)",
             f"  {'backend':<10} {'GPUs':>4} {'interval s':>10} {'span s':>7} "
             f"{'% of core':>9} {'sampler %':>9}"]
    lines += [f"  {r['backend']:<10} {r['gpus']:>4} {r['interval_s']:>10g} {r['span_s']:>7.1f} "
              f"{r['profiler_pct_of_core']:>9.3f} {r['sampler_pct_of_core']:>9.3f}" for r in cpu]
    lines += ["", "one helpers.marks call (epoch_end with two metrics)",
              f"  {'setting':<26} {'calls':>6} {'median us':>10} {'p90 us':>8} "
              f"{'CPU us':>7} {'dropped':>8}"]
    lines += [f"  {r['setting']:<26} {r['calls']:>6} {r['median_us']:>10.2f} {r['p90_us']:>8.2f} "
              f"{r['cpu_median_us']:>7.2f} {r['dropped']:>8}" for r in costs]
    lines += ["", "acceptance: profiler <= 1 % of one core; a mark <= 20 us (back to back)",
              "rerun: .venv/bin/python benchmarks/bench_profile_overhead.py"]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--interval-s", type=float, default=0.1)
    parser.add_argument("--marks-child", nargs=2, metavar=("CALLS", "PACE_S"),
                        help=argparse.SUPPRESS)
    parser.add_argument("--control", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.marks_child:
        print(json.dumps(time_marks(int(args.marks_child[0]), float(args.marks_child[1]),
                                    args.control)))
        return
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        cpu = [profiler_cpu(workdir, args.seconds, args.interval_s, n) for n in (0, 2)]
        costs = marks_costs(workdir)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps({"profiler_cpu": cpu, "marks": costs,
                                   "machine": {"logical_cores": psutil.cpu_count(),
                                               "load_1min": os.getloadavg()[0]}},
                                  indent=2) + "\n")
    print(table(cpu, costs))


if __name__ == "__main__":
    main()
