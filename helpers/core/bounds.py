"""Plausibility bounds of raw measurements, defined once (docs/raw-format.md#plausibility-bounds).

Every reader checks the values it reads against these bounds; a value outside is never kept
silently. What happens to it is the reader's documented choice (a cell set to NaN, or the row
left out), always with a recorded skip naming file, line, column and the bound that failed.

* Time stamps: between :data:`EARLIEST_STAMP` and now + :data:`FUTURE_MARGIN` (a stamp in the
  future or before 2000 is a corrupt or mis-scaled value, e.g. seconds written as ms). Within a
  file (per device) they increase: :func:`increasing_keep` keeps the longest increasing run of
  rows (drops the fewest), and :func:`isolated_rows` finds a few rows cut off from the rest of
  the file by gaps longer than :data:`MAX_SAMPLE_GAP_S` (a stamp off by hours at a file's edge).
* Power (W): 0 to :data:`POWER_LIMIT_FACTOR` x the device's enforced power limit where the row
  gives one, else 0 to the ceiling of the device kind (:data:`GPU_POWER_CEILING_W`,
  :data:`CPU_POWER_CEILING_W`); a power limit itself must be in :data:`POWER_LIMIT_RANGE_W`.
* Utilisation (%): 0-100 (system-wide and GPU); a process's CPU (% of one core): 0 to
  :data:`PROCESS_CPU_HEADROOM` x 100 x logical cores.
* Temperature (degC): :data:`TEMPERATURE_RANGE_C`. Memory (MiB), clocks, counters: >= 0.
* Energy counters (J): non-decreasing within a driver session. An isolated reading that breaks
  the counter's line while its neighbours agree is a glitch (:func:`counter_glitches`); a step
  back that stays is a reset or wrap and starts a new counter segment (summed by
  :mod:`helpers.core.energy`). A step implying more than :data:`COUNTER_MAX_POWER_W` also
  starts a segment.

Everything here works on numpy arrays; NaN ("not measured") passes every value bound.
"""

from __future__ import annotations

import bisect

import numpy as np
import pandas as pd

#: Earliest plausible time stamp (UTC): no file in scope was written before.
EARLIEST_STAMP = pd.Timestamp("2000-01-01", tz="UTC")
#: Latest plausible time stamp: now plus this margin (clock skew between machines).
FUTURE_MARGIN = pd.Timedelta(days=1)
#: Longest plausible pause (s) between two samples of one log; a few rows separated from the
#: rest of their file by longer gaps on both sides (or at the file's edge) are bad stamps.
MAX_SAMPLE_GAP_S = 600.0
#: At most this many rows form such an isolated group (more is a real second stretch of data).
ISOLATED_MAX_ROWS = 3

#: Highest plausible power of one GPU board (W); the largest boards draw about 1.2 kW.
GPU_POWER_CEILING_W = 2000.0
#: Highest plausible power of a machine's CPU packages together (W).
CPU_POWER_CEILING_W = 2000.0
#: Plausible range of a GPU's power limit (W): the smallest boards are limited to about 10 W.
POWER_LIMIT_RANGE_W = (5.0, GPU_POWER_CEILING_W)
#: Power readings may exceed the enforced power limit for short transients (H100: 1.1x in
#: sampled power, 1.35x in 1-s counter averages); beyond this multiple they are implausible.
POWER_LIMIT_FACTOR = 2.0
#: Fastest plausible rise of any one energy counter (W): two GPU ceilings, since a counter read
#: right after its refresh can show two refresh periods in one sampling interval.
COUNTER_MAX_POWER_W = 2 * GPU_POWER_CEILING_W
#: Time a counter step may cover beyond the interval between its readings (s): NVML refreshes
#: its energy counter every 100 ms, so two readings 1 ms apart can differ by a whole refresh;
#: plus 1 ms, the resolution of millisecond stamps.
COUNTER_SLACK_S = 0.101
#: Utilisation range (%), system-wide CPU and GPU.
UTILISATION_RANGE_PCT = (0.0, 100.0)
#: A process tree's CPU (% of one core) over a short sampling window can overshoot the cores'
#: capacity (100 % x logical cores) by the clock-tick granularity of CPU times; beyond this
#: multiple of it, it is implausible.
PROCESS_CPU_HEADROOM = 4.0
#: Device temperature range (degC).
TEMPERATURE_RANGE_C = (-40.0, 150.0)


