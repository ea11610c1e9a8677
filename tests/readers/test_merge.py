"""Tests for helpers.readers.merge: nearest join with tolerance edges, match counts, no cross-run
matching, phase labels, and the DL Training Profiling Dataset export."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from helpers.core.schema import PROFILING_COLUMNS
from helpers.readers import merge

#: The dataset card's fields, in the card's order (seaa2023/interim/dataset_card.md).
CARD_COLUMNS = ["train_strategy", "architecture", "run", "timestamp", "gpu_name", "gpu_usage",
                "gpu_memory_usage", "gpu_total_memory", "gpu_memory_used", "gpu_power_draw",
                "gpu_max_power", "gpu_temperature", "cpu_usage", "memory_usage"]
T0 = pd.Timestamp("2022-12-05 08:55:42.535", tz="UTC")


def at(seconds: list[float]) -> pd.Series:
    return pd.Series([T0 + pd.Timedelta(milliseconds=round(s * 1000)) for s in seconds]
                     ).astype("datetime64[ms, UTC]")


def gpu_frame(run_ids: list[str], seconds: list[float]) -> pd.DataFrame:
    return pd.DataFrame({"run_id": run_ids, "time_utc": at(seconds),
                         "gpu_power_draw": np.arange(len(seconds), dtype=float) + 100.0})


def cpu_frame(run_ids: list[str], seconds: list[float], usage: list[float]) -> pd.DataFrame:
    return pd.DataFrame({"run_id": run_ids, "time_utc": at(seconds), "cpu_usage": usage,
                         "memory_usage": 1000.0, "cpu_temperature_c": 40.0})


def test_tolerance_edges() -> None:
    gpu = gpu_frame(["a", "b", "c"], [10.0, 10.0, 10.0])
    cpu = cpu_frame(["a", "b", "c"], [11.0, 11.001, 9.0], [1.0, 2.0, 3.0])
    res = merge.merge_nearest(gpu, cpu, tolerance_s=1.0)
    s = res.samples.set_index("run_id")
    assert s.loc["a", "cpu_usage"] == 1.0  # exactly at the tolerance: matched
    assert s.loc["a", "cpu_match_gap_s"] == pytest.approx(1.0)
    assert np.isnan(s.loc["b", "cpu_usage"])  # 1 ms beyond: not matched
    assert np.isnan(s.loc["b", "cpu_match_gap_s"])
    assert s.loc["c", "cpu_usage"] == 3.0  # exactly at the tolerance, before the GPU sample
    # a tighter tolerance
    tight = merge.merge_nearest(gpu, cpu, tolerance_s=0.999).samples
    assert tight["cpu_usage"].isna().all()


def test_nearest_not_backward_and_counts() -> None:
    gpu = gpu_frame(["a"] * 4, [0.0, 10.0, 20.0, 30.0])
    # 10.0 -> 10.2 is nearer than 9.3 (a backward join would take 9.3); 20 and 30 have no partner
    cpu = cpu_frame(["a"] * 3, [0.1, 9.3, 10.2], [5.0, 7.0, 9.0])
    res = merge.merge_nearest(gpu, cpu)
    assert res.samples["cpu_usage"].tolist()[:2] == [5.0, 9.0]
    assert res.samples["cpu_match_gap_s"].tolist()[:2] == pytest.approx([0.1, 0.2])
    assert res.samples["cpu_usage"].isna().tolist() == [False, False, True, True]
    counts = res.match_counts.set_index("run_id").loc["a"]
    assert (counts["gpu_samples"], counts["matched"], counts["unmatched"],
            counts["cpu_samples"]) == (4, 2, 2, 3)


def test_no_cross_run_matching_and_order_kept() -> None:
    # run b has no CPU samples; run a's CPU samples coincide with b's GPU stamps
    gpu = gpu_frame(["b", "a", "b", "a"], [5.0, 1.0, 6.0, 2.0])
    cpu = cpu_frame(["a", "a"], [5.0, 6.0], [50.0, 60.0])
    cpu = pd.concat([cpu, cpu_frame(["a"], [1.5], [15.0])], ignore_index=True)
    res = merge.merge_nearest(gpu, cpu)
    out = res.samples
    assert out["run_id"].tolist() == ["b", "a", "b", "a"]  # input order, not time order
    assert out["gpu_power_draw"].tolist() == [100.0, 101.0, 102.0, 103.0]
    assert out["cpu_usage"].isna().tolist() == [True, False, True, False]
    assert out["cpu_usage"].tolist()[1] == 15.0
    counts = res.match_counts.set_index("run_id")
    assert counts.loc["b", "matched"] == 0 and counts.loc["b", "unmatched"] == 2
    assert counts.loc["b", "cpu_samples"] == 0
    assert counts.loc["a", "matched"] == 2


def test_bad_arguments() -> None:
    gpu = gpu_frame(["a"], [0.0])
    cpu = cpu_frame(["a"], [0.0], [1.0])
    with pytest.raises(ValueError):
        merge.merge_nearest(gpu, cpu, tolerance_s=-1.0)
    with pytest.raises(KeyError, match="memory_usage"):
        merge.merge_nearest(gpu, cpu.drop(columns="memory_usage"))


def test_add_elapsed_per_run() -> None:
    df = gpu_frame(["a", "a", "b", "b"], [3.0, 4.5, 10.0, 12.25])
    assert merge.add_elapsed(df)["elapsed_s"].tolist() == [0.0, 1.5, 0.0, 2.25]


def test_label_phases() -> None:
    samples = gpu_frame(["a"] * 6, [0.0, 1.0, 2.0, 3.0, 4.0, 5.0])
    events = pd.DataFrame({
        "run_id": "a", "time_utc": at([0.5, 1.5, 2.5, 3.5]),
        "event": ["epoch_start", "eval_start", "epoch_end", "run_end"],
        "epoch": [0, 0, 0, np.nan],
    })
    out = merge.label_phases(samples, events)
    assert out["phase"].tolist()[1:] == ["train", "eval", "between", "between", "between"]
    assert pd.isna(out["phase"].iloc[0])
    assert out["epoch"].tolist()[1:3] == [0.0, 0.0]
    assert out["epoch"].iloc[3:].isna().all()


def _merged_samples() -> pd.DataFrame:
    gpu = pd.DataFrame({
        "run_id": ["cloud/vgg16/000"] * 2, "time_utc": at([0.0, 1.001]),
        "gpu_name": "NVIDIA GeForce RTX 3090", "gpu_usage": [0.0, 0.97],
        "gpu_memory_usage": [0.05, 0.4], "gpu_total_memory": 24268.0,
        "gpu_memory_used": 23573.0, "gpu_power_draw": [119.17, 301.5], "gpu_max_power": 350.0,
        "gpu_temperature": [55.0, 61.0], "line": [2, 3],
        "source_file": "cloud/vgg16/gpu-power-20221205T095541.csv",
    })
    cpu = cpu_frame(["cloud/vgg16/000"] * 2, [0.2, 1.2], [3.5, 99.0])
    res = merge.merge_nearest(gpu, cpu)
    samples = res.samples.assign(environment="cloud", architecture="vgg16", run=0)
    return merge.add_elapsed(samples)


def test_profiling_schema_export() -> None:
    out = merge.to_profiling_schema(_merged_samples(), "seaa2023")
    assert list(PROFILING_COLUMNS) == CARD_COLUMNS
    assert list(out.columns[:len(CARD_COLUMNS)]) == CARD_COLUMNS
    assert out["timestamp"].dtype == np.int64
    # 2022-12-05 08:55:42.535 UTC in ms since the Unix epoch
    assert out["timestamp"].tolist() == [1670230542535, 1670230543536]
    assert out["train_strategy"].tolist() == ["cloud", "cloud"]
    for col in ("gpu_usage", "gpu_memory_usage"):
        assert out[col].between(0.0, 1.0).all()
    assert out["cpu_usage"].tolist() == [3.5, 99.0]  # percent, as in the card
    extras = list(out.columns[len(CARD_COLUMNS):])
    assert {"dataset", "run_id", "time_utc", "elapsed_s", "device_power_w",
            "cpu_match_gap_s", "source_file", "cpu_temperature_c"} <= set(extras)
    assert "line" not in out.columns
    assert out["device_power_w"].tolist() == out["gpu_power_draw"].tolist()
    assert (out["dataset"] == "seaa2023").all()


def test_profiling_schema_requires_card_fields() -> None:
    with pytest.raises(KeyError, match="gpu_temperature"):
        merge.to_profiling_schema(_merged_samples().drop(columns="gpu_temperature"), "x")


def _merge_asof_nearest(gpu: pd.DataFrame, cpu: pd.DataFrame, tolerance_s: float
                        ) -> pd.DataFrame:
    """The reference: pandas' merge_asof (direction 'nearest', by run_id), in GPU order."""
    left = gpu.reset_index(drop=True).rename_axis("_order").reset_index()
    right = cpu.assign(_cpu_time=cpu["time_utc"])
    out = pd.merge_asof(left.sort_values("time_utc", kind="stable"),
                        right.sort_values("time_utc", kind="stable"), on="time_utc",
                        by="run_id", direction="nearest",
                        tolerance=pd.Timedelta(seconds=tolerance_s))
    out = out.sort_values("_order").drop(columns="_order").reset_index(drop=True)
    out["cpu_match_gap_s"] = (out["_cpu_time"] - out["time_utc"]).abs().dt.total_seconds()
    return out.drop(columns="_cpu_time")


