"""Write ``docs/results.md`` from the benchmark outputs and the notebooks' reports.

    .venv/bin/python benchmarks/make_results.py [--results DIR] [--outputs DIR] [--out FILE]

Every table comes from a file: the JSON/CSV files the scripts in ``benchmarks/`` write to
``benchmarks/results/`` (committed), and, for the figures of the analysis notebooks, the reports
that ``make figures`` writes to ``data_outputs/<dataset>/`` (not committed). A section whose
report is absent says which command produces it. Each table names the command that reproduces
it. ``tests/test_results_doc.py`` regenerates the sections built from committed files and checks
that the committed ``docs/results.md`` still holds them unchanged.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import pandas as pd

from helpers.core.io import write_text

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
OUTPUTS = ROOT / "data_outputs"
DOC = ROOT / "docs" / "results.md"
PY = ".venv/bin/python"
MAKE_FIGURES = "`make figures`"
#: How a report of ``dataset`` is reproduced: the notebook that writes it and the runner command.
RERUN = ("`make figures` (notebook {notebook}; alone: "
         "`.venv/bin/python -m helpers.runner {dataset}`)")

#: Published values the reports are compared with (docs/methods.md#published-numbers).
PUBLISHED_SPEARMAN_POWER_USAGE = 0.98
PUBLISHED_MAPE_PCT = {"ml_co2_impact": 60.7, "green_algorithms_gpu": 34.1}

#: Fidelity methods (helpers.analysis.fidelity) -> what they stand for.
FIDELITY_METHODS = {
    "instant_100ms": "instant power, 10 Hz trapezoid (the sampler)",
    "average_100ms": "1-s average power, 10 Hz",
    "instant_1s": "instant power, one sample a second",
    "average_1s": "1-s average power, one sample a second (nvidia-smi -l 1)",
    "tdp_x_time": "power limit × time",
}


@dataclass(frozen=True)
class Section:
    """One ``##`` section of the document; ``committed`` when built only from committed files."""

    title: str
    body: str
    committed: bool

    def text(self) -> str:
        """The section as Markdown (heading, blank line, body, ending in one newline)."""
        return f"## {self.title}\n\n{self.body.rstrip()}\n"


# -- formatting --------------------------------------------------------------------------------
def table(header: Sequence[str], rows: Sequence[Sequence[object]],
          right: Sequence[int] = ()) -> str:
    """A Markdown table; columns listed in ``right`` are right-aligned."""
    align = ["---:" if i in right else "---" for i in range(len(header))]
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join(align) + "|"]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def pct(x: float, digits: int = 2, sign: bool = False) -> str:
    """``x`` (already in percent) as text, e.g. ``+0.31 %``."""
    return f"{x:{'+' if sign else ''}.{digits}f} %"


def reproduce(*commands: str) -> str:
    """The 'Reproduce:' line under a table."""
    return "Reproduce: " + "; ".join(commands) + "."


def _json(path: Path) -> dict:
    return json.loads(path.read_text(encoding="utf-8"))


def missing(path: Path, command: str) -> str:
    """The body of a section whose input file is absent."""
    return (f"Not available when this file was generated: `{path.name}` is written by "
            f"{command}. Run it, then regenerate this file "
            f"(`{PY} benchmarks/make_results.py`).")


# -- committed benchmark outputs -----------------------------------------------------------------
def published_energy(results: Path) -> str:
    """Our per-run GPU energy and duration against the authors' processed SEAA 2023 file."""
    cmp = pd.read_csv(results / "published_energy_check.csv")
    energy, duration = cmp["energy_diff_pct"], cmp["duration_diff_pct"]
    rows = []
    for label, diff in (("GPU energy", energy), ("duration", duration)):
        q = diff.quantile([0.0, 0.25, 0.5, 0.75, 1.0]).to_numpy()
        within = int((diff.abs() <= 1.0).sum())
        rows.append([label, *(pct(v, sign=True) for v in q), f"{within} / {len(cmp)}"])
    return "\n\n".join([
        f"{len(cmp)} runs of the published raw logs, {int(energy.notna().sum())} of them with a "
        "row in the authors' processed file. Difference = ours / published − 1.",
        table(["quantity", "min", "Q1", "median", "Q3", "max", "within ±1 %"], rows,
              right=range(1, 7)),
        "The published energies were integrated from watts with the decimals cut off, so ours "
        "(decimals kept) sit slightly above them; the published duration is the span of the GPU "
        "samples that have a CPU partner, ours the whole GPU log.",
        reproduce(f"`{PY} benchmarks/check_published_energy.py` (writes "
                  "`benchmarks/results/published_energy_check.{csv,md}`)"),
    ])


