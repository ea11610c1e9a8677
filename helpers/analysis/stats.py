"""Group comparisons and correlations for the trade-off analysis (docs/methods.md#trade-offs).

Every function returns a tidy ``pandas.DataFrame`` (one row per group, pair or model term) built
from scipy, statsmodels, pingouin and scikit-posthocs; nothing here reads or writes files.

The battery run by :func:`compare_groups`, in the order of docs/methods.md#trade-offs:

1. Shapiro–Wilk per group (:func:`shapiro_by_group`).
2. Levene, median-centred (Brown–Forsythe variant, robust to non-normality) (:func:`levene`).
3. **Path rule.** If *every* group is normal (Shapiro p ≥ alpha, and the test is defined for it),
   Welch's ANOVA + Games–Howell (:func:`welch_anova`, :func:`games_howell`); otherwise
   Kruskal–Wallis with η²_H = (H − k + 1)/(n − k) + Dunn with Holm correction
   (:func:`kruskal_wallis`, :func:`dunn_holm`). Levene is computed and reported but does **not**
   switch the path: Welch's ANOVA and Games–Howell do not assume equal variances, so they are
   valid under normality whatever Levene says (with equal variances they agree with the classic
   ANOVA/Tukey). The reason recorded in ``ComparisonResult.reason`` names the deciding groups.
4. Cliff's δ for every pair (:func:`cliffs_delta_pairs`), whichever path was taken.

Edge cases (all recorded, never silent):

* rows whose value or group is NaN are dropped and counted (``n_dropped``);
* fewer than two groups left → ``ValueError``;
* a group with fewer than 3 values (Shapiro–Wilk undefined) or with all-equal values (zero range:
  scipy would return a meaningless W = 1) is treated as **non-normal**, with a ``note``; this
  sends the comparison down the rank-based path, which is defined for such groups;
* all values identical across all groups → no omnibus or post-hoc test is possible: path
  ``"untestable"``, p-values NaN with the reason; Cliff's δ is then exactly 0 for every pair.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from itertools import combinations

import numpy as np
import pandas as pd
from scipy import stats

# pingouin, scikit-posthocs and statsmodels take ~3 s to import together; they are imported in
# the functions that use them so that modules needing only Spearman/Cliff's δ load quickly.

#: Path labels of :class:`ComparisonResult`.
PATH_WELCH = "welch_anova+games_howell"
PATH_KRUSKAL = "kruskal+dunn_holm"
PATH_UNTESTABLE = "untestable"

#: Cliff's δ magnitude thresholds on |δ| (Romano et al., 2006): below 0.147 negligible, below
#: 0.33 small, below 0.474 medium, otherwise large.
CLIFF_THRESHOLDS: tuple[tuple[float, str], ...] = (
    (0.147, "negligible"),
    (0.33, "small"),
    (0.474, "medium"),
)

_MIN_SHAPIRO_N = 3


# --------------------------------------------------------------------------------------------
# Data preparation
# --------------------------------------------------------------------------------------------
def _clean(df: pd.DataFrame, value: str, group: str) -> tuple[pd.DataFrame, int]:
    """Keep ``value`` and ``group``, drop rows where either is NaN; return (frame, dropped)."""
    missing = [c for c in (value, group) if c not in df.columns]
    if missing:
        raise KeyError(f"columns not found: {', '.join(missing)}")
    sub = df[[group, value]].copy()
    sub[value] = pd.to_numeric(sub[value], errors="raise").astype(float)
    keep = sub[value].notna() & sub[group].notna()
    return sub.loc[keep].reset_index(drop=True), int((~keep).sum())


def _groups(df: pd.DataFrame, value: str, group: str) -> dict[object, np.ndarray]:
    """Values per group, groups sorted by label."""
    return {g: s.to_numpy(float) for g, s in df.groupby(group, sort=True)[value]}


def _require_two_groups(groups: dict[object, np.ndarray], value: str, group: str) -> None:
    if len(groups) < 2:
        raise ValueError(
            f"comparing {value!r} by {group!r} needs at least 2 groups with non-NaN values, "
            f"found {len(groups)}: {list(groups)}"
        )


# --------------------------------------------------------------------------------------------
# Individual tests
# --------------------------------------------------------------------------------------------
def shapiro_by_group(df: pd.DataFrame, value: str, group: str, alpha: float = 0.05) -> pd.DataFrame:
    """Shapiro–Wilk per group.

    Returns columns group, n, W, p_value, normal (bool: p ≥ alpha), note. Groups with fewer than
    3 values or zero range get W = p = NaN, ``normal=False`` and a note saying why.
    """
    data, _ = _clean(df, value, group)
    rows = []
    for g, x in _groups(data, value, group).items():
        row = {"group": g, "n": len(x), "W": np.nan, "p_value": np.nan, "normal": False,
               "note": ""}
        if len(x) < _MIN_SHAPIRO_N:
            row["note"] = f"n={len(x)} < 3: Shapiro-Wilk undefined; treated as non-normal"
        elif np.ptp(x) == 0:
            row["note"] = "all values equal (zero range): treated as non-normal"
        else:
            res = stats.shapiro(x)
            row.update(W=float(res.statistic), p_value=float(res.pvalue),
                       normal=bool(res.pvalue >= alpha))
        rows.append(row)
    return pd.DataFrame(rows, columns=["group", "n", "W", "p_value", "normal", "note"])


def levene(df: pd.DataFrame, value: str, group: str, alpha: float = 0.05) -> pd.DataFrame:
    """Levene's test with median centring (Brown–Forsythe). One row: test, statistic, p_value,
    equal_variance (p ≥ alpha), note. NaN with a note when undefined (all deviations zero)."""
    data, _ = _clean(df, value, group)
    groups = _groups(data, value, group)
    _require_two_groups(groups, value, group)
    row = {"test": "levene(center=median)", "statistic": np.nan, "p_value": np.nan,
           "equal_variance": pd.NA, "note": ""}
    if all(np.ptp(x) == 0 for x in groups.values()):
        row["note"] = "every group has zero spread: Levene undefined"
    else:
        res = stats.levene(*groups.values(), center="median")
        row.update(statistic=float(res.statistic), p_value=float(res.pvalue),
                   equal_variance=bool(res.pvalue >= alpha))
    return pd.DataFrame([row])


def welch_anova(df: pd.DataFrame, value: str, group: str) -> pd.DataFrame:
    """Welch's one-way ANOVA (pingouin). One row: test, statistic (F), df1, df2, p_value,
    effect_size (partial η²), effect_size_name, n, k."""
    import pingouin as pg

    data, _ = _clean(df, value, group)
    _require_two_groups(_groups(data, value, group), value, group)
    res = pg.welch_anova(data=data, dv=value, between=group).iloc[0]
    return pd.DataFrame([{
        "test": "welch_anova", "statistic": float(res["F"]), "df1": float(res["ddof1"]),
        "df2": float(res["ddof2"]), "p_value": float(res["p_unc"]),
        "effect_size": float(res["np2"]), "effect_size_name": "partial_eta_sq",
        "n": len(data), "k": data[group].nunique(), "note": "",
    }])


def games_howell(df: pd.DataFrame, value: str, group: str) -> pd.DataFrame:
    """Games–Howell pairwise comparisons (pingouin). Columns group_a, group_b, test, statistic (T),
    df, p_adj (Games–Howell adjusted), center_a, center_b (means), hedges_g."""
    import pingouin as pg

    data, _ = _clean(df, value, group)
    _require_two_groups(_groups(data, value, group), value, group)
    res = pg.pairwise_gameshowell(data=data, dv=value, between=group)
    return pd.DataFrame({
        "group_a": res["A"], "group_b": res["B"], "test": "games_howell",
        "statistic": res["T"].astype(float), "df": res["df"].astype(float),
        "p_adj": res["pval"].astype(float), "center_a": res["mean_A"].astype(float),
        "center_b": res["mean_B"].astype(float), "hedges_g": res["hedges"].astype(float),
    })


def eta_squared_h(h: float, k: int, n: int) -> float:
    """Kruskal–Wallis effect size η²_H = (H − k + 1)/(n − k); NaN when n ≤ k."""
    return float((h - k + 1) / (n - k)) if n > k else float("nan")


def kruskal_wallis(df: pd.DataFrame, value: str, group: str) -> pd.DataFrame:
    """Kruskal–Wallis H test (scipy, tie-corrected) with η²_H. One row like :func:`welch_anova`
    (df1 = k − 1, df2 NaN). All values identical → statistic and p NaN with a note."""
    data, _ = _clean(df, value, group)
    groups = _groups(data, value, group)
    _require_two_groups(groups, value, group)
    n, k = len(data), len(groups)
    row = {"test": "kruskal_wallis", "statistic": np.nan, "df1": float(k - 1), "df2": np.nan,
           "p_value": np.nan, "effect_size": np.nan, "effect_size_name": "eta_sq_H",
           "n": n, "k": k, "note": ""}
    if np.ptp(data[value].to_numpy()) == 0:
        row["note"] = "all values identical: H undefined"
    else:
        res = stats.kruskal(*groups.values())
        row.update(statistic=float(res.statistic), p_value=float(res.pvalue),
                   effect_size=eta_squared_h(float(res.statistic), k, n))
        if n <= k:
            row["note"] = "n <= k: eta_sq_H undefined"
    return pd.DataFrame([row])


def dunn_holm(df: pd.DataFrame, value: str, group: str) -> pd.DataFrame:
    """Dunn's pairwise test on ranks with Holm-adjusted p-values (scikit-posthocs). Columns
    group_a, group_b, test, p_adj, center_a, center_b (medians)."""
    import scikit_posthocs as sp

    data, _ = _clean(df, value, group)
    groups = _groups(data, value, group)
    _require_two_groups(groups, value, group)
    mat = sp.posthoc_dunn(data, val_col=value, group_col=group, p_adjust="holm")
    rows = [{"group_a": a, "group_b": b, "test": "dunn_holm", "p_adj": float(mat.loc[a, b]),
             "center_a": float(np.median(groups[a])), "center_b": float(np.median(groups[b]))}
            for a, b in combinations(groups, 2)]
    return pd.DataFrame(rows)


def cliffs_delta(x: Sequence[float] | np.ndarray, y: Sequence[float] | np.ndarray) -> float:
    """Cliff's δ = (#(x > y) − #(x < y)) / (n_x · n_y) over all pairs; in [−1, 1], positive
    when ``x`` tends to be larger. NaN values are ignored; NaN if either side is empty."""
    x = np.asarray(x, float)
    y = np.asarray(y, float)
    x, y = x[~np.isnan(x)], np.sort(y[~np.isnan(y)])
    if len(x) == 0 or len(y) == 0:
        return float("nan")
    less = np.searchsorted(y, x, side="left")  # y strictly below each x
    greater = len(y) - np.searchsorted(y, x, side="right")  # y strictly above each x
    return float((less.sum() - greater.sum()) / (len(x) * len(y)))


def cliffs_magnitude(delta: float) -> str:
    """Magnitude label of a Cliff's δ (thresholds in :data:`CLIFF_THRESHOLDS`)."""
    if np.isnan(delta):
        return "undefined"
    for limit, label in CLIFF_THRESHOLDS:
        if abs(delta) < limit:
            return label
    return "large"


