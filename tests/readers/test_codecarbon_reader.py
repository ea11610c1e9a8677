"""CodeCarbon emissions.csv reader (helpers.readers.codecarbon) on small files written here."""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd
import pytest

from helpers.core import datasets
from helpers.core.errors import InputFormatError
from helpers.core.schema import RUN_COLUMNS
from helpers.readers.codecarbon import read_codecarbon

HEADER = ("timestamp,project_name,run_id,duration,emissions,emissions_rate,cpu_power,gpu_power,"
          "ram_power,cpu_energy,gpu_energy,ram_energy,energy_consumed,country_name,"
          "country_iso_code,region,cloud_provider,cloud_region,os,python_version,"
          "codecarbon_version,cpu_count,cpu_model,gpu_count,gpu_model,longitude,latitude,"
          "ram_total_size,tracking_mode,on_cloud,pue,model,epochs,batch_size,accuracy,FLOPs")


def _row(run_id: str = "r1", duration: str = "3600", gpu_energy: str = "0.5",
         cpu_energy: str = "0.1", gpu_model: str = "1 x NVIDIA GeForce RTX 3090",
         gpu_count: str = "1", stamp: str = "2024-05-01T12:00:00", model: str = "resnet50",
         emissions: str = "0.2") -> str:
    return (f"{stamp},proj,{run_id},{duration},{emissions},1e-5,40,300,10,{cpu_energy},"
            f"{gpu_energy},0.05,0.65,Spain,ESP,catalonia,,,Linux,3.11,2.3.4,16,AMD Ryzen,"
            f"{gpu_count},{gpu_model},2.1,41.4,32.0,machine,N,1.0,{model},30,64,0.9,4.1e9")


def _write(tmp_path, *rows: str, header: str = HEADER):
    tmp_path.mkdir(parents=True, exist_ok=True)
    path = tmp_path / "emissions.csv"
    path.write_text("\n".join([header, *rows]) + "\n")
    return path


def test_reads_runs_into_schema(tmp_path):
    path = _write(
        tmp_path,
        _row("r1"),
        _row("r2", stamp="2024-05-01T08:00:00"),
        _row("r3", gpu_energy="0", gpu_model="", gpu_count="", model="mlp"),
        _row("r4", gpu_energy="0", model="vgg16"),
    )
    res = read_codecarbon(path, "cc")
    runs = res.runs.set_index("codecarbon_run_id")
    assert list(res.runs.columns[:len(RUN_COLUMNS)]) == list(RUN_COLUMNS)
    r1 = runs.loc["r1"]
    assert r1["gpu_energy_j"] == pytest.approx(0.5 * 3.6e6)
    assert (r1["energy_j"], r1["energy_source"]) == (pytest.approx(1.8e6), "gpu:codecarbon")
    assert r1["total_energy_j"] == pytest.approx(0.65 * 3.6e6)
    assert r1["gpu_name"] == "NVIDIA GeForce RTX 3090"
    assert r1["start_utc"] == pd.Timestamp("2024-05-01T11:00:00", tz="UTC")
    assert r1["gpu_power_mean_w"] == pytest.approx(500.0)
    assert r1["carbon_intensity_g_per_kwh"] == pytest.approx(200 / 0.65)
    assert r1["emissions_g"] == pytest.approx(0.5 * 200 / 0.65)
    assert (r1["gflops"], r1["epochs"], r1["architecture"]) == (pytest.approx(4.1), 30,
                                                                 "resnet50")
    assert r1["gpu_energy_method"] == r1["cpu_energy_method"] == "codecarbon"
    # runs are numbered by start time within (environment, architecture)
    assert (runs.loc["r2", "run"], r1["run"]) == (0, 1)
    assert r1["run_id"] == "NVIDIA GeForce RTX 3090/resnet50/001"
    cpu_only = runs.loc["r3"]
    assert (cpu_only["gpu_name"], cpu_only["energy_source"]) == ("none", "cpu:codecarbon")
    assert cpu_only["energy_j"] == pytest.approx(0.1 * 3.6e6)
    assert math.isnan(cpu_only["gpu_energy_j"])
    unmeasured = runs.loc["r4"]
    assert math.isnan(unmeasured["energy_j"])
    assert unmeasured["energy_source"].startswith("unmeasured")
    assert res.skipped.empty