def merge_speed(results: Path) -> str:
    """Reading, merging and integrating every published run, against a pyarrow text read of the
    same files in the same process."""
    d = _json(results / "merge_energy.json")
    phases = d["best_phases_s"]
    rows = [[name.replace("_", " "), f"{phases[name]:.2f} s"] for name in phases]
    rows.append(["**total (best repeat)**", f"**{d['best_total_s']:.2f} s**"])
    rows.append(["pyarrow text read of the same files (best)", f"{d['best_text_read_s']:.2f} s"])
    repeats = ", ".join(f"{r['total_s']:.2f}" for r in d["repeats"])
    verdict = "met" if d["passed"] else "not met"
    return "\n\n".join([
        f"{d['runs']} runs ({d['files']} files), {d['gpu_samples']:,} GPU samples, "
        f"{d['workers']} reader threads on a {d['cpu_count']}-core machine (Python "
        f"{d['python']}, pyarrow {d['pyarrow']}); best of {len(d['repeats'])} repeats (all: "
        f"{repeats} s; load average {d['load_average_before'][0]:.2f} before).",
        table(["phase", "wall time"], rows, right=[1]),
        f"Ratio to the text read: {d['ratio_to_text_read']:.2f}× (best over best; median per "
        f"repeat {d['median_ratio_per_repeat']:.2f}×, CPU seconds "
        f"{d['cpu_ratio_to_text_read']:.2f}×). Acceptance ≤ {d['acceptance_ratio']:g}× and "
        f"≤ {d['acceptance_s']:g} s: {verdict}. The readers use both cores: other processes on "
        "the machine (a load average above about 3) slow them more than the single-threaded "
        "text read.",
        reproduce("`make bench`", f"`{PY} {d['command'].removeprefix('python ')}` "
                  "(writes `benchmarks/results/merge_energy.json`)"),
    ])


def profile_overhead(results: Path) -> str:
    """CPU of the profiler process (``python -m helpers profile``) and the cost of one mark."""
    path = results / "profile_overhead.json"
    if not path.exists():
        return missing(path, f"`{PY} benchmarks/bench_profile_overhead.py`")
    d = _json(path)
    cpu = [[r["backend"], r["gpus"], f"{1 / r['interval_s']:g} Hz", f"{r['span_s']:.0f} s",
            pct(r["profiler_pct_of_core"]), pct(r["sampler_pct_of_core"])]
           for r in d["profiler_cpu"]]
    marks = [[r["setting"], r["calls"], f"{r['median_us']:.1f} µs", f"{r['p90_us']:.1f} µs"]
             for r in d["marks"]]
    m = d["machine"]
    slow = [r["setting"] for r in d["marks"]
            if not r["setting"].startswith("control") and r["median_us"] > 20.0]
    marks_met = not slow
    return "\n\n".join([
        f"A sleeping command profiled at 10 Hz on a {m['logical_cores']}-core machine (load "
        f"average {m['load_1min']:.1f} during the run): CPU time of the whole profiler process "
        "and of its sampling thread, as a share of one core. Acceptance ≤ 1 % of a core.",
        table(["GPU backend", "GPUs", "rate", "span", "profiler", "sampler alone"], cpu,
              right=range(1, 6)),
        "One `helpers.marks.epoch_end(epoch, loss=…, acc=…)` call, wall time, from inside the "
        "profiled process. Acceptance ≤ 20 µs (median): "
        + ("met in every setting. " if marks_met else
           f"not met in {', '.join(slow)}. ")
        + "Calls 20 ms apart run on a cold core; the control row (only `json.dumps` of the same "
        "message, at the same pace) shows how much of their cost is the machine, not the mark; "
        "the p90 reflects other processes on the machine.",
        table(["setting", "calls", "median", "p90"], marks, right=range(1, 4)),
        reproduce(f"`{PY} benchmarks/bench_profile_overhead.py` (writes "
                  "`benchmarks/results/profile_overhead.json`)"),
    ])


