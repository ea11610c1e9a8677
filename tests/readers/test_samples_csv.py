"""Tidy samples CSVs of another profiler (helpers.readers.samples_csv), described by a mapping."""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd
import pytest

from helpers.core.errors import InputFormatError
from helpers.core.schema import PROFILING_COLUMNS
from helpers.readers import detect
from helpers.readers.samples_csv import read_samples

#: Another profiler's log: two jobs, power in mW, ISO stamps (job b with an offset), a counter.
POWER_CSV = """job,time,power_mW,util,energy_mJ
a,2024-05-01T10:00:00.000,100000,50,0
a,2024-05-01T10:00:01.000,200000,60,150000
a,2024-05-01T10:00:02.000,200000,70,350000
b,2024-05-01T11:00:00+02:00,50000,10,1000
b,2024-05-01T11:00:02+02:00,50000,10,101000
"""
MAPPING = """kind: samples
timezone: Europe/Madrid
environment: lab-a100
architecture: resnet18
columns: {timestamp: time, power: power_mW, run_id: job, utilisation: util%s}
units: {power: mW, energy_counter: mJ}
"""


def _dataset(tmp_path: Path, csv: str = POWER_CSV, counter: bool = True, extra: str = ""
             ) -> detect.DetectedInput:
    (tmp_path / "power.csv").write_text(csv)
    columns = ", energy_counter: energy_mJ" if counter else ""
    (tmp_path / "dl-energy-mapping.yaml").write_text(MAPPING % columns + extra)
    return detect.detect(tmp_path)


def _read(found: detect.DetectedInput):
    return read_samples(list(found.files), found.mapping, found.mapping_file, "mine")


def test_mw_iso_stamps_and_counter(tmp_path: Path) -> None:
    out = _read(_dataset(tmp_path))
    prof = out.profiling
    assert list(prof.columns[:len(PROFILING_COLUMNS)]) == list(PROFILING_COLUMNS)
    assert list(out.run_index["run_id"]) == ["lab-a100/resnet18/000", "lab-a100/resnet18/001"]
    assert list(out.run_index["source_run_id"]) == ["a", "b"]
    a = prof[prof["run_id"] == "lab-a100/resnet18/000"]
    assert a["gpu_power_draw"].tolist() == [100.0, 200.0, 200.0]  # mW -> W
    assert a["gpu_energy_counter_j"].tolist() == [0.0, 150.0, 350.0]  # mJ -> J
    assert a["gpu_usage"].tolist() == pytest.approx([0.5, 0.6, 0.7])  # % -> fraction
    # naive stamps in Europe/Madrid (UTC+2 in May); job b's offset is honoured
    assert pd.Timestamp(a["timestamp"].iloc[0], unit="ms", tz="UTC") == pd.Timestamp(
        "2024-05-01T08:00:00Z")
    b = prof[prof["run_id"] == "lab-a100/resnet18/001"]
    assert pd.Timestamp(b["timestamp"].iloc[0], unit="ms", tz="UTC") == pd.Timestamp(
        "2024-05-01T09:00:00Z")
    assert out.match_counts["gpu_samples"].tolist() == [3, 2]
    assert out.skips.empty and out.events.empty


def test_without_energy_counter(tmp_path: Path) -> None:
    out = _read(_dataset(tmp_path, counter=False))
    assert out.profiling["gpu_energy_counter_j"].isna().all()
    assert out.profiling["gpu_power_draw"].notna().all()


def test_numeric_ms_stamps_cpu_device_and_one_run_per_file(tmp_path: Path) -> None:
    (tmp_path / "node1.csv").write_text("t_ms,pkg_W\n1714550400000,20\n1714550400500,30\n")
    (tmp_path / "dl-energy-mapping.json").write_text(
        '{"kind": "samples", "device": "cpu", "columns": {"timestamp": "t_ms", '
        '"power": "pkg_W"}, "units": {"timestamp": "ms"}}')
    found = detect.detect(tmp_path)
    out = _read(found)
    assert out.run_index["source_run_id"].tolist() == ["node1"]
    assert out.run_index["cpu_energy_method"].iloc[0] == "estimate:pkg_W column"
    assert out.profiling["cpu_power_w"].tolist() == [20.0, 30.0]
    assert out.profiling["gpu_power_draw"].isna().all()
    assert out.profiling["elapsed_s"].tolist() == [0.0, 0.5]


def test_events_are_renamed_and_label_phases(tmp_path: Path) -> None:
    (tmp_path / "phases.csv").write_text(
        "job,time,name,ep\na,2024-05-01T10:00:00.500,train_begin,0\n"
        "a,2024-05-01T10:00:01.500,train_end,0\nzz,2024-05-01T10:00:01.500,train_end,0\n")
    extra = ("events:\n  file: phases.csv\n  columns: {run_id: job, timestamp: time, "
             "event: name, epoch: ep}\n  names: {train_begin: epoch_start, "
             "train_end: epoch_end}\n")
    found = _dataset(tmp_path, extra=extra)
    assert found.files == (tmp_path / "power.csv",)  # the events file is not samples
    out = _read(found)
    assert out.events["event"].tolist() == ["epoch_start", "epoch_end"]
    assert out.events["run_id"].unique().tolist() == ["lab-a100/resnet18/000"]
    a = out.profiling[out.profiling["run_id"] == "lab-a100/resnet18/000"]
    assert a["phase"].isna().iloc[0] and a["phase"].iloc[1:].tolist() == ["train", "between"]
    assert a["epoch"].iloc[1] == 0
    (skip,) = out.skips.itertuples()
    assert skip.line == 4 and "unknown run 'zz'" in skip.reason


