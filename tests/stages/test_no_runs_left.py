"""A cleaning step that leaves no run stops notebook 03 with the step's name and the count before
it, and the cleaning ledger records the empty end."""

from __future__ import annotations

import re

import pandas as pd
import pytest
import stage_calls

from helpers.analysis.clean import NoRunsLeftError
from helpers.core import datasets
from helpers.stages import stage03_clean


def test_a_step_that_leaves_no_run_stops_with_its_name(tmp_path, monkeypatch):
    monkeypatch.setenv(datasets.PROJECT_ROOT_ENV, str(tmp_path))
    stage_calls.write_interim(stage_calls.h100_interim(), "too-short")
    with pytest.raises(NoRunsLeftError, match=re.escape(
            "cleaning step 'fewer than 50 epochs' removed all 10 remaining runs")):
        stage03_clean.clean_and_write("too-short", min_epochs=50)
    steps = pd.read_csv(datasets.output_dir("too-short", "processed") / "cleaning_steps.csv")
    assert steps["runs_out"].iloc[-1] == 0
