"""helpers.core.errors: InputFormatError names file, line and column, and survives pickling (a
process pool, a notebook run by papermill) with all of them."""

from __future__ import annotations

import pickle
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import pytest

from helpers.core.errors import InputFormatError


def _same(a: InputFormatError, b: InputFormatError) -> None:
    assert type(b) is InputFormatError
    assert (b.path, b.line, b.column, b.reason) == (a.path, a.line, a.column, a.reason)
    assert str(b) == str(a)


@pytest.mark.parametrize("line, column", [(None, None), (7, None), (7, "gpu_power_draw")])
def test_pickle_round_trip_keeps_file_line_column_and_reason(line, column) -> None:
    err = InputFormatError(Path("raw/run/samples.csv"), "non-numeric value 'x'", line, column)
    err.add_note("while reading run 000")
    back = pickle.loads(pickle.dumps(err))
    _same(err, back)
    assert back.__notes__ == ["while reading run 000"]
    assert isinstance(back, ValueError)


def _raise(path: str) -> None:
    raise InputFormatError(path, "empty file", line=1, column="timestamp")


def test_error_raised_in_a_worker_process_reaches_the_caller_whole() -> None:
    with ProcessPoolExecutor(max_workers=1) as pool:
        future = pool.submit(_raise, "raw/x.csv")
        with pytest.raises(InputFormatError) as caught:
            future.result()
    _same(InputFormatError("raw/x.csv", "empty file", line=1, column="timestamp"), caught.value)
