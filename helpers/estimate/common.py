"""What the estimators share: the not-estimable signal and argument checks."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd


class NotEstimableError(ValueError):
    """An estimator cannot be computed for this run; ``reason`` says why."""

    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(reason)


def nonnegative_array(x: float | Sequence[float] | np.ndarray | pd.Series, name: str) -> np.ndarray:
    """Float array of ``x``; raises ``ValueError`` for negative values (NaN passes through)."""
    a = np.asarray(x, dtype=float)
    if np.any(a < 0):
        raise ValueError(f"{name} must be non-negative")
    return a


def scalar_or_array(a: np.ndarray) -> float | np.ndarray:
    """Return a Python float for 0-d results, the array otherwise."""
    return float(a) if a.ndim == 0 else a


