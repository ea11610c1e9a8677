"""Check our per-run GPU energy and duration against the authors' published processed dataset.

Reads every raw SEAA 2023 run (``helpers.stages.stage02_merge.merge_seaa2023`` +
``helpers.stages.stage03_clean.build_run_table``), joins it with
``processed/dl-training-energy-consumption-dataset.gzip`` on (environment display name,
architecture, run) and reports the percentage differences. The published energies come from
integer-truncated watts, so ours (decimals kept) should sit about 0.3-0.5% above them.

    .venv/bin/python benchmarks/check_published_energy.py [--data-dir DIR] [--out-dir DIR]

Writes ``published_energy_check.csv`` (one row per run) and ``published_energy_check.md`` (the
summary as a Markdown snippet) under ``benchmarks/results/``.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import pandas as pd

from helpers.core import datasets, io
from helpers.stages import stage02_merge, stage03_clean

PUBLISHED = Path("processed") / "dl-training-energy-consumption-dataset.gzip"
METRICS = Path("interim") / "model_metrics.gzip"
RESULTS = Path(__file__).resolve().parent / "results"
KEY = ["environment_name", "architecture", "run"]


def our_runs(root: Path, workers: int = 2) -> pd.DataFrame:
    """Per-run table (``build_run_table``) of every run under ``root/raw``."""
    merged = stage02_merge.merge_seaa2023(root / "raw", metrics_path=None, workers=workers)
    return stage03_clean.build_run_table(merged, "seaa2023")


def read_published(root: Path) -> pd.DataFrame:
    """The published per-run table, keyed like ours (environment display name)."""
    pub = pd.read_parquet(root / PUBLISHED)
    return pub.rename(columns={"training environment": "environment_name"})


def compare(ours: pd.DataFrame, published: pd.DataFrame) -> pd.DataFrame:
    """One row per run of ``ours``: our and the published GPU energy (MJ) and duration (h), and
    the differences in percent of the published value (NaN where the run is not published)."""
    pub = published[[*KEY, "energy (MJ)", "training duration (h)"]]
    table = ours[["run_id", *KEY, "gpu_energy_j", "duration_s"]].merge(
        pub, on=KEY, how="left", validate="one_to_one")
    out = pd.DataFrame({
        "run_id": table["run_id"],
        "environment": table["environment_name"],
        "architecture": table["architecture"],
        "run": table["run"],
        "energy_mj": table["gpu_energy_j"] / 1e6,
        "published_energy_mj": table["energy (MJ)"],
        "duration_h": table["duration_s"] / 3600.0,
        "published_duration_h": table["training duration (h)"],
    })
    out["energy_diff_pct"] = (out["energy_mj"] / out["published_energy_mj"] - 1.0) * 100.0
    out["duration_diff_pct"] = (out["duration_h"] / out["published_duration_h"] - 1.0) * 100.0
    return out.sort_values("run_id").reset_index(drop=True)


def summarise(cmp: pd.DataFrame, threshold_pct: float = 1.0) -> dict:
    """Share of runs whose |energy difference| <= ``threshold_pct`` (unpublished or unmeasured
    runs count as outside), and min/quartiles/max of both differences (%)."""
    energy = cmp["energy_diff_pct"]
    out: dict = {
        "runs": len(cmp),
        "runs_compared": int(energy.notna().sum()),
        "threshold_pct": threshold_pct,
        "within_threshold": int((energy.abs() <= threshold_pct).sum()),
    }
    out["share_within"] = out["within_threshold"] / out["runs"] if out["runs"] else float("nan")
    for name in ("energy_diff_pct", "duration_diff_pct"):
        q = cmp[name].quantile([0.0, 0.25, 0.5, 0.75, 1.0]).to_numpy()
        out[name] = dict(zip(["min", "q1", "median", "q3", "max"], map(float, q), strict=True))
    return out


def markdown(summary: dict) -> str:
    """The summary as a Markdown snippet."""
    lines = [
        "### GPU energy vs the published SEAA 2023 processed dataset",
        "",
        f"Runs: {summary['runs']} ({summary['runs_compared']} with a published row). "
        f"Within ±{summary['threshold_pct']:g}% energy: {summary['within_threshold']} "
        f"({summary['share_within']:.1%}).",
        "",
        "| difference (ours / published − 1, %) | min | Q1 | median | Q3 | max |",
        "|---|---|---|---|---|---|",
    ]
    for name, label in (("energy_diff_pct", "GPU energy"), ("duration_diff_pct", "duration")):
        d = summary[name]
        lines.append(f"| {label} | " + " | ".join(
            f"{d[k]:+.3f}" for k in ("min", "q1", "median", "q3", "max")) + " |")
    lines += ["", "Published energies were computed from integer-truncated watts, so ours "
              "(decimals kept) are expected slightly above them. "
              "Reproduce: `.venv/bin/python benchmarks/check_published_energy.py`."]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", default=None, help="SEAA 2023 folder (default: "
                        "helpers.core.datasets.seaa2023_dir())")
    parser.add_argument("--out-dir", type=Path, default=RESULTS)
    parser.add_argument("--threshold-pct", type=float, default=1.0)
    args = parser.parse_args(argv)
    root = datasets.seaa2023_dir(args.data_dir)
    start = time.perf_counter()
    cmp = compare(our_runs(root), read_published(root))
    seconds = time.perf_counter() - start
    summary = summarise(cmp, args.threshold_pct)
    io.write_csv(cmp, args.out_dir / "published_energy_check.csv")
    io.write_text(markdown(summary), args.out_dir / "published_energy_check.md")
    print(f"{summary['runs']} runs in {seconds:.1f} s; within ±{args.threshold_pct:g}% energy: "
          f"{summary['within_threshold']} ({summary['share_within']:.1%})")
    for name in ("energy_diff_pct", "duration_diff_pct"):
        d = summary[name]
        print(f"{name:18s} " + "  ".join(f"{k} {v:+.3f}" for k, v in d.items()))
    worst = cmp.loc[cmp["energy_diff_pct"].abs().sort_values(ascending=False).index[:5]]
    print("largest energy differences:\n" + worst.to_string(index=False))
    return 0 if np.isfinite(summary["share_within"]) else 1


if __name__ == "__main__":
    raise SystemExit(main())
