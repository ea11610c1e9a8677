"""Stage of notebook 04 (trade-offs): energy against correctness across architectures (RQ1) and
training environments (RQ2), on the cleaned per-run table (docs/methods.md#trade-offs).

Every variable covers the training window (docs/methods.md#energy-windows): energy per image
seen (``energy_per_image_j``, J), time per image, mean GPU usage, and F1. For each variable the
battery of
:func:`helpers.analysis.stats.compare_groups` runs: Shapiro–Wilk per group, Levene, then Welch
ANOVA + Games–Howell if every group is normal, otherwise Kruskal–Wallis + η²_H + Dunn (Holm);
Cliff's δ for every pair. Tables go to ``data_outputs/<dataset>/reports/04-*.csv``, the headline
numbers to ``04-headlines.json``, figures to ``figures/<dataset>/04-*``. An analysis the
dataset does not allow (one environment, one architecture, no F1, one run) is listed with its
reason in ``04-not-estimable.csv`` and its figure panel says so.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from helpers.analysis import runs as run_tables
from helpers.analysis import stats, tradeoffs
from helpers.core import datasets, io
from helpers.core.schema import RUN_COLUMNS, require_columns
from helpers.plots import tradeoffs as plots_tradeoffs
from helpers.stages import common
from helpers.stages.common import Section, save_and_close

#: (x, y) pairs of the Spearman correlations, within each environment.
SPEARMAN_PAIRS = [("energy_per_image_j", "f1"),
                  ("training_gpu_usage_mean", "training_gpu_power_mean_w"),
                  ("gflops", "energy_per_image_j")]
#: The power-usage pair of :data:`SPEARMAN_PAIRS` (its ρ is a headline).
POWER_USAGE = SPEARMAN_PAIRS[1]


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

    def missing_variables(self) -> list[tuple[str, str]]:
        """(variable, reason) for each trade-off variable without any value."""
        return [(v, _why_missing(v)) for v in tradeoffs.TRADEOFF_VARIABLES
                if v not in self.variables]


def _why_missing(variable: str) -> str:
    """Why a trade-off variable has no value in a dataset."""
    return {"f1": "no run has an F1 score (not in the source's metadata)",
            "training_gpu_usage_mean": "no GPU utilisation (CPU-only runs or a per-run source)",
            "energy_per_image_j": "no run has images_seen (epochs x training-set size) or a "
                                  "training energy",
            "time_per_image_s": "no run has images_seen (epochs x training-set size)",
            }.get(variable, "no values")


def setup_display() -> None:
    """Figure style and pandas display options of notebook 04."""
    common.setup_display(max_columns=30, precision=4)


def load_runs(dataset: str) -> tuple[TradeoffInputs, Section]:
    """Read ``processed/runs.parquet`` (checked against RUN_COLUMNS); the section counts runs,
    environments and architectures."""
    path = datasets.output_dir(dataset, "processed") / "runs.parquet"
    runs = run_tables.with_training_columns(pd.read_parquet(path))
    require_columns(runs, RUN_COLUMNS, str(path))
    data = TradeoffInputs(dataset, runs, datasets.output_dir(dataset, "reports"))
    note = (f"{len(runs)} runs, environments {data.environments}, "
            f"architectures {sorted(runs['architecture'].unique())}; every variable over the "
            f"training window ({_windows(runs)})")
    return data, Section([note], headlines={"dataset": dataset, "n_runs": len(runs)},
                         not_estimable=[(f"variable {v}", why)
                                        for v, why in data.missing_variables()])


def _windows(runs: pd.DataFrame) -> str:
    """The training windows of ``runs``, with their counts."""
    return ", ".join(f"{n} runs {w!r}" for w, n in runs["training_window"].value_counts().items())


def energy_per_image(data: TradeoffInputs) -> Section:
    """Median energy per image (J) per architecture × environment; writes the group summary of
    every trade-off variable (``04-group-summary.csv``) and shows its energy rows."""
    summary = tradeoffs.group_summary(data.runs, list(tradeoffs.TRADEOFF_VARIABLES))
    io.write_csv(summary, data.reports / "04-group-summary.csv")
    shown = {"group summary": summary[summary["variable"] == "energy_per_image_j"]}
    if "energy_per_image_j" not in data.variables:
        return Section(tables=shown, headlines={"median_energy_per_image_j": {}},
                       not_estimable=[("median energy per image",
                                       _why_missing("energy_per_image_j"))])
    median_j = tradeoffs.median_table(data.runs, "energy_per_image_j")
    headline = {str(env): {str(a): float(v) for a, v in col.dropna().items()}
                for env, col in median_j.items()}
    return Section(["median energy per image (J):", median_j.round(4).to_string()], shown,
                   headlines={"median_energy_per_image_j": headline})


#: Columns of the pairs tables (04-rq1-pairs.csv, 04-rq2-pairs.csv) after the level.
PAIR_COLUMNS = ["group_a", "group_b", "n_a", "n_b", "delta", "magnitude", "test", "p_adj",
                "center_a", "center_b", "variable"]


def _pairs_table(results: dict, by: str) -> pd.DataFrame:
    """Every pair of every battery in ``results`` ((by level, variable) -> result)."""
    parts = [res.pairs().assign(**{by: level, "variable": var})
             for (level, var), res in results.items()]
    return (pd.concat(parts, ignore_index=True) if parts
            else pd.DataFrame(columns=[*PAIR_COLUMNS, by]))


def _untested(data: TradeoffInputs, results: dict, group: str, by: str, what: str
              ) -> list[tuple[str, str]]:
    """(analysis, reason) for every (level of ``by``, variable with values) that the battery
    could not compare: fewer than two ``group`` levels with values there."""
    out = []
    for level, sub in data.runs.groupby(by, sort=True):
        for v in data.variables:
            if (level, v) not in results:
                n = sub.dropna(subset=[v])[group].nunique()
                out.append((f"{what}: {v} in {by} {level}",
                            f"{n} {group} value(s) with values; the battery needs 2"))
    return out


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
                    "pairs (energy per image)": pairs[pairs["variable"] == "energy_per_image_j"]},
                   not_estimable=_untested(data, rq1, "architecture", "environment", "RQ1"))


def compare_environments(data: TradeoffInputs, alpha: float = 0.05) -> Section:
    """RQ2: the battery over environments within each architecture (skipped with a note when
    the dataset has one environment); writes ``04-rq2-battery.csv`` and ``04-rq2-pairs.csv``."""
    if len(data.environments) < 2:
        why = f"one environment only ({', '.join(map(str, data.environments))})"
        return Section([f"RQ2 skipped: {why}"], {"battery": pd.DataFrame()},
                       not_estimable=[("RQ2: environments compared within each architecture",
                                       why)])
    rq2 = stats.compare_many(data.runs, data.variables, "environment", by="architecture",
                             alpha=alpha)
    battery = stats.summary_table(rq2, "architecture")
    io.write_csv(battery, data.reports / "04-rq2-battery.csv")
    io.write_csv(_pairs_table(rq2, "architecture"), data.reports / "04-rq2-pairs.csv")
    return Section(tables={"battery": battery},
                   not_estimable=_untested(data, rq2, "environment", "architecture", "RQ2"))


def two_way_anova(data: TradeoffInputs) -> Section:
    """Type II two-way ANOVA architecture × environment per variable (``04-two-way-anova.csv``);
    skipped with a note without 2 environments and 2 architectures."""
    skipped = []
    parts = []
    for v in data.variables:
        sub = data.runs.dropna(subset=[v])
        n_env, n_arch = sub["environment"].nunique(), sub["architecture"].nunique()
        if n_env < 2 or n_arch < 2 or len(sub) <= n_env + n_arch:
            skipped.append((f"two-way ANOVA of {v}", f"{n_env} environment(s), {n_arch} "
                            f"architecture(s), {len(sub)} runs with values: needs 2 of each "
                            "and more runs than levels"))
            continue
        parts.append(stats.two_way_anova(sub, v, "architecture", "environment").assign(
            variable=v))
    if not parts:
        return Section(["two-way ANOVA skipped: needs at least 2 environments and 2 "
                        "architectures"], {"anova": pd.DataFrame()}, not_estimable=skipped)
    anova = pd.concat(parts, ignore_index=True)
    io.write_csv(anova, data.reports / "04-two-way-anova.csv")
    return Section(tables={"anova": anova}, not_estimable=skipped)


def correlations(data: TradeoffInputs, published_power_usage_rho: float | None = None
                 ) -> Section:
    """Spearman ρ of :data:`SPEARMAN_PAIRS` within each environment (``04-spearman.csv``); the
    power–GPU usage ρ beside the published value."""
    corr, notes = tradeoffs.spearman_pairs(data.runs, SPEARMAN_PAIRS)
    io.write_csv(corr, data.reports / "04-spearman.csv")
    power_rho = corr[(corr["x"] == POWER_USAGE[0]) & (corr["y"] == POWER_USAGE[1])
                     & corr["rho"].notna()]
    notes = list(notes) + [
        f"Spearman rho(mean power, GPU usage) in {r.environment}: {r.rho:.3f} "
        f"(n={r.n}, p={r.p_value:.2g}; published ≈ {published_power_usage_rho})"
        for r in power_rho.itertuples()]
    headline = {str(r.environment): float(r.rho) for r in power_rho.itertuples()}
    skipped = [(f"Spearman {x} vs {y}", "no values for one of them")
               for x, y in SPEARMAN_PAIRS if data.runs[[x, y]].isna().all().any()]
    skipped += [(f"Spearman {r.x} vs {r.y} in {r.environment}", r.note)
                for r in corr[corr["rho"].isna()].itertuples()]
    return Section(notes, {"spearman": corr},
                   headlines={"spearman_power_gpu_usage": headline}, not_estimable=skipped)


def savings(data: TradeoffInputs, saver_arch: str, reference_arch: str,
            headline_envs: dict[str, float | None], alpha: float = 0.05) -> Section:
    """Savings for every pair of architectures within an environment (``04-savings.csv``), and
    the headline pair ``saver_arch`` vs ``reference_arch`` in ``headline_envs`` (environment ->
    published saving %, or None)."""
    if "energy_per_image_j" not in data.variables:
        why = _why_missing("energy_per_image_j")
        return Section([f"savings skipped: {why}"], headlines={"savings": {}},
                       not_estimable=[("savings between architectures", why)])
    table = tradeoffs.pairwise_savings(data.runs, alpha=alpha)
    io.write_csv(table, data.reports / "04-savings.csv")
    headline, lines = tradeoffs.headline_savings(data.runs, saver_arch, reference_arch,
                                                 headline_envs, alpha=alpha)
    skipped = [(f"headline saving {saver_arch} vs {reference_arch} in {env}",
                line.split(" skipped: ", 1)[1])
               for env, line in zip(headline_envs, lines, strict=False)
               if " skipped: " in line]
    if table.empty:
        skipped.append(("savings between architectures",
                        "no environment has two architectures with energy per image"))
    return Section(lines, {"savings": table}, headlines={"savings": headline},
                   not_estimable=skipped)


def write_headlines(data: TradeoffInputs, sections: list[Section]) -> Path:
    """Write the headline numbers of ``sections`` (in order) to ``04-headlines.json``."""
    return io.write_json(common.merge_headlines(sections), data.reports / "04-headlines.json")


def pareto(data: TradeoffInputs) -> Section:
    """Pareto front of (energy per image ↓, F1 ↑) on group medians (``04-pareto.csv``, figure
    ``04-pareto``)."""
    table = tradeoffs.pareto_table(data.runs)
    io.write_csv(table, data.reports / "04-pareto.csv")
    missing = [v for v in ("energy_per_image_j", "f1") if v not in data.variables]
    why = "; ".join(f"{v}: {_why_missing(v)}" for v in missing)
    fig = plots_tradeoffs.pareto(table, why)
    return Section(tables={"pareto": table},
                   figures=save_and_close(fig, data.dataset, "04-pareto"),
                   not_estimable=[("Pareto front (energy per image vs F1)", why)] if why else [])


def interaction(data: TradeoffInputs) -> Section:
    """Interaction plot architecture × environment of median energy per image and F1 (figure
    ``04-interaction``; a panel without values says why)."""
    missing = {v: _why_missing(v) for v in ("energy_per_image_j", "f1")
               if v not in data.variables}
    return Section(figures=save_and_close(plots_tradeoffs.interaction(data.runs, missing),
                                          data.dataset, "04-interaction"),
                   not_estimable=[(f"interaction plot of {v}", why)
                                  for v, why in missing.items()])


def write_not_estimable(data: TradeoffInputs, sections: list[Section]) -> Section:
    """``reports/04-not-estimable.csv``: every analysis of the sections that could not run."""
    return common.write_not_estimable(sections, data.dataset, "04")