def _opt_pct(x: object, digits: int = 2) -> str:
    return "–" if x is None or x != x else pct(float(x), digits)


def dry_run(results: Path) -> str:
    """The dry-run estimate (``python -m helpers estimate``): H100 runs replayed from their first
    part, and fresh CPU runs predicted from a 30-s dry run."""
    path = results / "dryrun.json"
    if not path.exists():
        return missing(path, f"`{PY} benchmarks/bench_dryrun.py --replay --cpu`")
    d = _json(path)
    replay = [[f"{r['fraction'] * 100:.0f} %", r["estimated"], r["runs"],
               _opt_pct(r["dry_run_energy_mape_pct"]), _opt_pct(r["dry_run_time_mape_pct"]),
               "–" if r["dry_run_energy_in_interval"] is None
               else f"{r['dry_run_energy_in_interval'] * 100:.0f} %",
               _opt_pct(r["step_time_energy_mape_pct_all"]), r["reason"] or ""]
              for r in d["replay"]["summary"]]
    cpu_runs = [[r["config"], r["input_px"], f"{r['measured_s']:.0f} s",
                 f"{r['actual_time_s']:.0f} s", pct(r["energy_error_pct"], 1, sign=True),
                 pct(r["time_error_pct"], 1, sign=True),
                 "yes" if r["energy_in_interval"] else "no",
                 f"{r['load_dry']:.1f} / {r['load_full']:.1f}"]
                for r in d["cpu"]["runs"]]
    c = d["cpu"]["summary"]
    return "\n\n".join([
        "Replay of the committed H100 runs: the estimator sees only the first part of each "
        "run's training window (samples and events as recorded) and predicts the whole "
        "window's time and energy; scored against `training_energy_j`. Beside it, the "
        "time-window STEP estimator on the same runs (given the true duration).",
        table(["observed", "estimated", "runs", "energy MAPE", "time MAPE",
               "energy in interval", "STEP energy MAPE", "why not"], replay,
              right=range(1, 7)),
        f"Fresh CPU runs on this {c['logical_cores']}-core machine: each configuration dry-run "
        "for 30 s in its own process, then trained in full by the driver and measured. "
        f"Energy MAPE {pct(c['energy_mape_pct'])} and time MAPE {pct(c['time_mape_pct'])} over "
        f"{c['runs']} runs (acceptance ≤ 5 %). The measured energy fell inside the predicted "
        f"interval in {c['energy_in_interval'] * 100:.0f} % of runs: the interval reflects the "
        "dry run's own noise only, not the run-to-run variation of the machine (identical full "
        "runs differ by a few percent here). Time errors follow the CPU share each process "
        "got: on a machine shared with other work (high load averages) they grow (scaled to "
        f"equal shares: {pct(c['time_mape_at_equal_share_pct'])}, a diagnostic).",
        table(["model", "px", "dry run", "full run", "energy error", "time error",
               "energy in interval", "load (dry / full)"], cpu_runs, right=range(1, 8)),
        reproduce(f"`{PY} benchmarks/bench_dryrun.py --replay`",
                  f"`{PY} benchmarks/bench_dryrun.py --cpu --repeats 2` (both write "
                  "`benchmarks/results/dryrun.json`)"),
    ])


#: Acceptance bars of the pre-training estimate (energy MAPE, %): (dataset, split) -> bar.
PRETRAINING_BARS = {("ee-training", "leave_one_architecture_out"): 15.0,
                    ("seaa2023", "leave_one_architecture_out"): 25.0,
                    ("seaa2023", "leave_one_environment_out"): 20.0}


