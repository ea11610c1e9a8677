"""Saved figure formats and resolution follow $DLE_FIGURE_FORMATS / $DLE_FIGURE_DPI (drafts),
bad values stop with the variable named; the figure index lists each figure with its formats."""

from __future__ import annotations

import matplotlib.pyplot as plt
import pytest
from PIL import Image

from helpers import runner
from helpers.core import datasets
from helpers.plots import style


def _save(tmp_path, name="04-x"):
    fig, ax = plt.subplots(figsize=(2, 1))
    ax.plot([0, 1], [0, 1])
    paths = style.save_figure(fig, "d", name, out_dir=tmp_path)
    plt.close(fig)
    return paths


def test_default_is_pdf_and_png_at_300_dpi(tmp_path, monkeypatch):
    monkeypatch.delenv(style.FORMATS_ENV, raising=False)
    monkeypatch.delenv(style.DPI_ENV, raising=False)
    paths = _save(tmp_path)
    assert [p.suffix for p in paths] == [".pdf", ".png"]
    assert Image.open(paths[1]).info["dpi"][0] == pytest.approx(300, abs=1)


def test_drafts_png_only_at_a_lower_resolution(tmp_path, monkeypatch):
    monkeypatch.setenv(style.FORMATS_ENV, " PNG ")
    monkeypatch.setenv(style.DPI_ENV, "72")
    (png,) = _save(tmp_path)
    assert png.suffix == ".png" and Image.open(png).info["dpi"][0] == pytest.approx(72, abs=1)
    assert not list(tmp_path.glob("*.pdf"))


@pytest.mark.parametrize(("var", "value", "match"), [
    ("DLE_FIGURE_FORMATS", "png,jpeg", "unknown format"),
    ("DLE_FIGURE_DPI", "high", "dots per inch"),
    ("DLE_FIGURE_DPI", "0", "dots per inch"),
])
def test_bad_settings_name_the_variable(tmp_path, monkeypatch, var, value, match):
    monkeypatch.setenv(var, value)
    with pytest.raises(ValueError, match=match) as err:
        _save(tmp_path)
    assert var in str(err.value)


def test_figure_index_lists_each_figure_with_its_formats(tmp_path, monkeypatch):
    monkeypatch.setenv(datasets.PROJECT_ROOT_ENV, str(tmp_path))
    (tmp_path / "notebooks").mkdir()
    (tmp_path / "notebooks" / "04-trade-offs.ipynb").write_text("{}")
    monkeypatch.setenv(style.FORMATS_ENV, "png")
    _save(tmp_path / "figures" / "a", "04-only-png")
    monkeypatch.setenv(style.FORMATS_ENV, "pdf,png")
    _save(tmp_path / "figures" / "b", "04-both")
    index = runner.figure_index()
    assert "| `a/04-only-png` (.png) | `04-trade-offs` | `a` |" in index
    assert "| `b/04-both` (.pdf, .png) | `04-trade-offs` | `b` |" in index
    assert "panels" not in index


def test_a_draft_png_is_its_own_preview(tmp_path, monkeypatch):
    from helpers.stages.common import PREVIEW_DPI, figure_png

    fig, ax = plt.subplots(figsize=(2, 1))
    ax.plot([0, 1], [0, 1])
    monkeypatch.setenv(style.DPI_ENV, "300")
    style.save_figure(fig, "d", "04-full", out_dir=tmp_path)
    assert figure_png(fig) != (tmp_path / "04-full.png").read_bytes()  # rendered at 100 dpi
    monkeypatch.setenv(style.DPI_ENV, str(PREVIEW_DPI // 2))
    style.save_figure(fig, "d", "04-draft", out_dir=tmp_path)
    assert figure_png(fig) == (tmp_path / "04-draft.png").read_bytes()
    plt.close(fig)