def cliffs_delta_pairs(df: pd.DataFrame, value: str, group: str) -> pd.DataFrame:
    """Cliff's δ of every pair of groups (sorted labels, a before b). Columns group_a, group_b,
    n_a, n_b, delta (positive: a larger), magnitude."""
    data, _ = _clean(df, value, group)
    groups = _groups(data, value, group)
    rows = []
    for a, b in combinations(groups, 2):
        d = cliffs_delta(groups[a], groups[b])
        rows.append({"group_a": a, "group_b": b, "n_a": len(groups[a]), "n_b": len(groups[b]),
                     "delta": d, "magnitude": cliffs_magnitude(d)})
    return pd.DataFrame(rows, columns=["group_a", "group_b", "n_a", "n_b", "delta", "magnitude"])


def spearman(df: pd.DataFrame, x: str, y: str, by: str | Sequence[str] | None = None
             ) -> pd.DataFrame:
    """Spearman's ρ between columns ``x`` and ``y`` (scipy), overall or per group of ``by``.

    Rows with NaN in x or y are dropped and counted (``n_dropped``). Columns: [by...], x, y, n,
    n_dropped, rho, p_value, note; ρ is NaN with a note for fewer than 3 pairs or a constant side.
    """
    keys = [] if by is None else ([by] if isinstance(by, str) else list(by))
    parts = [((), df)] if not keys else df.groupby(keys, sort=True, dropna=False)
    rows = []
    for key, sub in parts:
        pair = sub[[x, y]].apply(pd.to_numeric, errors="raise").astype(float)
        ok = pair.notna().all(axis=1)
        pair = pair[ok]
        row = dict(zip(keys, key if isinstance(key, tuple) else (key,), strict=True))
        row.update(x=x, y=y, n=len(pair), n_dropped=int((~ok).sum()), rho=np.nan,
                   p_value=np.nan, note="")
        if len(pair) < 3:
            row["note"] = f"n={len(pair)} < 3 pairs"
        elif pair[x].nunique() < 2 or pair[y].nunique() < 2:
            row["note"] = "constant variable: rho undefined"
        else:
            res = stats.spearmanr(pair[x], pair[y])
            row.update(rho=float(res.statistic), p_value=float(res.pvalue))
        rows.append(row)
    return pd.DataFrame(rows)


