"""Figures of the trade-offs stage (notebook 04); numbers come from
:mod:`helpers.analysis.tradeoffs`."""

from __future__ import annotations

import matplotlib as mpl
import matplotlib.pyplot as plt
import pandas as pd

from helpers.analysis import tradeoffs
from helpers.plots.style import figure, note_axes


def pareto(table: pd.DataFrame, not_estimable: str = "") -> plt.Figure:
    """Group medians of energy per image (J) against F1 with each environment's Pareto front
    (``table`` from :func:`helpers.analysis.tradeoffs.pareto_table`); the panel says why
    instead when ``not_estimable`` gives a reason."""
    fig, ax = figure("column", aspect=0.8)
    if not_estimable:
        note_axes(ax, f"Pareto front not estimable: {not_estimable}")
    else:
        draw_pareto(ax, table)
    return fig


def interaction(runs: pd.DataFrame, not_estimable: dict[str, str] | None = None
                ) -> plt.Figure:
    """Interaction plots of median energy per image (J, left) and median F1 (right): one line
    per architecture across the environments. ``not_estimable``: variable -> why its panel has
    no data (the panel says so)."""
    missing = not_estimable or {}
    fig, axes = figure("page", aspect=0.33, ncols=2)
    for ax, value, legend in ((axes[0], "energy_per_image_j", False), (axes[1], "f1", True)):
        if value in missing:
            label = tradeoffs.TRADEOFF_VARIABLES.get(value, value)
            note_axes(ax, f"{label}: not estimable ({missing[value]})")
        else:
            draw_interaction(ax, runs, value, legend=legend or "f1" in missing)
    fig.tight_layout()
    return fig


def draw_pareto(ax, table: pd.DataFrame, cost: str = "energy_per_image_j", benefit: str = "f1",
                hue: str = "environment", label: str = "architecture") -> None:
    """Scatter group medians (one colour and marker per ``hue``), connect each hue's
    within-group Pareto front with a step line and annotate points with ``label`` (above the
    point for the first hue level, below for the second, ...)."""
    palette = mpl.rcParams["axes.prop_cycle"].by_key()["color"]
    markers = "osD^v"
    for i, (level, sub) in enumerate(table.groupby(hue, sort=True)):
        col = palette[i % len(palette)]
        ax.scatter(sub[cost], sub[benefit], s=16, color=col, marker=markers[i % len(markers)],
                   label=str(level), zorder=3)
        front = sub[sub["pareto_within"]].sort_values(cost)
        ax.step(front[cost], front[benefit], where="post", color=col, lw=0.8, alpha=0.7)
        dy = 3 if i % 2 == 0 else -7
        for _, r in sub.iterrows():
            ax.annotate(str(r[label]), (r[cost], r[benefit]), fontsize=5, color=col,
                        xytext=(2, dy), textcoords="offset points")
    ax.set_xlabel(tradeoffs.TRADEOFF_VARIABLES.get(cost, cost) + ", median")
    ax.set_ylabel(tradeoffs.TRADEOFF_VARIABLES.get(benefit, benefit) + ", median")
    ax.legend(title=hue, frameon=False, loc="lower right", title_fontsize=7)


def draw_interaction(ax, runs: pd.DataFrame, value: str = "energy_per_image_j",
                     x: str = "environment", trace: str = "architecture",
                     legend: bool = True) -> None:
    """Interaction plot: median ``value`` per ``x`` level, one line per ``trace`` level."""
    med = runs.groupby([trace, x], sort=True)[value].median().unstack(x).dropna(how="all")
    for level, row in med.iterrows():
        ax.plot(range(len(row)), row.to_numpy(), marker="o", ms=3, lw=1, label=str(level))
    ax.set_xticks(range(med.shape[1]), [str(c) for c in med.columns])
    ax.set_xlim(-0.3, med.shape[1] - 0.7)
    ax.set_xlabel(x)
    ax.set_ylabel(tradeoffs.TRADEOFF_VARIABLES.get(value, value) + ", median")
    if legend:
        ax.legend(title=trace, frameon=False, fontsize=6, title_fontsize=7,
                  loc="center left", bbox_to_anchor=(1.0, 0.5))