def test_non_numeric_cell_names_file_line_column(tmp_path):
    path = _write(tmp_path, _row("r1"), _row("r2", gpu_energy="n/a"))
    with pytest.raises(InputFormatError) as err:
        read_codecarbon(path, "cc")
    assert (err.value.line, err.value.column) == (3, "gpu_energy")
    assert "emissions.csv" in str(err.value) and "'n/a'" in str(err.value)


def test_missing_required_column(tmp_path):
    header = HEADER.replace(",gpu_energy,", ",gpu_energy_kwh,")
    path = _write(tmp_path, _row("r1"), header=header)
    with pytest.raises(InputFormatError) as err:
        read_codecarbon(path, "cc")
    assert (err.value.line, err.value.column) == (1, "gpu_energy")


def test_wrong_field_count_and_bad_stamp(tmp_path):
    path = _write(tmp_path, _row("r1"), _row("r2") + ",extra")
    with pytest.raises(InputFormatError, match="line 3.*fields"):
        read_codecarbon(path, "cc")
    path = _write(tmp_path, _row("r1", stamp="yesterday"))
    with pytest.raises(InputFormatError, match="timestamp"):
        read_codecarbon(path, "cc")


def test_empty_required_value_and_duplicates_are_recorded_skips(tmp_path):
    path = _write(tmp_path, _row("r1", duration=""), _row("r2", gpu_energy="0.1"),
                  _row("r2", gpu_energy="0.4"), _row("r3", duration="0"))
    res = read_codecarbon(path, "cc")
    assert list(res.runs["codecarbon_run_id"]) == ["r2"]
    assert res.runs["gpu_energy_j"].iloc[0] == pytest.approx(0.4 * 3.6e6)  # last flush kept
    reasons = dict(zip(res.skipped["line"], res.skipped["reason"], strict=True))
    assert "empty required value in 'duration'" in reasons[2]
    assert "superseded by line 4" in reasons[3]
    assert reasons[5] == "zero duration"


# -- extra columns, column report, torn lines, duplicates across files, the published file ----

EE_HEADER = ("timestamp,project_name,run_id,model,dataset,epochs,batch_size,duration,emissions,"
             "cpu_power,gpu_power,ram_power,cpu_energy,gpu_energy,ram_energy,energy_consumed,"
             "gpu_count,gpu_model,eval_top1,eval_top5,forward_flops,training_flops,params,"
             "throughput")


def _ee_row(run_id: str, stamp: str = "2024-05-01T12:00:00", gpu_energy: str = "0.5") -> str:
    return (f"{stamp},resnet18_c10,{run_id},resnet18,cifar10,50,32,3600,0.2,47.5,300,20,"
            f"0.1,{gpu_energy},0.05,0.65,1,1 x NVIDIA GeForce RTX 3090,91.45,99.69,0.038,0.075,"
            "11.69,1600")


def test_extra_columns_mapped_with_units_and_file_values_kept(tmp_path):
    path = _write(tmp_path, _ee_row("r1"), header=EE_HEADER)
    res = read_codecarbon(path, "my-registry")
    run = res.runs.iloc[0]
    assert run["gflops"] == pytest.approx(0.038) and run["training_gflops"] == 0.075
    assert run["params"] == pytest.approx(11.69e6)
    assert run["accuracy"] == pytest.approx(0.9145)
    assert run["top5_accuracy"] == pytest.approx(0.9969)
    assert (run["architecture"], run["epochs"], run["batch_size"]) == ("resnet18", 50, 32)
    # the file's dataset is kept; the registry name has its own column
    assert (run["dataset"], run["image_dataset"], run["registry_dataset"]) == (
        "cifar10", "cifar10", "my-registry")
    # the tracked window, named, is the training window where nothing else is known
    assert run["energy_window"] == run["training_window"] == "codecarbon tracker (whole run)"
    assert run["training_energy_j"] == run["energy_j"] == pytest.approx(0.5 * 3.6e6)
    assert run["training_duration_s"] == run["duration_s"] == 3600
    cols = res.columns.set_index("column")
    assert set(res.ignored_columns) == {"cpu_power", "gpu_power", "ram_power", "throughput"}
    assert cols.loc["eval_top1", "used_as"] == "accuracy"
    assert "%" in cols.loc["eval_top1", "note"] and "millions" in cols.loc["params", "note"]
    assert set(cols.index) == set(EE_HEADER.split(","))  # every column accounted for


