"""Accuracy of the pre-training estimators (docs/methods.md#estimators) on the processed runs.

For each dataset of ``--datasets`` (default EE-Training, SEAA 2023 and the committed H100 runs;
their ``data_outputs/<dataset>/processed/runs.parquet``, written by notebooks 02-03), every
method of :mod:`helpers.estimate.pretraining` and the PRE regressions' ``pre_training`` mode are
scored out-of-fold on the same runs: leave one architecture out, leave one environment out
(where the dataset has two), and one seeded random 30 % test split. Reported: MAPE (%) on
energy with a 95 % bootstrap CI that resamples whole architectures, interval coverage, MAPE per
architecture, the roofline's time and power errors separately, and the acceptance bars
(EE-Training leave-one-model-out <= 15 % and below the log-linear baseline; SEAA 2023 leave one
architecture out <= 25 %, leave one environment out <= 20 %).

Also: EE-Training's recorded FLOPs were counted at 32 px for the CNNs; the roofline is scored
with features at that size and at timm's default input size (224 px; 288 for
efficientnetv2_s), the size timm's ``train.py`` trains at when none is given.

Run: ``.venv/bin/python benchmarks/bench_pretraining.py``; the tables are printed, and written
as JSON with ``--out <file>``.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import pandas as pd

from helpers.core import datasets
from helpers.core.io import write_json
from helpers.estimate import evaluation as ev
from helpers.estimate import pretraining as pt
from helpers.stages import stage06_estimators as st

#: Acceptance bars (%): dataset -> split -> MAPE target.
BARS = {"ee-training": {"leave_one_architecture_out": 15.0},
        "seaa2023": {"leave_one_architecture_out": 25.0, "leave_one_environment_out": 20.0}}
PRE_MODELS = ["linear", "ridge", "kernel_ridge", "svr", "gradient_boosting"]


def load_runs(dataset: str) -> pd.DataFrame:
    path = datasets.output_dir(dataset, "processed") / "runs.parquet"
    from helpers.analysis import runs as run_tables

    return run_tables.with_training_columns(pd.read_parquet(path).reset_index(drop=True))


def evaluate(runs: pd.DataFrame, n_boot: int, seed: int, pre_models: list[str]) -> dict:
    """Every split's scores, per-architecture errors and the roofline's time/power errors."""
    splits, _ = st.make_splits(runs, 0.3, seed)
    pre_result = st.pre_estimates(runs, splits, pre_models, True, seed)
    inputs = pt.run_inputs(runs)
    energy, duration = runs["training_energy_j"], runs["training_duration_s"]
    arch, env = runs["architecture"].astype(str), runs["environment"].astype(str)
    out = {"errors": [], "by_architecture": [], "time_power": []}
    for split in splits:
        res = pt.out_of_fold(inputs, energy, duration, split.splits, arch.to_numpy(), seed=seed)
        tested = np.unique(np.concatenate([t for _, t in split.splits]))
        pre = pre_result.estimates[split.name]
        extra = pd.DataFrame({c.removesuffix("_pre_training"): pre[c].to_numpy()
                              for c in pre if c.endswith("_pre_training")}, index=runs.index)
        sub = pt.PretrainingResult(*(f.iloc[tested] for f in (res.estimates, res.low, res.high,
                                                                res.reasons)))
        scores = pt.score(sub, energy.iloc[tested], split.name, arch.iloc[tested],
                          env.iloc[tested], extra.iloc[tested], n_boot, seed)
        out["errors"].append(scores.errors.assign(
            not_estimable=[scores.not_estimable.get(m, "") for m in scores.errors["method"]]))
        for m, why in scores.not_estimable.items():
            out["errors"].append(pd.DataFrame([{"split": split.name, "method": m,
                                                "metric": "mape_pct", "value": np.nan,
                                                "not_estimable": why}]))
        out["by_architecture"].append(scores.by_group)
        out["time_power"].append(_time_power(inputs, energy, duration, split))
    return {k: pd.concat(v, ignore_index=True) for k, v in out.items()}


def _time_power(inputs: pt.RunInputs, energy: pd.Series, duration: pd.Series,
                split: st.Split) -> pd.DataFrame:
    """MAPE (%) of the roofline's time and mean power, out-of-fold, per variant."""
    rows = []
    for per_env in (True, False):
        t_hat = pd.Series(np.nan, index=energy.index)
        p_hat = t_hat.copy()
        for train, test in split.splits:
            ok = inputs.X.index[train].difference(inputs.spec_reasons.index).difference(
                inputs.reasons.index)
            if len(ok) < 2:
                continue
            model = pt.RooflineEnergy(per_environment=per_env).fit(
                inputs.X.loc[ok], energy[ok], duration[ok])
            X = inputs.X.iloc[test]
            t_hat.iloc[test] = model.predict_time(X)
            p_hat.iloc[test] = model.predict_power(X)
        ok = t_hat.notna()
        rows.append({"split": split.name,
                     "method": "roofline" if per_env else "roofline_specs",
                     "time_mape_pct": ev.mape_pct(duration[ok], t_hat[ok]),
                     "power_mape_pct": ev.mape_pct((energy / duration)[ok], p_hat[ok]),
                     "energy_mape_pct": ev.mape_pct(energy[ok], (t_hat * p_hat)[ok])})
    return pd.DataFrame(rows)