def two_way_anova(df: pd.DataFrame, value: str, factor_a: str, factor_b: str, typ: int = 2
                  ) -> pd.DataFrame:
    """Two-way ANOVA ``value ~ A * B`` (statsmodels OLS + ``anova_lm``, type II by default).

    Columns: source (A, B, ``A:B``, Residual), sum_sq, df, F, p_value, partial_eta_sq, note.
    NaN rows are dropped. If some A × B cell is empty the interaction is not estimable: the
    additive model ``A + B`` is fitted instead and the note says so.
    """
    import statsmodels.api as sm
    import statsmodels.formula.api as smf

    data = df[[value, factor_a, factor_b]].dropna()
    if data[factor_a].nunique() < 2 or data[factor_b].nunique() < 2:
        raise ValueError(f"two-way ANOVA of {value!r} needs >= 2 levels of {factor_a!r} and "
                         f"of {factor_b!r}")
    cells = data.groupby([factor_a, factor_b]).size()
    full = len(cells) == data[factor_a].nunique() * data[factor_b].nunique()
    term_a, term_b = f'C(Q("{factor_a}"))', f'C(Q("{factor_b}"))'
    rhs = f"{term_a} * {term_b}" if full else f"{term_a} + {term_b}"
    model = smf.ols(f'Q("{value}") ~ {rhs}', data=data).fit()
    table = sm.stats.anova_lm(model, typ=typ)
    names = {term_a: factor_a, term_b: factor_b, f"{term_a}:{term_b}": f"{factor_a}:{factor_b}"}
    ss_resid = float(table.loc["Residual", "sum_sq"])
    out = pd.DataFrame({
        "source": [names.get(i, i) for i in table.index],
        "sum_sq": table["sum_sq"].to_numpy(float),
        "df": table["df"].to_numpy(float),
        "F": table["F"].to_numpy(float),
        "p_value": table["PR(>F)"].to_numpy(float),
    })
    out["partial_eta_sq"] = out["sum_sq"] / (out["sum_sq"] + ss_resid)
    out.loc[out["source"] == "Residual", "partial_eta_sq"] = np.nan
    out["note"] = "" if full else "empty cells: interaction not estimable, additive model fitted"
    return out