# -- time stamps ------------------------------------------------------------------------------
def stamp_range_ms() -> tuple[int, int]:
    """(earliest, latest) plausible stamp, ms since the Unix epoch (latest: now + margin)."""
    latest = pd.Timestamp.now(tz="UTC") + FUTURE_MARGIN
    return EARLIEST_STAMP.value // 10**6, latest.value // 10**6


def stamp_range_text() -> str:
    """The plausible stamp range in words, for skip reasons and errors."""
    lo, hi = stamp_range_ms()
    fmt = "%Y-%m-%d"
    return (f"{pd.Timestamp(lo, unit='ms').strftime(fmt)} .. "
            f"{pd.Timestamp(hi, unit='ms').strftime(fmt)} (now + 1 day)")


def stamps_in_range(stamp_ms: np.ndarray) -> np.ndarray:
    """True where a stamp (ms since the Unix epoch, float or int; NaN -> False) is plausible."""
    lo, hi = stamp_range_ms()
    ms = np.asarray(stamp_ms, dtype=float)
    with np.errstate(invalid="ignore"):
        return (ms >= lo) & (ms <= hi)


def increasing_keep(t: np.ndarray, strict: bool = True) -> np.ndarray:
    """Rows to keep so that ``t`` increases (``strict``) or never decreases: the longest such
    subsequence, i.e. the fewest rows dropped (one stamp off in either direction drops that row,
    not the rest of the file). Ties keep the earlier rows. O(n log n); already ordered input
    returns at once."""
    t = np.asarray(t, dtype=float)
    d = np.diff(t)
    if not (np.all(d > 0) if strict else np.all(d >= 0)):
        return _longest_increasing(t, strict)
    return np.ones(len(t), dtype=bool)


def _longest_increasing(t: np.ndarray, strict: bool) -> np.ndarray:
    """The earliest-rows longest (strictly) increasing subsequence of ``t``, as a mask."""
    n = len(t)
    find = bisect.bisect_left if strict else bisect.bisect_right
    tails: list[float] = []
    length_from = np.empty(n, dtype=np.int64)  # longest run starting at each row
    for j, v in enumerate((-t[::-1]).tolist()):
        k = find(tails, v)
        if k == len(tails):
            tails.append(v)
        else:
            tails[k] = v
        length_from[n - 1 - j] = k + 1
    keep = np.zeros(n, dtype=bool)
    need, last = len(tails), -np.inf
    for i, v in enumerate(t.tolist()):
        if need and length_from[i] == need and (v > last if strict else v >= last):
            keep[i], need, last = True, need - 1, v
    return keep


def isolated_rows(t_s: np.ndarray, max_gap_s: float = MAX_SAMPLE_GAP_S,
                  max_rows: int = ISOLATED_MAX_ROWS) -> np.ndarray:
    """True for rows of ascending times ``t_s`` (s) in a group of at most ``max_rows`` rows cut
    off from the rest by gaps longer than ``max_gap_s`` (at a file's edge: one gap), while the
    file holds a larger group. Such a group is a few bad stamps, not a second stretch of data."""
    t = np.asarray(t_s, dtype=float)
    out = np.zeros(len(t), dtype=bool)
    cuts = np.flatnonzero(np.diff(t) > max_gap_s) + 1
    if cuts.size == 0:
        return out
    edges = np.concatenate([[0], cuts, [len(t)]])
    sizes = np.diff(edges)
    if sizes.max() <= max_rows:
        return out
    for start, size in zip(edges[:-1], sizes, strict=True):
        if size <= max_rows:
            out[start:start + size] = True
    return out


# -- values -----------------------------------------------------------------------------------
def max_power_w(limit_w: np.ndarray | float | None, ceiling_w: float) -> np.ndarray | float:
    """Highest plausible power (W): :data:`POWER_LIMIT_FACTOR` x ``limit_w`` where that is a
    plausible limit (in :data:`POWER_LIMIT_RANGE_W`, at most the ceiling), else
    ``ceiling_w``."""
    if limit_w is None:
        return ceiling_w
    limit = np.asarray(limit_w, dtype=float)
    with np.errstate(invalid="ignore"):
        good = (np.isfinite(limit) & (limit >= POWER_LIMIT_RANGE_W[0])
                & (limit <= min(ceiling_w, POWER_LIMIT_RANGE_W[1])))
    out = np.where(good, POWER_LIMIT_FACTOR * np.where(good, limit, 0.0), ceiling_w)
    return out if out.ndim else float(out)