def pretraining(results: Path) -> str:
    """Pre-training estimators (no run measured) under grouped splits, per dataset."""
    path = results / "pretraining.json"
    if not path.exists():
        return missing(path, f"`{PY} benchmarks/bench_pretraining.py --out {path.name}`")
    d = _json(path)
    parts = [
        "Energy of whole training runs predicted before training, from the architecture's "
        "graph features, the GPU's specifications and the run's batch size, epochs and "
        "training-set size (methods: [`methods.md`](methods.md#estimators)). MAPE with 95 % "
        "bootstrap intervals that resample whole architectures; 'leave one architecture out' "
        "never fits on the architecture it predicts, 'leave one environment out' never on the "
        "GPU. Baselines: `loglinear_baseline` (log energy on log FLOPs, log parameters, batch "
        "size, epochs) and `lookup_baseline` (mean energy per epoch by model and batch size); "
        "`pre_*` are the published PRE variants."]
    verdicts = []
    for dataset, res in d.items():
        e = pd.DataFrame(res["errors"])
        e = e[e["metric"] == "mape_pct"]
        wide = e.pivot_table(index="method", columns="split", values="cell", aggfunc="first",
                             sort=False).fillna("not estimable")
        rows = [[f"`{m}`", *wide.loc[m].tolist()] for m in wide.index]
        parts += [f"**{dataset}**", table(["method", *wide.columns], rows)]
        for r in res.get("acceptance", []):
            bar = PRETRAINING_BARS.get((dataset, r["split"]))
            if bar is None or r["method"] != "roofline":
                continue
            verdicts.append([dataset, r["split"].replace("_", " "), f"`{r['method']}`",
                             f"{r['mape_pct']:.1f} % {r['ci']}", f"≤ {bar:g} %",
                             "met" if r["met"] else "**not met**",
                             "yes" if r["below_loglinear"] else "no"])
    parts += ["Acceptance of the roofline model (the best pre-training method on unseen "
              "architectures):",
              table(["dataset", "split", "method", "MAPE [95 % CI]", "bar", "verdict",
                     "below log-linear"], verdicts),
              "Leave one environment out fails its bar: the two published machines differ "
              "mostly on the host side (input pipeline and per-operator launch cost), which "
              "no GPU specification predicts; GPU-bound architectures transfer within about "
              "10 %, host-bound ones do not."]
    check = d.get("ee-training", {}).get("input_size_check")
    if check:
        rows = [[c["features at"], f"`{c['method']}`", pct(c["mape_pct"], 1)] for c in check]
        parts += ["EE-Training's models were trained at each model's default input size (timm's "
                  "training script resizes), not at the 32 px of the recorded FLOPs: features "
                  "at the default size predict far better.",
                  table(["features at", "method", "MAPE, leave one model out"], rows,
                        right=[2])]
    parts.append(reproduce(f"`{PY} benchmarks/bench_pretraining.py --out "
                           "benchmarks/results/pretraining.json` (needs `make figures` outputs "
                           "of seaa2023, gpu-h100 and ee-training)"))
    return "\n\n".join(parts)


def sampler_files(results: Path) -> list[Path]:
    """Outputs of ``bench_sampler.py``, by name."""
    return sorted(results.glob("sampler*.json"))


def sampler_command(path: Path, d: dict) -> str:
    """The ``bench_sampler.py`` command that repeats the run recorded in ``path``. Files without
    ``slow_period_s`` were recorded before the option existed, when every reading was taken on
    every tick (``--slow-period-s 0`` today)."""
    o = d["overhead"][0]
    args = [f"--seconds {round(o['duration_s'])}"]
    slow = d.get("training_step_slowdown")
    if slow:
        args += [f"--quads {slow['quads']}", f"--steps {slow['steps_per_block']}"]
        args += [] if slow["device"] == "cpu" else [f"--device {slow['device']}"]
    else:
        args.append("--quads 0")
    if o.get("epoch_s"):
        args.append(f"--epoch-s {o['epoch_s']:g}")
    args.append(f"--slow-period-s {o.get('slow_period_s', 0.0):g}")
    args.append(f"--out benchmarks/results/{path.name}")
    return f"`{PY} benchmarks/bench_sampler.py {' '.join(args)}`"


def _machine(d: dict) -> str:
    real = next(o for o in d["overhead"] if o["backend"] == "nvml")
    gpu = "NVIDIA GPU" if real["gpu_status"] == "ok" else "no GPU"
    return f"{d['host']['logical_cores']} cores, {gpu}"


