"""Sampler fidelity on the committed GPU runs: sampled power against the NVML energy counter.

Run: ``.venv/bin/python benchmarks/gpu_fidelity.py [RAW_ROOT]`` (default
``data_inputs/gpu-h100/raw``; CPU only, ~2 s). Prints the summary per (window, method) and the
run-window table, and writes ``benchmarks/results/gpu_fidelity.csv`` (every window) and
``benchmarks/results/gpu_fidelity.md`` (the tables quoted in ``docs/gpu-measurements.md``).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from helpers.analysis import fidelity
from helpers.core.io import write_text

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("raw_root", nargs="?", type=Path,
                        default=ROOT / "data_inputs" / "gpu-h100" / "raw")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results")
    args = parser.parse_args()
    table = fidelity.dataset_fidelity(args.raw_root)
    summary = fidelity.summarise(table)
    runs = table[(table["window"].isin(["run", "training"]))
                 & (table["method"] == "instant_100ms")].pivot(
        index="run_id", columns="window", values=["duration_s", "counter_j", "error_pct"])
    runs.columns = [f"{window}_{value}" for value, window in runs.columns]
    args.out.mkdir(parents=True, exist_ok=True)
    table.to_csv(args.out / "gpu_fidelity.csv", index=False)
    text = ("## Summary per window and method\n\n" + summary.round(3).to_markdown(index=False)
            + "\n\n## Per run: the sampler's instant-power trapezoid (instant_100ms)\n\n"
            + runs.round(3).to_markdown() + "\n")
    write_text(text, args.out / "gpu_fidelity.md")
    print(text)


if __name__ == "__main__":
    main()
