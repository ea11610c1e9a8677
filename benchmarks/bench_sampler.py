"""Cost of the sampler: its own CPU time, and how much it slows a training step.

1. Overhead: the sampler runs at ``--interval-s`` (default 0.1 s = 10 Hz) for ``--seconds``
   (default 20) while the main thread sleeps, once with the real backend (NVML; on a machine without
   a GPU that leaves psutil only) and once with the fake GPU backend from tests/fake_nvml.py.
   Reported: sampler thread CPU time (time.thread_time) as % of one core, and the whole process's
   CPU time (psutil) over the same span as a cross-check. Acceptance: <= 1% of one core.
2. Slowdown: a small CNN trains on CPU (random 32x32 images, batch 32; with ``--device cuda``
   torchvision's MobileNetV2 on 224x224 images, batch 128, timed to the end of its GPU work) in
   ABBA blocks of steps
   (without, with, with, without the sampler); each quad gives a ratio of median step times.
   Reported: median ratio and its spread over the quads, and the same-condition ratio of the two
   'without' blocks as the noise floor. On a shared machine the noise dominates a <1% effect.

Run: ``.venv/bin/python benchmarks/bench_sampler.py`` (2-6 min, depending on the machine's load);
results are printed and written to benchmarks/results/sampler.json.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from helpers.collect.devices.fake_nvml import FakeNvmlBackend  # noqa: E402
from helpers.collect.devices.nvml import NvmlBackend  # noqa: E402
from helpers.collect.sampler import Sampler  # noqa: E402
from helpers.core.io import write_json  # noqa: E402


def emulate_epochs(sampler: Sampler, seconds: float, epoch_s: float) -> None:
    """The training driver's marks without training: epoch_start, eval_start (no counter read)
    after 90 % of an epoch, epoch_end, for ``seconds``."""
    end, epoch = time.monotonic() + seconds, 0
    while time.monotonic() + epoch_s <= end:
        sampler.mark("epoch_start", epoch=epoch)
        time.sleep(0.9 * epoch_s)
        sampler.mark("eval_start", epoch=epoch, read_counter=False)
        time.sleep(0.1 * epoch_s)
        sampler.mark("epoch_end", epoch=epoch)
        epoch += 1
    time.sleep(max(0.0, end - time.monotonic()))


def measure_overhead(backend, seconds: float, interval_s: float, workdir: Path, name: str,
                     epoch_s: float = 0.0, slow_period_s: float | None = None) -> dict:
    """Run the sampler for ``seconds`` (with the marks of ``epoch_s``-long epochs when > 0);
    return its CPU cost."""
    proc = psutil.Process()
    sampler = Sampler(workdir / name / "bench" / "000", interval_s=interval_s, gpu_backend=backend,
                      **({} if slow_period_s is None else {"slow_period_s": slow_period_s}))
    sampler.start()
    t0, c0 = time.monotonic(), sum(proc.cpu_times()[:2])
    if epoch_s > 0:
        emulate_epochs(sampler, seconds, epoch_s)
    else:
        time.sleep(seconds)
    summary = sampler.stop()
    wall, cpu = time.monotonic() - t0, sum(proc.cpu_times()[:2]) - c0
    return {
        "backend": name,
        "epoch_s": epoch_s,
        "slow_period_s": sampler.slow_period_s,
        "gpu_status": backend.status,
        "n_gpus": len(sampler.gpus),
        "interval_s": interval_s,
        "duration_s": summary.duration_s,
        "n_ticks": summary.n_ticks,
        "mean_tick_interval_s": summary.mean_tick_interval_s,
        "sampler_cpu_s": summary.sampler_cpu_s,
        "overhead_pct_of_core": summary.overhead_pct_of_core,
        "cpu_per_tick_us": 1e6 * summary.sampler_cpu_s / summary.n_ticks,
        "process_cpu_pct_of_core": 100.0 * cpu / wall,
    }


def make_model(device: str = "cpu"):
    import torch
    from torch import nn

    torch.manual_seed(0)
    if device != "cpu":
        return make_gpu_model(device)
    model = nn.Sequential(
        nn.Conv2d(3, 16, 3, padding=1),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Conv2d(16, 32, 3, padding=1),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Flatten(),
        nn.Linear(32 * 8 * 8, 10),
    )
    optimiser = torch.optim.SGD(model.parameters(), lr=0.01)
    x = torch.randn(32, 3, 32, 32)
    y = torch.randint(0, 10, (32,))
    loss_fn = nn.CrossEntropyLoss()

    def step() -> None:
        optimiser.zero_grad()
        loss_fn(model(x), y).backward()
        optimiser.step()

    return step, torch.get_num_threads()


def make_gpu_model(device: str):
    """MobileNetV2 training steps on ``device``; each step waits for its GPU work."""
    import torch
    import torchvision

    model = torchvision.models.mobilenet_v2(num_classes=10).to(device)
    optimiser = torch.optim.SGD(model.parameters(), lr=0.01)
    x = torch.randn(128, 3, 224, 224, device=device)
    y = torch.randint(0, 10, (128,), device=device)

    def step() -> None:
        optimiser.zero_grad()
        torch.nn.functional.cross_entropy(model(x), y).backward()
        optimiser.step()
        torch.cuda.synchronize(device)

    return step, torch.get_num_threads()


def block_median_s(step, n_steps: int) -> float:
    times = []
    for _ in range(n_steps):
        t = time.perf_counter()
        step()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def sampled_block_s(step, n_steps: int, interval_s: float, folder: Path) -> float:
    with Sampler(folder, interval_s=interval_s, gpu_backend=NvmlBackend()):
        return block_median_s(step, n_steps)


def measure_slowdown(quads: int, steps: int, interval_s: float, workdir: Path,
                     device: str = "cpu") -> dict:
    """ABBA blocks (without, with, with, without the sampler), so linear drift in the machine's
    load cancels; ratio = median step time with / without per quad. The same-condition ratio of
    the two 'without' blocks of a quad is the noise floor."""
    step, threads = make_model(device)
    block_median_s(step, 30)  # warm-up
    ratios, nulls, off_s, on_s = [], [], [], []
    for quad in range(quads):
        folder = workdir / "train" / "bench"
        a1 = block_median_s(step, steps)
        b1 = sampled_block_s(step, steps, interval_s, folder / f"{2 * quad:03d}")
        b2 = sampled_block_s(step, steps, interval_s, folder / f"{2 * quad + 1:03d}")
        a2 = block_median_s(step, steps)
        off_s += [a1, a2]
        on_s += [b1, b2]
        ratios.append((b1 + b2) / (a1 + a2))
        nulls.append(a2 / a1)
    q = statistics.quantiles(ratios, n=4)
    qn = statistics.quantiles(nulls, n=4)
    return {
        "device": device,
        "torch_threads": threads,
        "quads": quads,
        "steps_per_block": steps,
        "step_median_without_s": statistics.median(off_s),
        "step_median_with_s": statistics.median(on_s),
        "ratio_median": statistics.median(ratios),
        "ratio_iqr": [q[0], q[2]],
        "ratio_mean": statistics.fmean(ratios),
        "ratio_std": statistics.stdev(ratios),
        "null_ratio_median": statistics.median(nulls),
        "null_ratio_iqr": [qn[0], qn[2]],
        "ratios": ratios,
        "null_ratios": nulls,
        "load_average_1m_at_end": psutil.getloadavg()[0],
    }


def print_slowdown(s: dict, cores: int) -> None:
    print(
        f"training step with/without sampler: median ratio {s['ratio_median']:.4f} "
        f"(IQR {s['ratio_iqr'][0]:.4f}-{s['ratio_iqr'][1]:.4f}; mean {s['ratio_mean']:.4f} "
        f"+- {s['ratio_std']:.4f} sd over {s['quads']} ABBA quads of {s['steps_per_block']} "
        f"steps); noise floor without/without: median {s['null_ratio_median']:.4f} "
        f"(IQR {s['null_ratio_iqr'][0]:.4f}-{s['null_ratio_iqr'][1]:.4f}); step "
        f"{s['step_median_without_s'] * 1000:.2f} ms without, "
        f"{s['step_median_with_s'] * 1000:.2f} ms with; load average "
        f"{s['load_average_1m_at_end']:.2f} on {cores} cores"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--interval-s", type=float, default=0.1)
    parser.add_argument("--quads", type=int, default=20)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--device", default="cpu", help="'cpu' or 'cuda' for the slowdown part")
    parser.add_argument("--epoch-s", type=float, default=0.0,
                        help="also mark epochs of this length, as the training driver does")
    parser.add_argument("--slow-period-s", type=float, default=None,
                        help="Sampler slow_period_s (default: the Sampler's; 0: every reading "
                             "on every tick)")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks/results/sampler.json")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        settings = {"epoch_s": args.epoch_s, "slow_period_s": args.slow_period_s}
        overhead = [
            measure_overhead(NvmlBackend(), args.seconds, args.interval_s, work, "nvml",
                             **settings),
            measure_overhead(FakeNvmlBackend(), args.seconds, args.interval_s, work, "fake_gpu",
                             **settings),
        ]
        slowdown = (measure_slowdown(args.quads, args.steps, args.interval_s, work, args.device)
                    if args.quads > 0 else None)
    result = {
        "host": {
            "cpu_model": next(
                (
                    line.split(":", 1)[1].strip()
                    for line in Path("/proc/cpuinfo").read_text().splitlines()
                    if line.startswith("model name")
                ),
                "unknown",
            ),
            "logical_cores": psutil.cpu_count(),
        },
        "overhead": overhead,
        "acceptance_overhead_pct_of_core_max": 1.0,
        "overhead_ok": all(o["overhead_pct_of_core"] <= 1.0 for o in overhead),
        "training_step_slowdown": slowdown,
    }
    for o in overhead:
        print(
            f"overhead [{o['backend']}, epoch_s {o['epoch_s']:g}, slow_period_s "
            f"{o['slow_period_s']:g}]: {o['overhead_pct_of_core']:.3f}% of one core "
            f"({o['cpu_per_tick_us']:.0f} us/tick, {o['n_ticks']} ticks, mean interval "
            f"{o['mean_tick_interval_s'] * 1000:.1f} ms); whole process "
            f"{o['process_cpu_pct_of_core']:.3f}%"
        )
    if slowdown is not None:
        print_slowdown(slowdown, result["host"]["logical_cores"])
    write_json(result, args.out)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