def sampler_overhead(results: Path) -> str:
    """Sampler CPU time as % of one core, per output file and backend."""
    rows, commands = [], []
    for path in sampler_files(results):
        d = _json(path)
        for o in d["overhead"]:
            backend = "NVML" if o["backend"] == "nvml" and o["gpu_status"] == "ok" else (
                "fake GPU" if o["backend"] == "fake_gpu" else "none (no GPU)")
            slow = o.get("slow_period_s")
            rows.append([f"`{path.name}`", _machine(d), backend,
                         "every tick" if not slow else f"{slow:g} s",
                         f"{o['epoch_s']:g} s" if o.get("epoch_s") else "none",
                         f"{o['duration_s']:.0f} s",
                         f"{o['cpu_per_tick_us']:.0f} µs",
                         f"**{o['overhead_pct_of_core']:.2f} %**"])
        commands.append([f"`{path.name}`", sampler_command(path, d)])
    return "\n\n".join([
        "The sampler at 10 Hz, alone (the main thread sleeps), with the real backend (NVML; on a "
        "machine without a GPU that leaves the host readings) and with the fake GPU backend. "
        "*Slow readings*: how often temperature, clock, memory, the 1-s average power and the "
        "host CPU/RAM are read (`slow_period_s`); *epoch marks*: phase edges of epochs of that "
        "length, as the training driver makes them. Acceptance: ≤ 1 % of one core.",
        table(["output", "machine", "GPU backend", "slow readings", "epoch marks", "duration",
               "CPU per tick", "% of one core"], rows, right=[5, 6, 7]),
        "Each output file, and the command that repeats it (on a machine with an NVIDIA GPU for "
        "the NVML rows):",
        table(["output", "command"], commands),
    ])


def sampler_slowdown(results: Path) -> str:
    """Training step time with / without the sampler (ABBA quads)."""
    rows = []
    for path in sampler_files(results):
        s = _json(path).get("training_step_slowdown")
        if not s:
            continue
        model = "small CNN, 32 px, batch 32" if s["device"] == "cpu" else (
            "MobileNetV2, 224 px, batch 128")
        rows.append([f"`{path.name}`", s["device"], model,
                     f"{s['quads']} × {s['steps_per_block']}",
                     f"{1000 * s['step_median_without_s']:.2f} ms",
                     f"{s['ratio_median']:.4f} ({s['ratio_iqr'][0]:.4f}–{s['ratio_iqr'][1]:.4f})",
                     f"{s['null_ratio_median']:.4f} ({s['null_ratio_iqr'][0]:.4f}–"
                     f"{s['null_ratio_iqr'][1]:.4f})"])
    return "\n\n".join([
        "Blocks of training steps without, with, with and without the sampler (ABBA, so a linear "
        "drift of the machine's load cancels). Ratio = median step time with / without; the "
        "noise floor is the ratio of the two blocks without the sampler. A ratio inside the noise "
        "floor means no measurable effect.",
        table(["output", "device", "model", "quads × steps", "step (without)",
               "ratio, median (IQR)", "noise floor, median (IQR)"], rows, right=[4, 5, 6]),
        reproduce("the command of the same output file in the table above"),
    ])


def gpu_fidelity(results: Path) -> str:
    """Sampled GPU power against the NVML energy counter on the committed H100 runs."""
    t = pd.read_csv(results / "gpu_fidelity.csv")
    t["abs_error_pct"] = t["error_pct"].abs()
    rows = []
    for (window, method), g in t.groupby(["window", "method"], sort=False):
        bold = method == "instant_100ms" and window in ("run", "training")
        med, mx = pct(g["abs_error_pct"].median()), pct(g["abs_error_pct"].max())
        rows.append([window, FIDELITY_METHODS.get(method, method), len(g),
                     f"{g['duration_s'].median():.1f} s",
                     f"**{med}**" if bold else med, f"**{mx}**" if bold else mx,
                     pct(g["error_pct"].mean(), sign=True)])
    runs = t["run_id"].nunique()
    return "\n\n".join([
        f"{runs} runs of the `gpu-h100` dataset (NVIDIA H100, committed raw data). Reference: "
        "the board's energy counter over the window; error = (estimate − counter) / counter. "
        "Windows: the whole run, training (warm-up start to last epoch end) and each epoch.",
        table(["window", "method", "windows", "median length", "median abs. error",
               "max abs. error", "mean error"], rows, right=[2, 3, 4, 5, 6]),
        "Acceptance for the sampler: ≤ 0.5 % median and ≤ 1 % max over runs of at least 20 s. "
        "Single epochs of ~3 s are limited by the counter's 100-ms steps. Details and the "
        "collection command: [`gpu-measurements.md`](gpu-measurements.md).",
        reproduce(f"`{PY} benchmarks/gpu_fidelity.py` (CPU only, a few seconds; writes "
                  "`benchmarks/results/gpu_fidelity.{csv,md}`)",
                  f"`{PY} -m pytest tests/analysis/test_fidelity.py`"),
    ])


