"""What stage modules hand to notebooks: sections, saved figures, merged headline numbers."""

from __future__ import annotations

import matplotlib.pyplot as plt
import pandas as pd
import pytest

from helpers.core import datasets
from helpers.stages import common


def test_show_prints_notes_then_tables_and_figure_previews(capsys, monkeypatch):
    shown = []
    monkeypatch.setattr("IPython.display.display", shown.append)
    fig, ax = plt.subplots()
    ax.plot([0, 1], [1, 0])
    table = pd.DataFrame({"energy_j": [1.0]})
    common.Section(["first", "second"], {"a": table, "b": table}, {"01-x": fig}).show()
    assert capsys.readouterr().out == "first\nsecond\na:\nb:\n"
    assert shown[0] is table and shown[1] is table
    assert shown[2].data[:8] == b"\x89PNG\r\n\x1a\n"  # a PNG preview, not the Figure's repr
    plt.close(fig)


def test_single_table_is_shown_without_its_name(capsys, monkeypatch):
    monkeypatch.setattr("IPython.display.display", lambda obj: None)
    common.Section(tables={"only": pd.DataFrame()}).show()
    assert capsys.readouterr().out == ""


def test_save_and_close_writes_pdf_and_png_and_releases_the_figure(tmp_path, monkeypatch):
    monkeypatch.setenv(datasets.PROJECT_ROOT_ENV, str(tmp_path))
    fig, _ = plt.subplots()
    out = common.save_and_close(fig, "synth", "03-test")
    assert out == {"03-test": fig}
    folder = datasets.figures_dir("synth")
    assert {p.name for p in folder.iterdir()} == {"03-test.pdf", "03-test.png", "panels.csv"}
    assert not plt.fignum_exists(fig.number)
    assert common.figure_png(fig).startswith(b"\x89PNG")  # still renders after closing
    unnamed = plt.figure()
    with pytest.raises(ValueError, match="notebook number"):
        common.save_and_close(unnamed, "synth", "test")
    plt.close(unnamed)


def test_merge_headlines_keeps_section_order():
    sections = [common.Section(headlines={"b": 1}), common.Section(),
                common.Section(headlines={"a": {"x": 2.0}})]
    merged = common.merge_headlines(sections, dataset="d")
    assert list(merged) == ["dataset", "b", "a"] and merged["a"] == {"x": 2.0}


def test_not_estimable_entries_are_printed_and_written_once(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv(datasets.PROJECT_ROOT_ENV, str(tmp_path))
    a = common.Section(not_estimable=[("RQ2", "one environment only")])
    b = common.Section(not_estimable=[("RQ2", "one environment only"), ("Pareto", "no F1")])
    a.show()
    assert capsys.readouterr().out == "not estimable: RQ2: one environment only\n"
    section = common.write_not_estimable([a, b], "synth", "04")
    table = pd.read_csv(datasets.output_dir("synth", "reports") / "04-not-estimable.csv")
    assert table.to_dict("records") == [{"analysis": "RQ2", "reason": "one environment only"},
                                        {"analysis": "Pareto", "reason": "no F1"}]
    assert section.notes[0].startswith("2 analyses not estimable on synth")
    empty = common.write_not_estimable([common.Section()], "synth", "05")
    assert empty.notes[0].startswith("every analysis of notebook 05 ran on synth")
    written = pd.read_csv(datasets.output_dir("synth", "reports") / "05-not-estimable.csv")
    assert list(written.columns) == ["analysis", "reason"] and written.empty
