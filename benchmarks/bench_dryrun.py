"""Accuracy of the dry-run estimate (docs/methods.md#estimators) against measured runs.

1. Replay (``--replay``, no training, seconds): every run of ``--raw`` (default the committed
   ``data_inputs/gpu-h100/raw``: 10 H100 runs of 8 epochs, training windows of 22–27 s) is
   replayed from the first ``--fractions`` of its training window
   (:func:`helpers.estimate.dryrun.replay_run`) and its training-window time and energy are
   predicted. The time-window STEP estimator of notebook 06 (``step_time``: change-point
   stabilisation on the observed samples, E_observed + P̄ · (T − t_observed), with the true T)
   is scored on the same runs and fractions.
2. Fresh CPU runs (``--cpu``, several minutes): for each configuration of ``--configs``, a dry
   run (``python -m helpers estimate … --budget-s 30``, its own process) and then the full run
   with the training driver (:func:`helpers.collect.training.train_run`, its own process), one
   torch thread each; the prediction is scored against the full run's training window. The
   1-minute load average before each process is recorded: on a shared machine, other work
   slows the steps (time), while the CPU energy (TDP × the process's own utilisation) follows
   the process's CPU time.

Reported: per-run tables and MAPE (%) of energy and time, and how often the measured energy
lies in the interval. Run: ``.venv/bin/python benchmarks/bench_dryrun.py --replay --cpu``;
results are printed and written to ``benchmarks/results/dryrun.json`` (``--out``).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd

from helpers.analysis import parameters
from helpers.analysis.window_samples import clip_run
from helpers.core import rules
from helpers.core.io import write_json
from helpers.core.windows import training_window
from helpers.estimate import dryrun, online
from helpers.readers.project import ProjectRun, discover_runs, read_run

ROOT = Path(__file__).resolve().parents[1]
PY = sys.executable
#: Fresh CPU configurations: (model, input px, batch, train images, val images, epochs); the
#: full runs take about 40–90 s each on a 2-core machine, one thread.
CPU_CONFIGS: dict[str, tuple[str, int, int, int, int, int]] = {
    "mobilenet_v3_small": ("mobilenet_v3_small", 32, 32, 1024, 256, 20),
    "resnet18": ("resnet18", 32, 32, 512, 128, 20),
    "shufflenet_v2_x0_5": ("shufflenet_v2_x0_5", 64, 32, 1024, 256, 25),
}


def _run_id(run_dir: Path) -> str:
    return "/".join(Path(run_dir).parts[-3:])


# -- replay -----------------------------------------------------------------------------------
def device_power(run: ProjectRun) -> tuple[np.ndarray, np.ndarray]:
    """(monotonic s, W) of the component the run's energy comes from: the first GPU's power, or
    the TDP × process-utilisation CPU estimate (as the run table)."""
    s = run.samples
    t = s["monotonic_s"].to_numpy(dtype=float)
    gpu = pd.to_numeric(s["gpu_power_w"], errors="coerce").to_numpy(dtype=float)
    if np.isfinite(gpu).any():
        first = s["gpu_index"] == s["gpu_index"].min()
        return t[first.to_numpy()], gpu[first.to_numpy()]
    meta = run.metadata
    power = rules.process_cpu_power_estimate_w(
        float(meta["cpu_power"]["tdp_w"]), s["process_cpu_pct"].to_numpy(dtype=float),
        float(meta["host"]["logical_cores"]))
    return t, power


def step_time_table(run_dirs: list[Path], fractions: list[float]) -> pd.DataFrame:
    """Notebook 06's time-window STEP (change-point stabilisation) on each run's training
    window: run_id, observed_fraction, estimate_j, reason."""
    samples, runs = [], []
    for d in run_dirs:
        run = read_run(d)
        t, p = device_power(run)
        names = run.events["event"].to_numpy(dtype=object)
        times = run.events["monotonic_s"].to_numpy(dtype=float)
        w = training_window(names, times, t)
        frame = pd.DataFrame({"run_id": _run_id(d), "elapsed_s": t, "device_power_w": p})
        samples.append(clip_run(frame, w.start_s, w.end_s, ["device_power_w"]))
        runs.append({"run_id": _run_id(d), "training_duration_s": w.duration_s})
    samples_df, runs_df = pd.concat(samples, ignore_index=True), pd.DataFrame(runs)
    counts = samples_df.groupby("run_id").size()
    out = []
    for f in fractions:
        window, _ = parameters.derive_block_window(counts, f)
        est = online.online_fraction_estimates(samples_df, runs_df, [f],
                                               change_point_window=window)
        out.append(est[est["method"] == "step_time"])
    return pd.concat(out, ignore_index=True)


def replay(raw: Path, fractions: list[float]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(per-run table, summary per fraction and method) of the replay and of STEP."""
    run_dirs = discover_runs(raw)
    rows = []
    for f in fractions:
        t = dryrun.replay_table(run_dirs, observed_fraction=f)
        t.insert(0, "fraction", f)
        rows.append(t)
    table = pd.concat(rows, ignore_index=True)
    table.insert(1, "run_id", [_run_id(Path(d)) for d in table["run_dir"]])
    step = step_time_table(run_dirs, fractions).rename(
        columns={"observed_fraction": "fraction", "estimate_j": "step_time_j",
                 "reason": "step_time_reason"})
    table = table.merge(step[["run_id", "fraction", "step_time_j", "step_time_reason"]],
                        on=["run_id", "fraction"], how="left")
    table["step_time_error_pct"] = (table["step_time_j"] / table["actual_energy_j"] - 1) * 100
    summary = []
    for f, sub in table.groupby("fraction"):
        ok = sub["reason"].eq("") if "reason" in sub else pd.Series(True, index=sub.index)
        done = sub[ok]
        summary.append({
            "fraction": f, "runs": len(sub), "estimated": int(ok.sum()),
            "observed_s_mean": done["observed_s"].mean() if len(done) else math.nan,
            "epochs_observed": ",".join(map(str, sorted(done["epochs_observed"].unique())))
            if len(done) else "",
            "dry_run_energy_mape_pct": done["energy_error_pct"].abs().mean(),
            "dry_run_time_mape_pct": done["time_error_pct"].abs().mean(),
            "dry_run_energy_in_interval": done["energy_in_interval"].mean(),
            "step_time_energy_mape_pct": done["step_time_error_pct"].abs().mean(),
            "step_time_energy_mape_pct_all": sub["step_time_error_pct"].abs().mean(),
            "reason": (f"{int((~ok).sum())} run(s) not estimable, e.g. "
                       f"{sub.loc[~ok, 'reason'].iloc[0]}") if (~ok).any() else "",
        })
    return table, pd.DataFrame(summary)


