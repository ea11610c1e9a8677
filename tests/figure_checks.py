"""Inspect saved figures: every visible panel shows data or says in words why it has none, and
every legend entry stands for something drawn.

``problems(fig)`` lists what is wrong with a figure (empty list: fine); ``assert_drawn(figures)``
fails with those lists. The stage modules return their saved figures in ``Section.figures``;
these checks run on those objects (the PNG/PDF files are renderings of them).
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
from matplotlib.axes import Axes
from matplotlib.collections import Collection
from matplotlib.figure import Figure
from matplotlib.lines import Line2D


def _line_drawn(line: Line2D) -> bool:
    xy = np.asarray(line.get_xydata(), dtype=float)
    return bool(xy.size) and bool(np.isfinite(xy).all(axis=1).any())


def _collection_drawn(coll: Collection) -> bool:
    offsets = np.asarray(coll.get_offsets(), dtype=float)
    if offsets.size and np.isfinite(offsets).all(axis=1).any():
        return True
    return any(len(p.vertices) and np.isfinite(p.vertices).all(axis=1).any()
               for p in coll.get_paths())


def has_data(ax: Axes) -> bool:
    """Lines in data coordinates with a finite point, collections with a finite point, patches
    (bars, boxes) or images."""
    lines = [ln for ln in ax.get_lines() if ln.get_transform().contains_branch(ax.transData)]
    return (any(_line_drawn(ln) for ln in lines)
            or any(_collection_drawn(c) for c in ax.collections)
            or bool(ax.patches) or bool(ax.images))


def has_note(ax: Axes) -> bool:
    """A non-empty text written on the axes."""
    return any(t.get_text().strip() for t in ax.texts)


def problems(fig: Figure, name: str = "figure") -> list[str]:
    """What is wrong with ``fig``: a visible panel with neither data nor a text note, or a
    legend entry whose artist shows nothing."""
    out = []
    for i, ax in enumerate(fig.axes):
        if not ax.get_visible():
            continue
        where = f"{name} panel {i} ({ax.get_title()!r})"
        if not (has_data(ax) or has_note(ax)):
            out.append(f"{where}: empty (no data, no note)")
        for artist, label in zip(*ax.get_legend_handles_labels(), strict=True):
            if isinstance(artist, Line2D) and not _line_drawn(artist):
                out.append(f"{where}: legend entry {label!r} for a line not drawn")
            if isinstance(artist, Collection) and not _collection_drawn(artist):
                out.append(f"{where}: legend entry {label!r} for points not drawn")
    return out


def assert_drawn(figures: dict[str, Figure] | Iterable[tuple[str, Figure]]) -> None:
    """Fail listing every problem of the named figures."""
    items = figures.items() if isinstance(figures, dict) else figures
    found = [p for name, fig in items for p in problems(fig, name)]
    assert not found, "\n".join(found)
