"""The stage calls of notebooks 03-06 run in-process (the papermill runs of every input shape
are in tests/notebooks/test_notebook_matrix.py): :func:`write_interim` puts merge outputs where
notebook 03 reads them (under ``$DLE_PROJECT_ROOT``), :func:`run_analysis` runs the stage
functions of notebooks 03-06 in notebook order, :func:`h100_interim` merges the committed H100
runs.
"""

from __future__ import annotations

from pathlib import Path

from raw_shapes import H100_RAW

from helpers.core import datasets
from helpers.readers.merge import MergeOutputs
from helpers.stages import (
    stage02_merge,
    stage03_clean,
    stage04_tradeoffs,
    stage05_power_behaviour,
    stage06_estimators,
)
from helpers.stages.common import Section


def h100_interim() -> MergeOutputs:
    """The merge stage's outputs of the committed H100 runs."""
    return stage02_merge.merge_dataset("gpu-h100", data_dir=str(H100_RAW))


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
