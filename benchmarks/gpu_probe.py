"""Probe a GPU machine before a measured grid: NVML reads, a short sampler run, training speed.

Run on the GPU machine (``python benchmarks/gpu_probe.py --out DIR``). Prints and writes
``DIR/gpu_probe.json``:

* the NVML backend's devices, what each reports unsupported, and the median cost (µs) of each read;
* a 12 s sampler run (3 s idle, 6 s of matrix products, 3 s idle): the trapezoid of sampled power
  against the energy-counter delta (J, %);
* training throughput (images/s) of each architecture at the grid's batch and input size, used to
  size ``architecture_overrides`` so that every run trains for about the same time.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

ARCHS = ("mobilenet_v2", "resnet50", "vgg16", "efficientnet_b0", "vit_b_16")


def read_costs_us(n: int = 200) -> dict:
    """Median cost (µs) of each NVML read of GPU 0, and the backend's device facts."""
    from helpers.collect.devices.nvml import NvmlBackend

    backend = NvmlBackend()
    backend.init()
    out = {"status": backend.status, "devices": [vars(d) for d in backend.devices()],
           "versions": backend.versions()}
    if backend.devices():
        for name, fn in (("read", lambda: backend.read(0)),
                         ("read_energy_j", lambda: backend.read_energy_j(0))):
            times = []
            for _ in range(n):
                t = time.perf_counter()
                fn()
                times.append(1e6 * (time.perf_counter() - t))
            out[f"{name}_median_us"] = statistics.median(times)
        out["reading"] = {k: getattr(backend.read(0), k) for k in backend.read(0).__slots__}
    backend.shutdown()
    return out


def sampler_check() -> dict:
    """3 s idle, 6 s of bf16 matrix products, 3 s idle under the sampler; summary numbers."""
    import torch

    from helpers.collect.sampler import Sampler

    a = torch.randn(8192, 8192, device="cuda", dtype=torch.bfloat16)
    with tempfile.TemporaryDirectory() as tmp:
        with Sampler(Path(tmp) / "run") as s:
            time.sleep(3)
            s.mark("load_start")
            end = time.perf_counter() + 6
            while time.perf_counter() < end:
                for _ in range(20):
                    a @ a
                torch.cuda.synchronize()
            s.mark("load_end")
            time.sleep(3)
        summary = s.stop()
    counter, trap = summary.gpu_energy_counter_j[0], summary.gpu_energy_trapezoid_j[0]
    return {"counter_j": counter, "trapezoid_j": trap,
            "error_pct": 100 * (trap - counter) / counter,
            "overhead_pct_of_core": summary.overhead_pct_of_core,
            "n_ticks": summary.n_ticks, "duration_s": summary.duration_s}


def throughput(batch_size: int, input_size_px: int, seconds: float) -> dict:
    """Training images/s of each architecture (after a warm-up of the same length)."""
    from helpers.collect import grid, training

    out = {}
    for arch in ARCHS:
        spec = training.RunSpec(architecture=arch, device="cuda", batch_size=batch_size,
                                input_size_px=input_size_px, train_size=8 * batch_size)
        grid.warm_up(spec, seconds)
        t = time.perf_counter()
        epochs = grid.warm_up(spec, seconds)
        out[arch] = epochs * spec.train_size / (time.perf_counter() - t)
        print(f"{arch:<16} {out[arch]:8.0f} images/s", flush=True)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--input-size-px", type=int, default=224)
    parser.add_argument("--seconds", type=float, default=4.0)
    args = parser.parse_args()
    result = {"nvml": read_costs_us()}
    print(json.dumps(result["nvml"], indent=1, default=str), flush=True)
    result["sampler"] = sampler_check()
    print(json.dumps(result["sampler"], indent=1), flush=True)
    result["throughput_img_s"] = throughput(args.batch_size, args.input_size_px, args.seconds)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "gpu_probe.json").write_text(json.dumps(result, indent=1, default=str))


if __name__ == "__main__":
    main()
