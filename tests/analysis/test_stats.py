"""helpers.analysis.stats against independently computed reference values and on edge cases."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pingouin as pg
import pytest
from scipy import stats as ss

from helpers.analysis import stats


def _frame(groups: dict[str, list[float] | np.ndarray]) -> pd.DataFrame:
    return pd.DataFrame([{"g": g, "v": float(v)} for g, vals in groups.items() for v in vals])


@pytest.fixture
def normal_groups() -> pd.DataFrame:
    rng = np.random.default_rng(42)
    return _frame({"a": rng.normal(10, 1, 25), "b": rng.normal(11, 2, 30),
                   "c": rng.normal(12.5, 3, 20)})


def test_shapiro_matches_scipy(normal_groups):
    tab = stats.shapiro_by_group(normal_groups, "v", "g")
    for _, row in tab.iterrows():
        ref = ss.shapiro(normal_groups.loc[normal_groups.g == row.group, "v"])
        assert row.W == pytest.approx(ref.statistic)
        assert row.p_value == pytest.approx(ref.pvalue)
        assert row.normal == (ref.pvalue >= 0.05)


def test_levene_matches_scipy(normal_groups):
    tab = stats.levene(normal_groups, "v", "g")
    ref = ss.levene(*[s.to_numpy() for _, s in normal_groups.groupby("g")["v"]], center="median")
    assert tab.statistic.iloc[0] == pytest.approx(ref.statistic)
    assert tab.p_value.iloc[0] == pytest.approx(ref.pvalue)


def test_welch_anova_matches_hand_formula(normal_groups):
    xs = [s.to_numpy() for _, s in normal_groups.groupby("g")["v"]]
    k = len(xs)
    n = np.array([len(x) for x in xs])
    m = np.array([x.mean() for x in xs])
    w = n / np.array([x.var(ddof=1) for x in xs])
    mw = (w * m).sum() / w.sum()
    lam = ((1 - w / w.sum()) ** 2 / (n - 1)).sum()
    f = ((w * (m - mw) ** 2).sum() / (k - 1)) / (1 + 2 * (k - 2) / (k**2 - 1) * lam)
    df2 = (k**2 - 1) / (3 * lam)
    p = ss.f.sf(f, k - 1, df2)
    tab = stats.welch_anova(normal_groups, "v", "g").iloc[0]
    assert tab.statistic == pytest.approx(f)
    assert tab.df2 == pytest.approx(df2)
    assert tab.p_value == pytest.approx(p)


def test_games_howell_matches_hand_formula(normal_groups):
    tab = stats.games_howell(normal_groups, "v", "g")
    g = {k: s.to_numpy() for k, s in normal_groups.groupby("g")["v"]}
    for _, row in tab.iterrows():
        a, b = g[row.group_a], g[row.group_b]
        va, vb = a.var(ddof=1) / len(a), b.var(ddof=1) / len(b)
        t = (a.mean() - b.mean()) / np.sqrt(va + vb)
        df = (va + vb) ** 2 / (va**2 / (len(a) - 1) + vb**2 / (len(b) - 1))
        p = ss.studentized_range.sf(abs(t) * np.sqrt(2), len(g), df)
        assert row.statistic == pytest.approx(t)
        assert row.df == pytest.approx(df)
        assert row.p_adj == pytest.approx(p, rel=1e-3, abs=1e-6)


def test_kruskal_and_eta_squared_h_by_hand():
    df = _frame({"a": [1, 2, 3], "b": [4, 5, 6], "c": [7, 8, 9]})
    tab = stats.kruskal_wallis(df, "v", "g").iloc[0]
    # no ties: H = 12/(n(n+1)) * sum(R_i^2/n_i) - 3(n+1) = 12/90 * (36+225+576)/3 - 30 = 7.2
    assert tab.statistic == pytest.approx(7.2)
    assert tab.effect_size == pytest.approx((7.2 - 3 + 1) / (9 - 3))
    assert tab.p_value == pytest.approx(ss.chi2.sf(7.2, 2))
    assert stats.eta_squared_h(7.2, 3, 9) == pytest.approx(5.2 / 6)
    assert np.isnan(stats.eta_squared_h(1.0, 3, 3))


def test_kruskal_matches_scipy_with_ties():
    df = _frame({"a": [1, 1, 2, 3, 3], "b": [2, 3, 3, 4], "c": [4, 4, 5, 6, 6, 6]})
    tab = stats.kruskal_wallis(df, "v", "g").iloc[0]
    ref = ss.kruskal([1, 1, 2, 3, 3], [2, 3, 3, 4], [4, 4, 5, 6, 6, 6])
    assert tab.statistic == pytest.approx(ref.statistic)
    assert tab.effect_size == pytest.approx((ref.statistic - 2) / (15 - 3))


def test_dunn_holm_by_hand():
    df = _frame({"a": [1, 2, 3], "b": [4, 5, 6], "c": [7, 8, 9]})
    tab = stats.dunn_holm(df, "v", "g").set_index(["group_a", "group_b"])
    sigma = np.sqrt(9 * 10 / 12 * (1 / 3 + 1 / 3))  # no ties
    raw = {("a", "b"): 2 * ss.norm.sf(3 / sigma), ("a", "c"): 2 * ss.norm.sf(6 / sigma),
           ("b", "c"): 2 * ss.norm.sf(3 / sigma)}
    # Holm: smallest p x3, next two x2 (equal, monotone)
    assert tab.loc[("a", "c"), "p_adj"] == pytest.approx(3 * raw[("a", "c")])
    assert tab.loc[("a", "b"), "p_adj"] == pytest.approx(min(1, 2 * raw[("a", "b")]))
    assert tab.loc[("b", "c"), "p_adj"] == pytest.approx(min(1, 2 * raw[("b", "c")]))
    assert tab.loc[("a", "b"), "center_b"] == 5


def test_cliffs_delta_by_hand_and_brute_force():
    # x=[1,2,3] vs y=[2,2,4]: x>y pairs: (3,2),(3,2) = 2; x<y: 1<2,1<2,1<4,2<4,3<4 = 5
    assert stats.cliffs_delta([1, 2, 3], [2, 2, 4]) == pytest.approx(-3 / 9)
    assert stats.cliffs_delta([5, 6], [1, 2]) == 1.0
    assert stats.cliffs_delta([1, np.nan, 2], [1, 2]) == pytest.approx(0.0)
    assert np.isnan(stats.cliffs_delta([], [1.0]))
    rng = np.random.default_rng(0)
    x, y = rng.integers(0, 6, 40).astype(float), rng.integers(0, 6, 33).astype(float)
    brute = sum(np.sign(a - b) for a in x for b in y) / (len(x) * len(y))
    assert stats.cliffs_delta(x, y) == pytest.approx(brute)


@pytest.mark.parametrize("delta,label", [(0.0, "negligible"), (-0.146, "negligible"),
                                         (0.147, "small"), (-0.33, "medium"),
                                         (0.474, "large"), (-1.0, "large"),
                                         (np.nan, "undefined")])
def test_cliffs_magnitude(delta, label):
    assert stats.cliffs_magnitude(delta) == label


def test_spearman_matches_scipy_and_counts_nan():
    rng = np.random.default_rng(1)
    df = pd.DataFrame({"k": np.repeat(["p", "q"], 20), "x": rng.normal(size=40),
                       "y": rng.normal(size=40)})
    df.loc[3, "y"] = np.nan
    tab = stats.spearman(df, "x", "y", by="k").set_index("k")
    sub = df[df.k == "p"].dropna()
    ref = ss.spearmanr(sub.x, sub.y)
    assert tab.loc["p", "rho"] == pytest.approx(ref.statistic)
    assert tab.loc["p", "p_value"] == pytest.approx(ref.pvalue)
    assert tab.loc["p", "n_dropped"] == 1 and tab.loc["p", "n"] == 19
    overall = stats.spearman(df, "x", "y")
    assert len(overall) == 1 and overall.n.iloc[0] == 39
    short = stats.spearman(df.head(2), "x", "y")
    assert np.isnan(short.rho.iloc[0]) and "< 3" in short.note.iloc[0]


def test_two_way_anova_matches_pingouin():
    rng = np.random.default_rng(3)
    df = pd.DataFrame({"arch": np.repeat(["m", "r", "v"], 20), "env": np.tile(["c", "l"], 30)})
    df["e"] = rng.normal(size=60) + (df.arch == "v") * 2 + (df.env == "l") * 0.5
    df = df.drop(index=[0, 7, 33])  # unbalanced: type II matters
    tab = stats.two_way_anova(df, "e", "arch", "env").set_index("source")
    ref = pg.anova(data=df, dv="e", between=["arch", "env"], ss_type=2).set_index("Source")
    assert tab.loc["arch", "F"] == pytest.approx(ref.loc["arch", "F"])
    assert tab.loc["env", "p_value"] == pytest.approx(ref.loc["env", "p_unc"])
    assert tab.loc["arch:env", "sum_sq"] == pytest.approx(ref.loc["arch * env", "SS"])
    assert tab.loc["arch", "partial_eta_sq"] == pytest.approx(ref.loc["arch", "np2"])


def test_two_way_anova_empty_cell_falls_back_to_additive():
    rng = np.random.default_rng(4)
    df = pd.DataFrame({"a": np.repeat(["x", "y", "z"], 10), "b": np.tile(["p", "q"], 15),
                       "v": rng.normal(size=30)})
    df = df[~((df.a == "z") & (df.b == "q"))]
    tab = stats.two_way_anova(df, "v", "a", "b")
    assert "a:b" not in set(tab.source)
    assert tab.note.str.contains("additive").all()


def test_compare_groups_normal_takes_welch(normal_groups):
    res = stats.compare_groups(normal_groups, "v", "g")
    assert res.path == stats.PATH_WELCH
    assert "Levene" in res.reason and res.n == 75 and res.k == 3 and res.n_dropped == 0
    assert res.omnibus.test.iloc[0] == "welch_anova"
    assert set(res.posthoc.test) == {"games_howell"}
    assert len(res.cliffs_delta) == 3 and len(res.pairs()) == 3
    assert res.summary().path.iloc[0] == stats.PATH_WELCH


def test_compare_groups_skewed_takes_kruskal():
    rng = np.random.default_rng(5)
    df = _frame({"a": rng.exponential(1, 40), "b": rng.exponential(3, 40)})
    res = stats.compare_groups(df, "v", "g")
    assert res.path == stats.PATH_KRUSKAL
    assert res.omnibus.test.iloc[0] == "kruskal_wallis"
    assert res.posthoc.test.iloc[0] == "dunn_holm"
    assert res.cliffs_delta.delta.iloc[0] == pytest.approx(
        stats.cliffs_delta(df[df.g == "a"].v, df[df.g == "b"].v))


def test_compare_groups_small_and_constant_groups_are_non_normal(normal_groups):
    df = pd.concat([normal_groups, _frame({"d": [1.0, 2.0], "e": [4.0, 4.0, 4.0, 4.0]})])
    res = stats.compare_groups(df, "v", "g")
    norm = res.normality.set_index("group")
    assert not norm.loc["d", "normal"] and "n=2 < 3" in norm.loc["d", "note"]
    assert not norm.loc["e", "normal"] and "zero range" in norm.loc["e", "note"]
    assert res.path == stats.PATH_KRUSKAL and "d" in res.reason and "e" in res.reason


def test_compare_groups_size_one_group():
    df = _frame({"a": [1.0, 2.0, 3.0, 4.0], "b": [10.0]})
    res = stats.compare_groups(df, "v", "g")
    assert res.path == stats.PATH_KRUSKAL
    assert res.cliffs_delta.delta.iloc[0] == -1.0


def test_compare_groups_drops_and_counts_nan(normal_groups):
    df = normal_groups.copy()
    df.loc[0, "v"] = np.nan
    df.loc[1, "g"] = None
    res = stats.compare_groups(df, "v", "g")
    assert res.n_dropped == 2 and res.n == len(df) - 2
    assert "2 row(s)" in res.reason


def test_compare_groups_all_equal_is_untestable():
    df = _frame({"a": [2.0] * 5, "b": [2.0] * 6})
    res = stats.compare_groups(df, "v", "g")
    assert res.path == stats.PATH_UNTESTABLE
    assert np.isnan(res.omnibus.p_value.iloc[0])
    assert res.posthoc.empty
    assert res.cliffs_delta.delta.iloc[0] == 0.0


def test_compare_groups_needs_two_groups():
    with pytest.raises(ValueError, match="at least 2 groups"):
        stats.compare_groups(_frame({"a": [1.0, 2.0, 3.0]}), "v", "g")
    df = _frame({"a": [1.0, 2.0], "b": [np.nan, np.nan]})
    with pytest.raises(ValueError, match="found 1"):
        stats.compare_groups(df, "v", "g")


def test_compare_many_and_summary_table(normal_groups):
    df = pd.concat([normal_groups.assign(env="x"), normal_groups.assign(env="y")])
    df["w"] = df["v"] ** 2
    res = stats.compare_many(df, ["v", "w"], "g", by="env")
    assert set(res) == {("x", "v"), ("x", "w"), ("y", "v"), ("y", "w")}
    tab = stats.summary_table(res, "env")
    assert list(tab.env) == ["x", "x", "y", "y"] and (tab.k == 3).all()