def outside(values: np.ndarray, low: float | np.ndarray, high: float | np.ndarray) -> np.ndarray:
    """True where a value is measured (not NaN) and not within [low, high] (inf is outside)."""
    v = np.asarray(values, dtype=float)
    with np.errstate(invalid="ignore"):
        return ~np.isnan(v) & ~(np.isfinite(v) & (v >= low) & (v <= high))


def range_text(low: float | None, high: float | None, unit: str) -> str:
    """``'0 .. 100 %'``-style text of a bound for skip reasons."""
    lo = "" if low is None else f"{low:g}"
    hi = "" if high is None else f"{high:g}"
    return f"{lo} .. {hi} {unit}".strip()


# -- energy counters --------------------------------------------------------------------------
def counter_step_ok(dc_j: np.ndarray, dt_s: np.ndarray, max_power_w: float) -> np.ndarray:
    """True where a counter step ``dc_j`` (J) over ``dt_s`` (s) is plausible: it does not go
    back, and it is at most ``max_power_w`` over ``dt_s`` plus :data:`COUNTER_SLACK_S` (a
    counter refreshes in steps, and two readings can share a millisecond stamp)."""
    dc, dt = np.asarray(dc_j, dtype=float), np.asarray(dt_s, dtype=float)
    with np.errstate(invalid="ignore"):
        return (dc >= 0) & (dc <= max_power_w * (np.maximum(dt, 0.0) + COUNTER_SLACK_S))


def counter_glitches(t_s: np.ndarray, counter_j: np.ndarray,
                     max_power_w: float = COUNTER_MAX_POWER_W) -> np.ndarray:
    """True for bad readings of a cumulative counter. At each step back, the readings on one
    side are glitches when dropping at most :data:`ISOLATED_MAX_ROWS` of them joins the
    counter plausibly (:func:`counter_step_ok`): readings just before it that are too high, or
    readings from it on that are too low until the counter is back above its level. Where both
    would do, the fewer readings go (then the side whose join is closer to the counter's median
    rate). A step back with neither is a reset or a wrap: nothing is dropped, and a new segment
    starts there. Readings must be in time order; NaN readings are ignored."""
    c = np.asarray(counter_j, dtype=float)
    t = np.asarray(t_s, dtype=float)
    idx = np.flatnonzero(np.isfinite(c) & np.isfinite(t))
    out = np.zeros(len(c), dtype=bool)
    v, tt = c[idx], t[idx]
    if idx.size < 3 or np.all(np.diff(v) >= 0):
        return out
    dv, dt = np.diff(v), np.diff(tt)
    good = counter_step_ok(dv, dt, max_power_w) & (dt > 0)
    rate = float(np.median(dv[good] / dt[good])) if good.any() else 0.0
    alive = list(range(len(v)))
    k = 1
    while k < len(alive):
        if v[alive[k]] >= v[alive[k - 1]]:
            k += 1
            continue
        options = _glitch_options(v, tt, alive, k, max_power_w, rate)
        if not options:
            k += 1
            continue
        n, _, drop = min(options)
        out[idx[drop]] = True
        alive = [a for a in alive if a not in set(drop)]
        k = max(1, k - n)
    return out


def _glitch_options(v: np.ndarray, t: np.ndarray, alive: list[int], k: int,
                    max_power_w: float, rate: float) -> list[tuple[int, float, list[int]]]:
    """(readings dropped, |join rate - median rate|, positions) of the ways to resolve the
    step back into ``alive[k]``: high readings before it, or low readings from it on."""
    options = []
    for n in range(1, ISOLATED_MAX_ROWS + 1):  # too high: alive[k-n .. k-1]
        if k - 1 - n < 0:
            break
        a, b = alive[k - 1 - n], alive[k]
        if v[a] <= v[b] and counter_step_ok(v[b] - v[a], t[b] - t[a], max_power_w):
            join = (v[b] - v[a]) / (t[b] - t[a]) if t[b] > t[a] else 0.0
            options.append((n, abs(join - rate), alive[k - n:k]))
            break
    for n in range(1, ISOLATED_MAX_ROWS + 1):  # too low: alive[k .. k+n-1]
        if k + n >= len(alive):
            break
        a, b = alive[k - 1], alive[k + n]
        if v[b] >= v[a] and counter_step_ok(v[b] - v[a], t[b] - t[a], max_power_w):
            join = (v[b] - v[a]) / (t[b] - t[a]) if t[b] > t[a] else 0.0
            options.append((n, abs(join - rate), alive[k:k + n]))
            break
    return options
