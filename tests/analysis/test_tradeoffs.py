"""helpers.analysis.tradeoffs: summaries, pairwise savings and the Pareto front (hand-made)."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402

from helpers.analysis import stats, tradeoffs  # noqa: E402
from helpers.plots import tradeoffs as plots_tradeoffs  # noqa: E402


@pytest.fixture
def runs() -> pd.DataFrame:
    """Two environments x three architectures, 12 runs each, known medians."""
    rng = np.random.default_rng(7)
    base = {"small": (0.1, 0.95), "mid": (0.2, 0.97), "big": (0.4, 0.99)}
    rows = []
    for env, scale in (("envA", 1.0), ("envB", 0.5)):
        for arch, (e, f1) in base.items():
            for i in range(12):
                rows.append({"environment": env, "architecture": arch, "run": i,
                             "energy_per_image_j": e * scale * rng.lognormal(0, 0.05),
                             "f1": f1 + rng.normal(0, 0.003),
                             "time_per_image_s": e * 0.01 * rng.lognormal(0, 0.05),
                             "gpu_usage_mean": min(1.0, e * 2 + rng.normal(0, 0.02))})
    return pd.DataFrame(rows)


def test_pareto_front_hand_case():
    cost = [1.0, 2.0, 3.0, 2.0, 0.5, np.nan, 2.0]
    benefit = [0.90, 0.95, 0.94, 0.95, 0.80, 1.00, 0.93]
    # A(1,.90) ok; B(2,.95) ok; C(3,.94) dominated by B; D = B duplicate, kept; E(.5,.80) ok;
    # F has NaN cost -> never optimal; G(2,.93) dominated by B (same cost, lower benefit)
    expected = [True, True, False, True, True, False, False]
    assert tradeoffs.pareto_front(cost, benefit).tolist() == expected


def test_pareto_table_within_environment(runs):
    tab = tradeoffs.pareto_table(runs)
    assert len(tab) == 6 and (tab.n == 12).all()
    # monotone energy/F1 ladder: every architecture is optimal inside its environment
    assert tab.pareto_within.all()
    # across environments envB (half energy) dominates envA's architectures with lower F1
    assert not tab.loc[(tab.environment == "envA") & (tab.architecture == "small"),
                       "pareto"].item()
    med = runs.groupby(["environment", "architecture"])["f1"].median()
    assert tab.set_index(["environment", "architecture"])["f1"].to_dict() == pytest.approx(
        med.to_dict())


def test_group_summary_matches_numpy(runs):
    tab = tradeoffs.group_summary(runs, ["energy_per_image_j", "f1"])
    assert len(tab) == 12
    row = tab[(tab.environment == "envB") & (tab.architecture == "mid")
              & (tab.variable == "energy_per_image_j")].iloc[0]
    x = runs[(runs.environment == "envB") & (runs.architecture == "mid")].energy_per_image_j
    assert row["median"] == pytest.approx(np.median(x))
    assert row["iqr"] == pytest.approx(np.percentile(x, 75) - np.percentile(x, 25))
    assert row["n"] == 12


def test_group_summary_keeps_all_nan_group(runs):
    runs = runs.copy()
    runs.loc[runs.architecture == "big", "f1"] = np.nan
    tab = tradeoffs.group_summary(runs, ["f1"])
    gap = tab[tab.architecture == "big"]
    assert (gap.n == 0).all() and gap["median"].isna().all()


def test_pairwise_savings(runs):
    tab = tradeoffs.pairwise_savings(runs)
    assert len(tab) == 6  # 3 pairs x 2 environments
    assert (tab.energy_saved_pct >= 0).all()
    row = tab[(tab.environment == "envA") & (tab.saver == "small")
              & (tab.reference == "big")].iloc[0]
    sub = runs[runs.environment == "envA"]
    med = sub.groupby("architecture").median(numeric_only=True)
    assert row.energy_saved_pct == pytest.approx(
        100 * (1 - med.loc["small", "energy_per_image_j"] / med.loc["big", "energy_per_image_j"]))
    assert row.f1_lost == pytest.approx(med.loc["big", "f1"] - med.loc["small", "f1"])
    assert row.cliffs_delta_energy == -1.0 and row.magnitude_energy == "large"
    res = stats.compare_groups(sub, "energy_per_image_j", "architecture")
    post = res.posthoc.set_index(["group_a", "group_b"])
    assert row.p_energy == pytest.approx(post.loc[("big", "small"), "p_adj"])
    assert row.posthoc_test == post.loc[("big", "small"), "test"]
    # first row of each environment is its largest saving
    assert tab.groupby("environment").energy_saved_pct.first().to_dict() == pytest.approx(
        tab.groupby("environment").energy_saved_pct.max().to_dict())


def test_pair_saving_oriented_as_asked_and_errors(runs):
    sub = runs[runs.environment == "envB"]
    back = tradeoffs.pair_saving(sub, "big", "small")
    assert back["energy_saved_pct"] < 0 and back["f1_lost"] < 0
    with pytest.raises(ValueError, match="no 'energy_per_image_j' values"):
        tradeoffs.pair_saving(sub, "tiny", "small")


def test_pairwise_savings_without_quality(runs):
    runs = runs.assign(f1=np.nan)
    tab = tradeoffs.pairwise_savings(runs)
    assert len(tab) == 6 and tab.p_f1.isna().all() and tab.p_energy.notna().all()


def test_median_table_and_plots(runs):
    tab = tradeoffs.median_table(runs, "energy_per_image_j")
    assert tab.shape == (3, 2)
    assert tab.loc["mid", "envB"] == pytest.approx(
        runs[(runs.architecture == "mid") & (runs.environment == "envB")]
        .energy_per_image_j.median())
    fig, (ax1, ax2) = plt.subplots(1, 2)
    plots_tradeoffs.draw_pareto(ax1, tradeoffs.pareto_table(runs))
    plots_tradeoffs.draw_interaction(ax2, runs)
    assert len(ax1.collections) == 2 and len(ax2.lines) == 3
    plt.close(fig)


def test_spearman_pairs_skips_empty_columns_with_a_note(runs):
    data = runs.assign(gflops=np.nan)
    table, notes = tradeoffs.spearman_pairs(
        data, [("energy_per_image_j", "f1"), ("gflops", "energy_per_image_j")])
    assert notes == ["Spearman gflops vs energy_per_image_j skipped: no values for gflops"]
    assert list(table["environment"]) == ["envA", "envB"]
    direct = stats.spearman(data, "energy_per_image_j", "f1", by="environment")
    assert np.allclose(table["rho"], direct["rho"])
    empty, notes = tradeoffs.spearman_pairs(data, [("gflops", "f1")])
    assert empty.empty and len(notes) == 1


def test_headline_savings_records_lines_and_skips(runs):
    data = runs.assign(gpu_name=np.where(runs["environment"] == "envA", "GPU A", "GPU B"))
    records, lines = tradeoffs.headline_savings(
        data, "small", "big", {"envA": 75.0, "envC": None}, alpha=0.05)
    assert set(records) == {"envA"}
    rec = records["envA"]
    direct = tradeoffs.pair_saving(data[data["environment"] == "envA"], "small", "big")
    assert rec["energy_saved_pct"] == pytest.approx(direct["energy_saved_pct"])
    assert rec["gpu_name"] == "GPU A" and rec["published_pct"] == 75.0
    assert isinstance(rec["n_saver"], float)
    assert lines[0].startswith("envA [GPU A]: small uses ") and "(published ≈ 75.0%)" in lines[0]
    assert lines[1] == "headline small vs big on envC skipped: no runs in that environment"