# --------------------------------------------------------------------------------------------
# The battery
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class ComparisonResult:
    """Outcome of :func:`compare_groups` for one variable.

    Attributes:
        value, group: the compared column and the grouping column.
        alpha: significance level used for the normality decision.
        path: :data:`PATH_WELCH`, :data:`PATH_KRUSKAL` or :data:`PATH_UNTESTABLE`.
        reason: why that path was taken (groups that failed normality, dropped rows, ...).
        n, k, n_dropped: values used, groups, rows dropped for NaN value or group.
        normality, levene, omnibus, posthoc, cliffs_delta: the tidy tables of each step.
    """

    value: str
    group: str
    alpha: float
    path: str
    reason: str
    n: int
    k: int
    n_dropped: int
    normality: pd.DataFrame
    levene: pd.DataFrame
    omnibus: pd.DataFrame
    posthoc: pd.DataFrame
    cliffs_delta: pd.DataFrame

    def summary(self) -> pd.DataFrame:
        """One row: variable, path, n, k, n_dropped, all_normal, levene_p, omnibus test,
        statistic, p_value, effect size, significant pairs / all pairs, reason."""
        omni = self.omnibus.iloc[0]
        sig = int((self.posthoc["p_adj"] < self.alpha).sum()) if len(self.posthoc) else 0
        return pd.DataFrame([{
            "variable": self.value, "group": self.group, "path": self.path, "n": self.n,
            "k": self.k, "n_dropped": self.n_dropped,
            "all_normal": bool(self.normality["normal"].all()),
            "levene_p": float(self.levene["p_value"].iloc[0]),
            "test": omni["test"], "statistic": omni["statistic"], "p_value": omni["p_value"],
            "effect_size": omni["effect_size"], "effect_size_name": omni["effect_size_name"],
            "significant_pairs": f"{sig}/{len(self.cliffs_delta)}", "reason": self.reason,
        }])

    def pairs(self) -> pd.DataFrame:
        """Post-hoc p-values joined with Cliff's δ, one row per pair."""
        cols = ["group_a", "group_b", "test", "p_adj", "center_a", "center_b"]
        post = self.posthoc[cols] if len(self.posthoc) else pd.DataFrame(columns=cols)
        return self.cliffs_delta.merge(post, on=["group_a", "group_b"], how="left")