@pytest.mark.parametrize("seed", range(12))
def test_nearest_join_equals_pandas_merge_asof(seed: int) -> None:
    """Stamps on a coarse grid (ties between two CPU samples, repeated stamps), unsorted rows,
    a run without CPU samples, a CPU run without GPU samples, several time units."""
    rng = np.random.default_rng(seed)
    unit = ("ms", "us", "ns")[seed % 3]
    n, m = int(rng.integers(1, 60)), int(rng.integers(0, 60))

    def frame(runs: str, size: int) -> pd.DataFrame:
        offsets = pd.to_timedelta(rng.integers(0, 40, size) * 250, unit="ms")
        return pd.DataFrame({"run_id": rng.choice(list(runs), size),
                             "time_utc": (T0 + offsets).astype(f"datetime64[{unit}, UTC]")})

    gpu = frame("abcd", n).assign(gpu_power_draw=rng.random(n))
    cpu = frame("abce", m).assign(cpu_usage=rng.random(m), memory_usage=rng.random(m),
                                  cpu_temperature_c=rng.random(m))
    tolerance_s = float(rng.choice([0.0, 0.25, 0.5, 1.0, 0.3]))
    got = merge.merge_nearest(gpu, cpu, tolerance_s)
    pd.testing.assert_frame_equal(got.samples, _merge_asof_nearest(gpu, cpu, tolerance_s),
                                  check_exact=True)
    counts = got.match_counts.set_index("run_id")
    assert counts["gpu_samples"].to_dict() == gpu.groupby("run_id").size().to_dict()
    assert (counts["matched"] == got.samples.groupby("run_id")["cpu_usage"].count()).all()
    assert counts["cpu_samples"].to_dict() == {
        r: int((cpu["run_id"] == r).sum()) for r in counts.index}


