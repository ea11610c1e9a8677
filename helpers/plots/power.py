"""Figures of the power-behaviour stage (notebook 05); numbers come from
:mod:`helpers.analysis.power`."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from helpers.plots.style import figure, note_axes


def plot_power_vs_usage(ax, runs: pd.DataFrame, fits: pd.DataFrame,
                        power: str = "training_gpu_power_mean_w",
                        usage: str = "training_gpu_usage_mean", by: str = "environment") -> None:
    """Scatter of mean power against mean utilisation (training window) per ``by`` level, with
    the fitted lines and ρ from :func:`power_vs_usage` in the legend."""
    fit = fits.set_index(by)
    for level, sub in runs.groupby(by, sort=True):
        pts = ax.scatter(sub[usage], sub[power], s=6, alpha=0.6)
        row = fit.loc[level]
        label = f"{level} (ρ={row['rho']:.2f})"
        if np.isfinite(row["slope_w"]):
            x = np.linspace(sub[usage].min(), sub[usage].max(), 2)
            ax.plot(x, row["intercept_w"] + row["slope_w"] * x, color=pts.get_facecolor()[0],
                    lw=1, label=label)
        else:
            pts.set_label(label)
    ax.set_xlabel("mean GPU utilisation, training window (fraction)")
    ax.set_ylabel("mean power, training window (W)")
    ax.legend(frameon=False)


def plot_timeseries(ax, run_samples: pd.DataFrame, power_col: str = "device_power_w",
                    stabilisation_s: float | None = None, title: str = "",
                    window_s: tuple[float, float] | None = None) -> None:
    """Power against elapsed time for one run; epochs shaded alternately and ``eval`` phases
    hatched where the samples carry labels; the stabilisation point as a dashed line and the
    edges of the training window (``window_s``, s from the first sample) as dotted lines."""
    s = run_samples.sort_values("elapsed_s")
    t = s["elapsed_s"].to_numpy(float)
    ax.plot(t, s[power_col].to_numpy(float), lw=0.4)
    if "epoch" in s and s["epoch"].notna().any():
        for ep, grp in s.groupby("epoch"):
            if int(ep) % 2 == 0:
                ax.axvspan(grp["elapsed_s"].min(), grp["elapsed_s"].max(), color="0.9", lw=0)
    if "phase" in s and s["phase"].eq("eval").any():
        ev = s["phase"].eq("eval").to_numpy()
        edges = np.flatnonzero(np.diff(np.r_[0, ev.astype(int), 0]))
        for a, b in zip(edges[::2], edges[1::2], strict=True):
            ax.axvspan(t[a], t[b - 1], color="tab:orange", alpha=0.2, lw=0)
    if stabilisation_s is not None and np.isfinite(stabilisation_s):
        ax.axvline(stabilisation_s, color="k", ls="--", lw=0.8)
    for edge in window_s or ():
        if np.isfinite(edge):
            ax.axvline(edge, color="tab:green", ls=":", lw=0.8)
    ax.set_title(title, fontsize=6)
    ax.set_xlabel("elapsed (s)")
    ax.set_ylabel("power (W)")


def plot_power_limit_ratio(axes, samples: pd.DataFrame, runs: pd.DataFrame,
                           ratio: str = "power_limit_ratio") -> None:
    """One panel per GPU: box plots of per-sample power / limit per architecture, with each
    run's mean ratio as a red dot. ``axes``: one axis per GPU name in ``samples`` (sorted)."""
    gpus = sorted(samples["gpu_name"].dropna().unique())
    for ax, gpu in zip(axes, gpus, strict=True):
        sub = samples[samples["gpu_name"] == gpu]
        archs = sorted(sub["architecture"].unique())
        ax.boxplot([sub.loc[sub["architecture"] == a, ratio].dropna() for a in archs],
                   showfliers=False, widths=0.6)
        per_run = runs[runs["gpu_name"] == gpu]
        for i, a in enumerate(archs, start=1):
            mine = per_run.loc[per_run["architecture"] == a, ratio]
            ax.scatter(np.full(len(mine), i), mine, s=3, color="tab:red", alpha=0.5, zorder=3)
        ax.set_xticks(range(1, len(archs) + 1), archs, rotation=30, ha="right")
        ax.set_title(gpu)
    axes[0].set_ylabel("power / power limit")


def _group_boxes(ax, table: pd.DataFrame, ylabel: str, **box) -> None:
    groups = table.groupby(["environment", "architecture"], sort=True)
    ax.boxplot([g["stabilisation"].dropna() for _, g in groups], widths=0.6, **box)
    ax.set_xticks(range(1, len(groups) + 1), [f"{e}\n{a}" for e, a in groups.groups],
                  rotation=45, ha="right", fontsize=5)
    ax.set_ylabel(ylabel)


def plot_stabilisation(axes, stab: pd.DataFrame, stab_epochs: pd.DataFrame,
                       epochs_note: str = "") -> None:
    """Box plots of the stabilisation point per (environment, architecture): on time, seconds
    into the training window (``axes[0]``), and per epoch (``axes[1]``; ``epochs_note`` says
    why when ``stab_epochs`` is empty). A panel without any point says so."""
    if stab["stabilisation"].notna().any():
        _group_boxes(axes[0], stab, "stabilisation (s into training)", showfliers=True,
                     flierprops={"markersize": 2})
    else:
        note_axes(axes[0], "stabilisation point on time: no run long enough for two regimes")
    if len(stab_epochs) and stab_epochs["stabilisation"].notna().any():
        _group_boxes(axes[1], stab_epochs, "stabilisation epoch")
    else:
        note_axes(axes[1], "stabilisation epoch not estimable: "
                  + (epochs_note or "too few epochs for two regimes"))