def compare_groups(df: pd.DataFrame, value: str, group: str, alpha: float = 0.05
                   ) -> ComparisonResult:
    """Run the docs/methods.md#trade-offs battery on ``value`` across the groups of ``group``
    (see the module docstring for the path rule and edge cases). Raises ``ValueError`` with fewer
    than 2 groups."""
    data, dropped = _clean(df, value, group)
    groups = _groups(data, value, group)
    _require_two_groups(groups, value, group)
    normality = shapiro_by_group(data, value, group, alpha)
    lev = levene(data, value, group, alpha)
    dropped_txt = f"; {dropped} row(s) with NaN {value!r} or {group!r} dropped" if dropped else ""
    lev_p = lev["p_value"].iloc[0]
    lev_txt = "Levene undefined" if np.isnan(lev_p) else f"Levene p={lev_p:.3g}"

    if np.ptp(data[value].to_numpy()) == 0:
        path, reason = PATH_UNTESTABLE, "all values identical: no test possible"
        omnibus = kruskal_wallis(data, value, group)
        posthoc = pd.DataFrame(columns=["group_a", "group_b", "test", "p_adj", "center_a",
                                        "center_b"])
    elif normality["normal"].all():
        path = PATH_WELCH
        reason = (f"all {len(groups)} groups normal (Shapiro p >= {alpha}); {lev_txt}, "
                  "reported only: Welch/Games-Howell do not assume equal variances")
        omnibus, posthoc = welch_anova(data, value, group), games_howell(data, value, group)
    else:
        path = PATH_KRUSKAL
        bad = normality.loc[~normality["normal"], "group"].astype(str).tolist()
        reason = f"non-normal or untestable group(s): {', '.join(bad)}; {lev_txt}"
        omnibus, posthoc = kruskal_wallis(data, value, group), dunn_holm(data, value, group)

    return ComparisonResult(
        value=value, group=group, alpha=alpha, path=path, reason=reason + dropped_txt,
        n=len(data), k=len(groups), n_dropped=dropped, normality=normality, levene=lev,
        omnibus=omnibus, posthoc=posthoc, cliffs_delta=cliffs_delta_pairs(data, value, group),
    )


def compare_many(df: pd.DataFrame, values: Iterable[str], group: str, by: str | None = None,
                 alpha: float = 0.05) -> dict[tuple[object, str], ComparisonResult]:
    """:func:`compare_groups` for each variable in ``values``, within each level of ``by``
    (e.g. architectures compared inside each environment). Keys are (level of ``by`` or None,
    variable). A level/variable with fewer than 2 non-NaN groups is skipped (absent from the
    result); use :func:`summary_table` to see what ran."""
    parts = [(None, df)] if by is None else list(df.groupby(by, sort=True))
    out: dict[tuple[object, str], ComparisonResult] = {}
    for level, sub in parts:
        for v in values:
            data, _ = _clean(sub, v, group)
            if data[group].nunique() >= 2:
                out[(level, v)] = compare_groups(sub, v, group, alpha)
    return out


#: Columns of :meth:`ComparisonResult.summary` (and of :func:`summary_table` after ``by``).
SUMMARY_COLUMNS = ["variable", "group", "path", "n", "k", "n_dropped", "all_normal", "levene_p",
                   "test", "statistic", "p_value", "effect_size", "effect_size_name",
                   "significant_pairs", "reason"]


def summary_table(results: dict[tuple[object, str], ComparisonResult], by: str = "by"
                  ) -> pd.DataFrame:
    """Concatenate :meth:`ComparisonResult.summary` rows with the ``by`` level as first column
    (the columns alone when nothing could be compared)."""
    rows = []
    for (level, _), res in results.items():
        s = res.summary()
        s.insert(0, by, level)
        rows.append(s)
    return (pd.concat(rows, ignore_index=True) if rows
            else pd.DataFrame(columns=[by, *SUMMARY_COLUMNS]))