def nvml_costs(results: Path) -> str:
    """CPU time of each NVML call, after a pause and in a tight loop."""
    files = sorted(results.glob("nvml_costs*.json"))
    parts = []
    for path in files:
        d = _json(path)
        rows = [[f"`{name}`", f"{c['after_pause_us']:,.0f} µs", f"{c['tight_loop_us']:,.0f} µs"]
                for name, c in d["calls"].items()]
        parts += [f"`{path.name}`: {d['gpu']}, median thread CPU time per call, after a "
                  f"{1000 * d['sleep_s']:g}-ms pause (as the sampler pays it) and in a tight loop.",
                  table(["call", "after a pause", "tight loop"], rows, right=[1, 2])]
    parts.append(reproduce("on a GPU machine, `python benchmarks/nvml_costs.py --out DIR` "
                           "(about 40 s; writes `DIR/nvml_costs.json`)"))
    return "\n\n".join(parts)


def gpu_probe(results: Path) -> str:
    """Training throughput and a short sampler-vs-counter check from ``gpu_probe.py``."""
    parts = []
    for path in sorted(results.glob("gpu_probe*.json")):
        d = _json(path)
        dev = d["nvml"]["devices"][0]
        s = d["sampler"]
        rows = [[f"`{arch}`", f"{v:,.0f}"] for arch, v in d["throughput_img_s"].items()]
        parts += [
            f"`{path.name}`: {dev['name']} (power limit {dev['power_limit_w']:g} W, driver "
            f"{d['nvml']['versions']['driver']}). A {s['duration_s']:.0f}-s sampler run (idle, "
            f"matrix products, idle): trapezoid {s['trapezoid_j']:,.0f} J against the counter's "
            f"{s['counter_j']:,.0f} J ({pct(s['error_pct'], sign=True)}).",
            "Training throughput at batch 128, 224 px, fp32 (images per second), used to size "
            "each architecture's training set so that every run lasts about as long:",
            table(["architecture", "images/s"], rows, right=[1]),
        ]
    parts.append(reproduce("on a GPU machine, `python benchmarks/gpu_probe.py --out DIR`"))
    return "\n\n".join(parts)


# -- reports of the analysis notebooks (data_outputs, not committed) ----------------------------
def _report(path: Path, command: str, build: Callable[[Path], str]) -> str:
    return build(path) if path.exists() else missing(path, command)


def cleaning(outputs: Path, dataset: str = "seaa2023") -> str:
    """Runs in and out of each cleaning step (notebook 03)."""
    def build(path: Path) -> str:
        steps = pd.read_csv(path)
        rows = [[s.step, s.runs_in, s.removed, s.runs_out] for s in steps.itertuples()]
        return "\n\n".join([
            table(["step", "runs in", "removed", "runs out"], rows, right=[1, 2, 3]),
            "Every removed run and its reason: "
            f"`data_outputs/{dataset}/processed/removed_runs.csv`.",
            reproduce(RERUN.format(notebook="03", dataset=dataset)),
        ])
    return _report(outputs / dataset / "processed" / "cleaning_steps.csv",
                   MAKE_FIGURES, build)


