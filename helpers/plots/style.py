"""Figure style and saving: one look for every notebook, sized for a two-column paper.

Figures are saved as PDF and PNG under ``figures/<dataset>/`` with names prefixed by the
notebook number (``04-pareto`` -> ``figures/seaa2023/04-pareto.pdf`` and ``.png``). Saving is
deterministic (no creation date in the PDF) and atomic. Each saved figure's panels are listed in
``figures/<dataset>/panels.csv`` (:mod:`helpers.plots.panels`): whether each shows data or a note
saying why not.
"""

from __future__ import annotations

import os
import weakref
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # headless: notebooks under papermill and tests never need a display
import matplotlib.pyplot as plt  # noqa: E402
import seaborn as sns  # noqa: E402

from helpers.core import datasets  # noqa: E402
from helpers.core.io import atomic_path  # noqa: E402
from helpers.plots.panels import record_panels  # noqa: E402

#: Environment variables that choose the saved files: formats (comma-separated, default
#: ``pdf,png``) and resolution of raster formats (dots per inch, default 300), e.g.
#: ``DLE_FIGURE_FORMATS=png DLE_FIGURE_DPI=100`` for quick drafts.
FORMATS_ENV = "DLE_FIGURE_FORMATS"
DPI_ENV = "DLE_FIGURE_DPI"
DEFAULT_FORMATS = ("pdf", "png")
DEFAULT_DPI = 300

#: Figure -> (path, dpi) of the PNG :func:`save_figure` last wrote of it (previews reuse it).
SAVED_PNG: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()

#: Width of one column / the full page of a two-column paper (inches).
COLUMN_WIDTH_IN = 3.5
PAGE_WIDTH_IN = 7.16


def use_style() -> None:
    """Apply the project style (small serif-free fonts, light grid, colour-blind palette)."""
    sns.set_theme(context="paper", style="whitegrid", palette="colorblind", font_scale=0.9)
    plt.rcParams.update(
        {
            "figure.dpi": 150,
            "savefig.dpi": DEFAULT_DPI,
            "savefig.bbox": "tight",
            "pdf.fonttype": 42,
            "axes.titlesize": 9,
            "axes.labelsize": 8,
            "legend.fontsize": 7,
            "xtick.labelsize": 7,
            "ytick.labelsize": 7,
        }
    )


def figure(width: str = "column", aspect: float = 0.75, **kwargs) -> tuple[plt.Figure, object]:
    """Create ``plt.subplots`` sized for ``width`` ('column' or 'page') with height = width ×
    aspect. Extra keyword arguments go to ``plt.subplots``."""
    w = COLUMN_WIDTH_IN if width == "column" else PAGE_WIDTH_IN
    return plt.subplots(figsize=(w, w * aspect), **kwargs)


def save_figure(
    fig: plt.Figure, dataset: str, name: str, out_dir: str | Path | None = None
) -> list[Path]:
    """Save ``fig`` as ``<name>.pdf`` and ``<name>.png`` (the formats of :func:`figure_formats`)
    in ``figures/<dataset>/`` (or ``out_dir``) and record its panels in ``panels.csv`` there.
    ``name`` must start with the notebook number, e.g. ``'03-funnel'``. Returns the written
    figure paths."""
    if not (len(name) > 3 and name[:2].isdigit() and name[2] == "-"):
        raise ValueError(f"figure name {name!r} must start with the notebook number, e.g. '03-x'")
    folder = Path(out_dir) if out_dir is not None else datasets.figures_dir(dataset)
    formats, dpi = figure_formats()
    paths = []
    for ext in formats:
        target = folder / f"{name}.{ext}"
        with atomic_path(target) as tmp:
            meta = {"CreationDate": None} if ext == "pdf" else {"Software": None}
            fig.savefig(tmp, format=ext, metadata=meta, dpi=dpi)
        paths.append(target)
    if "png" in formats:
        SAVED_PNG[fig] = (folder / f"{name}.png", dpi)
    record_panels(fig, name, folder)
    return paths


def figure_formats() -> tuple[tuple[str, ...], int]:
    """(formats, dpi) of saved figures: ``$DLE_FIGURE_FORMATS`` (comma-separated, of ``pdf``,
    ``png``, ``svg``) and ``$DLE_FIGURE_DPI``, else PDF + PNG at 300 dpi."""
    raw = os.environ.get(FORMATS_ENV, "").strip()
    formats = tuple(f.strip().lower() for f in raw.split(",") if f.strip()) or DEFAULT_FORMATS
    bad = sorted(set(formats) - {"pdf", "png", "svg"})
    if bad:
        raise ValueError(f"${FORMATS_ENV}={raw!r}: unknown format(s) {bad}; use pdf, png, svg")
    raw_dpi = os.environ.get(DPI_ENV, "").strip()
    try:
        dpi = int(raw_dpi) if raw_dpi else DEFAULT_DPI
    except ValueError:
        dpi = 0
    if not 10 <= dpi <= 2400:
        raise ValueError(f"${DPI_ENV}={raw_dpi!r}: give a whole number of dots per inch, "
                         "10 to 2400")
    return formats, dpi


def note_axes(ax, text: str, fontsize: float = 6.5) -> None:
    """Write ``text`` in the middle of ``ax``, wrapped to its width, and hide its ticks and grid:
    the panel of an analysis that could not run on this dataset says why, in words, instead of
    staying empty. (Tick visibility only: the axes may share its locators with others.)"""
    import textwrap

    width_in = ax.get_position().width * ax.figure.get_figwidth()
    chars = max(12, int(width_in * 72 / (fontsize * 0.6)))
    ax.text(0.5, 0.5, textwrap.fill(text, chars), ha="center", va="center", fontsize=fontsize,
            color="0.3", transform=ax.transAxes)
    ax.tick_params(which="both", bottom=False, left=False, labelbottom=False, labelleft=False)
    ax.grid(False)


def note_figure(text: str, width: str = "column", aspect: float = 0.5) -> plt.Figure:
    """A one-panel figure holding only ``text`` (see :func:`note_axes`)."""
    fig, ax = figure(width, aspect=aspect)
    note_axes(ax, text)
    return fig
