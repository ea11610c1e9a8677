"""Figures of notebook 06 (estimator fitting). Energies are plotted in MJ, errors in %."""

from __future__ import annotations

import math

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.ticker import LogLocator, NullFormatter, ScalarFormatter

from helpers.estimate import evaluation as ev
from helpers.plots.style import figure, note_axes, note_figure


def note(text: str) -> plt.Figure:
    """A one-panel figure that says why an analysis could not run (:func:`note_figure`)."""
    return note_figure(text)


def _plain_log_y(ax) -> None:
    """Log y axis labelled with plain numbers (narrow ranges otherwise get 6×10⁰ labels)."""
    ax.set_yscale("log")
    ax.yaxis.set_major_locator(LogLocator(subs=(1.0, 2.0, 5.0)))
    ax.yaxis.set_major_formatter(ScalarFormatter())
    ax.yaxis.set_minor_formatter(NullFormatter())


def predicted_vs_measured(measured_j: pd.Series, estimates_j: pd.DataFrame,
                          hue: pd.Series | None = None, ncols: int = 4,
                          title: str = "", reasons: dict[str, str] | None = None) -> plt.Figure:
    """One panel per method (column of ``estimates_j``): estimate vs measurement (MJ, log-log)
    with the identity line and the method's MAPE; points coloured by ``hue`` (e.g. the
    architecture) when given. Runs where a method has no estimate are left out of its panel; a
    method without any says so on its panel (``reasons``: method -> why)."""
    methods = list(estimates_j.columns)
    if not methods:
        return note_figure(f"{title}: no method to show" if title else "no method to show")
    nrows = math.ceil(len(methods) / ncols)
    fig, axes = figure("page", aspect=0.27 * nrows, nrows=nrows, ncols=ncols, squeeze=False,
                       sharex=True, sharey=True)
    y = measured_j.reindex(estimates_j.index) / 1e6
    cats = None if hue is None else hue.reindex(estimates_j.index)
    positive = estimates_j.where(estimates_j > 0)
    lo = np.nanmin([y.min(), positive.min().min() / 1e6]) * 0.8
    hi = np.nanmax([y.max(), positive.max().max() / 1e6]) * 1.2
    for ax, m in zip(axes.flat, methods, strict=False):
        p = estimates_j[m] / 1e6
        ok = p.notna() & y.notna()
        if not ok.any():
            why = (reasons or {}).get(m, "no run estimable")
            note_axes(ax, f"not estimable: {why}")
            ax.set_title(m, fontsize=6)
            continue
        if cats is None:
            ax.scatter(y[ok], p[ok], s=4, alpha=0.6)
        else:
            for c in sorted(cats[ok].unique()):
                sel = ok & (cats == c)
                ax.scatter(y[sel], p[sel], s=4, alpha=0.6, label=c)
        ax.plot([lo, hi], [lo, hi], color="0.3", lw=0.7, ls="--")
        ax.set(xscale="log", yscale="log", xlim=(lo, hi), ylim=(lo, hi))
        mape = ev.mape_pct(y[ok], p[ok]) if ok.sum() else np.nan
        ax.set_title(f"{m}\nMAPE {mape:.1f}% (n={int(ok.sum())})", fontsize=6)
    for ax in axes.flat[len(methods):]:
        ax.set_visible(False)
    for ax in axes[-1]:
        ax.set_xlabel("measured (MJ)")
    for ax in axes[:, 0]:
        ax.set_ylabel("estimated (MJ)")
    labelled = [ax for ax in axes.flat if ax.get_legend_handles_labels()[1]]
    if cats is not None and labelled:  # the first panel whose method estimated any run
        labelled[0].legend(fontsize=5, markerscale=2, loc="upper left")
    if title:
        fig.suptitle(title, fontsize=8)
    fig.tight_layout()
    return fig


def error_vs_fraction(curve: pd.DataFrame, target_pct: float = 2.0,
                      budget_fraction: float = 0.2) -> plt.Figure:
    """MAPE (log scale, with bootstrap CI band) vs fraction of the training window observed,
    one line per (method, stabilisation) with an estimate; the target MAPE and the observation
    budget are marked. A note when no fraction gives an estimate."""
    curve = curve.dropna(subset=["mape_pct"])
    if curve.empty:
        return note_figure("Online estimators vs fraction observed: no fraction gives an "
                           "estimate for 2 runs (training windows too short for a "
                           "stabilisation point, or no samples)")
    fig, ax = figure("column", aspect=0.8)
    for (method, stab), sub in curve.groupby(["method", "stabilisation"], sort=True):
        sub = sub.sort_values("observed_fraction")
        x = sub["observed_fraction"] * 100
        line, = ax.plot(x, sub["mape_pct"], marker="o", ms=2.5,
                        ls="-" if stab == "change_point" else "--", label=f"{method} ({stab})")
        ax.fill_between(x, sub["ci_low"], sub["ci_high"], color=line.get_color(), alpha=0.15)
    ax.axhline(target_pct, color="0.3", lw=0.7, ls=":")
    ax.axvline(budget_fraction * 100, color="0.3", lw=0.7, ls=":")
    _plain_log_y(ax)
    ax.set(xlabel="training window observed (%)", ylabel="MAPE (%)")
    ax.legend(fontsize=5)
    fig.tight_layout()
    return fig


