"""helpers.analysis.parameters: the rules that derive analysis parameters from the data give the
study's values on runs like the published ones, and workable values on short runs."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from helpers.analysis import parameters as par


def _runs(epochs, durations=None) -> pd.DataFrame:
    return pd.DataFrame({"epochs": epochs,
                         "training_duration_s": durations or [1000.0] * len(epochs)})


def test_published_shape_gives_the_study_values():
    """35-120 epochs (fewest 35) and training windows of ~50 min sampled once a second."""
    runs = _runs([35, 71, 120], [605.9, 2935.9, 6428.4])
    assert par.derive_stabilisation(runs)[0] == (10, 5)
    assert par.derive_min_epochs(runs)[0] == 20
    assert par.epoch_grids(10, 5, 35) == ([0, 2, 5, 8, 10, 12, 15, 20], [1, 3, 5, 10])
    unit, how = par.derive_time_unit([2935.9, 2052.7, 3582.2])
    assert unit == 60 and "2936 s" in how
    assert par.multiples(unit, par.ESTIMATE_STARTS_UNITS) == [0, 60, 120, 180, 240, 300, 450,
                                                              600, 900]
    assert par.multiples(unit, par.ESTIMATE_WINDOWS_UNITS) == [60, 120, 300, 600]
    assert par.multiples(unit, par.FIXED_STABILISATION_UNITS) == [0, 60, 120, 240, 360, 480]
    assert par.derive_block_window([2933] * 3)[0] == 10
    assert par.derive_block_window([2933] * 3, 0.2)[0] == 10
    assert par.block_grid(10, (0.5, 1, 2, 3)) == [5, 10, 20, 30]
    assert par.block_grid(10, (0.5, 1, 3)) == [5, 10, 30]
    assert par.derive_bootstrap(270)[0] == 1000


@pytest.mark.parametrize(("epochs", "expected"), [(8, (2, 1)), (5, (1, 1)), (1, (0, 1)),
                                                  (20, (6, 3)), (30, (10, 5))])
def test_short_runs_get_an_estimable_stabilisation_epoch(epochs, expected):
    (s, w), _ = par.derive_stabilisation(_runs([epochs, epochs + 4]))
    assert (s, w) == expected
    assert s + w <= max(epochs, 1)  # every run has epochs s ... s + w - 1


def test_short_runs_get_short_time_grids_and_blocks():
    unit, _ = par.derive_time_unit([24.4, 23.4, 26.6])
    assert unit == 0.5
    assert par.multiples(unit, par.ESTIMATE_WINDOWS_UNITS) == [0.5, 1, 2.5, 5]
    # 245 samples at 10 Hz: 10-sample blocks; 20 % of them: 49 samples, blocks of 6
    assert par.derive_block_window([245, 250])[0] == 10
    assert par.derive_block_window([245, 250], 0.2)[0] == 6
    assert par.derive_block_window([12])[0] == 1
    assert par.epoch_grids(2, 1, 8) == ([0, 1, 2, 3, 4], [1, 2])
    assert par.derive_min_epochs(_runs([8] * 4))[0] == 4


def test_missing_information_is_said():
    runs = _runs([np.nan, np.nan])
    assert par.derive_stabilisation(runs) == (None, "no run has an epoch count")
    assert par.derive_min_epochs(runs)[0] is None
    assert par.derive_time_unit([np.nan])[0] == par.NICE_SECONDS[0]
    assert par.derive_bootstrap(2) == (0, "2 run(s) < 3: no bootstrap interval")


def test_given_values_override_the_rules():
    p = par.Parameters()
    assert p.set("window", 7, (10, "derived")) == 7
    assert p.set("n_boot", None, (1000, "derived")) == 1000
    table = p.table().set_index("parameter")
    assert table.loc["window", "how"] == "set in the notebook"
    assert table.loc["n_boot", "how"] == "derived" and table.loc["n_boot", "value"] == "1000"
