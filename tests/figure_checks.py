"""Inspect saved figures: every visible panel shows data or says in words why it has none, and
every legend entry stands for something drawn.

``problems(fig)`` lists what is wrong with a figure (empty list: fine); ``assert_drawn(figures)``
fails with those lists. The stage modules return their saved figures in ``Section.figures``;
these checks run on those objects (the PNG/PDF files are renderings of them). For figures saved
by a notebook run under papermill, ``assert_panels_drawn(folder)`` reads the panel index that
saving writes (``figures/<dataset>/panels.csv``).
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import pandas as pd
from matplotlib.figure import Figure

from helpers.plots.panels import PANELS_FILE, problems, problems_in

__all__ = ["assert_drawn", "assert_panels_drawn", "problems"]


def assert_drawn(figures: dict[str, Figure] | Iterable[tuple[str, Figure]]) -> None:
    """Fail listing every problem of the named figures."""
    items = figures.items() if isinstance(figures, dict) else figures
    found = [p for name, fig in items for p in problems(fig, name)]
    assert not found, "\n".join(found)


def assert_panels_drawn(folder: Path) -> pd.DataFrame:
    """Fail listing every problem in ``folder/panels.csv``; every saved PNG must be listed
    there. Returns the panel table."""
    table = pd.read_csv(Path(folder) / PANELS_FILE, keep_default_na=False)
    saved = {p.stem for p in Path(folder).glob("*.png")}
    assert saved and saved == set(table["figure"]), (saved, set(table["figure"]))
    found = problems_in(table)
    assert not found, "\n".join(found)
    return table
