"""Stage of notebook 04 (trade-offs): energy against correctness across architectures (RQ1) and
training environments (RQ2), on the cleaned per-run table (docs/methods.md#trade-offs).

Energy is compared per image seen (``energy_per_image_j``, J). For each variable the battery of
:func:`helpers.analysis.stats.compare_groups` runs: Shapiro–Wilk per group, Levene, then Welch
ANOVA + Games–Howell if every group is normal, otherwise Kruskal–Wallis + η²_H + Dunn (Holm);
Cliff's δ for every pair. Tables go to ``data_outputs/<dataset>/reports/04-*.csv``, the headline
numbers to ``04-headlines.json``, figures to ``figures/<dataset>/04-*``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from helpers.analysis import stats, tradeoffs
from helpers.core import datasets, io
from helpers.core.schema import RUN_COLUMNS, require_columns
from helpers.plots import tradeoffs as plots_tradeoffs
from helpers.stages import common
from helpers.stages.common import Section, save_and_close

#: (x, y) pairs of the Spearman correlations, within each environment.
SPEARMAN_PAIRS = [("energy_per_image_j", "f1"), ("gpu_usage_mean", "gpu_power_mean_w"),
                  ("gflops", "energy_per_image_j")]


@dataclass
class TradeoffInputs:
    """The cleaned runs of one dataset and where its reports go."""

    dataset: str
    runs: pd.DataFrame
    reports: Path

    @property
    def environments(self) -> list:
        """Environment labels, sorted."""
        return sorted(self.runs["environment"].unique())

    @property
    def variables(self) -> list[str]:
        """The variables of :data:`~helpers.analysis.tradeoffs.TRADEOFF_VARIABLES` with at least
        one value in this dataset."""
        return [v for v in tradeoffs.TRADEOFF_VARIABLES if self.runs[v].notna().any()]


def setup_display() -> None:
    """Figure style and pandas display options of notebook 04."""
    common.setup_display(max_columns=30, precision=4)


def load_runs(dataset: str) -> tuple[TradeoffInputs, Section]:
    """Read ``processed/runs.parquet`` (checked against RUN_COLUMNS); the section counts runs,
    environments and architectures."""
    path = datasets.output_dir(dataset, "processed") / "runs.parquet"
    runs = pd.read_parquet(path)
    require_columns(runs, RUN_COLUMNS, str(path))
    data = TradeoffInputs(dataset, runs, datasets.output_dir(dataset, "reports"))
    note = (f"{len(runs)} runs, environments {data.environments}, "
            f"architectures {sorted(runs['architecture'].unique())}")
    return data, Section([note], headlines={"dataset": dataset, "n_runs": len(runs)})


def energy_per_image(data: TradeoffInputs) -> Section:
    """Median energy per image (J) per architecture × environment; writes the group summary of
    every trade-off variable (``04-group-summary.csv``) and shows its energy rows."""
    median_j = tradeoffs.median_table(data.runs, "energy_per_image_j")
    summary = tradeoffs.group_summary(data.runs, list(tradeoffs.TRADEOFF_VARIABLES))
    io.write_csv(summary, data.reports / "04-group-summary.csv")
    headline = {str(env): {str(a): float(v) for a, v in col.dropna().items()}
                for env, col in median_j.items()}
    return Section(["median energy per image (J):", median_j.round(4).to_string()],
                   {"group summary": summary[summary["variable"] == "energy_per_image_j"]},
                   headlines={"median_energy_per_image_j": headline})


def _pairs_table(results: dict, by: str) -> pd.DataFrame:
    """Every pair of every battery in ``results`` ((by level, variable) -> result)."""
    return pd.concat([res.pairs().assign(**{by: level, "variable": var})
                      for (level, var), res in results.items()], ignore_index=True)


def _normality_notes(results: dict) -> list[str]:
    """Per battery: the path taken with its reason, and the Shapiro–Wilk table."""
    notes = []
    for (level, var), res in results.items():
        notes.append(f"--- {var} in {level}: {res.path} — {res.reason}")
        notes.append(res.normality[["group", "n", "W", "p_value", "normal", "note"]]
                     .to_string(index=False))
    return notes


def compare_architectures(data: TradeoffInputs, alpha: float = 0.05) -> Section:
    """RQ1: the battery over architectures within each environment for every variable with
    values (the others skipped with a note); writes ``04-rq1-battery.csv`` and
    ``04-rq1-pairs.csv``, shows the battery and the energy pairs."""
    notes = [f"skipped {v}: no values in this dataset"
             for v in sorted(set(tradeoffs.TRADEOFF_VARIABLES) - set(data.variables))]
    rq1 = stats.compare_many(data.runs, data.variables, "architecture", by="environment",
                             alpha=alpha)
    battery = stats.summary_table(rq1, "environment")
    io.write_csv(battery, data.reports / "04-rq1-battery.csv")
    pairs = _pairs_table(rq1, "environment")
    io.write_csv(pairs, data.reports / "04-rq1-pairs.csv")
    return Section(notes + _normality_notes(rq1),
                   {"battery": battery,
                    "pairs (energy per image)": pairs[pairs["variable"] == "energy_per_image_j"]})


def compare_environments(data: TradeoffInputs, alpha: float = 0.05) -> Section:
    """RQ2: the battery over environments within each architecture (skipped with a note when
    the dataset has one environment); writes ``04-rq2-battery.csv`` and ``04-rq2-pairs.csv``."""
    if len(data.environments) < 2:
        return Section([f"RQ2 skipped: one environment only ({data.environments})"],
                       {"battery": pd.DataFrame()})
    rq2 = stats.compare_many(data.runs, data.variables, "environment", by="architecture",
                             alpha=alpha)
    battery = stats.summary_table(rq2, "architecture")
    io.write_csv(battery, data.reports / "04-rq2-battery.csv")
    io.write_csv(_pairs_table(rq2, "architecture"), data.reports / "04-rq2-pairs.csv")
    return Section(tables={"battery": battery})


def two_way_anova(data: TradeoffInputs) -> Section:
    """Type II two-way ANOVA architecture × environment per variable (``04-two-way-anova.csv``);
    skipped with a note without 2 environments and 2 architectures."""
    if len(data.environments) < 2 or data.runs["architecture"].nunique() < 2:
        return Section(["two-way ANOVA skipped: needs at least 2 environments and 2 "
                        "architectures"], {"anova": pd.DataFrame()})
    anova = pd.concat([stats.two_way_anova(data.runs, v, "architecture", "environment")
                       .assign(variable=v) for v in data.variables], ignore_index=True)
    io.write_csv(anova, data.reports / "04-two-way-anova.csv")
    return Section(tables={"anova": anova})


def correlations(data: TradeoffInputs, published_power_usage_rho: float | None = None
                 ) -> Section:
    """Spearman ρ of :data:`SPEARMAN_PAIRS` within each environment (``04-spearman.csv``); the
    power–GPU usage ρ beside the published value."""
    corr, notes = tradeoffs.spearman_pairs(data.runs, SPEARMAN_PAIRS)
    io.write_csv(corr, data.reports / "04-spearman.csv")
    power_rho = corr[(corr["x"] == "gpu_usage_mean") & (corr["y"] == "gpu_power_mean_w")]
    notes = list(notes) + [
        f"Spearman rho(mean power, GPU usage) in {r.environment}: {r.rho:.3f} "
        f"(n={r.n}, p={r.p_value:.2g}; published ≈ {published_power_usage_rho})"
        for r in power_rho.itertuples()]
    headline = {str(r.environment): float(r.rho) for r in power_rho.itertuples()}
    return Section(notes, {"spearman": corr},
                   headlines={"spearman_power_gpu_usage": headline})


def savings(data: TradeoffInputs, saver_arch: str, reference_arch: str,
            headline_envs: dict[str, float | None], alpha: float = 0.05) -> Section:
    """Savings for every pair of architectures within an environment (``04-savings.csv``), and
    the headline pair ``saver_arch`` vs ``reference_arch`` in ``headline_envs`` (environment ->
    published saving %, or None)."""
    table = tradeoffs.pairwise_savings(data.runs, alpha=alpha)
    io.write_csv(table, data.reports / "04-savings.csv")
    headline, lines = tradeoffs.headline_savings(data.runs, saver_arch, reference_arch,
                                                 headline_envs, alpha=alpha)
    return Section(lines, {"savings": table}, headlines={"savings": headline})


def write_headlines(data: TradeoffInputs, sections: list[Section]) -> Path:
    """Write the headline numbers of ``sections`` (in order) to ``04-headlines.json``."""
    return io.write_json(common.merge_headlines(sections), data.reports / "04-headlines.json")


def pareto(data: TradeoffInputs) -> Section:
    """Pareto front of (energy per image ↓, F1 ↑) on group medians (``04-pareto.csv``, figure
    ``04-pareto``)."""
    table = tradeoffs.pareto_table(data.runs)
    io.write_csv(table, data.reports / "04-pareto.csv")
    return Section(tables={"pareto": table},
                   figures=save_and_close(plots_tradeoffs.pareto(table), data.dataset,
                                          "04-pareto"))


def interaction(data: TradeoffInputs) -> Section:
    """Interaction plot architecture × environment of median energy per image and F1 (figure
    ``04-interaction``)."""
    return Section(figures=save_and_close(plots_tradeoffs.interaction(data.runs), data.dataset,
                                          "04-interaction"))
