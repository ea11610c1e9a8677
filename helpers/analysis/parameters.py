"""Analysis parameters derived from the data (docs/methods.md#energy-windows).

Notebooks 03, 05 and 06 take these parameters with the default ``None``: the value is then
derived from the runs of the dataset (epochs per run, length of the training window, samples per
run), by the rules below; a value given to the notebook overrides the rule. On the published
runs (35-120 epochs, training windows of 10-100 minutes sampled once a second) every rule gives
the study's value.

* ``min_epochs`` (cleaning): half the median number of epochs, at most the study's 20.
* Stabilisation epoch s and window w of the epoch-based estimators: s = N // 3 (at most the
  study's 10), w = N // 6 (between 1 and the study's 5), N the fewest epochs of any run, so
  that every run has epochs s … s + w − 1 and the estimators observe at most half of it.
* Epoch sensitivity grids: s × (0, .2, .5, .8, 1, 1.2, 1.5, 2) below N, and
  w × (.2, .6, 1, 2) (at least 1).
* Time unit u: the median training window ÷ 50, rounded to the nearest (on a log scale) of
  :data:`NICE_SECONDS` (60 s for the published runs). The time grids are multiples of it:
  starts (0, 1, 2, 3, 4, 5, 7.5, 10, 15) u and windows (1, 2, 5, 10) u of the online-estimate
  error of notebook 05; fixed stabilisation points (0, 1, 2, 4, 6, 8) u of notebook 06.
* Change-point block window (samples per block mean): the study's 10 samples, fewer when a
  run's (observed) training window holds fewer than 8 blocks of 10 (at least 1 sample). Its
  sensitivity grid: the window × (.5, 1, 2, 3) (notebook 05) or × (.5, 1, 3) (notebook 06).
* Bootstrap resamples: 1000, none (no interval, said so) with fewer than 3 runs.

Each ``derive_*`` function returns the value and a sentence saying how it was obtained.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

#: The study's values, the upper bounds of the derived ones.
STUDY_MIN_EPOCHS = 20
STUDY_STABILISATION_EPOCH = 10
STUDY_WINDOW_EPOCHS = 5
STUDY_BLOCK_SAMPLES = 10
STUDY_BOOTSTRAP = 1000
#: Fewest blocks a series should hold for a two-regime split (2 regimes of >= 2 blocks, twice).
MIN_BLOCKS = 8
#: Fewest runs for a bootstrap interval.
MIN_RUNS_BOOTSTRAP = 3
#: Round values (s) the time unit is chosen from.
NICE_SECONDS = (0.1, 0.2, 0.5, 1.0, 2.0, 5.0, 10.0, 15.0, 30.0, 60.0, 120.0, 300.0, 600.0,
                900.0, 1800.0, 3600.0)
#: Training window / time unit.
WINDOWS_PER_UNIT = 50
#: Multiples of the time unit / of s and w in the grids.
ESTIMATE_STARTS_UNITS = (0, 1, 2, 3, 4, 5, 7.5, 10, 15)
ESTIMATE_WINDOWS_UNITS = (1, 2, 5, 10)
FIXED_STABILISATION_UNITS = (0, 1, 2, 4, 6, 8)
STABILISATION_EPOCH_FACTORS = (0, 0.2, 0.5, 0.8, 1, 1.2, 1.5, 2)
WINDOW_EPOCH_FACTORS = (0.2, 0.6, 1, 2)


@dataclass
class Parameters:
    """Resolved parameters of one notebook: name -> value, and name -> how it was obtained."""

    values: dict[str, object] = field(default_factory=dict)
    sources: dict[str, str] = field(default_factory=dict)

    def set(self, name: str, given: object, derived: tuple[object, str]) -> object:
        """Record ``given`` (the notebook's parameter) when it is not None, else ``derived``
        (value, how); returns the value."""
        if given is not None:
            self.values[name], self.sources[name] = given, "set in the notebook"
        else:
            self.values[name], self.sources[name] = derived
        return self.values[name]

    def __getitem__(self, name: str) -> object:
        return self.values[name]

    def table(self) -> pd.DataFrame:
        """One row per parameter: value and how it was obtained."""
        return pd.DataFrame({"parameter": list(self.values),
                             "value": [str(v) for v in self.values.values()],
                             "how": [self.sources[k] for k in self.values]})


def _epochs(runs: pd.DataFrame) -> pd.Series:
    col = runs["epochs"] if "epochs" in runs else pd.Series(dtype=float)
    e = pd.to_numeric(col, errors="coerce").astype(float)
    return e[np.isfinite(e) & (e >= 1)]


def derive_min_epochs(runs: pd.DataFrame) -> tuple[int | None, str]:
    """Half the median epochs (rounded up), at most 20; None when no run has an epoch count."""
    e = _epochs(runs)
    if e.empty:
        return None, "no run has an epoch count: the step is skipped"
    value = min(STUDY_MIN_EPOCHS, math.ceil(float(e.median()) / 2))
    return value, (f"half the median epochs ({e.median():g}), at most {STUDY_MIN_EPOCHS}")


def derive_stabilisation(runs: pd.DataFrame) -> tuple[tuple[int, int] | None, str]:
    """(s, w) from N, the fewest epochs of any run: s = min(10, N // 3),
    w = min(5, max(1, N // 6)); None when no run has an epoch count."""
    e = _epochs(runs)
    if e.empty:
        return None, "no run has an epoch count"
    n = int(e.min())
    s = min(STUDY_STABILISATION_EPOCH, n // 3)
    w = min(STUDY_WINDOW_EPOCHS, max(1, n // 6))
    return (s, w), (f"fewest epochs of a run N = {n}: s = min({STUDY_STABILISATION_EPOCH}, "
                    f"N // 3), w = min({STUDY_WINDOW_EPOCHS}, max(1, N // 6))")


def epoch_grids(s: int, w: int, n_epochs: int | None = None) -> tuple[list[int], list[int]]:
    """Sensitivity grids of the stabilisation epoch (below ``n_epochs`` when given) and of the
    window (see the module docstring)."""
    starts = sorted({int(round(s * f)) for f in STABILISATION_EPOCH_FACTORS})
    if n_epochs is not None:
        starts = [x for x in starts if x < n_epochs] or [0]
    widths = sorted({max(1, int(round(w * f))) for f in WINDOW_EPOCH_FACTORS})
    return starts, widths


def fewest_epochs(runs: pd.DataFrame) -> int | None:
    """The fewest epochs of any run with an epoch count (None without any)."""
    e = _epochs(runs)
    return None if e.empty else int(e.min())


def nice_unit_s(seconds: float) -> float:
    """The value of :data:`NICE_SECONDS` nearest to ``seconds`` on a log scale."""
    if not (np.isfinite(seconds) and seconds > 0):
        return NICE_SECONDS[0]
    nice = np.asarray(NICE_SECONDS)
    return float(nice[np.argmin(np.abs(np.log(nice / seconds)))])


def derive_time_unit(training_durations_s: Sequence[float] | pd.Series) -> tuple[float, str]:
    """Time unit (s): median training window / 50, rounded to :data:`NICE_SECONDS`."""
    d = np.asarray(training_durations_s, dtype=float)
    d = d[np.isfinite(d) & (d > 0)]
    if d.size == 0:
        return NICE_SECONDS[0], "no training durations: smallest unit"
    median = float(np.median(d))
    unit = nice_unit_s(median / WINDOWS_PER_UNIT)
    return unit, f"median training window {median:.4g} s / {WINDOWS_PER_UNIT} -> {unit:g} s"


def multiples(unit_s: float, factors: Sequence[float]) -> list[float]:
    """``unit_s`` × each factor, as ints where whole (so that labels read 60, not 60.0)."""
    out = []
    for f in factors:
        v = unit_s * f
        out.append(int(round(v)) if abs(v - round(v)) < 1e-9 else float(v))
    return out


def derive_block_window(samples_per_run: Sequence[float] | pd.Series, share: float = 1.0
                        ) -> tuple[int, str]:
    """Samples per block of the change point: min(10, max(1, n // 8)), n the median number of
    samples of a run's training window times ``share`` (the observed fraction)."""
    n = np.asarray(samples_per_run, dtype=float)
    n = n[np.isfinite(n) & (n > 0)]
    if n.size == 0:
        return STUDY_BLOCK_SAMPLES, "no samples: the study's 10"
    observed = float(np.median(n)) * share
    value = int(min(STUDY_BLOCK_SAMPLES, max(1, observed // MIN_BLOCKS)))
    what = "samples" if share == 1 else f"samples in the first {share:.0%}"
    return value, (f"median {observed:.0f} {what} of the training window: "
                   f"min({STUDY_BLOCK_SAMPLES}, that // {MIN_BLOCKS})")


def block_grid(window: int, factors: Sequence[float]) -> list[int]:
    """Sensitivity grid of the block window: ``window`` × factors, at least 1, no repeats."""
    return sorted({max(1, int(round(window * f))) for f in factors})


def derive_bootstrap(n_runs: int) -> tuple[int, str]:
    """1000 resamples, 0 (no interval) with fewer than 3 runs."""
    if n_runs < MIN_RUNS_BOOTSTRAP:
        return 0, f"{n_runs} run(s) < {MIN_RUNS_BOOTSTRAP}: no bootstrap interval"
    return STUDY_BOOTSTRAP, f"{n_runs} runs: the study's {STUDY_BOOTSTRAP}"