def test_plain_codecarbon_without_extras(tmp_path):
    header = ",".join(c for c in HEADER.split(",")[:31])  # CodeCarbon's own columns only
    row = ",".join(_row("r1").split(",")[:31])
    res = read_codecarbon(_write(tmp_path, row, header=header), "cc")
    run = res.runs.iloc[0]
    assert run["architecture"] == "proj"  # project_name where no model column
    assert math.isnan(run["gflops"]) and math.isnan(run["accuracy"]) and run["dataset"] is None
    assert run["training_energy_j"] == pytest.approx(1.8e6)


def test_percent_rule_leaves_fractions_and_flops_rule_converts_flops(tmp_path):
    header = HEADER.replace(",accuracy,FLOPs", ",accuracy,forward_flops")
    res = read_codecarbon(_write(tmp_path, _row("r1"), header=header), "cc")
    assert res.runs["accuracy"].iloc[0] == pytest.approx(0.9)  # 0.9: already a fraction
    assert res.runs["gflops"].iloc[0] == pytest.approx(4.1)  # 4.1e9 FLOPs
    note = res.columns.set_index("column").loc["forward_flops", "note"]
    assert note == "FLOPs -> GFLOPs (/ 1e9)"


def test_torn_last_line_is_a_recorded_skip(tmp_path):
    path = tmp_path / "emissions.csv"
    path.write_text("\n".join([HEADER, _row("r1"), _row("r2")[:40]]))  # cut mid-write
    res = read_codecarbon(path, "cc")
    assert list(res.runs["codecarbon_run_id"]) == ["r1"]
    (skip,) = res.skipped.itertuples()
    assert skip.line == 3 and "torn last line" in skip.reason
    # a last line that parses but has no newline is left out too: a number in it may be cut
    # short (a train size of 5376 read as 53), which nothing in the line shows
    path.write_text("\n".join([HEADER, _row("r1"), _row("r2")]))
    res = read_codecarbon(path, "cc")
    assert list(res.runs["codecarbon_run_id"]) == ["r1"]
    assert "torn last line" in res.skipped["reason"].iloc[0]


def test_same_run_id_in_two_files_is_counted_once(tmp_path):
    a = _write(tmp_path / "a", _row("r1", gpu_energy="0.4"), _row("r2"))
    b = _write(tmp_path / "b", _row("r1", gpu_energy="0.5", stamp="2024-05-01T13:00:00"))
    res = read_codecarbon([a, b], "cc")
    assert sorted(res.runs["codecarbon_run_id"]) == ["r1", "r2"]
    r1 = res.runs.set_index("codecarbon_run_id").loc["r1"]
    assert r1["gpu_energy_j"] == pytest.approx(0.5 * 3.6e6)  # written later
    (skip,) = res.skipped.itertuples()
    assert (skip.source_file, skip.line) == (str(a), 2)
    assert "duplicate run_id 'r1'" in skip.reason and str(b) in skip.reason


def _ee_training() -> Path | None:
    """The published EE-Training CSV where the registry finds it (None: absent)."""
    try:
        path = datasets.input_dir("ee-training") / "training_energy.csv"
    except FileNotFoundError:
        return None
    return path if path.is_file() else None


@pytest.mark.skipif(_ee_training() is None, reason="EE-Training CSV not present")
def test_published_ee_training_file():
    res = read_codecarbon(_ee_training(), "ee-training")
    assert len(res.runs) == 198 and res.skipped.empty
    row = res.runs.set_index("codecarbon_run_id").loc["ae5f106a-aa96-4e0c-b578-f7ee11628908"]
    assert (row["architecture"], row["image_dataset"], row["epochs"], row["batch_size"]) == (
        "resnet18", "cifar10", 50, 32)
    assert row["gflops"] == pytest.approx(0.038)  # GFLOPs per image at 32 px
    assert row["training_gflops"] == pytest.approx(0.075)
    assert row["params"] == pytest.approx(11.69e6)
    assert row["accuracy"] == pytest.approx(0.9145)  # 91.45 %
    assert row["energy_j"] == pytest.approx(0.14985459349469 * 3.6e6)
    assert row["total_energy_j"] == pytest.approx(0.1805833895604601 * 3.6e6)
    assert res.runs[["gflops", "params", "accuracy"]].notna().all().all()
    assert "throughput" in res.ignored_columns and "SAM" in res.ignored_columns
