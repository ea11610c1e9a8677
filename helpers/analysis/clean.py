"""Cleaning steps with a ledger: every removed run is listed with the step and its reason.

Reference sequence (docs/methods.md#cleaning): non-zero return code → missing RAM / FLOPs /
model metrics → fewer than ``min_epochs`` → sampling period longer than an epoch →
IsolationForest (contamination 0.1, seeded) per (environment, architecture). Before those, runs
whose raw logs were unusable (no GPU samples) are removed with the reader's reason.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from sklearn.ensemble import IsolationForest

#: Features the outlier detector looks at (per group).
OUTLIER_FEATURES = ("energy_j", "duration_s", "gpu_power_mean_w", "device_power_mean_w")


@dataclass
class CleaningLedger:
    """Counts per step and the reason for every removed run."""

    steps: list[dict] = field(default_factory=list)
    removed: list[dict] = field(default_factory=list)

    def apply(self, runs: pd.DataFrame, step: str,
              reasons: Callable[[pd.DataFrame], pd.Series]) -> pd.DataFrame:
        """Remove the runs for which ``reasons(runs)`` gives a non-empty string; record them."""
        why = reasons(runs).reindex(runs.index).fillna("")
        drop = why != ""
        for run_id, reason in zip(runs.loc[drop, "run_id"], why[drop], strict=True):
            self.removed.append({"run_id": run_id, "step": step, "reason": reason})
        kept = runs.loc[~drop]
        self.steps.append({"step": step, "runs_in": len(runs), "removed": int(drop.sum()),
                           "runs_out": len(kept)})
        return kept

    def steps_table(self) -> pd.DataFrame:
        """One row per step: runs in, removed, runs out."""
        return pd.DataFrame(self.steps, columns=["step", "runs_in", "removed", "runs_out"])

    def removed_table(self) -> pd.DataFrame:
        """One row per removed run: run_id, step, reason."""
        return pd.DataFrame(self.removed, columns=["run_id", "step", "reason"])


def _reason_where(mask: pd.Series, text: str | pd.Series) -> pd.Series:
    out = pd.Series("", index=mask.index, dtype=object)
    out[mask] = text[mask] if isinstance(text, pd.Series) else text
    return out


def unusable_logs(runs: pd.DataFrame) -> pd.Series:
    """Runs without GPU (or, for CPU-only datasets, any) samples: reason from the reader."""
    empty = runs["n_samples"].fillna(0) < 2
    why = runs.get("read_problem", pd.Series("", index=runs.index)).fillna("")
    text = ("fewer than 2 samples" + np.where(why != "", ": " + why, "")).astype(object)
    return _reason_where(empty, pd.Series(text, index=runs.index))


def failed_runs(runs: pd.DataFrame) -> pd.Series:
    """Non-zero return code or a non-'ok' status."""
    rc = runs["return_code"].fillna(0)
    status = runs["status"].fillna("ok").astype(str)
    bad = (rc != 0) | (status != "ok")
    text = "status " + status + ", return code " + rc.astype("int64").astype(str)
    return _reason_where(bad, text)


def missing_inputs(runs: pd.DataFrame, min_ram_coverage: float = 0.9) -> pd.Series:
    """Missing model metrics, FLOPs, or RAM data (RAM samples matched for fewer than
    ``min_ram_coverage`` of the GPU samples, e.g. a truncated CPU log)."""
    parts = []
    for col, label in (("f1", "no model metrics (F1)"), ("gflops", "no FLOPs")):
        parts.append(np.where(runs[col].isna(), label, ""))
    coverage = runs["ram_coverage"].fillna(0.0)
    parts.append(np.where(coverage < min_ram_coverage,
                          "RAM samples for " + (coverage * 100).round(1).astype(str)
                          + "% of the run", ""))
    text = pd.Series(["; ".join(p for p in row if p) for row in zip(*parts, strict=True)],
                     index=runs.index, dtype=object)
    return text


def too_few_epochs(runs: pd.DataFrame, min_epochs: int) -> pd.Series:
    """Runs that trained fewer than ``min_epochs`` epochs."""
    few = runs["epochs"].fillna(0) < min_epochs
    return _reason_where(few, "trained " + runs["epochs"].astype("Int64").astype(str)
                         + f" epochs < {min_epochs}")


def coarse_sampling(runs: pd.DataFrame) -> pd.Series:
    """Sampling period longer than one epoch (epoch duration = duration / epochs)."""
    epoch_s = runs["duration_s"] / runs["epochs"]
    coarse = runs["sampling_period_s"] > epoch_s
    return _reason_where(coarse, "sampling period " + runs["sampling_period_s"].round(2)
                         .astype(str) + " s > epoch " + epoch_s.round(2).astype(str) + " s")


def isolation_outliers(runs: pd.DataFrame, contamination: float = 0.1, seed: int = 0,
                       by: tuple[str, ...] = ("environment", "architecture"),
                       features: tuple[str, ...] = OUTLIER_FEATURES) -> pd.Series:
    """IsolationForest per group on the available ``features`` (standardised within the group).
    Groups with fewer than 10 runs are left alone (recorded in no reason)."""
    out = pd.Series("", index=runs.index, dtype=object)
    cols = [f for f in features if f in runs.columns and runs[f].notna().all()]
    if not cols:
        return out
    for key, grp in runs.groupby(list(by), sort=True):
        if len(grp) < 10:
            continue
        x = grp[cols].to_numpy(dtype=float)
        x = (x - x.mean(axis=0)) / np.where(x.std(axis=0) > 0, x.std(axis=0), 1.0)
        forest = IsolationForest(contamination=contamination, random_state=seed)
        flags = forest.fit_predict(x) == -1
        out[grp.index[flags]] = (f"IsolationForest outlier in {'/'.join(map(str, key))} "
                                 f"(contamination {contamination}, features {', '.join(cols)})")
    return out


def clean_runs(runs: pd.DataFrame, min_epochs: int = 20, contamination: float | None = 0.1,
               seed: int = 0, min_ram_coverage: float = 0.9
               ) -> tuple[pd.DataFrame, CleaningLedger]:
    """Apply the reference sequence; returns the kept runs and the ledger."""
    ledger = CleaningLedger()
    kept = ledger.apply(runs, "unusable raw logs", unusable_logs)
    kept = ledger.apply(kept, "failed run (return code / status)", failed_runs)
    kept = ledger.apply(kept, "missing RAM / FLOPs / model metrics",
                        lambda r: missing_inputs(r, min_ram_coverage))
    kept = ledger.apply(kept, f"fewer than {min_epochs} epochs",
                        lambda r: too_few_epochs(r, min_epochs))
    kept = ledger.apply(kept, "sampling period longer than an epoch", coarse_sampling)
    if contamination:
        kept = ledger.apply(kept, "IsolationForest outliers",
                            lambda r: isolation_outliers(r, contamination, seed))
    return kept.reset_index(drop=True), ledger
