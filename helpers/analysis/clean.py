"""Cleaning steps with a ledger: every removed run is listed with the step and its reason.

Reference sequence (docs/methods.md#cleaning): non-zero return code → missing RAM samples →
fewer than ``min_epochs`` → sampling period longer than an epoch → IsolationForest
(contamination 0.1, seeded) per (environment, architecture). Before those, runs whose raw logs
were unusable (no samples, and no energy from a per-run source) are removed with the reader's
reason. Missing model metrics (F1, FLOPs, accuracy, parameters) never remove a run: they stay NaN
and a skipped step in the ledger says how many runs lack them. A step that cannot apply to the
dataset (no RAM samples at all, no epoch counts, no group of 10 runs) is recorded as skipped with
its reason; a step that would leave no run stops the cleaning with :class:`NoRunsLeftError`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from sklearn.ensemble import IsolationForest

from helpers.analysis import parameters

#: Features the outlier detector looks at (per group): the training window's, else the run's
#: (``training_<name>`` where the table has it, else ``<name>``).
OUTLIER_FEATURES = ("energy_j", "duration_s", "gpu_power_mean_w", "device_power_mean_w")
#: Model metrics that are kept NaN (never a reason to remove a run).
MODEL_METRICS = ("f1", "gflops", "accuracy", "params")
#: Those the study's cleaning required (its "missing inputs" step), noted when absent.
REQUIRED_BY_STUDY = ("f1", "gflops")
#: Groups smaller than this are left alone by the outlier step.
MIN_OUTLIER_GROUP = 10


class NoRunsLeftError(RuntimeError):
    """A cleaning step removed every remaining run: names the step, the count before it and the
    most frequent reasons; ``ledger`` holds the steps so far."""

    def __init__(self, step: str, runs_in: int, ledger: CleaningLedger) -> None:
        self.step, self.runs_in, self.ledger = step, runs_in, ledger
        why = ledger.removed_table()
        why = why.loc[why["step"] == step, "reason"].value_counts().head(3)
        reasons = "; ".join(f"{r} ({n})" for r, n in why.items())
        super().__init__(f"cleaning step {step!r} removed all {runs_in} remaining runs "
                         f"({reasons}): change its parameter or check the data")


@dataclass
class CleaningLedger:
    """Counts per step and the reason for every removed run."""

    steps: list[dict] = field(default_factory=list)
    removed: list[dict] = field(default_factory=list)

    def apply(self, runs: pd.DataFrame, step: str,
              reasons: Callable[[pd.DataFrame], pd.Series], note: str = "") -> pd.DataFrame:
        """Remove the runs for which ``reasons(runs)`` gives a non-empty string; record them.
        Raises :class:`NoRunsLeftError` when that removes every run."""
        why = reasons(runs).reindex(runs.index).fillna("")
        drop = why != ""
        for run_id, reason in zip(runs.loc[drop, "run_id"], why[drop], strict=True):
            self.removed.append({"run_id": run_id, "step": step, "reason": reason})
        kept = runs.loc[~drop]
        self.steps.append({"step": step, "runs_in": len(runs), "removed": int(drop.sum()),
                           "runs_out": len(kept), "note": note})
        if len(runs) and kept.empty:
            raise NoRunsLeftError(step, len(runs), self)
        return kept

    def skip(self, runs: pd.DataFrame, step: str, note: str) -> pd.DataFrame:
        """Record ``step`` as skipped (nothing removed) with ``note`` saying why."""
        self.steps.append({"step": step, "runs_in": len(runs), "removed": 0,
                           "runs_out": len(runs), "note": f"skipped: {note}"})
        return runs

    def steps_table(self) -> pd.DataFrame:
        """One row per step: runs in, removed, runs out, and a note (why a step was skipped,
        how a parameter was chosen)."""
        return pd.DataFrame(self.steps, columns=["step", "runs_in", "removed", "runs_out",
                                                 "note"])

    def removed_table(self) -> pd.DataFrame:
        """One row per removed run: run_id, step, reason."""
        return pd.DataFrame(self.removed, columns=["run_id", "step", "reason"])


def _reason_where(mask: pd.Series, text: str | pd.Series) -> pd.Series:
    out = pd.Series("", index=mask.index, dtype=object)
    out[mask] = text[mask] if isinstance(text, pd.Series) else text
    return out


def unusable_logs(runs: pd.DataFrame) -> pd.Series:
    """Runs with fewer than 2 samples and no energy from a per-run source (CodeCarbon rows
    carry their energy without samples): reason from the reader."""
    per_run = np.isfinite(pd.to_numeric(runs["energy_j"], errors="coerce").astype(float)) \
        if "energy_j" in runs else pd.Series(False, index=runs.index)
    empty = (runs["n_samples"].fillna(0) < 2) & ~per_run
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


def missing_ram(runs: pd.DataFrame, min_ram_coverage: float = 0.9) -> pd.Series:
    """RAM samples matched for fewer than ``min_ram_coverage`` of the samples (e.g. a truncated
    CPU log). Runs without samples (``ram_coverage`` NaN: a per-run source) are not judged."""
    coverage = runs["ram_coverage"].astype(float)
    low = coverage.notna() & (coverage < min_ram_coverage)
    return _reason_where(low, "RAM samples for " + (coverage * 100).round(1).astype(str)
                         + "% of the run")


def has_ram_samples(runs: pd.DataFrame) -> bool:
    """Whether any run has RAM samples (a dataset without any is not judged on them)."""
    return "ram_coverage" in runs and bool(runs["ram_coverage"].fillna(0).gt(0).any())


def missing_metrics_note(runs: pd.DataFrame, metrics: tuple[str, ...] = REQUIRED_BY_STUDY
                         ) -> str:
    """How many runs lack each of ``metrics`` (empty when none lacks any)."""
    counts = {c: int(runs[c].isna().sum()) if c in runs else len(runs) for c in metrics}
    counts = {c: n for c, n in counts.items() if n}
    if not counts:
        return ""
    lacking = ", ".join(f"{n} without {c}" for c, n in counts.items())
    return (f"{lacking}: kept (missing model metrics stay NaN; the analyses that need them "
            "list the runs as not estimable)")


def model_metrics_missing(runs: pd.DataFrame) -> pd.Series:
    """Per run: which of :data:`MODEL_METRICS` the source does not give (``''`` if none)."""
    parts = [np.where(runs[c].isna() if c in runs else np.ones(len(runs), bool), c, "")
             for c in MODEL_METRICS]
    return pd.Series([", ".join(p for p in row if p) for row in zip(*parts, strict=True)],
                     index=runs.index, dtype=object)


def too_few_epochs(runs: pd.DataFrame, min_epochs: int) -> pd.Series:
    """Runs that trained fewer than ``min_epochs`` epochs (runs without an epoch count are not
    judged)."""
    epochs = pd.to_numeric(runs["epochs"], errors="coerce")
    few = epochs.notna() & (epochs < min_epochs)
    return _reason_where(few, "trained " + epochs.astype("Int64").astype(str)
                         + f" epochs < {min_epochs}")


def coarse_sampling(runs: pd.DataFrame) -> pd.Series:
    """Sampling period longer than one epoch (epoch duration = training duration / epochs)."""
    duration = runs["training_duration_s"] if "training_duration_s" in runs \
        else runs["duration_s"]
    epoch_s = duration / runs["epochs"]
    coarse = runs["sampling_period_s"] > epoch_s
    return _reason_where(coarse, "sampling period " + runs["sampling_period_s"].round(2)
                         .astype(str) + " s > epoch " + epoch_s.round(2).astype(str) + " s")


def outlier_columns(runs: pd.DataFrame, features: tuple[str, ...] = OUTLIER_FEATURES
                    ) -> list[str]:
    """The columns the outlier step uses: ``training_<f>`` where present, else ``f``, for each
    feature with a value in every run."""
    cols = [f"training_{f}" if f"training_{f}" in runs.columns else f for f in features]
    return [c for c in cols if c in runs.columns and runs[c].notna().all()]


def isolation_outliers(runs: pd.DataFrame, contamination: float = 0.1, seed: int = 0,
                       by: tuple[str, ...] = ("environment", "architecture"),
                       features: tuple[str, ...] = OUTLIER_FEATURES) -> pd.Series:
    """IsolationForest per group on the available ``features`` (:func:`outlier_columns`,
    standardised within the group). Groups with fewer than 10 runs are left alone (recorded in
    no reason)."""
    out = pd.Series("", index=runs.index, dtype=object)
    cols = outlier_columns(runs, features)
    if not cols:
        return out
    for key, grp in runs.groupby(list(by), sort=True):
        if len(grp) < MIN_OUTLIER_GROUP:
            continue
        x = grp[cols].to_numpy(dtype=float)
        x = (x - x.mean(axis=0)) / np.where(x.std(axis=0) > 0, x.std(axis=0), 1.0)
        forest = IsolationForest(contamination=contamination, random_state=seed)
        flags = forest.fit_predict(x) == -1
        out[grp.index[flags]] = (f"IsolationForest outlier in {'/'.join(map(str, key))} "
                                 f"(contamination {contamination}, features {', '.join(cols)})")
    return out


def clean_runs(runs: pd.DataFrame, min_epochs: int | None = None,
               contamination: float | None = 0.1, seed: int = 0, min_ram_coverage: float = 0.9
               ) -> tuple[pd.DataFrame, CleaningLedger]:
    """Apply the reference sequence; returns the kept runs and the ledger. ``min_epochs`` None
    derives it from the data (:func:`helpers.analysis.parameters.derive_min_epochs`); a step
    that would remove every run raises :class:`NoRunsLeftError`."""
    ledger = CleaningLedger()
    if runs.empty:
        raise NoRunsLeftError("input", 0, ledger)
    kept = ledger.apply(runs, "unusable raw logs", unusable_logs)
    kept = ledger.apply(kept, "failed run (return code / status)", failed_runs)
    if has_ram_samples(kept):
        kept = ledger.apply(kept, "missing RAM samples",
                            lambda r: missing_ram(r, min_ram_coverage))
    else:
        kept = ledger.skip(kept, "missing RAM samples", "no run has RAM samples (RAM energy is "
                           "unmeasured)")
    note = missing_metrics_note(kept)
    if note:
        kept = ledger.skip(kept, "missing model metrics (F1 / FLOPs)", note)
    how = "set in the notebook"
    if min_epochs is None:
        min_epochs, how = parameters.derive_min_epochs(kept)
    if min_epochs is None:
        kept = ledger.skip(kept, "too few epochs", how)
    else:
        kept = ledger.apply(kept, f"fewer than {min_epochs} epochs",
                            lambda r: too_few_epochs(r, min_epochs), note=f"min_epochs: {how}")
    kept = ledger.apply(kept, "sampling period longer than an epoch", coarse_sampling)
    if contamination:
        sizes = kept.groupby(["environment", "architecture"]).size()
        if (sizes >= MIN_OUTLIER_GROUP).any():
            kept = ledger.apply(kept, "IsolationForest outliers",
                                lambda r: isolation_outliers(r, contamination, seed))
        else:
            kept = ledger.skip(kept, "IsolationForest outliers",
                               f"no (environment, architecture) group has {MIN_OUTLIER_GROUP} "
                               "runs")
    return kept.reset_index(drop=True), ledger