def plot_sensitivity(axes, sens: pd.DataFrame, err_table: pd.DataFrame,
                     stabilisation_median_s: float) -> bool:
    """Left: median stabilisation point against the block window, one line per penalty (IQR
    band for the unpenalised two-regime split). Right: median |error| of the online estimate
    against the window start, one line per window length, the median stabilisation point
    dashed. Returns False when no estimate exists (every start beyond the runs)."""
    sens = sens.dropna(subset=["stabilisation"])
    if sens.empty:
        note_axes(axes[0], "stabilisation sensitivity: every run too short for every window")
    for pen, grp in sens.assign(penalty=sens["penalty"].fillna(-1)).groupby("penalty"):
        q = grp.groupby("window")["stabilisation"].quantile([0.25, 0.5, 0.75]).unstack()
        label = "two regimes" if pen == -1 else f"penalty {pen:g}"
        axes[0].plot(q.index, q[0.5], marker="o", ms=3, lw=1, label=label)
        if pen == -1:
            axes[0].fill_between(q.index, q[0.25], q[0.75], alpha=0.2)
    if len(sens):
        axes[0].set_xlabel("block window (samples)")
        axes[0].set_ylabel("stabilisation point (s into training), median")
        axes[0].legend(frameon=False, fontsize=6)
    has_estimate = bool((err_table > 0).any().any())
    if not has_estimate:
        note_axes(axes[1], "online power estimate: every start s + window w runs past the "
                  "training windows (set estimate_starts_s / estimate_windows_s)")
        return False
    for w, col in err_table.dropna(axis=1, how="all").items():
        axes[1].plot(col.index, col.to_numpy(), marker="o", ms=3, lw=1, label=f"w = {w:g} s")
    if np.isfinite(stabilisation_median_s):
        axes[1].axvline(stabilisation_median_s, color="k", ls="--", lw=0.8)
    axes[1].set_yscale("log")
    axes[1].set_xlabel("start of the window s (s into training)")
    axes[1].set_ylabel("|error| of Ê (%), median")
    axes[1].legend(frameon=False, fontsize=6)
    return True


def power_vs_usage_figure(runs: pd.DataFrame, fits: pd.DataFrame) -> plt.Figure:
    """One column: :func:`plot_power_vs_usage`."""
    fig, ax = figure("column", aspect=0.75)
    plot_power_vs_usage(ax, runs, fits)
    return fig


def power_limit_ratio_figure(samples: pd.DataFrame, runs: pd.DataFrame) -> plt.Figure:
    """One panel per GPU, shared y axis: :func:`plot_power_limit_ratio`."""
    gpus = sorted(samples["gpu_name"].dropna().unique())
    fig, axes = figure("page", aspect=0.3, ncols=len(gpus), sharey=True, squeeze=False)
    plot_power_limit_ratio(axes[0], samples, runs)
    fig.tight_layout()
    return fig


def stabilisation_figure(stab: pd.DataFrame, stab_epochs: pd.DataFrame,
                         epochs_note: str = "") -> plt.Figure:
    """:func:`plot_stabilisation`: a panel on time and a panel per epoch."""
    fig, axes = figure("page", aspect=0.3, ncols=2, squeeze=False)
    plot_stabilisation(axes[0], stab, stab_epochs, epochs_note)
    fig.tight_layout()
    return fig


def timeseries_figure(samples: pd.DataFrame, run_ids: list[str], power_col: str,
                      stabilisation_s: pd.Series, windows_s: pd.DataFrame | None = None,
                      ncols: int = 2) -> plt.Figure:
    """:func:`plot_timeseries` of each run in ``run_ids``, ``ncols`` per row, with its
    stabilisation point (s from the first sample; ``stabilisation_s`` indexed by run_id) and
    its training window (``windows_s``: training_start_s, training_end_s by run_id)."""
    nrows = int(np.ceil(len(run_ids) / ncols))
    fig, axes = figure("page", aspect=0.22 * nrows, nrows=nrows, ncols=ncols, squeeze=False)
    for ax, run_id in zip(axes.flat, run_ids, strict=False):
        edges = (tuple(windows_s.loc[run_id].to_numpy(float))
                 if windows_s is not None and run_id in windows_s.index else None)
        plot_timeseries(ax, samples[samples["run_id"] == run_id], power_col,
                        stabilisation_s.get(run_id), title=run_id, window_s=edges)
    for ax in list(axes.flat)[len(run_ids):]:
        ax.set_visible(False)
    fig.tight_layout()
    return fig


def sensitivity_figure(sens: pd.DataFrame, err_table: pd.DataFrame,
                       stabilisation_median_s: float) -> tuple[plt.Figure, bool]:
    """Two panels: :func:`plot_sensitivity`; returns (figure, whether an estimate exists)."""
    fig, axes = figure("page", aspect=0.32, ncols=2)
    has_estimate = plot_sensitivity(axes, sens, err_table, stabilisation_median_s)
    fig.tight_layout()
    return fig, has_estimate
