"""The figure inspection helper of the tests (tests/figure_checks.py) finds what it must find:
an empty panel, a legend entry for a line not drawn; and accepts data, a text note, bars."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pytest
from figure_checks import assert_drawn, problems

from helpers.plots.style import note_axes, note_figure


def test_empty_panels_and_legends_of_undrawn_lines_are_problems():
    fig, axes = plt.subplots(ncols=3)
    axes[0].plot([0, 1], [1, 2], label="drawn")
    axes[0].plot([0, 1], [np.nan, np.nan], label="all NaN")
    axes[0].legend()
    axes[1].axvline(1.0)  # a reference line is not data
    axes[1].legend(["x"])
    note_axes(axes[2], "not estimable: no F1")
    found = problems(fig, "f")
    assert found == ["f panel 0 (''): legend entry 'all NaN' for a line not drawn",
                     "f panel 1 (''): empty (no data, no note)"]
    with pytest.raises(AssertionError, match="empty"):
        assert_drawn({"f": fig})
    plt.close(fig)


def test_data_notes_bars_and_hidden_panels_pass():
    fig, axes = plt.subplots(ncols=4)
    axes[0].scatter([1], [2], label="point")
    axes[0].legend()
    axes[1].bar([0, 1], [3, 4])
    axes[2].set_visible(False)
    axes[3].boxplot([[1, 2, 3]])
    assert_drawn({"f": fig, "note": note_figure("PRE: fewer than 10 runs")})
    plt.close("all")
