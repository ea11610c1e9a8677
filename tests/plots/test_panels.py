"""Saving a figure records its panels in figures/<dataset>/panels.csv: data, note or empty, and
legend entries for nothing drawn; a figure saved again replaces its own rows only."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from helpers.plots.panels import PANELS_FILE, problems_in
from helpers.plots.style import note_axes, save_figure


def _read(folder) -> pd.DataFrame:
    return pd.read_csv(folder / PANELS_FILE, keep_default_na=False)


def test_saved_figures_are_listed_panel_by_panel(tmp_path):
    fig, axes = plt.subplots(ncols=3)
    axes[0].bar(["a", "b"], [1, 2])
    axes[0].set_title("bars")
    note_axes(axes[1], "not estimable: one environment only")
    axes[2].plot([0, 1], [np.nan, np.nan], label="nothing")
    axes[2].legend()
    save_figure(fig, "d", "04-three", out_dir=tmp_path)
    fig2, ax = plt.subplots()
    ax.plot([0, 1], [2, 3])
    save_figure(fig2, "d", "05-one", out_dir=tmp_path)
    table = _read(tmp_path)
    assert table[["figure", "panel", "shows"]].values.tolist() == [
        ["04-three", 0, "data"], ["04-three", 1, "note"], ["04-three", 2, "empty"],
        ["05-one", 0, "data"]]
    assert table.loc[0, "title"] == "bars"
    assert "one environment only" in table.loc[1, "note"]
    assert table.loc[2, "legend_problem"] == "legend entry 'nothing' for a line not drawn"
    assert problems_in(table) == [
        "04-three panel 2 (''): empty (no data, no note)",
        "04-three panel 2 (''): legend entry 'nothing' for a line not drawn"]

    axes[2].plot([0, 1], [1, 1])  # fixed and saved again: only its own rows change
    save_figure(fig, "d", "04-three", out_dir=tmp_path)
    table = _read(tmp_path)
    assert table["shows"].tolist() == ["data", "note", "data", "data"]
    assert problems_in(table) == ["04-three panel 2 (''): legend entry 'nothing' for a line "
                                  "not drawn"]
    plt.close(fig)
    plt.close(fig2)