# -- fresh CPU runs ---------------------------------------------------------------------------
def _load() -> float:
    return os.getloadavg()[0]


def cpu_share(run: ProjectRun, start_s: float, end_s: float) -> float:
    """Mean CPU use of the run's process over [start_s, end_s], in cores (process_cpu_pct ÷
    100): with one torch thread, below 1 where other work took the core."""
    s = run.samples
    t = s["monotonic_s"].to_numpy(dtype=float)
    inside = (t > start_s) & (t <= end_s)
    return float(np.nanmean(s["process_cpu_pct"].to_numpy(dtype=float)[inside]) / 100)


def dry_run(name: str, cfg: tuple, out: Path, budget_s: float
            ) -> tuple[dict, float, str, float]:
    """Run the command in its own process; (prediction.json, load before, command, CPU share
    of the steady training windows)."""
    model, px, bs, train, val, epochs = cfg
    cmd = [PY, "-m", "helpers", "estimate", "--model", model, "--batch-size", str(bs),
           "--epochs", str(epochs), "--train-size", str(train), "--val-size", str(val),
           "--input-size", str(px), "--budget-s", str(budget_s), "--device", "cpu",
           "--num-threads", "1", "--out", str(out), "--environment", "bench"]
    load = _load()
    done = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, check=False)
    print(done.stdout, done.stderr, sep="", end="")
    run_dir = sorted((out / "bench" / model).iterdir())[-1]
    shown = " ".join(["python", *cmd[1:-4], "--out", "data_outputs/dry-runs"])
    pred = json.loads((run_dir / "prediction.json").read_text())
    run = read_run(run_dir)
    _, _, wins, _ = dryrun.dry_run_windows(run)
    train = [w for w in wins if w.kind == dryrun.TRAIN]
    steady = train[pred["estimate"]["train"]["time"]["start"]:]
    return pred, load, shown, cpu_share(run, steady[0].start_s, steady[-1].end_s)


FULL_RUN = """
import json, sys
from helpers.collect.training import RunSpec, train_run
spec = RunSpec.from_dict(json.loads(sys.argv[1]))
train_run(spec, sys.argv[2], {"interval_s": 0.1})
"""


def full_run(name: str, cfg: tuple, out: Path, repeat: int = 0) -> tuple[ProjectRun, float]:
    """The training driver's run of the configuration in its own process (one thread)."""
    model, px, bs, train, val, epochs = cfg
    spec = {"architecture": model, "environment": "bench-full", "train_size": train,
            "val_size": val, "input_size_px": px, "batch_size": bs, "epochs": epochs,
            "device": "cpu", "num_threads": 1, "idle_s": 1.0}
    run_dir = out / "bench-full" / name / f"{repeat:03d}"
    load = _load()
    done = subprocess.run([PY, "-c", FULL_RUN, json.dumps(spec), str(run_dir)], cwd=ROOT,
                          capture_output=True, text=True, check=False)
    if done.returncode:
        raise RuntimeError(f"full run {name} failed:\n{done.stderr}")
    return read_run(run_dir), load


def _train_span(run: ProjectRun) -> tuple[float, float]:
    ev = run.events
    return (float(ev.loc[ev["event"] == "epoch_start", "monotonic_s"].min()),
            float(ev.loc[ev["event"] == "epoch_end", "monotonic_s"].max()))


