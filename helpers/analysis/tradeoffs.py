"""Energy vs correctness trade-offs across architectures and environments
(docs/methods.md#trade-offs).

Inputs are per-run tables with :data:`helpers.core.schema.RUN_COLUMNS`
(``processed/runs.parquet``). Every variable covers the training window
(docs/methods.md#energy-windows): energy is normalised per image seen (``energy_per_image_j`` =
training_energy_j / images_seen, J), likewise time per image (``time_per_image_s``, s), and the
GPU usage is the training window's mean (``training_gpu_usage_mean``). Group statistics are
medians with the interquartile range, because the per-group distributions are skewed and the
battery in :mod:`helpers.analysis.stats` is rank based whenever normality fails.

Savings of architecture A against B inside one environment are computed on group medians:
``energy_saved_pct = 100 · (1 − median_E(A) / median_E(B))`` and
``f1_lost = median_F1(B) − median_F1(A)`` (positive: A is less accurate). The pair's p-values are
the post-hoc p-values of the battery run on that environment's runs (Games–Howell or Dunn–Holm,
whichever path :func:`helpers.analysis.stats.compare_groups` took), and δ is Cliff's δ of A
against B (negative: A uses less energy / has lower F1).
"""

from __future__ import annotations

from collections.abc import Sequence
from itertools import combinations

import numpy as np
import pandas as pd

from helpers.analysis import stats

#: Variables compared by the battery in notebook 04: column -> display label (unit).
TRADEOFF_VARIABLES: dict[str, str] = {
    "energy_per_image_j": "energy per image (J)",
    "training_gpu_usage_mean": "GPU usage (fraction)",
    "time_per_image_s": "time per image (s)",
    "f1": "F1",
}
#: Columns of :func:`group_summary` after the group keys.
SUMMARY_COLUMNS = ["variable", "n", "median", "q1", "q3", "iqr"]


def group_summary(runs: pd.DataFrame, values: Sequence[str],
                  by: Sequence[str] = ("environment", "architecture")) -> pd.DataFrame:
    """Median, quartiles and IQR of each column in ``values`` per group of ``by``.

    Columns: [by...], variable, n (non-NaN runs), median, q1, q3, iqr. Groups whose variable is
    all NaN keep a row with n = 0 and NaN statistics (so the gap is visible)."""
    rows = []
    for key, sub in runs.groupby(list(by), sort=True):
        key = key if isinstance(key, tuple) else (key,)
        for v in values:
            x = pd.to_numeric(sub[v], errors="raise").dropna()
            q1, med, q3 = (x.quantile([0.25, 0.5, 0.75]).to_numpy() if len(x)
                           else (np.nan, np.nan, np.nan))
            rows.append({**dict(zip(by, key, strict=True)), "variable": v, "n": len(x),
                         "median": med, "q1": q1, "q3": q3, "iqr": q3 - q1})
    return pd.DataFrame(rows, columns=[*by, *SUMMARY_COLUMNS])


def median_table(runs: pd.DataFrame, value: str, index: str = "architecture",
                 columns: str = "environment") -> pd.DataFrame:
    """Median of ``value`` as an ``index`` × ``columns`` table (for printing)."""
    return runs.pivot_table(index=index, columns=columns, values=value, aggfunc="median")


def _comparison(sub: pd.DataFrame, value: str, arch: str, alpha: float
                ) -> stats.ComparisonResult | None:
    """Battery on one environment's runs, or None when fewer than 2 groups have values."""
    data = sub[[arch, value]].dropna()
    return stats.compare_groups(sub, value, arch, alpha) if data[arch].nunique() >= 2 else None


def _pair_p(res: stats.ComparisonResult | None, a: object, b: object) -> tuple[float, str]:
    """Post-hoc p-value and test name for the unordered pair {a, b} (NaN, '' if absent)."""
    if res is None or res.posthoc.empty:
        return float("nan"), ""
    post = res.posthoc
    hit = post[((post["group_a"] == a) & (post["group_b"] == b))
               | ((post["group_a"] == b) & (post["group_b"] == a))]
    return (float(hit["p_adj"].iloc[0]), str(hit["test"].iloc[0])) if len(hit) else (np.nan, "")