def input_size_check(runs: pd.DataFrame, seed: int) -> pd.DataFrame:
    """EE-Training leave one model out with the CNNs' features at 32 px (where their recorded
    FLOPs were counted) against timm's default input size."""
    rows = []
    for label, sizes in (("default input size (timm train.py)", None),
                         ("32 px (recorded FLOPs)", 32)):
        r = runs.copy()
        if sizes is not None:
            r["input_size_px"] = np.where(r["architecture"].str.contains("patch16"), 224, sizes)
        inputs = pt.run_inputs(r)
        res = pt.out_of_fold(inputs, r["training_energy_j"], r["training_duration_s"],
                             ev.leave_one_group_out(r["architecture"]), None,
                             ["roofline", "ridge_log"], seed)
        for m in res.estimates:
            rows.append({"features at": label, "method": m,
                         "mape_pct": ev.mape_pct(r["training_energy_j"], res.estimates[m])})
    return pd.DataFrame(rows)


def acceptance(dataset: str, errors: pd.DataFrame) -> pd.DataFrame:
    rows = []
    for split, bar in BARS.get(dataset, {}).items():
        sub = errors[(errors["split"] == split) & errors["value"].notna()].set_index("method")
        base = sub["value"].get("loglinear_baseline", np.nan)
        for m, r in sub.iterrows():
            rows.append({"dataset": dataset, "split": split, "method": m,
                         "mape_pct": round(r["value"], 2),
                         "ci": f"[{r['ci_low']:.1f}, {r['ci_high']:.1f}]",
                         "bar_pct": bar, "met": bool(r["value"] <= bar),
                         "below_loglinear": bool(r["value"] < base)})
    return pd.DataFrame(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--datasets", nargs="+", default=["ee-training", "seaa2023", "gpu-h100"])
    parser.add_argument("--n-boot", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--pre-models", nargs="*", default=PRE_MODELS)
    parser.add_argument("--out", type=Path, default=None, help="also write the tables as JSON")
    args = parser.parse_args()
    pd.set_option("display.width", 160)
    pd.set_option("display.max_columns", 20)
    report = {}
    for dataset in args.datasets:
        t0 = time.perf_counter()
        runs = load_runs(dataset)
        res = evaluate(runs, args.n_boot, args.seed, args.pre_models)
        e = res["errors"]
        e["cell"] = [f"{v:.1f} [{lo:.1f}, {hi:.1f}]" if np.isfinite(v) else "not estimable"
                     for v, lo, hi in zip(e["value"], e["ci_low"], e["ci_high"], strict=True)]
        print(f"\n=== {dataset}: {len(runs)} runs, {runs['architecture'].nunique()} "
              f"architectures, {runs['environment'].nunique()} environments "
              f"({time.perf_counter() - t0:.0f} s)")
        print("MAPE (%) on energy [95% CI, architectures resampled]:")
        print(e.pivot_table(index="method", columns="split", values="cell", aggfunc="first",
                            sort=False).to_string())
        print("interval coverage (nominal 90%):")
        print(e.pivot_table(index="method", columns="split", values="interval_coverage",
                            aggfunc="first", sort=False).round(2).to_string())
        print("roofline, time and power separately (MAPE %):")
        print(res["time_power"].round(1).to_string(index=False))
        by = res["by_architecture"]
        cols = ["split", "environment", "architecture", "roofline", "roofline_specs",
                "ridge_log", "loglinear_baseline"]
        print("MAPE (%) per architecture:")
        print(by[[c for c in cols if c in by]].round(1).to_string(index=False))
        acc = acceptance(dataset, e)
        if len(acc):
            print("acceptance:")
            print(acc.to_string(index=False))
        entry = {k: v.replace({np.nan: None}).to_dict("records") for k, v in res.items()}
        entry["acceptance"] = acc.to_dict("records")
        if dataset == "ee-training":
            check = input_size_check(runs, args.seed)
            print("EE-Training leave one model out, features at two input sizes:")
            print(check.round(1).to_string(index=False))
            entry["input_size_check"] = check.to_dict("records")
        report[dataset] = entry
    if args.out is not None:
        write_json(report, args.out)
        print(f"\nwrote {args.out}")


if __name__ == "__main__":
    main()