def tradeoffs(outputs: Path, dataset: str = "seaa2023") -> str:
    """Headline saving and the power–utilisation correlation (notebook 04)."""
    def build(path: Path) -> str:
        h = _json(path)
        rows = []
        for env, s in h["savings"].items():
            published = "—" if s.get("published_pct") is None else f"≈ {s['published_pct']:g} %"
            rows.append([f"`{env}` ({s['gpu_name']})", f"{s['saver']} vs {s['reference']}",
                         f"**{s['energy_saved_pct']:.1f} %**", published,
                         f"{s['f1_saver']:.3f} vs {s['f1_reference']:.3f}",
                         f"{h['spearman_power_gpu_usage'].get(env, float('nan')):.3f}"])
        return "\n\n".join([
            f"{h['n_runs']} cleaned runs. Saving = 1 − median energy per image of the first "
            "architecture / that of the second; Spearman ρ between mean power and mean GPU "
            f"usage per environment (published ≈ {PUBLISHED_SPEARMAN_POWER_USAGE:g}).",
            table(["environment", "pair", "energy saved", "published", "F1", "ρ power–usage"],
                  rows, right=[2, 3, 4, 5]),
            "Every pair, the test battery and the Pareto front: "
            f"`data_outputs/{dataset}/reports/04-*.csv`.",
            reproduce(RERUN.format(notebook="04", dataset=dataset),
                      f"`{PY} -m pytest tests/notebooks/test_notebooks_04_05.py`"),
        ])
    return _report(outputs / dataset / "reports" / "04-headlines.json",
                   MAKE_FIGURES, build)


def power_behaviour(outputs: Path, dataset: str = "seaa2023") -> str:
    """Idle baseline and stabilisation point (notebook 05)."""
    def build(path: Path) -> str:
        s = _json(path)
        idle = [[gpu, f"{v['idle_power_w']:.1f} W", v["method"], f"{v['n_samples']:,}"]
                for gpu, v in s["idle_baseline_w"].items()]
        st = s["stabilisation_s"]
        return "\n\n".join([
            table(["GPU", "idle power (median)", "from", "samples"], idle, right=[1, 3]),
            f"Stabilisation point ({st['window']}-sample blocks, two regimes): median "
            f"{st['median']:.0f} s (IQR {st['q1']:.0f}–{st['q3']:.0f} s), "
            f"{100 * st['median_fraction']:.1f} % of the run. Spearman ρ, mean power vs GPU usage: "
            + ", ".join(f"{env} {r:.3f}" for env, r in s["spearman_power_gpu_usage"].items())
            + ".",
            reproduce(RERUN.format(notebook="05", dataset=dataset)),
        ])
    return _report(outputs / dataset / "reports" / "05-summary.json",
                   MAKE_FIGURES, build)


#: PRE energy modes (helpers.estimate.pre.PRE_MODES) -> what they need.
PRE_MODES = {
    "true_duration": "P̂ · T (needs the measured duration, as published)",
    "pre_training": "N · t̂_epoch · P̂ (planned epochs only)",
    "epoch_energy": "N · ê_epoch (planned epochs only)",
}


def _ci(r: pd.Series) -> str:
    return f"{r['value']:.2f} [{r['ci_low']:.2f}, {r['ci_high']:.2f}]"


def _fixed_methods(e: pd.DataFrame) -> str:
    """MAPE of the methods that need no fitting, on all runs and on the published file."""
    rows = []
    for r in e[~e["method"].str.startswith("pre_") & e["split"].isin(
            ["all_runs", *sorted(s for s in e["split"].unique() if s.startswith("published"))]
    )].to_dict("records"):
        published = PUBLISHED_MAPE_PCT.get(r["method"]) if r["split"].endswith("_369") else None
        rows.append([f"`{r['split']}`", f"`{r['method']}`", int(r["n_runs"]), _ci(r),
                     "" if published is None else f"≈ {published:g}"])
    return table(["runs", "method", "n", "MAPE % [95 % CI]", "published"], rows,
                 right=[2, 3, 4])


def _pre_best(e: pd.DataFrame) -> str:
    """Best PRE model (lowest MAPE) per energy mode and split."""
    pre = e[e["method"].str.startswith("pre_")].copy()
    pre["mode"] = pre["method"].map(lambda m: next((k for k in PRE_MODES if m.endswith(k)), ""))
    pre["model"] = [m.removeprefix("pre_").removesuffix("_" + k)
                    for m, k in zip(pre["method"], pre["mode"], strict=True)]
    splits = list(dict.fromkeys(pre["split"]))
    rows = []
    for mode, formula in PRE_MODES.items():
        cells = []
        for split in splits:
            sub = pre[(pre["mode"] == mode) & (pre["split"] == split)]
            best = sub.loc[sub["value"].idxmin()] if len(sub) else None
            cells.append("—" if best is None else f"{_ci(best)} ({best['model']})")
        rows.append([f"`{mode}`: {formula}", *cells])
    header = ["PRE energy", *(f"`{s}` ({int(pre.loc[pre['split'] == s, 'n_runs'].iloc[0])} runs)"
                              for s in splits)]
    return table(header, rows)


