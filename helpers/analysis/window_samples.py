"""Samples of each run's training window (docs/methods.md#energy-windows).

The clean stage writes every run's training window (:func:`helpers.core.windows.training_window`)
on the samples' clock as ``training_start_s`` and ``training_end_s``: seconds from the run's
first sample, the ``elapsed_s`` of the interim profiling table. :func:`training_samples` keeps
the samples inside it, cuts the curves at its edges by linear interpolation (as the energy
integration does, :func:`helpers.core.energy.cumulative_energy_at_j`) and counts time from its
start, so that everything computed on the samples (stabilisation point, online estimators,
pseudo-epochs) covers the same stretch as ``training_energy_j`` and ``training_duration_s``.
Runs without those columns or values keep all their samples (the whole run).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

#: Run-table columns: the training window, seconds from the run's first sample.
START_COL, END_COL = "training_start_s", "training_end_s"
#: A sample this close to a window edge (s) counts as on it (stamps are whole milliseconds).
EDGE_TOLERANCE_S = 5e-4


def with_elapsed(samples: pd.DataFrame, run_col: str = "run_id") -> pd.DataFrame:
    """``samples`` with ``elapsed_s`` (seconds since each run's first sample), computed from
    ``time_utc`` or ``timestamp`` (ms) when absent."""
    if "elapsed_s" in samples:
        return samples
    if "time_utc" in samples:
        t = samples["time_utc"].astype("datetime64[ms, UTC]").astype("int64") / 1e3
    else:
        t = samples["timestamp"].astype("int64") / 1e3
    return samples.assign(elapsed_s=(t - t.groupby(samples[run_col]).transform("min"))
                          .astype("float64"))


def _edge_row(sub: pd.DataFrame, t: np.ndarray, at: float, time_col: str,
              value_cols: Sequence[str]) -> dict:
    """A row at time ``at``: ``value_cols`` interpolated linearly over their finite values, the
    other columns copied from the nearest sample."""
    row = sub.iloc[int(np.argmin(np.abs(t - at)))].to_dict()
    row[time_col] = at
    for col in value_cols:
        v = sub[col].to_numpy(dtype=float)
        ok = np.isfinite(v)
        row[col] = float(np.interp(at, t[ok], v[ok])) if ok.sum() >= 2 else np.nan
    return row


def clip_run(sub: pd.DataFrame, start_s: float, end_s: float, value_cols: Sequence[str],
             time_col: str = "elapsed_s") -> pd.DataFrame:
    """One run's samples (sorted by ``time_col``) inside [start_s, end_s], with a row added at
    each edge that falls between two samples (``value_cols`` interpolated), and ``time_col``
    counted from ``start_s``."""
    t = sub[time_col].to_numpy(dtype=float)
    inside = (t >= start_s - EDGE_TOLERANCE_S) & (t <= end_s + EDGE_TOLERANCE_S)
    extra = []
    for edge in (start_s, end_s):
        on_edge = np.abs(t - edge) <= EDGE_TOLERANCE_S
        if not on_edge.any() and t.size and t[0] < edge < t[-1]:
            extra.append(_edge_row(sub, t, edge, time_col, value_cols))
    out = sub[inside]
    if extra:
        out = pd.concat([out, pd.DataFrame(extra).astype(sub.dtypes.to_dict(), errors="ignore")],
                        ignore_index=True).sort_values(time_col, kind="stable")
    return out.assign(**{time_col: out[time_col] - start_s})


def training_samples(samples: pd.DataFrame, runs: pd.DataFrame, value_cols: Sequence[str],
                     time_col: str = "elapsed_s", run_col: str = "run_id") -> pd.DataFrame:
    """The samples of every run cut to its training window (see the module docstring);
    ``value_cols`` are the numeric columns interpolated at the edges (each GPU of a run on its
    own). Runs of ``runs`` without a window keep all their samples."""
    if samples.empty:
        return samples
    has = {START_COL, END_COL} <= set(runs.columns)
    bounds = runs.set_index(run_col)[[START_COL, END_COL]] if has else pd.DataFrame()
    keys = [run_col, "gpu_index"] if "gpu_index" in samples else [run_col]
    parts = []
    for key, sub in samples.groupby(keys, sort=False, observed=True, dropna=False):
        run = key[0] if isinstance(key, tuple) else key
        sub = sub.sort_values(time_col, kind="stable")
        start, end = (bounds.loc[run].to_numpy(float) if has and run in bounds.index
                      else (np.nan, np.nan))
        if np.isfinite(start) and np.isfinite(end) and end > start:
            sub = clip_run(sub, float(start), float(end), value_cols, time_col)
        parts.append(sub)
    return pd.concat(parts, ignore_index=True)


def window_sample_counts(samples: pd.DataFrame, run_col: str = "run_id") -> pd.Series:
    """Samples per run (of the first GPU where ``gpu_index`` exists)."""
    if "gpu_index" in samples:
        first = samples["gpu_index"].groupby(samples[run_col], observed=True).transform("min")
        samples = samples[(samples["gpu_index"] == first) | first.isna()]
    return samples.groupby(run_col, observed=True).size()