def pair_saving(runs: pd.DataFrame, saver: str, reference: str, energy: str = "energy_per_image_j",
                quality: str = "f1", arch: str = "architecture",
                results: tuple[stats.ComparisonResult | None, stats.ComparisonResult | None]
                | None = None, alpha: float = 0.05) -> dict[str, object]:
    """Saving of architecture ``saver`` against ``reference`` within ``runs`` (one environment).

    Returns a dict: saver, reference, n_saver, n_reference, energy medians, energy_saved_pct,
    f1 medians, f1_lost, cliffs_delta_energy (+ magnitude), p_energy, cliffs_delta_f1, p_f1,
    posthoc_test. ``results`` may pass precomputed (energy, quality) batteries for ``runs``.
    Raises ``ValueError`` if either architecture has no runs with a finite energy.
    """
    e_a = runs.loc[runs[arch] == saver, energy].dropna().to_numpy(float)
    e_b = runs.loc[runs[arch] == reference, energy].dropna().to_numpy(float)
    if len(e_a) == 0 or len(e_b) == 0:
        raise ValueError(f"no {energy!r} values for {saver!r} ({len(e_a)}) or {reference!r} "
                         f"({len(e_b)})")
    q_a = runs.loc[runs[arch] == saver, quality].dropna().to_numpy(float)
    q_b = runs.loc[runs[arch] == reference, quality].dropna().to_numpy(float)
    if results is None:
        results = (_comparison(runs, energy, arch, alpha), _comparison(runs, quality, arch, alpha))
    p_e, test_e = _pair_p(results[0], saver, reference)
    p_q, _ = _pair_p(results[1], saver, reference)
    med = (lambda x: float(np.median(x)) if len(x) else float("nan"))  # noqa: E731
    d_e = stats.cliffs_delta(e_a, e_b)
    return {
        "saver": saver, "reference": reference, "n_saver": len(e_a), "n_reference": len(e_b),
        "energy_saver": med(e_a), "energy_reference": med(e_b),
        "energy_saved_pct": 100.0 * (1.0 - med(e_a) / med(e_b)),
        f"{quality}_saver": med(q_a), f"{quality}_reference": med(q_b),
        f"{quality}_lost": med(q_b) - med(q_a),
        "cliffs_delta_energy": d_e, "magnitude_energy": stats.cliffs_magnitude(d_e),
        "p_energy": p_e, f"cliffs_delta_{quality}": stats.cliffs_delta(q_a, q_b),
        f"p_{quality}": p_q, "posthoc_test": test_e,
    }


def pairwise_savings(runs: pd.DataFrame, energy: str = "energy_per_image_j", quality: str = "f1",
                     arch: str = "architecture", env: str = "environment", alpha: float = 0.05
                     ) -> pd.DataFrame:
    """Every pair of architectures within each environment, oriented so that ``saver`` is the
    architecture with the lower median ``energy`` (``energy_saved_pct`` ≥ 0). Columns: env then
    those of :func:`pair_saving`; sorted by environment and decreasing saving."""
    rows = []
    for level, sub in runs.groupby(env, sort=True):
        results = (_comparison(sub, energy, arch, alpha), _comparison(sub, quality, arch, alpha))
        med = sub.groupby(arch)[energy].median().dropna()
        for a, b in combinations(sorted(med.index), 2):
            saver, ref = (a, b) if med[a] <= med[b] else (b, a)
            row = pair_saving(sub, saver, ref, energy, quality, arch, results, alpha)
            rows.append({env: level, **row})
    out = pd.DataFrame(rows)
    if out.empty:
        return out
    return out.sort_values([env, "energy_saved_pct"], ascending=[True, False],
                           ignore_index=True)


SPEARMAN_COLUMNS = ["environment", "x", "y", "n", "rho", "p_value"]


