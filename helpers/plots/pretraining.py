"""Figures of notebook 06's "before training" section: predicted against measured training
energy per split and method, with each prediction's interval."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

from helpers.estimate import evaluation as ev
from helpers.plots.style import figure, note_axes, note_figure

#: Estimates beyond this factor of the measured range are drawn at the panel's edge.
OFF_SCALE_FACTOR = 10.0


def _unit(measured_j: pd.Series) -> tuple[float, str]:
    top = float(np.nanmax(measured_j)) if len(measured_j) else 1.0
    for scale, name in ((1e6, "MJ"), (1e3, "kJ")):
        if top >= scale:
            return scale, name
    return 1.0, "J"


def _row_label(split: str) -> str:
    """'leave_one_architecture_out' -> 'unseen architecture'."""
    if split.startswith("leave_one_") and split.endswith("_out"):
        return "unseen " + split.removeprefix("leave_one_").removesuffix("_out")
    return split.replace("_", " ")


def predicted_vs_measured(measured_j: pd.Series, estimates: dict[str, pd.DataFrame],
                          low: dict[str, pd.DataFrame], high: dict[str, pd.DataFrame],
                          hue: pd.Series, reasons: dict[tuple[str, str], str]) -> Figure:
    """One row per split, one panel per method: estimate against measurement (log-log, same
    range in every panel), the interval as a vertical bar, the identity line and the MAPE.
    Points beyond :data:`OFF_SCALE_FACTOR` times the measured range are drawn at the edge and
    counted in the title; a method without estimates says why (``reasons``: (split, method) ->
    reason). All frames indexed like ``measured_j``; ``hue`` (e.g. the architecture) colours
    the points."""
    splits = list(estimates)
    methods = list(dict.fromkeys(m for s in splits for m in estimates[s].columns))
    if not splits or not methods:
        return note_figure("before training: no split or method to show")
    scale, unit = _unit(measured_j)
    y = measured_j / scale
    lo_lim = float(np.nanmin(y)) / OFF_SCALE_FACTOR ** 0.5
    hi_lim = float(np.nanmax(y)) * OFF_SCALE_FACTOR ** 0.5
    ncols = len(methods)
    fig, axes = figure("page", aspect=0.2 * len(splits) + 0.05, nrows=len(splits),
                       ncols=ncols, squeeze=False, sharex=True, sharey=True)
    cats = sorted(hue.dropna().unique())
    palette = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    if len(cats) > len(palette):  # distinct colours for every category
        palette = [plt.get_cmap("tab20")(i % 20) for i in range(len(cats))]
    for r, split in enumerate(splits):
        for c, method in enumerate(methods):
            ax = axes[r, c]
            p = estimates[split].get(method, pd.Series(np.nan, index=y.index)) / scale
            ok = p.notna() & y.notna()
            ax.set_title(method if r == 0 else "", fontsize=6)
            if not ok.any():
                note_axes(ax, "not estimable: " + reasons.get((split, method),
                                                             "no run estimable"), fontsize=5)
                continue
            shown = p[ok].clip(lo_lim, hi_lim)
            off = int((shown != p[ok]).sum())
            err_lo = (p[ok] - low[split][method][ok] / scale).clip(lower=0)
            err_hi = (high[split][method][ok] / scale - p[ok]).clip(lower=0)
            has_interval = err_lo.notna().any()
            for cat in cats:
                sel = (hue[ok] == cat).to_numpy()
                if not sel.any():
                    continue
                colour = palette[cats.index(cat) % len(palette)]
                ax.scatter(y[ok][sel], shown[sel], s=4, alpha=0.7, label=cat, zorder=3,
                           color=colour)
                if has_interval:
                    ax.errorbar(y[ok][sel], shown[sel], fmt="none", lw=0.3, alpha=0.25,
                                color=colour,
                                yerr=[err_lo[sel].fillna(0), err_hi[sel].fillna(0)])
            ax.plot([lo_lim, hi_lim], [lo_lim, hi_lim], color="0.3", lw=0.6, ls="--")
            mape = ev.mape_pct(y[ok], p[ok])
            label = f"MAPE {mape:.3g}%" + (f", {off} off scale" if off else "")
            ax.text(0.03, 0.97, label, transform=ax.transAxes, ha="left", va="top",
                    fontsize=5)
        axes[r, 0].set_ylabel(f"{_row_label(split)}\nestimated ({unit})", fontsize=6)
    for ax in axes.flat:
        ax.set(xscale="log", yscale="log", xlim=(lo_lim, hi_lim), ylim=(lo_lim, hi_lim))
        ax.tick_params(labelsize=5)
    for ax in axes[-1]:
        ax.set_xlabel(f"measured ({unit})", fontsize=6)
    handles, labels = [], []
    for ax in axes.flat:
        handles, labels = ax.get_legend_handles_labels()
        if labels:
            break
    if labels:
        fig.legend(handles, labels, loc="lower center", ncol=min(len(labels), 6), fontsize=5,
                   markerscale=2, frameon=False, bbox_to_anchor=(0.5, -0.02))
    fig.suptitle("before training: out-of-fold estimates (bars: intervals)", fontsize=8)
    fig.tight_layout(rect=(0, 0.05, 1, 1))
    return fig


def mape_by_split(errors: pd.DataFrame, targets: dict[str, float] | None = None) -> Figure:
    """MAPE (%) with its 95 % CI per method, one panel per split (log scale, plain tick
    labels), the split's target as a dashed line (``targets``: split -> %); methods without a
    score are listed as not estimable."""
    mape = errors[errors["metric"] == "mape_pct"]
    splits = list(dict.fromkeys(mape["split"]))
    if mape["value"].notna().sum() == 0:
        return note_figure("before training: no method could be scored")
    methods = list(dict.fromkeys(mape["method"]))
    fig, axes = figure("page", aspect=max(0.25, 0.1 + 0.02 * len(methods)),
                       ncols=len(splits), sharey=True, squeeze=False)
    pos = {m: i for i, m in enumerate(methods)}
    for ax, split in zip(axes[0], splits, strict=True):
        sub = mape[(mape["split"] == split) & mape["value"].notna()]
        if sub.empty:
            note_axes(ax, f"{split}: no method could be scored")
            continue
        y = sub["method"].map(pos)
        xerr = [(sub["value"] - sub["ci_low"]).fillna(0).clip(lower=0),
                (sub["ci_high"] - sub["value"]).fillna(0).clip(lower=0)]
        ax.errorbar(sub["value"], y, xerr=xerr, fmt="o", ms=2, capsize=1.5, lw=0.8)
        target = (targets or {}).get(split)
        if target is not None:
            ax.axvline(target, color="0.4", ls="--", lw=0.7, label=f"target {target:g}%")
            ax.legend(fontsize=5, loc="lower right")
        ax.set_xscale("log")
        ax.xaxis.set_major_locator(LogLocator(subs=(1.0, 2.0, 5.0)))
        ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
        ax.xaxis.set_minor_formatter(NullFormatter())
        ax.set_xlabel("MAPE on energy (%)", fontsize=6)
        ax.set_title(f"{split}\n(n={int(sub['n_runs'].max())} runs)", fontsize=6)
        ax.tick_params(labelsize=5)
    axes[0, 0].set_yticks(range(len(methods)), methods, fontsize=5)
    axes[0, 0].invert_yaxis()
    fig.tight_layout()
    return fig
