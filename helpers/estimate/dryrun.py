"""Dry-run estimate: a training run's time and energy from a short measured start
(docs/methods.md#estimators).

The measured start is a list of :class:`Window` s, each a stretch of training steps (``train``)
or evaluation batches (``eval``) with its duration and energy. They come from

* a dry run (``python -m helpers estimate``, :mod:`helpers.collect.dryrun`), which trains the
  real model for a few seconds and marks a window every few steps (:func:`dry_run_windows`), or
* a recorded run replayed from its first seconds (:func:`replay_run`): the training part of every
  epoch finished in the observed time, cut into equal-time windows with the steps shared out
  evenly, and its evaluation part.

In both, a window's energy is the run's energy rule (docs/methods.md#energy) taken from the power
trapezoid, which resolves sub-second windows, scaled where the rule is the NVML energy counter
(it moves in ~100-ms steps) by counter ÷ trapezoid over the span from the first sample to the
last window (:func:`_segment_energies`).

:func:`estimate` then

1. finds where the warm-up ends (:func:`steady_start`), for the time and the energy per step
   each: the first window from which ``consecutive`` windows lie within ``tol`` of the
   steady state, taken as the median of the second half of the windows;
2. takes the steady time and energy per step as ratios over the steady windows (Σ time ÷ Σ steps,
   Σ energy ÷ Σ steps), for training and evaluation each;
3. projects the planned run: T̂ = T_once + Σ_kinds (T_warm + (S − S_warm) · t_step), and the same
   for energy, where T_once is the measured one-off segment before the first window (the
   training driver's warm-up batches), T_warm / S_warm the time and steps of the warm-up
   windows, and S the planned steps (epochs × steps per epoch);
4. gives an interval for the projected (unobserved) part: a t interval with m − 1 degrees of
   freedom (m steady training windows) on the per-step ratios, their standard errors by the
   jackknife over the steady windows (kinds added in quadrature), widened by a drift allowance:
   half the relative difference between the per-step values of the first and second half of
   the steady windows. For the energy, the warm-up rule, the standard error and the drift use
   each window's power trapezoid (an energy counter's ~100-ms update steps would dominate short
   windows), scaled to the measured energy per step.

Not modelled: the few milliseconds between epochs (phase marks, the shuffle), early stopping,
and anything the planned run does that the dry run does not (data loading from disk,
checkpoints). Time in s, energy in J, power in W.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from helpers.core import energy, rules, windows
from helpers.core.units import J_PER_KWH
from helpers.estimate.common import NotEstimableError
from helpers.readers.project import ProjectRun, read_run

TRAIN, EVAL = "train", "eval"
#: Event that ends the one-off segment and starts the first window of a dry run.
DRY_RUN_START = "dry_run_start"
#: Events that end a dry run's window; ``info.steps`` holds the window's steps.
WINDOW_END_EVENTS = {"train_window_end": TRAIN, "eval_window_end": EVAL}
#: Method tag of the prediction.
METHOD = "dry_run:steady_per_step"
#: Defaults of the warm-up rule and the interval.
DEFAULT_TOL = 0.05
DEFAULT_CONSECUTIVE = 2
DEFAULT_CONFIDENCE = 0.95
#: Fewest steady windows for an interval.
MIN_WINDOWS_FOR_INTERVAL = 3


@dataclass(frozen=True)
class Window:
    """A measured stretch of one kind of work.

    Attributes:
        kind: ``train`` (optimiser steps) or ``eval`` (evaluation batches).
        steps: steps (train) or batch equivalents (eval: images ÷ batch size) in the window.
        start_s, end_s: its edges (s, any clock shared by the windows).
        energy_j: its energy (J), by the run's energy rule.
        power_w: its mean power (W) by a measurement that resolves short windows (the power
            trapezoid), for the warm-up rule, the standard error and the drift; NaN:
            ``energy_j`` ÷ duration.
    """

    kind: str
    steps: float
    start_s: float
    end_s: float
    energy_j: float
    power_w: float = math.nan

    @property
    def duration_s(self) -> float:
        """``end_s - start_s`` (s)."""
        return self.end_s - self.start_s

    @property
    def mean_power_w(self) -> float:
        """``power_w`` where given, else ``energy_j / duration_s`` (W)."""
        if math.isfinite(self.power_w):
            return self.power_w
        return self.energy_j / self.duration_s if self.duration_s > 0 else math.nan


@dataclass(frozen=True)
class Plan:
    """The planned run: ``epochs`` × (``steps_per_epoch`` training steps + ``eval_steps_per_epoch``
    evaluation batch equivalents)."""

    epochs: int
    steps_per_epoch: float
    eval_steps_per_epoch: float = 0.0

    def __post_init__(self) -> None:
        if self.epochs < 1 or not self.steps_per_epoch > 0 or self.eval_steps_per_epoch < 0:
            raise ValueError(f"a plan needs epochs >= 1, steps_per_epoch > 0 and "
                             f"eval_steps_per_epoch >= 0, got {self}")

    @classmethod
    def from_sizes(cls, epochs: int, train_size: int, batch_size: int,
                   val_size: int = 0) -> Plan:
        """As the training driver runs: ``train_size // batch_size`` full training batches per
        epoch and one pass over ``val_size`` images (``val_size / batch_size`` batch
        equivalents, the last batch partial)."""
        if batch_size < 1 or train_size < batch_size or val_size < 0:
            raise ValueError(f"need batch_size >= 1, train_size >= batch_size and val_size >= 0;"
                             f" got batch_size {batch_size}, train_size {train_size}, "
                             f"val_size {val_size}")
        return cls(epochs, float(train_size // batch_size), val_size / batch_size)

    def total_steps(self, kind: str) -> float:
        """Planned steps of ``kind`` over the whole run."""
        per_epoch = self.steps_per_epoch if kind == TRAIN else self.eval_steps_per_epoch
        return self.epochs * per_epoch


@dataclass(frozen=True)
class PerStep:
    """Steady value per step of one quantity (time in s or energy in J) of one kind of work.

    Attributes:
        start: first steady window; the windows before it are the warm-up, counted as measured
            (``warmup_steps`` steps, ``warmup_total`` s or J).
        n_steady: steady windows.
        value: Σ quantity ÷ Σ steps over the steady windows.
        se: jackknife standard error of ``value`` (NaN with one steady window).
        drift_rel: |second half − first half| ÷ ``value``, per step, over the steady windows.
        warmup_steps, warmup_total: see ``start``.
        rule: how ``start`` was found.
    """

    start: int
    n_steady: int
    value: float
    se: float
    drift_rel: float
    warmup_steps: float
    warmup_total: float
    rule: str

    def project(self, total_steps: float) -> float:
        """The quantity over ``total_steps`` planned steps: the warm-up as measured plus the
        remaining steps at ``value``; a plan shorter than the warm-up gets the warm-up's own
        rate."""
        if total_steps <= self.warmup_steps:
            return self.warmup_total * total_steps / self.warmup_steps
        return self.warmup_total + (total_steps - self.warmup_steps) * self.value

    def uncertainty(self, total_steps: float, tol: float) -> tuple[float, float]:
        """(standard error, drift allowance) of the projected part of ``total_steps``; with
        fewer than :data:`MIN_WINDOWS_FOR_INTERVAL` steady windows, no standard error and
        ± ``tol`` of the projected part as allowance."""
        rest = max(total_steps - self.warmup_steps, 0.0)
        if self.n_steady < MIN_WINDOWS_FOR_INTERVAL:
            return 0.0, tol * rest * self.value
        return rest * self.se, self.drift_rel / 2 * rest * self.value


@dataclass(frozen=True)
class Steady:
    """Warm-up and steady state of one kind of work: time (s) and energy (J) per step, each
    with its own warm-up (time per step may settle before power does)."""

    kind: str
    n_windows: int
    time: PerStep
    energy: PerStep

    @property
    def step_s(self) -> float:
        """Steady time per step (s)."""
        return self.time.value

    @property
    def step_j(self) -> float:
        """Steady energy per step (J)."""
        return self.energy.value


@dataclass(frozen=True)
class DryRunEstimate:
    """Predicted time (s) and energy (J) of a planned run, with an interval of ``confidence``
    coverage (NaN bounds when there are too few steady windows; ``notes`` says so)."""

    time_s: float
    time_low_s: float
    time_high_s: float
    energy_j: float
    energy_low_j: float
    energy_high_j: float
    confidence: float
    plan: Plan
    train: Steady
    eval: Steady | None
    once_s: float
    once_j: float
    observed_s: float
    energy_method: str
    method: str = METHOD
    interval_method: str = "t interval (jackknife over steady windows) + drift allowance"
    notes: tuple[str, ...] = field(default_factory=tuple)

    @property
    def energy_kwh(self) -> float:
        """``energy_j`` in kWh."""
        return self.energy_j / J_PER_KWH

    @property
    def energy_low_kwh(self) -> float:
        """``energy_low_j`` in kWh."""
        return self.energy_low_j / J_PER_KWH

    @property
    def energy_high_kwh(self) -> float:
        """``energy_high_j`` in kWh."""
        return self.energy_high_j / J_PER_KWH

    def to_dict(self) -> dict[str, Any]:
        """Strict-JSON-ready dict (kWh added; NaN -> None)."""
        out = asdict(self)
        out.update(energy_kwh=self.energy_kwh, energy_low_kwh=self.energy_low_kwh,
                   energy_high_kwh=self.energy_high_kwh, notes=list(self.notes))
        return _nan_to_none(out)


def _nan_to_none(obj: Any) -> Any:
    """``obj`` with every non-finite float replaced by None, recursively."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {k: _nan_to_none(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_nan_to_none(v) for v in obj]
    return obj


