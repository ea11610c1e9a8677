"""Energy windows: which stretch of a run an energy covers, defined once
(docs/methods.md#energy-windows).

* Run window (:func:`run_window`): first to last sample. Its energies integrate each series
  (power, counter, RAM) over that series' own valid samples, since some series do not reach
  the edges (the CPU estimate has no value at the first sample; the published CPU/RAM logs
  start and end a little inside the GPU log); the clean stage's ``ram_coverage`` says how much.
* Training window (:func:`training_window`): ``warmup_start`` (the warm-up batches are training),
  else the first ``epoch_start``, to the last ``epoch_end``; a missing edge falls back to the
  first / last sample, and without any of these events the window is the whole run. The label
  says which edges were used (e.g. ``'warmup_start to last epoch_end'``). Its edges are phase
  marks, where the sampler reads every source, so each series must cover the window; one that
  does not gives NaN (``unmeasured``) rather than a part of the window.
* Epoch windows (:func:`epoch_event_pairs`): each epoch's ``epoch_start`` to its ``epoch_end``.

Times are seconds on whatever clock the caller's samples and events share (``monotonic_s`` in
raw run folders, UTC seconds in merged tables).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import numpy as np

#: Training-window start events, in order of preference.
TRAINING_START_EVENTS: tuple[str, ...] = ("warmup_start", "epoch_start")
TRAINING_END_EVENT = "epoch_end"


class Window(NamedTuple):
    """A time window: ``start_s`` to ``end_s`` (s) and a label saying how it was chosen."""

    start_s: float
    end_s: float
    label: str

    @property
    def duration_s(self) -> float:
        """``end_s - start_s`` (s)."""
        return self.end_s - self.start_s


def run_window(sample_times_s: Sequence[float] | np.ndarray) -> Window:
    """First to last finite sample time (s); NaN edges when there is none."""
    t = np.asarray(sample_times_s, dtype=float)
    t = t[np.isfinite(t)]
    if t.size == 0:
        return Window(float("nan"), float("nan"), "no samples")
    return Window(float(t.min()), float(t.max()), "first to last sample")


def training_window(event_names: Sequence[str] | np.ndarray,
                    event_times_s: Sequence[float] | np.ndarray,
                    sample_times_s: Sequence[float] | np.ndarray) -> Window:
    """The training window (see the module docstring) from a run's events and sample times (s).

    Start: the earliest ``warmup_start``, else the earliest ``epoch_start``, else the first
    sample. End: the latest ``epoch_end``, else the last sample."""
    names = np.asarray(event_names, dtype=object)
    times = np.asarray(event_times_s, dtype=float)
    whole = run_window(sample_times_s)
    start, start_label = whole.start_s, "first sample"
    for name in TRAINING_START_EVENTS:
        if (names == name).any():
            start = float(times[names == name].min())
            start_label = name if name == "warmup_start" else f"first {name}"
            break
    end, end_label = whole.end_s, "last sample"
    if (names == TRAINING_END_EVENT).any():
        end = float(times[names == TRAINING_END_EVENT].max())
        end_label = f"last {TRAINING_END_EVENT}"
    return Window(start, end, f"{start_label} to {end_label}")


def epoch_event_pairs(event_names: Sequence[str] | np.ndarray,
                      event_epochs: Sequence[float] | np.ndarray) -> list[tuple[int, int, int]]:
    """``(epoch, i_start, i_end)`` for every epoch with both an ``epoch_start`` and an
    ``epoch_end`` event, by epoch: positions (0-based, into the given sequences) of its first
    ``epoch_start`` and its last ``epoch_end``. Its window is the times at those positions."""
    names = np.asarray(event_names, dtype=object)
    epochs = np.asarray(event_epochs, dtype=float)
    pairs = []
    for epoch in np.unique(epochs[np.isfinite(epochs)]):
        starts = np.flatnonzero((names == "epoch_start") & (epochs == epoch))
        ends = np.flatnonzero((names == TRAINING_END_EVENT) & (epochs == epoch))
        if starts.size and ends.size:
            pairs.append((int(epoch), int(starts[0]), int(ends[-1])))
    return pairs
