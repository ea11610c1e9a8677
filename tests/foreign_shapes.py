"""Datasets of other shapes, built from the committed H100 runs (data_inputs/gpu-h100/raw: 10
runs of 8 epochs with epoch events, an idle lead-in and tail, NVML counter readings; one of them
written as another profiler's tidy samples CSV and read back by the pipeline's reader), and the
calls of notebooks 03-06 run in-process on them.

Each shape is a function of the merge stage's outputs (:class:`MergeOutputs`) returning new ones;
:func:`write_interim` puts them where notebook 03 reads them (under ``$DLE_PROJECT_ROOT``) and
:func:`run_analysis` runs the stage functions of notebooks 03-06 in notebook order.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
from raw_shapes import H100_RAW, tidy_samples

from helpers.core import datasets
from helpers.readers import detect
from helpers.readers.codecarbon import read_codecarbon
from helpers.readers.merge import EVENT_COLUMNS, MergeOutputs
from helpers.readers.samples_csv import read_samples
from helpers.stages import (
    stage02_merge,
    stage03_clean,
    stage04_tradeoffs,
    stage05_power_behaviour,
    stage06_estimators,
)
from helpers.stages.common import Section

#: Sample columns a GPU measures.
GPU_SAMPLE_COLUMNS = ("gpu_usage", "gpu_memory_usage", "gpu_total_memory", "gpu_memory_used",
                      "gpu_power_draw", "gpu_max_power", "gpu_temperature",
                      "gpu_power_instant_w", "gpu_energy_counter_j", "gpu_sm_clock_mhz")
MODEL_METRICS = ("f1", "gflops", "accuracy", "params")


def h100_interim() -> MergeOutputs:
    """The merge stage's outputs of the committed H100 runs."""
    return stage02_merge.merge_dataset("gpu-h100", data_dir=str(H100_RAW))


def _copy(m: MergeOutputs, **changes) -> MergeOutputs:
    parts = {k: getattr(m, k).copy() for k in ("profiling", "run_index", "events", "skips",
                                               "match_counts")}
    return MergeOutputs(**{**parts, **changes})


def without_metrics(m: MergeOutputs) -> MergeOutputs:
    """Our format without F1, FLOPs, accuracy and parameters in the metadata."""
    return _copy(m, run_index=m.run_index.assign(**{c: np.nan for c in MODEL_METRICS}))


def one_run(m: MergeOutputs) -> MergeOutputs:
    """The first run only."""
    rid = m.run_index["run_id"].iloc[0]
    return _copy(m, **{k: getattr(m, k)[getattr(m, k)["run_id"] == rid].reset_index(drop=True)
                       for k in ("profiling", "run_index", "events")})


def cpu_only(m: MergeOutputs) -> MergeOutputs:
    """No GPU: GPU columns empty, the CPU power estimate is the device power; the samples carry
    the schema's millisecond ``timestamp`` only (no ``elapsed_s`` or ``time_utc``)."""
    prof = m.profiling.assign(**{c: np.nan for c in GPU_SAMPLE_COLUMNS if c in m.profiling})
    prof = prof.drop(columns=["elapsed_s", "time_utc"])
    prof["gpu_name"] = "none"
    prof["device_power_w"] = prof["cpu_power_w"]
    return _copy(m, profiling=prof, run_index=m.run_index.assign(device="cpu"))


def five_epochs(m: MergeOutputs, keep_epochs: int = 5, tail_s: float = 2.0) -> MergeOutputs:
    """Runs cut after ``keep_epochs`` epochs (events up to that epoch's end, samples up to
    ``tail_s`` later): short runs of 5 epochs."""
    ev = m.events
    ends = ev[(ev["event"] == "epoch_end") & (ev["epoch"] == keep_epochs - 1)]
    cut = ends.set_index("run_id")["time_utc"]
    events = ev[ev["time_utc"] <= ev["run_id"].map(cut)].reset_index(drop=True)
    prof = m.profiling[m.profiling["time_utc"] <= m.profiling["run_id"].map(cut)
                       + pd.Timedelta(seconds=tail_s)].reset_index(drop=True)
    idx = m.run_index.assign(epochs=keep_epochs,
                             images_seen=keep_epochs * m.run_index["images_per_epoch"])
    return _copy(m, profiling=prof, events=events, run_index=idx)


def foreign_profiler(m: MergeOutputs) -> MergeOutputs:
    """The H100 runs as another profiler would give them (:func:`raw_shapes.tidy_samples`),
    read back through the tidy-samples reader. Written under ``data_inputs/foreign-profiler``
    of the current project root (``m`` is not used)."""
    folder = datasets.project_root() / "data_inputs" / "foreign-profiler"
    if not folder.exists():
        tidy_samples(folder)
    found = detect.detect(folder)
    return read_samples(list(found.files), found.mapping, found.mapping_file, "foreign-profiler")


