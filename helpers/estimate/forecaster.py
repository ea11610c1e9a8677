"""Live STEP forecast of a run's energy while it trains (docs/methods.md#estimators)."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import stats

from helpers.estimate.online import stabilisation_epoch_rule


@dataclass(frozen=True)
class Forecast:
    """A run-energy forecast (J). ``stable`` is False (and the numbers NaN) until a
    stabilisation point has been passed; ``reason`` says why not, or how the interval was
    formed."""

    energy_j: float
    low_j: float
    high_j: float
    stable: bool
    stabilisation_epoch: int | None
    epochs_observed: int
    reason: str


class StepForecaster:
    """STEP forecaster to call after every epoch of a training run.

    After epoch e (energies E_0..E_e observed, n = e + 1), once a stabilisation point s is known
    (``stabilisation_epoch`` if given, else ``stabilisation_epoch_rule``) and at least
    ``window`` epochs since s are observed, the forecast for N planned epochs is

        Ê = E_before + Σ_{i<n} E_i + m · Ē,   m = N - n remaining epochs, Ē = mean(E_s..E_e)

    (equal to ``step_energy_j`` with the window spanning every epoch since s). The interval is a
    t prediction interval for the sum of m future epochs drawn independently like E_s..E_e:
    Ê ± (t_{(1+c)/2, k-1} · sd · sqrt(m²/k + m) + r · m · Ē), k = n - s, clipped below at the
    energy already observed; r = ``systematic_rel`` is an optional allowance for drift (the t
    part assumes independent, stationary epochs and is too narrow when epoch energies drift).
    E_before (``before_epochs_j``, J) is energy observed before epoch 0 that the forecast
    target includes (the warm-up batches of the training window; 0 by default). All values are
    multiplied by ``pue``.
    """

    def __init__(self, n_epochs_planned: int, window: int = 3, cv_tol: float = 0.05,
                 min_epoch: int = 1, stabilisation_epoch: int | None = None,
                 confidence: float = 0.95, systematic_rel: float = 0.0,
                 pue: float = 1.0, before_epochs_j: float = 0.0) -> None:
        if n_epochs_planned < 1 or window < 2:
            raise ValueError("n_epochs_planned must be >= 1 and window >= 2")
        self.n_epochs_planned = n_epochs_planned
        self.window = window
        self.cv_tol = cv_tol
        self.min_epoch = min_epoch
        self.fixed_stabilisation = stabilisation_epoch
        self.confidence = confidence
        self.systematic_rel = systematic_rel
        self.pue = pue
        self.before_epochs_j = before_epochs_j
        self.energies_j: list[float] = []
        self.stabilisation: int | None = None

    def update(self, epoch: int, epoch_energy_j: float) -> Forecast:
        """Record the energy (J) of ``epoch`` (0, 1, 2, ... in order) and return a forecast."""
        if epoch != len(self.energies_j):
            raise ValueError(f"expected epoch {len(self.energies_j)}, got {epoch}")
        if not (math.isfinite(epoch_energy_j) and epoch_energy_j >= 0):
            raise ValueError(f"epoch energy must be finite and >= 0, got {epoch_energy_j}")
        self.energies_j.append(float(epoch_energy_j))
        n = len(self.energies_j)
        if self.stabilisation is None:
            if self.fixed_stabilisation is not None:
                if n >= self.fixed_stabilisation + self.window:
                    self.stabilisation = self.fixed_stabilisation
            else:
                self.stabilisation = stabilisation_epoch_rule(
                    self.energies_j, self.window, self.cv_tol, self.min_epoch)
        if self.stabilisation is None:
            return Forecast(math.nan, math.nan, math.nan, False, None, n,
                            "stabilisation point not passed yet")
        return self._forecast(n)

    def _forecast(self, n: int) -> Forecast:
        e = np.asarray(self.energies_j)
        s = self.stabilisation
        post = e[s:]
        k, m = len(post), max(self.n_epochs_planned - n, 0)
        observed = self.before_epochs_j + e.sum()
        mean, sd = post.mean(), post.std(ddof=1)
        estimate = observed + m * mean
        t = stats.t.ppf((1 + self.confidence) / 2, k - 1)
        half = t * sd * math.sqrt(m * m / k + m) + self.systematic_rel * m * mean
        reason = (f"t interval from {k} epochs since stabilisation epoch {s}"
                  if m else "planned epochs reached: forecast is the energy observed")
        low = max(observed, estimate - half)
        return Forecast(float(estimate * self.pue), float(low * self.pue),
                        float((estimate + half) * self.pue), True, s, n, reason)
