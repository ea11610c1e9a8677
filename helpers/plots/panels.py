"""What each saved figure shows, panel by panel: data, a note saying why there is none, or
nothing (a defect).

:func:`save_figure <helpers.plots.style.save_figure>` records every figure it saves in
``figures/<dataset>/panels.csv`` (one row per visible panel; columns in :data:`PANEL_COLUMNS`),
so a batch of regenerated figures can be checked without opening them: a panel whose
``shows`` is ``empty``, or a non-empty ``legend_problem``, is a figure to fix.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.collections import Collection
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from helpers.core.io import write_csv

#: Name of the per-dataset panel index under ``figures/<dataset>/``.
PANELS_FILE = "panels.csv"
#: Columns of the panel index.
PANEL_COLUMNS: dict[str, str] = {
    "figure": "figure name (file stem, notebook-number prefix)",
    "panel": "index of the visible panel within the figure (0-based)",
    "title": "the panel's title ('' when none)",
    "shows": "'data' (a line, point, bar or image is drawn), 'note' (only a text saying why "
             "not) or 'empty' (neither)",
    "note": "the text written on the panel ('' when none)",
    "legend_problem": "legend entries standing for nothing drawn ('' when none)",
}


def _finite_rows(xy: np.ndarray) -> bool:
    return bool(xy.size) and bool(np.isfinite(xy).all(axis=1).any())


def line_drawn(line: Line2D) -> bool:
    """The line has at least one finite point."""
    return _finite_rows(np.asarray(line.get_xydata(), dtype=float))


def collection_drawn(coll: Collection) -> bool:
    """The collection (scatter points, fills, violins) has at least one finite point."""
    offsets = np.asarray(coll.get_offsets(), dtype=float)
    return _finite_rows(offsets) or any(
        len(p.vertices) and np.isfinite(p.vertices).all(axis=1).any() for p in coll.get_paths())


def has_data(ax: Axes) -> bool:
    """Lines in data coordinates with a finite point, collections with a finite point, patches
    (bars, boxes) or images."""
    lines = [ln for ln in ax.get_lines() if ln.get_transform().contains_branch(ax.transData)]
    return (any(line_drawn(ln) for ln in lines)
            or any(collection_drawn(c) for c in ax.collections)
            or bool(ax.patches) or bool(ax.images))


def note_text(ax: Axes) -> str:
    """The non-empty texts written on the axes (line breaks undone), joined by ' | '."""
    return " | ".join(" ".join(t.get_text().split()) for t in ax.texts if t.get_text().strip())


def legend_problems(ax: Axes) -> list[str]:
    """Legend entries whose artist shows nothing."""
    out = []
    for artist, label in zip(*ax.get_legend_handles_labels(), strict=True):
        if isinstance(artist, Line2D) and not line_drawn(artist):
            out.append(f"legend entry {label!r} for a line not drawn")
        if isinstance(artist, Collection) and not collection_drawn(artist):
            out.append(f"legend entry {label!r} for points not drawn")
    return out


def panel_table(fig: Figure, name: str) -> pd.DataFrame:
    """One row per visible panel of ``fig`` (columns :data:`PANEL_COLUMNS`)."""
    rows = []
    for i, ax in enumerate(a for a in fig.axes if a.get_visible()):
        note = note_text(ax)
        shows = "data" if has_data(ax) else ("note" if note else "empty")
        rows.append({"figure": name, "panel": i, "title": ax.get_title(), "shows": shows,
                     "note": note, "legend_problem": "; ".join(legend_problems(ax))})
    return pd.DataFrame(rows, columns=list(PANEL_COLUMNS))


def problems(fig: Figure, name: str = "figure") -> list[str]:
    """What is wrong with ``fig``: a visible panel with neither data nor a note, or a legend
    entry whose artist shows nothing (empty list: nothing)."""
    table = panel_table(fig, name)
    return problems_in(table)


def problems_in(table: pd.DataFrame) -> list[str]:
    """The problems listed in a panel table (as written to ``panels.csv``)."""
    out = []
    for row in table.fillna("").itertuples(index=False):
        where = f"{row.figure} panel {row.panel} ({row.title!r})"
        if row.shows == "empty":
            out.append(f"{where}: empty (no data, no note)")
        out += [f"{where}: {p}" for p in str(row.legend_problem).split("; ") if p]
    return out


def record_panels(fig: Figure, name: str, folder: Path) -> Path:
    """Replace ``name``'s rows in ``folder/panels.csv`` by those of ``fig``; returns the path."""
    path = Path(folder) / PANELS_FILE
    new = panel_table(fig, name)
    if path.exists():
        old = pd.read_csv(path, keep_default_na=False, dtype={"panel": int})
        new = pd.concat([old[old["figure"] != name], new], ignore_index=True)
    write_csv(new.sort_values(["figure", "panel"], kind="stable"), path)
    return path