def codecarbon_rows(m: MergeOutputs) -> MergeOutputs:
    """Per-run energies only (the runs' CodeCarbon-style ``emissions.csv``): no samples, no
    epoch events."""
    runs = read_codecarbon(H100_RAW / "emissions.csv", "codecarbon").runs
    return MergeOutputs(m.profiling.iloc[:0].copy(), runs, pd.DataFrame(columns=EVENT_COLUMNS),
                        m.skips.iloc[:0].copy(), m.match_counts.iloc[:0].copy())


#: Shape name -> builder (the H100 runs themselves have one environment).
SHAPES: dict[str, Callable[[MergeOutputs], MergeOutputs]] = {
    "h100": lambda m: m,
    "no-metrics": without_metrics,
    "one-run": one_run,
    "cpu-only": cpu_only,
    "five-epochs": five_epochs,
    "foreign-profiler": foreign_profiler,
    "codecarbon": codecarbon_rows,
}


def write_interim(merged: MergeOutputs, dataset: str) -> None:
    """Write ``merged`` as ``dataset``'s interim tables (under the current project root)."""
    merged.write(dataset)


def run_analysis(dataset: str, pre_models: tuple[str, ...] = ("ridge",)
                 ) -> dict[str, list[Section]]:
    """The stage calls of notebooks 03-06 with their default parameters (PRE limited to
    ``pre_models``), in notebook order; returns every section by notebook number."""
    cleaned, written = stage03_clean.clean_and_write(dataset)
    s03 = [written, stage03_clean.energy_windows(cleaned),
           stage03_clean.cleaning_steps(cleaned, dataset),
           stage03_clean.energy_by_group(cleaned, dataset)]
    s03.append(stage03_clean.write_not_estimable(s03, dataset))

    data, loaded = stage04_tradeoffs.load_runs(dataset)
    s04 = [loaded, stage04_tradeoffs.energy_per_image(data),
           stage04_tradeoffs.compare_architectures(data), stage04_tradeoffs.compare_environments(
               data), stage04_tradeoffs.two_way_anova(data),
           stage04_tradeoffs.correlations(data, 0.98),
           stage04_tradeoffs.savings(data, "mobilenet_v2", "vgg16", {"h100": None}),
           stage04_tradeoffs.pareto(data), stage04_tradeoffs.interaction(data)]
    stage04_tradeoffs.write_headlines(data, s04)
    s04.append(stage04_tradeoffs.write_not_estimable(data, s04))

    p5, loaded5 = stage05_power_behaviour.load_inputs(dataset)
    params5, resolved5 = stage05_power_behaviour.resolve_parameters(p5)
    usage = stage05_power_behaviour.power_vs_usage(p5)
    ratio = stage05_power_behaviour.power_limit_ratio(p5)
    idle = stage05_power_behaviour.idle_baseline(p5)
    stab, stabilisation = stage05_power_behaviour.stabilisation(p5, params5.window)
    series = stage05_power_behaviour.timeseries(p5, stab)
    sens = stage05_power_behaviour.sensitivity(p5, stab, 40, params5.sensitivity_windows,
                                               [None, 30.0], params5.estimate_starts_s,
                                               params5.estimate_windows_s)
    s05 = [loaded5, resolved5, usage, ratio, idle, stabilisation, series, sens]
    stage05_power_behaviour.write_summary(p5, s05)
    s05.append(stage05_power_behaviour.write_not_estimable(p5, s05))

    st = stage06_estimators
    inputs, loaded6 = st.load(dataset)
    params, resolved = st.resolve_parameters(inputs)
    published, checked = st.published_baselines_check(dataset, params.n_boot)
    fixed, without = st.methods_without_fitting(inputs, params)
    fits, fitted = st.pre_fits(inputs, models=list(pre_models))
    errors, scored = st.error_table(dataset, inputs, fixed, fits, published, params.n_boot)
    compared = st.predicted_vs_measured(dataset, inputs, fixed, fits, list(pre_models),
                                        pre_models[0] if pre_models else "ridge")
    _, before = st.before_training(dataset, inputs, fits, params.n_boot)
    curve, online = st.online_error_vs_fraction(dataset, inputs, [0.1, 0.2, 0.5], params)
    sensitivity = st.stabilisation_sensitivity(dataset, inputs, 0.2, params)
    forecasts = st.step_forecaster(dataset, inputs, [0.3, 0.5], params)
    accepted = st.acceptance_checks(errors, published, curve)
    s06 = [loaded6, resolved, checked, without, fitted, scored, compared, before, online,
           sensitivity, forecasts, accepted]
    s06.append(st.write_not_estimable(dataset, s06))
    return {"03": s03, "04": s04, "05": s05, "06": s06}


def reports(dataset: str) -> Path:
    """``data_outputs/<dataset>/reports`` under the current project root."""
    return datasets.output_dir(dataset, "reports")
