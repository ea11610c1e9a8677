"""CodeCarbon emissions.csv reader (helpers.readers.codecarbon) on small files written here."""

from __future__ import annotations

import math

import pandas as pd
import pytest

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