def estimators(outputs: Path, dataset: str = "seaa2023") -> str:
    """MAPE of every estimator with its bootstrap CI (notebook 06)."""
    def build(path: Path) -> str:
        e = pd.read_csv(path)
        e = e[e["metric"] == "mape_pct"]
        return "\n\n".join([
            "MAPE (%) against the measured training energy, with a 95 % bootstrap interval; "
            "within a split every method is scored on the same runs. Methods that need no "
            "fitting, on all cleaned runs and on the authors' processed file (`_369`: all of "
            "it; `_no_gtx750ti`: without the 60 runs whose raw logs were not published):",
            _fixed_methods(e),
            "PRE, the best of the five regressors (in brackets) per energy mode and split: a "
            "random 30 % test split, and every run predicted by models that never saw its "
            "architecture or its environment (GPU):",
            _pre_best(e),
            "Every method, split and metric (RMSE, MAPE, R², mean signed error): "
            f"`data_outputs/{dataset}/reports/06-estimator-errors.csv`.",
            reproduce(RERUN.format(notebook="06", dataset=dataset)),
        ])
    return _report(outputs / dataset / "reports" / "06-estimator-errors.csv",
                   MAKE_FIGURES, build)


def changes(results: Path) -> str:
    """The ledger of reported numbers that changed, and why (``changes.md``, written by hand
    when a change of method moves a number; the numbers themselves come from the sections
    above)."""
    path = results / "changes.md"
    if not path.exists():
        return "No reported number changed."
    return (path.read_text(encoding="utf-8").rstrip()
            + "\n\nLedger: `benchmarks/results/changes.md`.")


# -- the document --------------------------------------------------------------------------------
HEADER = f"""# Results

Generated by `benchmarks/make_results.py`; do not edit by hand. Regenerate with
`{PY} benchmarks/make_results.py` after rerunning a benchmark or `make figures`.
Sections marked *(benchmark output)* are built from the committed files in
`benchmarks/results/`; the others from what `make figures` wrote to `data_outputs/` on the machine
that generated this file. Methods: [`methods.md`](methods.md); the GPU measurements in detail:
[`gpu-measurements.md`](gpu-measurements.md).
"""


def sections(results: Path = RESULTS, outputs: Path = OUTPUTS) -> list[Section]:
    """Every section of the document, in order."""
    bench = [
        ("Published data: energy check", published_energy),
        ("Merge and energy: speed", merge_speed),
        ("Sampler overhead", sampler_overhead),
        ("Profiling any job: overhead", profile_overhead),
        ("Before training: pre-training estimators", pretraining),
        ("Before training: dry-run estimate", dry_run),
        ("Training step time with and without the sampler", sampler_slowdown),
        ("GPU fidelity: sampled power against the energy counter", gpu_fidelity),
        ("NVML call costs", nvml_costs),
        ("GPU probe", gpu_probe),
    ]
    reports = [
        ("Cleaning (seaa2023)", cleaning),
        ("Trade-offs (seaa2023)", tradeoffs),
        ("Power behaviour (seaa2023)", power_behaviour),
        ("Estimators (seaa2023)", estimators),
        ("Estimators (gpu-h100)", partial(estimators, dataset="gpu-h100")),
        ("Estimators (ee-training)", partial(estimators, dataset="ee-training")),
    ]
    return ([Section(f"{title} *(benchmark output)*", build(results), True)
             for title, build in bench]
            + [Section(title, build(outputs), False) for title, build in reports]
            + [Section("Changes to reported numbers *(benchmark output)*",
                       changes(results), True)])


def render(parts: Sequence[Section]) -> str:
    """The whole document."""
    return HEADER + "".join("\n" + s.text() for s in parts)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--results", type=Path, default=RESULTS,
                        help="benchmark outputs (default: benchmarks/results)")
    parser.add_argument("--outputs", type=Path, default=OUTPUTS,
                        help="outputs of make figures (default: data_outputs)")
    parser.add_argument("--out", type=Path, default=DOC, help="default: docs/results.md")
    args = parser.parse_args(argv)
    write_text(render(sections(args.results, args.outputs)), args.out)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
