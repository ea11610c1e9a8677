"""helpers.readers.textcolumns: the batch conversions read every cell they accept exactly as the
per-file path of the SEAA 2023 reader does (same value, never a cell it would refuse), and the
time-zone conversion equals pandas' around clock changes."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from helpers.readers import seaa2023, textcolumns

SETTINGS = settings(max_examples=80, deadline=None, derandomize=True, database=None)
NUMBER_CELLS = ["0", "12", "119.17", "-3.5", "+7", ".5", "5.", "1e3", "2E-2", "nan", "inf",
                "-inf", "1e999", "", " ", "x", "1,5", "0x10", "12W", "1 2", "[N/A]", "１"]
UNITS = ["", "%", "MiB", "W"]


def _legacy_numbers(cells: list[str], unit: str) -> tuple[np.ndarray, np.ndarray]:
    table = pa.table({"v": pa.array(cells, pa.string())})
    lines = np.arange(2, len(cells) + 2)
    values, ok, _ = seaa2023._to_numeric(table, "v", unit, lines, Path("f.csv"), strict=False)
    return values, ok


@st.composite
def number_cells(draw: st.DrawFn, unit: str) -> str:
    lead = draw(st.sampled_from(["", " ", "  ", "\t"]))
    core = draw(st.one_of(st.sampled_from(NUMBER_CELLS),
                          st.floats(allow_nan=False, allow_subnormal=False, width=32).map(repr)))
    tail = draw(st.sampled_from(["", f" {unit}", f"  {unit}", unit, " %", " W ", f" {unit}x"]))
    return lead + core + tail


@SETTINGS
@given(data=st.data(), unit=st.sampled_from(UNITS))
def test_fast_numbers_read_as_the_per_file_path(data: st.DataObject, unit: str) -> None:
    cells = data.draw(st.lists(number_cells(unit), min_size=1, max_size=8))
    values, ok = textcolumns.parse_numbers(pa.chunked_array([pa.array(cells)]), unit)
    for i, cell in enumerate(cells):
        if not ok[i]:
            continue
        legacy, legacy_ok = _legacy_numbers([cell], unit)  # the cell alone in its file
        exact = textcolumns.number_text(pa.array([cell]), unit)[0].as_py()
        assert legacy_ok[0] and legacy[0] == values[i], cell
        assert re.match(textcolumns.NUMBER_RE, exact), cell  # also beside bad cells
        assert np.isfinite(values[i])


@pytest.mark.parametrize("lead", ["", " "])
def test_well_formed_numbers_take_the_fast_path(lead: str) -> None:
    cells = [f"{lead}{v} W" for v in ("119.17", "0", "350.00", "-1.5")]
    values, ok = textcolumns.parse_numbers(pa.chunked_array([pa.array(cells)]), "W")
    assert ok.all() and values.tolist() == [119.17, 0.0, 350.0, -1.5]


@st.composite
def stamp_cells(draw: st.DrawFn) -> str:
    day = draw(st.datetimes(min_value=pd.Timestamp("2022-01-01").to_pydatetime(),
                            max_value=pd.Timestamp("2024-12-31").to_pydatetime()))
    digits = draw(st.integers(0, 10))
    text = day.strftime(draw(st.sampled_from(["%Y-%m-%d", "%Y/%m/%d"]))
                        + draw(st.sampled_from([" ", "T"])) + "%H:%M:%S")
    if digits:
        text += "." + f"{day.microsecond:06d}{'123'}"[:digits].ljust(digits, "0")
    if draw(st.booleans()):  # a corruption: one character replaced, cut, or padded
        where = draw(st.integers(0, len(text)))
        char = draw(st.sampled_from([" ", "/", "-", ":", ".", "T", "Z", "+", "x", "9", ""]))
        text = text[:where] + char + text[where + 1:]
    return draw(st.sampled_from(["", " "])) + text


def _legacy_stamps(cells: list[str], tz: str) -> tuple[np.ndarray, np.ndarray]:
    text = textcolumns.stamp_text(pa.array(cells, pa.string()))
    ok = pa.compute.match_substring_regex(text, textcolumns.TIME_RE).to_numpy(
        zero_copy_only=False)
    local = pd.DatetimeIndex(textcolumns.cast_stamps(text, ok))
    utc = local.tz_localize(tz, ambiguous="NaT", nonexistent="NaT").as_unit("ms")
    return utc.asi8, ok & ~np.asarray(utc.isna())


@SETTINGS
@given(cells=st.lists(stamp_cells(), min_size=1, max_size=8),
       tz=st.sampled_from(["Europe/Madrid", "UTC", "Australia/Lord_Howe"]))
def test_fast_stamps_read_as_the_per_file_path(cells: list[str], tz: str) -> None:
    utc, ok = textcolumns.parse_stamps(pa.chunked_array([pa.array(cells)]), tz)
    for i, cell in enumerate(cells):
        if ok[i]:
            legacy, legacy_ok = _legacy_stamps([cell], tz)
            assert legacy_ok[0] and legacy[0] == utc[i], cell


def test_well_formed_stamps_take_the_fast_path() -> None:
    cells = ["2023/03/08 14:23:09.054", "2023/03/08 14:23:10.056"]
    utc, ok = textcolumns.parse_stamps(pa.chunked_array([pa.array(cells)]), "Europe/Madrid")
    assert ok.all()
    assert utc.tolist() == [pd.Timestamp("2023-03-08 13:23:09.054", tz="UTC").value // 10**6,
                            pd.Timestamp("2023-03-08 13:23:10.056", tz="UTC").value // 10**6]


@pytest.mark.parametrize("tz, day", [
    ("Europe/Madrid", "2023-03-26"), ("Europe/Madrid", "2023-10-29"),
    ("Australia/Lord_Howe", "2023-04-02"), ("Australia/Lord_Howe", "2023-10-01"),
    ("America/St_Johns", "2023-11-05")])
@pytest.mark.parametrize("shuffled", [False, True])
def test_localize_equals_pandas_around_clock_changes(tz: str, day: str, shuffled: bool) -> None:
    local = pd.date_range(f"{day} 00:00", f"{day} 04:00", freq="7s").as_unit("us").to_numpy()
    local = local + np.arange(local.size).astype("timedelta64[us]") * 997  # sub-ms parts too
    if shuffled:
        local = np.random.default_rng(0).permutation(local)
    local[::50] = np.datetime64("NaT")
    expected = pd.DatetimeIndex(local).tz_localize(tz, ambiguous="NaT", nonexistent="NaT")
    expected = expected.tz_convert("UTC").as_unit("ms").asi8
    got = textcolumns.localize_ms(local, tz)
    assert (got == expected).all()
    assert (got == np.iinfo(np.int64).min).sum() > local.size // 50  # the skipped hour is NaT
