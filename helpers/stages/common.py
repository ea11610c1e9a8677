"""What every stage module returns to its notebook: a :class:`Section` per notebook section.

A section holds the lines the notebook prints (``notes``), the tables it shows, the figures it
made (already saved as PDF and PNG under ``figures/<dataset>/``) and the headline numbers it
adds to the notebook's JSON summary. ``Section.show()`` prints and displays all of them.
"""

from __future__ import annotations

import io
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
from matplotlib.figure import Figure

from helpers.core import datasets
from helpers.plots.style import save_figure, use_style

#: Resolution (dots per inch) of the figure previews shown in the notebooks.
PREVIEW_DPI = 100


@dataclass
class Section:
    """Printed notes, tables (shown in order), saved figures by name, and headline numbers."""

    notes: list[str] = field(default_factory=list)
    tables: dict[str, pd.DataFrame] = field(default_factory=dict)
    figures: dict[str, Figure] = field(default_factory=dict)
    headlines: dict[str, object] = field(default_factory=dict)

    def show(self) -> None:
        """Print the notes, then display each table (named when there are several) and a PNG
        preview of each figure."""
        from IPython.display import Image, display

        for note in self.notes:
            print(note)
        for name, table in self.tables.items():
            if len(self.tables) > 1:
                print(f"{name}:")
            display(table)
        for fig in self.figures.values():
            display(Image(data=figure_png(fig)))


def figure_png(fig: Figure, dpi: int = PREVIEW_DPI) -> bytes:
    """PNG bytes of ``fig`` at ``dpi`` (a preview; the saved files keep the style's 300 dpi)."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi)
    return buf.getvalue()


def save_and_close(fig: Figure, dataset: str, name: str) -> dict[str, Figure]:
    """Save ``fig`` as ``figures/<dataset>/<name>.{pdf,png}`` (``name`` starts with the notebook
    number) and release it from pyplot; returns ``{name: fig}`` for a section's figures."""
    import matplotlib.pyplot as plt

    save_figure(fig, dataset, name)
    plt.close(fig)
    return {name: fig}


def merge_headlines(sections: list[Section], **first: object) -> dict[str, object]:
    """``first`` followed by the headline numbers of ``sections``, in order (later keys win)."""
    out: dict[str, object] = dict(first)
    for section in sections:
        out.update(section.headlines)
    return out


def setup_display(max_columns: int | None = None, precision: int | None = None) -> None:
    """Figure style of the project, and pandas display options of the notebooks (160 characters
    wide; optionally the column count and float precision shown)."""
    use_style()
    pd.set_option("display.width", 160)
    if max_columns is not None:
        pd.set_option("display.max_columns", max_columns)
    if precision is not None:
        pd.set_option("display.precision", precision)


def wrote(paths: dict[str, Path]) -> list[str]:
    """One ``wrote <name>: <path>`` note per written file."""
    return [f"wrote {k}: {datasets.relative_to_project(v)}" for k, v in paths.items()]
