"""Tables and figures of the clean stage (notebook 03)."""

from __future__ import annotations

import matplotlib.pyplot as plt
import pandas as pd
import seaborn as sns

from helpers.core.units import J_PER_KWH
from helpers.plots.style import figure, note_figure


def energy_summary(runs: pd.DataFrame) -> pd.DataFrame:
    """Per (environment, architecture): run count, median duration (s) and energy (kWh and MJ,
    display units) of the run window, median duration and energy (MJ) of the training window,
    median J/image (training window), median F1."""
    g = runs.groupby(["environment", "architecture"], sort=True)
    return pd.DataFrame({
        "runs": g.size(),
        "duration_s_median": g["duration_s"].median(),
        "energy_kwh_median": g["energy_j"].median() / J_PER_KWH,
        "energy_mj_median": g["energy_j"].median() / 1e6,
        "training_duration_s_median": g["training_duration_s"].median(),
        "training_energy_mj_median": g["training_energy_j"].median() / 1e6,
        "energy_per_image_j_median": g["energy_per_image_j"].median(),
        "f1_median": g["f1"].median(),
        "energy_source": g["energy_source"].agg(lambda s: ", ".join(sorted(set(s)))),
    })


def funnel(steps: pd.DataFrame) -> plt.Figure:
    """Horizontal bars: runs remaining after each cleaning step, removed count annotated."""
    fig, ax = figure("column", aspect=0.7)
    labels = ["input", *steps["step"]]
    remaining = [int(steps["runs_in"].iloc[0]), *steps["runs_out"].astype(int)]
    ax.barh(range(len(labels)), remaining, color=sns.color_palette()[0])
    for i, (n, removed) in enumerate(zip(remaining, [0, *steps["removed"]], strict=True)):
        ax.text(n, i, f" {n}" + (f" (−{removed})" if removed else ""), va="center", fontsize=6)
    ax.set_yticks(range(len(labels)), labels)
    ax.invert_yaxis()
    ax.set_xlabel("runs")
    ax.set_xlim(0, max(remaining) * 1.3)
    ax.set_title("Cleaning funnel")
    return fig


def energy_by_group(runs: pd.DataFrame) -> plt.Figure:
    """Box plot of the training window's energy (MJ) per architecture, one colour per
    environment (a note instead when no run has one)."""
    data = runs.assign(energy_mj=runs["training_energy_j"] / 1e6).dropna(subset=["energy_mj"])
    if data.empty:
        return note_figure("Training energy per architecture: no run has a measured training "
                           "energy", "page", aspect=0.35)
    fig, ax = figure("page", aspect=0.35)
    sns.boxplot(data=data, x="architecture", y="energy_mj", hue="environment", ax=ax,
                fliersize=1.5, linewidth=0.6)
    ax.set_ylabel("training energy per run (MJ)")
    ax.set_xlabel("")
    sources = ", ".join(sorted(data["training_energy_source"].astype(str).unique()))
    ax.set_title(f"Training energy per architecture and environment ({sources})")
    return fig
