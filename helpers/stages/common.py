"""What every stage module returns to its notebook: a :class:`Section` per notebook section.

A section holds the lines the notebook prints (``notes``), the tables it shows, the figures it
made (already saved as PDF and PNG under ``figures/<dataset>/``), the headline numbers it
adds to the notebook's JSON summary, and the analyses it could not run on this dataset with the
reason (``not_estimable``; :func:`write_not_estimable` collects them into the notebook's
``reports/<NN>-not-estimable.csv``). ``Section.show()`` prints and displays all of them.
"""

from __future__ import annotations

import io
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
from matplotlib.figure import Figure

from helpers.core import datasets
from helpers.core.io import write_csv
from helpers.plots.style import SAVED_PNG, save_figure, use_style

#: Resolution (dots per inch) of the figure previews shown in the notebooks.
PREVIEW_DPI = 100


@dataclass
class Section:
    """Printed notes, tables (shown in order), saved figures by name, headline numbers, and the
    analyses that could not run, as (analysis, reason) pairs."""

    notes: list[str] = field(default_factory=list)
    tables: dict[str, pd.DataFrame] = field(default_factory=dict)
    figures: dict[str, Figure] = field(default_factory=dict)
    headlines: dict[str, object] = field(default_factory=dict)
    not_estimable: list[tuple[str, str]] = field(default_factory=list)

    def show(self) -> None:
        """Print the notes and the analyses not estimable, then display each table (named when
        there are several) and a PNG preview of each figure."""
        from IPython.display import Image, display

        for note in self.notes:
            print(note)
        for analysis, reason in self.not_estimable:
            print(f"not estimable: {analysis}: {reason}")
        for name, table in self.tables.items():
            if len(self.tables) > 1:
                print(f"{name}:")
            display(table)
        for fig in self.figures.values():
            display(Image(data=figure_png(fig)))


def figure_png(fig: Figure, dpi: int = PREVIEW_DPI) -> bytes:
    """PNG bytes of ``fig`` at ``dpi`` (a preview; the saved files keep the style's 300 dpi).
    A PNG of the figure saved at no more than ``dpi`` (a draft) is shown as it is."""
    saved = SAVED_PNG.get(fig)
    if saved is not None and saved[1] <= dpi and saved[0].exists():
        return saved[0].read_bytes()
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


#: Columns of ``reports/<NN>-not-estimable.csv``.
NOT_ESTIMABLE_COLUMNS = ["analysis", "reason"]


def not_estimable_table(sections: list[Section]) -> pd.DataFrame:
    """Every (analysis, reason) of ``sections``, in order, without repeats."""
    rows = list(dict.fromkeys(entry for s in sections for entry in s.not_estimable))
    return pd.DataFrame(rows, columns=NOT_ESTIMABLE_COLUMNS)


def write_not_estimable(sections: list[Section], dataset: str, notebook: str) -> Section:
    """Write :func:`not_estimable_table` of ``sections`` to
    ``data_outputs/<dataset>/reports/<notebook>-not-estimable.csv`` (``notebook`` is the
    number, e.g. ``'04'``; the file is written, with its header only, when everything ran). The
    section shows the table, or says that every analysis ran."""
    table = not_estimable_table(sections)
    path = datasets.relative_to_project(write_csv(
        table, datasets.output_dir(dataset, "reports") / f"{notebook}-not-estimable.csv"))
    if table.empty:
        return Section([f"every analysis of notebook {notebook} ran on {dataset}; wrote {path}"])
    return Section([f"{len(table)} analyses not estimable on {dataset}; wrote {path}"],
                   {"not estimable": table})


def wrote(paths: dict[str, Path]) -> list[str]:
    """One ``wrote <name>: <path>`` note per written file."""
    return [f"wrote {k}: {datasets.relative_to_project(v)}" for k, v in paths.items()]