def test_attach_run_columns_is_a_many_to_one_left_join() -> None:
    samples = gpu_frame(["b", "a", "b", "z"], [0.0, 1.0, 2.0, 3.0])
    runs = pd.DataFrame({"run_id": ["a", "b"], "environment": ["cloud", "local"], "run": [0, 7]})
    out = merge.attach_run_columns(samples, runs, ["environment", "run"])
    expected = samples.merge(runs, on="run_id", how="left", validate="many_to_one")
    pd.testing.assert_frame_equal(out, expected)
    assert out["environment"].tolist()[:3] == ["local", "cloud", "local"]
    assert pd.isna(out["environment"].iloc[3]) and np.isnan(out["run"].iloc[3])
    with pytest.raises(ValueError, match="one row per run_id"):
        merge.attach_run_columns(samples, pd.concat([runs, runs]), ["run"])


@pytest.mark.parametrize("unit", ["ms", "ns"])
def test_add_elapsed_skips_missing_stamps_and_run_ids(unit: str) -> None:
    rng = np.random.default_rng(3)
    t = pd.Series(T0 + pd.to_timedelta(rng.integers(0, 100, 40) * 137, unit="ms"))
    t = t.astype(f"datetime64[{unit}, UTC]")
    t[rng.random(40) < 0.2] = pd.NaT
    df = pd.DataFrame({"run_id": pd.Series(rng.choice(["a", "b", None], 40), dtype="str"),
                       "time_utc": t})
    first = df["time_utc"].groupby(df["run_id"]).transform("min")
    expected = (df["time_utc"] - first).dt.total_seconds()
    got = merge.add_elapsed(df)["elapsed_s"]
    pd.testing.assert_series_equal(got, expected.astype("float64"), check_names=False)
    assert got.isna().sum() > 0 and got.notna().sum() > 20