def time_error_at_equal_share(row: dict) -> float:
    """Diagnostic, not a prediction: the time error (%) had the full run got the dry run's CPU
    share (predicted time × share in the dry run ÷ share in the full run)."""
    adjusted = row["predicted_time_s"] * row["cpu_share_dry"] / row["cpu_share_full"]
    return (adjusted / row["actual_time_s"] - 1) * 100


def cpu_runs(names: list[str], budget_s: float, workdir: Path, repeats: int) -> pd.DataFrame:
    """``repeats`` × (dry run, then full run) of each configuration; one row each."""
    rows = []
    for name in [n for _ in range(repeats) for n in names]:
        cfg = CPU_CONFIGS[name]
        rep = sum(r["config"] == name for r in rows)
        pred, load_dry, cmd, share_dry = dry_run(name, cfg, workdir / "dry", budget_s)
        run, load_full = full_run(name, cfg, workdir / "full", rep)
        actual_s, actual_j, method = dryrun.measured_training(run)
        est = pred["estimate"]
        low, high = est["energy_low_j"], est["energy_high_j"]
        rows.append({
            "config": name, "model": cfg[0], "input_px": cfg[1], "batch_size": cfg[2],
            "train_size": cfg[3], "val_size": cfg[4], "epochs": cfg[5],
            "repeat": rep, "measured_s": est["observed_s"], "load_dry": load_dry,
            "load_full": load_full, "cpu_share_dry": share_dry,
            "cpu_share_full": cpu_share(run, *_train_span(run)),
            "predicted_time_s": est["time_s"], "actual_time_s": actual_s,
            "time_error_pct": (est["time_s"] / actual_s - 1) * 100,
            "predicted_energy_j": est["energy_j"], "energy_low_j": low, "energy_high_j": high,
            "actual_energy_j": actual_j,
            "energy_error_pct": (est["energy_j"] / actual_j - 1) * 100,
            "energy_in_interval": None if low is None else bool(low <= actual_j <= high),
            "energy_method": method, "command": cmd,
        })
        rows[-1]["time_error_at_equal_share_pct"] = time_error_at_equal_share(rows[-1])
        print(pd.DataFrame(rows[-1:]).drop(columns="command").round(3).to_string(index=False))
    return pd.DataFrame(rows)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--replay", action="store_true", help="replay the recorded runs of --raw")
    ap.add_argument("--cpu", action="store_true", help="fresh CPU dry runs and full runs")
    ap.add_argument("--raw", type=Path, default=ROOT / "data_inputs" / "gpu-h100" / "raw")
    ap.add_argument("--fractions", type=float, nargs="+", default=[0.2, 0.3, 0.4])
    ap.add_argument("--configs", nargs="+", default=list(CPU_CONFIGS), choices=list(CPU_CONFIGS))
    ap.add_argument("--budget-s", type=float, default=30.0)
    ap.add_argument("--repeats", type=int, default=1, help="pairs per configuration (1)")
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "dryrun.json")
    args = ap.parse_args(argv)
    if not (args.replay or args.cpu):
        ap.error("choose --replay and/or --cpu")
    pd.set_option("display.width", 200)
    results: dict = json.loads(args.out.read_text()) if args.out.exists() else {}
    if args.replay:
        table, summary = replay(args.raw, args.fractions)
        cols = ["fraction", "run_id", "observed_s", "epochs_observed", "time_error_pct",
                "energy_error_pct", "energy_in_interval", "step_time_error_pct"]
        print(table[[c for c in cols if c in table]].round(2).to_string(index=False))
        print(summary.round(2).to_string(index=False))
        results["replay"] = {"raw": str(args.raw.relative_to(ROOT) if args.raw.is_relative_to(
            ROOT) else args.raw), "runs": table.drop(columns="run_dir").to_dict("records"),
            "summary": summary.to_dict("records"),
            "command": "python benchmarks/bench_dryrun.py --replay"}
    if args.cpu:
        with tempfile.TemporaryDirectory() as tmp:
            table = cpu_runs(args.configs, args.budget_s, Path(tmp), args.repeats)
        summary = {"runs": len(table),
                   "energy_mape_pct": table["energy_error_pct"].abs().mean(),
                   "time_mape_pct": table["time_error_pct"].abs().mean(),
                   "time_mape_at_equal_share_pct":
                       table["time_error_at_equal_share_pct"].abs().mean(),
                   "energy_in_interval": table["energy_in_interval"].mean(),
                   "logical_cores": os.cpu_count()}
        print(table.drop(columns="command").round(2).to_string(index=False))
        print(summary)
        results["cpu"] = {"runs": table.to_dict("records"), "summary": summary,
                          "command": "python benchmarks/bench_dryrun.py --cpu --repeats "
                                     f"{args.repeats}"}
    write_json(dryrun._nan_to_none(results), args.out)
    print(f"written: {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