# -- warm-up and steady state -----------------------------------------------------------------
def steady_start(per_step: Sequence[float], min_window: int = 1,
                 consecutive: int = DEFAULT_CONSECUTIVE,
                 tol: float = DEFAULT_TOL) -> tuple[int, str]:
    """Index of the first steady window of a per-step series (time or energy per step), and the
    rule that gave it.

    Reference: the median of the second half of the windows (from ``max(min_window, n // 2)``).
    The steady state starts at the first window ``i >= min_window`` such that windows
    ``i .. i + consecutive - 1`` all lie within ``tol`` (relative) of it; without such a window
    by the start of the second half, the steady state is the second half (said in the rule)."""
    v = np.asarray(per_step, dtype=float)
    n = len(v)
    if n <= min_window:
        raise NotEstimableError(f"{n} window(s): need more than {min_window} (the first "
                                f"{min_window} are warm-up by rule)")
    half = max(min_window, n // 2)
    ok = np.abs(v / np.median(v[half:]) - 1.0) <= tol
    for i in range(min_window, min(half, n - consecutive) + 1):
        if ok[i:i + consecutive].all():
            return i, (f"from window {i}: first of {consecutive} within {tol:.0%} of the "
                       f"second half's median")
    return half, (f"from window {half}: no {consecutive} consecutive windows within "
                  f"{tol:.0%} of the second half's median before it, so the second half")


def _ratio(num: np.ndarray, den: np.ndarray) -> float:
    return float(num.sum() / den.sum()) if den.sum() > 0 else math.nan


def _jackknife_se(values: np.ndarray, steps: np.ndarray) -> float:
    """Jackknife standard error of the ratio Σ values ÷ Σ steps over windows (NaN for < 2)."""
    m = len(values)
    if m < 2:
        return math.nan
    loo = (values.sum() - values) / (steps.sum() - steps)
    return float(math.sqrt((m - 1) / m * np.sum((loo - loo.mean()) ** 2)))


def _drift(values: np.ndarray, steps: np.ndarray) -> float:
    """|per-step ratio of the second half − of the first half| ÷ overall ratio (0 for < 2)."""
    m = len(values)
    if m < 2:
        return 0.0
    h = m // 2
    first, second = _ratio(values[:h], steps[:h]), _ratio(values[h:], steps[h:])
    return abs(second - first) / _ratio(values, steps)


def per_step(values: np.ndarray, signal: np.ndarray, steps: np.ndarray, min_window: int = 1,
             consecutive: int = DEFAULT_CONSECUTIVE, tol: float = DEFAULT_TOL) -> PerStep:
    """:class:`PerStep` of one quantity: ``values`` per window (s or J) give the level,
    ``signal`` per window (the same quantity, measured so that short windows resolve it) gives
    the warm-up rule, the standard error and the drift, scaled to the level."""
    start, rule = steady_start(signal / steps, min_window, consecutive, tol)
    s = slice(start, None)
    value = _ratio(values[s], steps[s])
    scale = value / _ratio(signal[s], steps[s])
    return PerStep(start, len(steps) - start, value, _jackknife_se(signal[s], steps[s]) * scale,
                   _drift(signal[s], steps[s]), float(steps[:start].sum()),
                   float(values[:start].sum()), rule)


def steady_state(windows_of_kind: Sequence[Window], min_window: int = 1,
                 consecutive: int = DEFAULT_CONSECUTIVE, tol: float = DEFAULT_TOL) -> Steady:
    """Warm-up and steady per-step time (s) and energy (J) of windows of one kind, in order.
    The energy's rule, error and drift use each window's mean power × duration (the power
    trapezoid: an energy counter's ~100-ms update steps would dominate short windows), its
    level the windows' energies."""
    ws = list(windows_of_kind)
    if not ws:
        raise NotEstimableError("no windows measured")
    k = np.array([w.steps for w in ws], dtype=float)
    d = np.array([w.duration_s for w in ws], dtype=float)
    e = np.array([w.energy_j for w in ws], dtype=float)
    smooth = np.array([w.mean_power_w for w in ws], dtype=float) * d
    if not (np.all(k > 0) and np.all(d > 0) and np.all(np.isfinite(e))
            and np.all(np.isfinite(smooth))):
        raise NotEstimableError(f"{ws[0].kind} windows need steps > 0, duration > 0 and a "
                                f"measured energy")
    return Steady(ws[0].kind, len(ws), per_step(d, d, k, min_window, consecutive, tol),
                  per_step(e, smooth, k, min_window, consecutive, tol))


def estimate(windows_: Sequence[Window], plan: Plan, once_s: float = 0.0, once_j: float = 0.0,
             energy_method: str = "", min_window: int = 1, eval_min_window: int = 1,
             consecutive: int = DEFAULT_CONSECUTIVE, tol: float = DEFAULT_TOL,
             confidence: float = DEFAULT_CONFIDENCE) -> DryRunEstimate:
    """Predict the planned run's time (s) and energy (J) from measured windows (module
    docstring). ``once_s``/``once_j``: the one-off segment before the windows (added once);
    ``min_window``/``eval_min_window``: windows of each kind that are warm-up by rule. Raises
    :class:`NotEstimableError` without enough training windows, or without evaluation windows
    when the plan evaluates."""
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")
    by_kind = {kind: [w for w in windows_ if w.kind == kind] for kind in (TRAIN, EVAL)}
    unknown = {w.kind for w in windows_} - set(by_kind)
    if unknown:
        raise ValueError(f"unknown window kind(s) {sorted(unknown)}; use {TRAIN!r} or {EVAL!r}")
    states = {TRAIN: steady_state(by_kind[TRAIN], min_window, consecutive, tol)}
    if plan.eval_steps_per_epoch > 0:
        if not by_kind[EVAL]:
            raise NotEstimableError("the plan evaluates every epoch but no evaluation was "
                                    "measured")
        first = min(eval_min_window, len(by_kind[EVAL]) - 1)
        states[EVAL] = steady_state(by_kind[EVAL], first, consecutive, tol)
    notes = [f"{kind} {name} per step: {getattr(st, name).rule}"
             for kind, st in states.items() for name in ("time", "energy")]
    time_s, t_lo, t_hi = _total("time", states, plan, once_s, tol, confidence, notes)
    energy_j, e_lo, e_hi = _total("energy", states, plan, once_j, tol, confidence, notes)
    observed = sum(w.duration_s for w in windows_) + once_s
    return DryRunEstimate(time_s, t_lo, t_hi, energy_j, e_lo, e_hi, confidence, plan,
                          states[TRAIN], states.get(EVAL), once_s, once_j, float(observed),
                          energy_method, notes=tuple(notes))


def _total(name: str, states: dict[str, Steady], plan: Plan, once: float, tol: float,
           confidence: float, notes: list[str]) -> tuple[float, float, float]:
    """(prediction, low, high) of one quantity (``time`` or ``energy``) over the planned run:
    a t interval with m − 1 degrees of freedom (m steady training windows) on the kinds'
    standard errors added in quadrature, widened by their drift allowances; NaN bounds with
    fewer than :data:`MIN_WINDOWS_FOR_INTERVAL` steady training windows (noted)."""
    total, var, allowance = once, 0.0, 0.0
    for kind, st in states.items():
        q = getattr(st, name)
        total += q.project(plan.total_steps(kind))
        se, allow = q.uncertainty(plan.total_steps(kind), tol)
        var, allowance = var + se ** 2, allowance + allow
        if kind != TRAIN and q.n_steady < MIN_WINDOWS_FOR_INTERVAL:
            notes.append(f"{kind} {name}: {q.n_steady} steady window(s): ±{tol:.0%} of its "
                         f"projected part in the interval")
    m = getattr(states[TRAIN], name).n_steady
    if m < MIN_WINDOWS_FOR_INTERVAL:
        notes.append(f"no {name} interval: fewer than {MIN_WINDOWS_FOR_INTERVAL} steady "
                     f"training windows")
        return float(total), math.nan, math.nan
    half = stats.t.ppf((1 + confidence) / 2, m - 1) * math.sqrt(var) + allowance
    return float(total), float(total - half), float(total + half)


# -- windows from a run folder ----------------------------------------------------------------
def _column(df: pd.DataFrame, name: str) -> np.ndarray:
    return pd.to_numeric(df[name], errors="coerce").to_numpy(dtype=float)


def _on_gpu(samples: pd.DataFrame) -> bool:
    return bool(np.isfinite(_column(samples, "gpu_power_w")).any())


def _window_energy(run: ProjectRun, start_s: float, end_s: float) -> tuple[float, float, str]:
    """(energy J, smooth J, method) over [start_s, end_s] of the component the run's energy
    comes from, by the run table's rules (docs/methods.md#energy): the GPUs (NVML counter where
    it covers the window, else the power trapezoid) where any GPU power was sampled, else the
    CPU (RAPL, else the TDP × process-utilisation estimate). ``smooth`` is the same energy from
    the power trapezoid (GPUs, CPU estimate) or the RAPL counter, which resolve short windows."""
    s = run.samples
    t = _column(s, "monotonic_s")
    w = windows.Window(start_s, end_s, "")
    if _on_gpu(s):
        gpu = s["gpu_index"].to_numpy()
        per_gpu = [(t[sel], _column(s, "gpu_power_w")[sel], _column(s, "gpu_energy_counter_j")[sel])
                   for sel in (gpu == g for g in pd.unique(gpu[pd.notna(gpu)]))]
        e, method, trap = energy.gpu_energy_j(per_gpu, "no GPU power samples", w)
        return e, trap, f"gpu:{method}"
    meta = run.metadata
    tdp = float((meta.get("cpu_power") or {}).get("tdp_w") or math.nan)
    cores = float((meta.get("host") or {}).get("logical_cores") or math.nan)
    power = rules.process_cpu_power_estimate_w(tdp, _column(s, "process_cpu_pct"), cores)
    e, method = energy.cpu_energy_j(t, _column(s, "cpu_energy_counter_j"), power,
                                    rules.process_cpu_estimate_method(tdp),
                                    "no CPU power samples", w)
    smooth = e if method == rules.RAPL else energy.window_trapezoid_j(t, power, start_s, end_s)
    return e, smooth, f"cpu:{method}"


def _segment_energies(run: ProjectRun, segments: Sequence[tuple[float, float]]
                      ) -> tuple[list[float], str]:
    """Energies (J) of ``(start_s, end_s)`` segments, and their method.

    Each is the segment's smooth energy (:func:`_window_energy`) times c, the ratio of the run's
    energy rule to the smooth energy over the span from the first sample to the last segment's
    end (1 where they are the same measurement): an NVML counter moves in ~100-ms steps, too
    coarse for sub-second windows, so its level is carried over the longest span measured so
    far (nothing after the last segment is used)."""
    first = float(np.nanmin(_column(run.samples, "monotonic_s")))
    end = max(t1 for _, t1 in segments)
    rule_j, smooth_j, method = _window_energy(run, first, end)
    smooth = [_window_energy(run, t0, t1)[1] for t0, t1 in segments]
    if method != f"gpu:{rules.NVML_COUNTER}" or not rule_j > 0 or not smooth_j > 0:
        return smooth, method if method != f"gpu:{rules.NVML_COUNTER}" else "gpu:trapezoid"
    c = rule_j / smooth_j
    return ([e * c for e in smooth],
            f"gpu:trapezoid x {c:.4f} (scaled to nvml_counter over {end - first:.1f} s)")


def _windows_between(run: ProjectRun, edges: Sequence[tuple[str, float, float, float]],
                     once: tuple[float, float] | None = None
                     ) -> tuple[list[Window], float, str]:
    """Windows from ``(kind, steps, start_s, end_s)`` edges with their energies
    (:func:`_segment_energies`), the energy (J) of the one-off segment ``once`` (start_s,
    end_s; 0 without), and the energy method."""
    segments = [(t0, t1) for *_, t0, t1 in edges] + ([once] if once else [])
    energies, method = _segment_energies(run, segments)
    out = [Window(kind, steps, t0, t1, e, e / (t1 - t0) if t1 > t0 else math.nan)
           for (kind, steps, t0, t1), e in zip(edges, energies, strict=False)]
    return out, energies[-1] if once else 0.0, method


def _event_times(run: ProjectRun, name: str) -> np.ndarray:
    ev = run.events
    return _column(ev[ev["event"] == name], "monotonic_s")


def measured_training(run: ProjectRun) -> tuple[float, float, str]:
    """The training window of a run (docs/methods.md#energy-windows): (duration s, energy J,
    method), by the same rules as the run table's ``training_duration_s`` and
    ``training_energy_j``."""
    t = _column(run.samples, "monotonic_s")
    w = windows.training_window(run.events["event"].to_numpy(dtype=object),
                                _column(run.events, "monotonic_s"), t)
    e, _, method = _window_energy(run, w.start_s, w.end_s)
    return w.duration_s, e, method


def dry_run_windows(run: ProjectRun) -> tuple[float, float, list[Window], str]:
    """A dry run's one-off segment and windows from its events: (once s, once J, windows,
    energy method). The one-off segment runs from ``warmup_start`` (if any) to
    :data:`DRY_RUN_START`; each :data:`WINDOW_END_EVENTS` event ends a window that began at the
    previous edge."""
    ev = run.events
    start = _event_times(run, DRY_RUN_START)
    if start.size != 1:
        raise NotEstimableError(f"{run.run_dir}: expected one {DRY_RUN_START!r} event, "
                                f"found {start.size}")
    edges, prev = [], float(start[0])
    for row in ev[ev["event"].isin(list(WINDOW_END_EVENTS))].itertuples(index=False):
        info = row.info if isinstance(row.info, dict) else {}
        steps = float(info.get("steps", math.nan))
        edges.append((WINDOW_END_EVENTS[row.event], steps, prev, float(row.monotonic_s)))
        prev = float(row.monotonic_s)
    if not edges:
        raise NotEstimableError(f"{run.run_dir}: no measured windows")
    warm = _event_times(run, "warmup_start")
    once = (float(warm.min()), float(start[0])) if warm.size else None
    wins, once_j, method = _windows_between(run, edges, once)
    return (once[1] - once[0] if once else 0.0), once_j, wins, method


# -- replay of recorded runs ------------------------------------------------------------------
@dataclass(frozen=True)
class Replay:
    """A recorded run replayed from its first ``observed_s`` seconds of training, against what
    was measured over its whole training window."""

    run_dir: Path
    observed_s: float
    epochs_observed: int
    estimate: DryRunEstimate
    actual_time_s: float
    actual_energy_j: float

    def errors_pct(self) -> tuple[float, float]:
        """Signed errors (%) of the predicted time and energy ((predicted − actual) ÷ actual)."""
        return ((self.estimate.time_s / self.actual_time_s - 1) * 100,
                (self.estimate.energy_j / self.actual_energy_j - 1) * 100)


def plan_of(meta: dict[str, Any], epochs: int) -> Plan:
    """The run's plan from its metadata (``images_per_epoch`` or ``train_size``, ``batch_size``,
    ``val_size``) with ``epochs`` epochs."""
    bs = meta.get("batch_size")
    images = meta.get("images_per_epoch") or meta.get("train_size")
    if not bs or not images:
        raise NotEstimableError("metadata lacks batch_size or images_per_epoch/train_size")
    return Plan(epochs, float(images // bs), float(meta.get("val_size") or 0) / bs)


def _epoch_edges(run: ProjectRun, end_s: float, split: int, eval_steps: float,
                 train_steps: float) -> tuple[list[tuple[str, float, float, float]], int]:
    """Window edges of the epochs whose training part ended by ``end_s``: ``split`` equal-time
    training windows per epoch and its evaluation (if it ended by ``end_s`` too)."""
    edges, epochs = [], 0
    for epoch, i0, i1 in windows.epoch_event_pairs(run.events["event"], run.events["epoch"]):
        ev = run.events
        t0, t_end = float(ev["monotonic_s"].iloc[i0]), float(ev["monotonic_s"].iloc[i1])
        evals = _column(ev[(ev["event"] == "eval_start") & (ev["epoch"] == epoch)], "monotonic_s")
        t_eval = float(evals[0]) if evals.size else t_end
        if t_eval > end_s:
            break
        cuts = np.linspace(t0, t_eval, split + 1)
        edges += [(TRAIN, train_steps / split, a, b) for a, b in zip(cuts[:-1], cuts[1:],
                                                                         strict=True)]
        if eval_steps > 0 and t_end <= end_s and t_end > t_eval:
            edges.append((EVAL, eval_steps, t_eval, t_end))
        epochs += 1
    return edges, epochs


def replay_run(run: ProjectRun | str | Path, observed_fraction: float | None = 0.3,
               observed_s: float | None = None, split: int = 4, **kwargs: Any) -> Replay:
    """Replay a recorded run (raw project format, with epoch and ``eval_start`` events) from the
    first ``observed_s`` seconds of its training window (or ``observed_fraction`` of it), and
    predict its training window as a dry run would.

    Only epochs whose training part ended in the observed time are used; each is cut into
    ``split`` equal-time windows with its steps shared out evenly (within an epoch the steps
    are not marked). Epoch 0 holds the first steps' warm-up, which even cuts spread over the
    epoch, so its windows are warm-up by rule. ``kwargs`` go to :func:`estimate`."""
    run = run if isinstance(run, ProjectRun) else read_run(run)
    actual_s, actual_j, _ = measured_training(run)
    if (observed_s is None) == (observed_fraction is None):
        raise ValueError("give exactly one of observed_s and observed_fraction")
    obs = observed_s if observed_s is not None else observed_fraction * actual_s
    epochs = int(run.metadata.get("epochs_trained") or run.metadata.get("epochs") or 0)
    plan = plan_of(run.metadata, epochs)
    warm = _event_times(run, "warmup_start")
    starts = _event_times(run, "epoch_start")
    if not starts.size:
        raise NotEstimableError(f"{run.run_dir}: no epoch_start events")
    t_start = float(warm.min()) if warm.size else float(starts.min())
    edges, n_epochs = _epoch_edges(run, t_start + obs, split, plan.eval_steps_per_epoch,
                                   plan.steps_per_epoch)
    if n_epochs < 2:
        raise NotEstimableError(f"{n_epochs} epoch(s) trained in the first {obs:.1f} s: a "
                                f"replay needs 2 (epoch 0 is warm-up by rule)")
    wins, once_j, method = _windows_between(
        run, edges, (t_start, float(starts.min())) if warm.size else None)
    kwargs = {"min_window": split, **kwargs}
    est = estimate(wins, plan, float(starts.min()) - t_start, once_j, method, **kwargs)
    return Replay(run.run_dir, float(obs), n_epochs, est, actual_s, actual_j)


def replay_table(run_dirs: Sequence[str | Path], observed_fraction: float | None = 0.3,
                 observed_s: float | None = None, **kwargs: Any) -> pd.DataFrame:
    """:func:`replay_run` for every run folder: one row each with the prediction, its interval,
    the measured training window and the signed errors (%); a run that cannot be replayed gets
    NaN and the reason."""
    rows = []
    for d in run_dirs:
        run = read_run(d)
        actual_s, actual_j, _ = measured_training(run)
        row: dict[str, Any] = {"run_dir": str(d), "actual_time_s": actual_s,
                               "actual_energy_j": actual_j}
        try:
            r = replay_run(run, observed_fraction, observed_s, **kwargs)
        except NotEstimableError as err:
            rows.append({**row, "reason": err.reason})
            continue
        est = r.estimate
        time_err, energy_err = r.errors_pct()
        rows.append({**row, "observed_s": r.observed_s,
                     "observed_fraction": r.observed_s / r.actual_time_s,
                     "epochs_observed": r.epochs_observed,
                     "predicted_time_s": est.time_s, "time_low_s": est.time_low_s,
                     "time_high_s": est.time_high_s, "actual_time_s": r.actual_time_s,
                     "time_error_pct": time_err, "predicted_energy_j": est.energy_j,
                     "energy_low_j": est.energy_low_j, "energy_high_j": est.energy_high_j,
                     "actual_energy_j": r.actual_energy_j, "energy_error_pct": energy_err,
                     "energy_in_interval": bool(est.energy_low_j <= r.actual_energy_j
                                                <= est.energy_high_j)
                     if math.isfinite(est.energy_low_j) else None,
                     "energy_method": est.energy_method, "reason": ""})
    return pd.DataFrame(rows)