def test_bad_row_names_file_line_column(tmp_path: Path) -> None:
    bad = POWER_CSV.replace("a,2024-05-01T10:00:01.000,200000", "a,2024-05-01T10:00:01.000,n/a")
    with pytest.raises(InputFormatError) as err:
        _read(_dataset(tmp_path, bad))
    assert (err.value.path.name, err.value.line, err.value.column) == (
        "power.csv", 3, "power_mW")
    bad = POWER_CSV.replace("2024-05-01T10:00:02.000", "yesterday")
    with pytest.raises(InputFormatError, match="unparsable timestamp") as err:
        _read(_dataset(tmp_path, bad))
    assert (err.value.line, err.value.column) == (4, "time")


def test_bad_rows_skipped_when_asked(tmp_path: Path) -> None:
    bad = POWER_CSV.replace("a,2024-05-01T10:00:01.000,200000", "a,2024-05-01T10:00:01.000,-5")
    bad = bad.replace("b,2024-05-01T11:00:00+02:00,50000,10,1000\n", "b,oops\n")
    out = _read(_dataset(tmp_path, bad, extra="on_bad_row: skip\n"))
    reasons = dict(zip(out.skips["line"], out.skips["reason"], strict=True))
    assert reasons[3] == "negative value '-5'"
    assert reasons[5] == "2 fields, header has 5"
    assert len(out.profiling) == 3


def test_torn_last_line_and_empty_cells(tmp_path: Path) -> None:
    torn = POWER_CSV.replace("a,2024-05-01T10:00:01.000,200000,60", "a,2024-05-01T10:00:01.000,,60")
    torn += "b,2024-05-01T11:00:04+02:0"
    out = _read(_dataset(tmp_path, torn))
    assert "torn last line" in out.skips["reason"].iloc[0] and out.skips["line"].iloc[0] == 7
    assert math.isnan(out.profiling["gpu_power_draw"].iloc[1])  # empty = not measured
    assert len(out.profiling) == 5


@pytest.mark.parametrize(("mapping", "match", "column"), [
    ("kind: samples\ncolumns: {timestamp: time, power: p}\nunits: {power: dBm}\n",
     "unit 'dBm' of 'power'", "units.power"),
    ("kind: samples\ncolumns: {timestamp: time}\n", "columns.power is required",
     "columns.power"),
    ("kind: samples\ncolumns: {timestamp: time, power: p, volts: v}\n",
     "unknown column key 'volts'", "columns.volts"),
    ("kind: samples\ncolumns: {timestamp: time, power: watts}\n",
     "header lacks column 'watts'", "watts"),
])
def test_mapping_errors(tmp_path: Path, mapping: str, match: str, column: str) -> None:
    (tmp_path / "power.csv").write_text("time,p\n0,1\n")
    (tmp_path / "dl-energy-mapping.yaml").write_text(mapping)
    with pytest.raises(InputFormatError, match=match) as err:
        _read(detect.detect(tmp_path))
    assert err.value.column == column


NVIDIA_SMI = """timestamp, index, name, power.draw [W], utilization.gpu [%], memory.used [MiB]
2023/02/21 09:01:12.174, 0, NVIDIA A100-SXM4-40GB, 119.17 W, 83 %, 23573 MiB
2023/02/21 09:01:13.174, 0, NVIDIA A100-SXM4-40GB, [N/A], 85 %, 23573 MiB
2023/02/21 09:01:14.174, 0, NVIDIA A100-SXM4-40GB, 121.00 W, 84 %, 23573 MiB
"""
SMI_MAPPING = """columns:
  timestamp: timestamp
  power: power.draw [W]
  utilisation: utilization.gpu [%]
  memory_used: memory.used [MiB]
  gpu_index: index
  gpu_name: name
"""


def test_nvidia_smi_query_log_as_written(tmp_path: Path) -> None:
    (tmp_path / "smi.csv").write_text(NVIDIA_SMI)
    (tmp_path / "dl-energy-mapping.yaml").write_text(SMI_MAPPING)
    out = _read(detect.detect(tmp_path))
    prof = out.profiling
    assert prof["gpu_power_draw"].tolist()[::2] == [119.17, 121.0]
    assert math.isnan(prof["gpu_power_draw"].iloc[1])  # [N/A]: not measured
    assert prof["gpu_usage"].tolist() == pytest.approx([0.83, 0.85, 0.84])
    assert (prof["gpu_memory_used"] == 23573).all()
    assert out.run_index["environment"].tolist() == ["NVIDIA A100-SXM4-40GB"]
    assert out.run_index["source_run_id"].tolist() == ["smi"]
    # a value in another unit than the mapping's is a bad row, not a silent factor of 1000
    (tmp_path / "smi.csv").write_text(NVIDIA_SMI.replace("121.00 W", "121000 mW"))
    with pytest.raises(InputFormatError, match="unit is not 'W'") as err:
        _read(detect.detect(tmp_path))
    assert (err.value.line, err.value.column) == (4, "power.draw [W]")