def spearman_pairs(runs: pd.DataFrame, pairs: Sequence[tuple[str, str]],
                   by: str = "environment") -> tuple[pd.DataFrame, list[str]]:
    """:func:`helpers.analysis.stats.spearman` of each (x, y) pair per ``by`` level; a pair whose
    column has no values is skipped with a note. Returns (table, notes)."""
    parts, notes = [], []
    for x, y in pairs:
        empty = [c for c in (x, y) if runs[c].isna().all()]
        if empty:
            notes.append(f"Spearman {x} vs {y} skipped: no values for {empty[0]}")
            continue
        parts.append(stats.spearman(runs, x, y, by=by))
    table = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(
        columns=[by, *SPEARMAN_COLUMNS[1:]])
    return table, notes


def headline_savings(runs: pd.DataFrame, saver: str, reference: str,
                     published_pct: dict[str, float | None], alpha: float = 0.05,
                     env: str = "environment", arch: str = "architecture"
                     ) -> tuple[dict[str, dict[str, object]], list[str]]:
    """:func:`pair_saving` of ``saver`` against ``reference`` in each environment named in
    ``published_pct`` (environment -> published saving %, or None). Returns (records by
    environment, with ``gpu_name`` and ``published_pct`` added and numbers as floats; one line
    per environment for display, saying why where it was skipped)."""
    records, lines = {}, []
    for level, published in published_pct.items():
        sub = runs[runs[env] == level]
        if not {saver, reference} <= set(sub[arch]):
            why = "no runs in that environment" if sub.empty else "architecture missing"
            lines.append(f"headline {saver} vs {reference} on {level} skipped: {why}")
            continue
        s = pair_saving(sub, saver, reference, arch=arch, alpha=alpha)
        gpu = ", ".join(sorted(sub["gpu_name"].unique()))
        pub = f" (published ≈ {published}%)" if published is not None else ""
        lines.append(
            f"{level} [{gpu}]: {saver} uses {s['energy_saved_pct']:.1f}% less energy per image "
            f"than {reference}{pub}; F1 {s['f1_saver']:.3f} vs {s['f1_reference']:.3f} "
            f"(difference {s['f1_lost']:.3f}); Cliff's δ {s['cliffs_delta_energy']:.2f}, "
            f"p = {s['p_energy']:.2g} ({s['posthoc_test']})")
        record = {k: float(v) if isinstance(v, (int, float, np.number)) else v
                  for k, v in s.items()}
        records[str(level)] = {**record, "gpu_name": gpu, "published_pct": published}
    return records, lines


def pareto_front(cost: Sequence[float] | np.ndarray, benefit: Sequence[float] | np.ndarray
                 ) -> np.ndarray:
    """Boolean mask of the Pareto-optimal points for (cost ↓, benefit ↑).

    A point is dominated when another point has cost ≤ and benefit ≥ with at least one strict;
    duplicated optimal points are all kept. Points with a NaN coordinate are never optimal.
    """
    c, b = np.asarray(cost, float), np.asarray(benefit, float)
    ok = ~(np.isnan(c) | np.isnan(b))
    mask = np.zeros(len(c), bool)
    for i in np.flatnonzero(ok):
        no_worse = ok & (c <= c[i]) & (b >= b[i])
        better = (c < c[i]) | (b > b[i])
        mask[i] = not np.any(no_worse & better)
    return mask


def pareto_table(runs: pd.DataFrame, cost: str = "energy_per_image_j", benefit: str = "f1",
                 by: Sequence[str] = ("environment", "architecture")) -> pd.DataFrame:
    """Group medians of ``cost`` and ``benefit`` with ``pareto`` (optimal over all groups) and
    ``pareto_within`` (optimal within the group's first ``by`` level, e.g. its environment)."""
    by = list(by)
    med = runs.groupby(by, sort=True)[[cost, benefit]].median().reset_index()
    med["n"] = runs.groupby(by, sort=True).size().to_numpy()
    med["pareto"] = pareto_front(med[cost], med[benefit])
    med["pareto_within"] = False
    for _, idx in med.groupby(by[0]).groups.items():
        sub = med.loc[idx]
        med.loc[idx, "pareto_within"] = pareto_front(sub[cost], sub[benefit])
    return med