def sensitivity(epoch_sens: pd.DataFrame, time_sens: pd.DataFrame) -> plt.Figure:
    """Sensitivity of the online estimators: (a, b) MAPE vs stabilisation epoch per window for
    epoch-based online power and STEP; (c) time-window MAPE vs a fixed stabilisation time;
    (d) vs the change-point block window."""
    fig, axes = figure("page", aspect=0.27, ncols=4)
    epoch_sens = epoch_sens.dropna(subset=["mape_pct"])
    time_sens = time_sens.dropna(subset=["mape_pct"])
    for ax, method in zip(axes[:2], ["online_power", "step"], strict=True):
        sub = epoch_sens[epoch_sens["method"] == method]
        if sub.empty:
            note_axes(ax, f"{method} on epochs: no (s, w) estimable for 2 runs (too few "
                      "epochs, or no epoch data)")
            continue
        for w, g in sub.groupby("window_epochs"):
            g = g.sort_values("stabilisation_epoch")
            ax.plot(g["stabilisation_epoch"], g["mape_pct"], marker="o", ms=2,
                    label=f"w={int(w)}")
        _plain_log_y(ax)
        ax.set(xlabel="stabilisation epoch s", title=f"{method} (epochs)", ylabel="MAPE (%)")
        ax.legend(fontsize=5)
    for ax, setting, xlabel in ((axes[2], "fixed_s", "fixed stabilisation (s)"),
                                (axes[3], "change_point_window", "change-point window (samples)")):
        sub = time_sens[time_sens["setting"] == setting]
        if sub.empty:
            note_axes(ax, f"time window, {xlabel}: no estimate for 2 runs")
            continue
        for method, g in sub.groupby("method"):
            g = g.sort_values("value")
            ax.errorbar(g["value"], g["mape_pct"],
                        yerr=[(g["mape_pct"] - g["ci_low"]).fillna(0),
                              (g["ci_high"] - g["mape_pct"]).fillna(0)],
                        marker="o", ms=2, capsize=1.5, label=method)
        _plain_log_y(ax)
        ax.set(xlabel=xlabel, title="time window")
        ax.legend(fontsize=5)
    fig.tight_layout()
    return fig


def forecast(trajectory: pd.DataFrame, run_id: str, not_estimable: str = "") -> plt.Figure:
    """STEP forecaster output for one run: forecast and prediction interval per epoch against
    the measured training energy (MJ); a note instead when it never forecasts
    (``not_estimable`` says why)."""
    if not_estimable:
        return note_figure(f"STEP forecaster, {run_id}: {not_estimable}")
    fig, ax = figure("column", aspect=0.6)
    t = trajectory
    ax.plot(t["epoch"], t["energy_j"] / 1e6, label="forecast")
    ax.fill_between(t["epoch"], t["low_j"] / 1e6, t["high_j"] / 1e6, alpha=0.25,
                    label="95% prediction interval")
    ax.axhline(t["measured_j"].iloc[0] / 1e6, color="0.3", ls="--", lw=0.8, label="measured")
    s = t["stabilisation_epoch"].dropna()
    if len(s):
        ax.axvline(s.iloc[0], color="0.5", ls=":", lw=0.8, label="stabilisation point")
    ax.set(xlabel="epoch", ylabel="training energy (MJ)", title=run_id)
    ax.legend(fontsize=5)
    fig.tight_layout()
    return fig


def mape_by_method(errors: pd.DataFrame) -> plt.Figure:
    """MAPE with bootstrap 95% CI per method, one panel per split (log scale); a note when no
    method could be scored."""
    mape = errors[(errors["metric"] == "mape_pct")].dropna(subset=["value"])
    if mape.empty:
        return note_figure("MAPE by method: no method could be scored on 2 runs or more")
    splits = list(mape["split"].unique())
    methods = list(dict.fromkeys(mape["method"]))
    fig, axes = figure("page", aspect=max(0.25, 0.12 + 0.012 * len(methods)), ncols=len(splits),
                       sharey=True, squeeze=False)
    pos = {m: i for i, m in enumerate(methods)}
    for ax, split in zip(axes[0], splits, strict=True):
        sub = mape[mape["split"] == split]
        y = sub["method"].map(pos)
        xerr = [(sub["value"] - sub["ci_low"]).fillna(0),
                (sub["ci_high"] - sub["value"]).fillna(0)]
        ax.errorbar(sub["value"], y, xerr=xerr, fmt="o", ms=2, capsize=1.5)
        ax.set(xscale="log", xlabel="MAPE (%)", title=f"{split}\n(n={sub['n_runs'].max()})")
        ax.title.set_fontsize(6)
    axes[0, 0].set_yticks(range(len(methods)), methods, fontsize=5)
    axes[0, 0].invert_yaxis()
    fig.tight_layout()
    return fig
