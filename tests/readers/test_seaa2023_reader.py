"""Tests for helpers.readers.seaa2023: both GPU header variants, CPU logs, timezones, bad input,
run discovery and numbering. Files are small copies of the published formats written to tmp."""

from __future__ import annotations

from contextlib import nullcontext
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from helpers.core.errors import InputFormatError
from helpers.readers import seaa2023
from helpers.stages import stage02_merge, stage03_clean

RENAMED_HEADER = ("timestamp,gpu_name,gpu_usage,gpu_memory_usage,gpu_total_memory,"
                  "gpu_memory_used,gpu_power_draw,gpu_max_power,gpu_temperature")
NVSMI_HEADER = ("timestamp, name, utilization.gpu [%], utilization.memory [%], "
                "memory.total [MiB], memory.used [MiB], power.draw [W], power.max_limit [W], "
                "temperature.gpu")
CPU_HEADER = "timestamp,cpu usage (%),memory usage (MB),temperature (Celsius)"
GPU_OUT = ["time_utc", "gpu_name", "gpu_usage", "gpu_memory_usage", "gpu_total_memory",
           "gpu_memory_used", "gpu_power_draw", "gpu_max_power", "gpu_temperature", "line"]
CPU_OUT = ["time_utc", "cpu_usage", "memory_usage", "cpu_temperature_c", "line"]


def renamed_row(stamp: str, power: str = "119.17 W", usage: str = "0 %",
                memory_usage: str = "0 %", temperature: str = "55") -> str:
    """A line of the renamed variant, as in cloud/mobilenet_v2 (no spaces after commas)."""
    return (f"{stamp},NVIDIA GeForce RTX 3090,{usage},{memory_usage},24268 MiB,23573 MiB,"
            f"{power},350.00 W,{temperature}")


def nvsmi_row(stamp: str, power: str = "30.98 W", usage: str = "12 %") -> str:
    """A line of the raw nvidia-smi variant (", " separators), as in local-v2/resnet50."""
    return ", ".join([stamp, "NVIDIA GeForce RTX 3070", usage, "67 %", "8192 MiB", "7349 MiB",
                      power, "240.00 W", "41"])


def write_log(path: Path, lines: list[str], end_newline: bool = True) -> Path:
    """Write ``lines`` joined by newlines; ``end_newline=False`` leaves the last line torn."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + ("\n" if end_newline else ""))
    return path


def utc(text: str) -> pd.Timestamp:
    return pd.Timestamp(text, tz="UTC")


# --- both GPU header variants, decimals and units ------------------------------------------


def test_renamed_variant_parses_values_with_decimals(tmp_path: Path) -> None:
    path = write_log(tmp_path / "gpu-power-20221205T095541.csv", [
        RENAMED_HEADER,
        renamed_row("2022-12-05 09:55:42.535", "119.17 W", "0 %", "0 %"),
        renamed_row("2022-12-05 09:55:43.536", "118.97 W", "37 %", "5 %", "56"),
    ])
    log = seaa2023.read_gpu_log(path)
    assert log.variant == "renamed"
    assert log.skips == []
    df = log.data
    assert list(df.columns) == GPU_OUT
    assert df["gpu_power_draw"].tolist() == [119.17, 118.97]  # decimals kept, not 119 / 118
    assert df["gpu_usage"].tolist() == [0.0, 0.37]  # "0 %" -> fraction 0.0
    assert df["gpu_memory_usage"].tolist() == [0.0, 0.05]
    assert df["gpu_total_memory"].tolist() == [24268.0, 24268.0]  # "24268 MiB"
    assert df["gpu_memory_used"].tolist() == [23573.0, 23573.0]
    assert df["gpu_max_power"].tolist() == [350.0, 350.0]
    assert df["gpu_temperature"].tolist() == [55.0, 56.0]
    assert df["gpu_name"].tolist() == ["NVIDIA GeForce RTX 3090"] * 2
    assert df["line"].tolist() == [2, 3]
    # local winter time in Madrid is UTC+1
    assert df["time_utc"].tolist() == [utc("2022-12-05 08:55:42.535"),
                                       utc("2022-12-05 08:55:43.536")]
    assert str(df["time_utc"].dtype) == "datetime64[ms, UTC]"


def test_nvidia_smi_variant_parses_values_with_decimals(tmp_path: Path) -> None:
    path = write_log(tmp_path / "gpu-power-20230221T090112.csv", [
        NVSMI_HEADER,
        nvsmi_row("2023/02/21 09:01:12.174", "30.98 W", "12 %"),
        nvsmi_row("2023/02/21 09:01:13.176", "231.5 W", "100 %"),
    ])
    log = seaa2023.read_gpu_log(path)
    assert log.variant == "nvidia-smi"
    assert log.skips == []
    df = log.data
    assert list(df.columns) == GPU_OUT
    assert df["gpu_power_draw"].tolist() == [30.98, 231.5]
    assert df["gpu_usage"].tolist() == [0.12, 1.0]
    assert df["gpu_memory_usage"].tolist() == [0.67, 0.67]
    assert df["gpu_total_memory"].tolist() == [8192.0, 8192.0]
    assert df["gpu_memory_used"].tolist() == [7349.0, 7349.0]
    assert df["gpu_max_power"].tolist() == [240.0, 240.0]
    assert df["gpu_name"].tolist() == ["NVIDIA GeForce RTX 3070"] * 2  # leading space stripped
    assert df["time_utc"].tolist() == [utc("2023-02-21 08:01:12.174"),
                                       utc("2023-02-21 08:01:13.176")]


def test_cpu_log_with_and_without_microseconds(tmp_path: Path) -> None:
    # Python's isoformat() drops the fraction when microseconds are 0
    path = write_log(tmp_path / "cpu-mem-usage-20230308T131133.csv", [
        CPU_HEADER,
        "2023-03-08T13:11:36.425551,0.0,11045.145,25.75",
        "2023-03-08T13:11:37,2.816,11047.629,26.25",
    ])
    log = seaa2023.read_cpu_log(path)
    assert log.skips == []
    df = log.data
    assert list(df.columns) == CPU_OUT
    assert df["time_utc"].tolist() == [utc("2023-03-08 12:11:36.425"),  # ms resolution
                                       utc("2023-03-08 12:11:37")]
    assert df["cpu_usage"].tolist() == [0.0, 2.816]
    assert df["memory_usage"].tolist() == [11045.145, 11047.629]
    assert df["cpu_temperature_c"].tolist() == [25.75, 26.25]
    assert df["line"].tolist() == [2, 3]


@pytest.mark.parametrize(("stamp", "hours"), [
    ("2022-12-05 09:55:42.535", 1),  # winter: CET = UTC+1
    ("2022-07-05 09:55:42.535", 2),  # summer: CEST = UTC+2
])
def test_timezone_parameter_shifts_stamps(tmp_path: Path, stamp: str, hours: int) -> None:
    path = write_log(tmp_path / "gpu.csv", [RENAMED_HEADER, renamed_row(stamp)])
    madrid = seaa2023.read_gpu_log(path, tz="Europe/Madrid").data["time_utc"].iloc[0]
    as_utc = seaa2023.read_gpu_log(path, tz="UTC").data["time_utc"].iloc[0]
    assert as_utc == utc(stamp)
    assert as_utc - madrid == pd.Timedelta(hours=hours)


# --- bad input: recorded skips, or InputFormatError when strict ------------------------------


def test_truncated_last_line_is_a_recorded_skip(tmp_path: Path) -> None:
    path = write_log(tmp_path / "gpu.csv", [
        RENAMED_HEADER,
        renamed_row("2022-12-05 09:55:42.535"),
        renamed_row("2022-12-05 09:55:43.536"),
        "2022-12-05 09:55:44.537,NVIDIA GeForce RTX 30",
    ], end_newline=False)
    log = seaa2023.read_gpu_log(path)
    assert len(log.data) == 2
    assert log.data["line"].tolist() == [2, 3]
    assert len(log.skips) == 1
    skip = log.skips[0]
    assert skip.line == 4
    assert "torn" in skip.reason
    assert skip.file == str(path)
    with pytest.raises(InputFormatError) as err:
        seaa2023.read_gpu_log(path, strict=True)
    assert err.value.line == 4 and err.value.path == path


def test_cpu_truncated_last_line(tmp_path: Path) -> None:
    path = write_log(tmp_path / "cpu.csv", [
        CPU_HEADER, "2023-03-08T13:11:36.425551,0.0,11045.145,25.75", "2023-03-08T13:11:3",
    ], end_newline=False)
    log = seaa2023.read_cpu_log(path)
    assert len(log.data) == 1
    assert [(s.line, "torn" in s.reason) for s in log.skips] == [(3, True)]


@pytest.mark.parametrize(("text", "line", "reason"), [
    ("", None, "empty file"),
    ("\n  \n", None, "empty file"),
    (RENAMED_HEADER + "\n", 1, "header only"),
    (renamed_row("2022-12-05 09:55:42.535") + "\n", 1, "no header"),
    ("time,power\n1,2\n", 1, "unknown header"),
])
def test_file_level_problems(tmp_path: Path, text: str, line: int | None, reason: str) -> None:
    path = tmp_path / "gpu.csv"
    path.write_text(text)
    log = seaa2023.read_gpu_log(path)
    assert log.data.empty
    assert list(log.data.columns) == GPU_OUT
    assert [(s.line, s.column) for s in log.skips] == [(line, None)]
    assert reason in log.skips[0].reason
    with pytest.raises(InputFormatError, match=reason):
        seaa2023.read_gpu_log(path, strict=True)


def test_non_numeric_value_names_line_and_column(tmp_path: Path) -> None:
    path = write_log(tmp_path / "gpu.csv", [
        NVSMI_HEADER,
        nvsmi_row("2023/02/21 09:01:12.174"),
        nvsmi_row("2023/02/21 09:01:13.176", "[Not Supported]"),
        nvsmi_row("2023/02/21 09:01:14.178", "31.5 W"),
    ])
    log = seaa2023.read_gpu_log(path)
    assert log.data["line"].tolist() == [2, 4]  # the bad row is left out, not zeroed
    assert log.data["gpu_power_draw"].tolist() == [30.98, 31.5]
    assert [(s.line, s.column) for s in log.skips] == [(3, "gpu_power_draw")]
    assert "non-numeric" in log.skips[0].reason and "Not Supported" in log.skips[0].reason
    with pytest.raises(InputFormatError) as err:
        seaa2023.read_gpu_log(path, strict=True)
    assert (err.value.path, err.value.line, err.value.column) == (path, 3, "gpu_power_draw")
    assert str(path) in str(err.value) and "line 3" in str(err.value)
    assert "gpu_power_draw" in str(err.value)


def test_cpu_non_numeric_value(tmp_path: Path) -> None:
    path = write_log(tmp_path / "cpu.csv", [
        CPU_HEADER,
        "2023-03-08T13:11:36.425551,0.0,11045.145,25.75",
        "2023-03-08T13:11:37.425551,1.5,lots,25.75",
    ])
    log = seaa2023.read_cpu_log(path)
    assert log.data["line"].tolist() == [2]
    assert [(s.line, s.column) for s in log.skips] == [(3, "memory usage (MB)")]
    with pytest.raises(InputFormatError) as err:
        seaa2023.read_cpu_log(path, strict=True)
    assert (err.value.line, err.value.column) == (3, "memory usage (MB)")


def test_out_of_order_stamp_is_a_recorded_skip(tmp_path: Path) -> None:
    path = write_log(tmp_path / "gpu.csv", [
        RENAMED_HEADER,
        renamed_row("2022-12-05 09:55:42.535"),
        renamed_row("2022-12-05 09:55:44.537"),
        renamed_row("2022-12-05 09:55:43.536"),  # earlier than line 3
        renamed_row("2022-12-05 09:55:45.538"),
    ])
    log = seaa2023.read_gpu_log(path)
    assert log.data["line"].tolist() == [2, 3, 5]
    assert log.data["time_utc"].is_monotonic_increasing
    assert [(s.line, s.column) for s in log.skips] == [(4, "timestamp")]
    assert "out of order" in log.skips[0].reason
    with pytest.raises(InputFormatError) as err:
        seaa2023.read_gpu_log(path, strict=True)
    assert err.value.line == 4


def test_wrong_field_count_skip_and_strict_error(tmp_path: Path) -> None:
    path = write_log(tmp_path / "gpu.csv", [
        RENAMED_HEADER,
        renamed_row("2022-12-05 09:55:42.535"),
        "2022-12-05 09:55:43.536,NVIDIA GeForce RTX 3090,0 %",
        renamed_row("2022-12-05 09:55:44.537"),
    ])
    log = seaa2023.read_gpu_log(path)
    assert log.data["line"].tolist() == [2, 4]
    assert [(s.line, s.reason) for s in log.skips] == [(3, "expected 9 fields, found 3")]
    # strict must raise our error, not pyarrow's (exceptions in pyarrow's handler are swallowed)
    with pytest.raises(InputFormatError) as err:
        seaa2023.read_gpu_log(path, strict=True)
    assert err.value.line == 3


def test_unparsable_stamp(tmp_path: Path) -> None:
    path = write_log(tmp_path / "gpu.csv", [
        RENAMED_HEADER, renamed_row("2022-12-05 09:55:42.535"), renamed_row("yesterday"),
    ])
    log = seaa2023.read_gpu_log(path)
    assert log.data["line"].tolist() == [2]
    assert [(s.line, s.column) for s in log.skips] == [(3, "timestamp")]


ROW = renamed_row("2022-12-05 09:55:43.536")


@pytest.mark.parametrize(("text", "lines", "skipped_lines"), [
    # header + only a torn line (pyarrow used to fail on the empty body)
    (RENAMED_HEADER + "\n2022-12-05 09:55:42.535,NVIDIA", [], [2]),
    # a stray quote must not swallow the following lines
    (RENAMED_HEADER + '\n"2022-12-05 09:55:42.535,NVIDIA\n' + ROW + "\n", [3], [2]),
    (RENAMED_HEADER + "\n\n" + ROW + "\n", [3], []),  # blank line: skipped, numbering kept
    ((RENAMED_HEADER + "\n" + ROW + "\n").replace("\n", "\r\n"), [2], []),  # CRLF
    (RENAMED_HEADER + "\n" + renamed_row("2022-12-05 09:55:43.536", "nan W") + "\n", [], [2]),
    (NVSMI_HEADER + "\n" + ",,,,,,,,\n" + nvsmi_row("2023/02/21 09:01:12.174") + "\n", [3],
     [2] * 8),  # an empty timestamp and 7 empty numeric fields on line 2
])
def test_no_crash_on_odd_input(tmp_path: Path, text: str, lines: list[int],
                               skipped_lines: list[int]) -> None:
    path = tmp_path / "gpu.csv"
    path.write_text(text)
    log = seaa2023.read_gpu_log(path)  # must not raise from pandas/pyarrow
    assert list(log.data.columns) == GPU_OUT
    assert str(log.data["time_utc"].dtype) == "datetime64[ms, UTC]"
    assert np.isfinite(log.data["gpu_power_draw"].to_numpy()).all()
    assert log.data["line"].tolist() == lines
    assert sorted(s.line for s in log.skips) == skipped_lines
    with pytest.raises(InputFormatError) if skipped_lines else nullcontext():
        seaa2023.read_gpu_log(path, strict=True)


def test_binary_garbage_is_an_unknown_header(tmp_path: Path) -> None:
    path = tmp_path / "gpu.csv"
    path.write_bytes(b"\x00\x01\xff\xfe garbage\n\x00\x00\n")
    log = seaa2023.read_gpu_log(path)
    assert log.data.empty and [s.line for s in log.skips] == [1]


# --- run discovery, numbering, missing files -------------------------------------------------


def _write_run(raw: Path, env: str, arch: str, stamp: str, cpu: bool = True) -> None:
    local = pd.Timestamp(stamp) + pd.Timedelta(seconds=1)
    rows = [renamed_row(f"{local + pd.Timedelta(seconds=i):%Y-%m-%d %H:%M:%S}.000")
            for i in range(5)]
    write_log(raw / env / arch / f"gpu-power-{stamp}.csv", [RENAMED_HEADER, *rows])
    if cpu:
        write_log(raw / env / arch / f"cpu-mem-usage-{stamp}.csv", [CPU_HEADER, *[
            f"{local + pd.Timedelta(seconds=i, milliseconds=300):%Y-%m-%dT%H:%M:%S.%f},1.0,900,30"
            for i in range(5)]])


def test_runs_numbered_by_stamp_order_within_group(tmp_path: Path) -> None:
    raw = tmp_path / "raw"
    # written out of order on purpose; numbering must follow the stamps, per group
    for env, arch, stamp in [("cloud", "vgg16", "20230310T120000"),
                             ("cloud", "vgg16", "20221205T095541"),
                             ("cloud", "vgg16", "20230101T000000"),
                             ("cloud", "resnet50", "20230102T000000"),
                             ("local-v2", "vgg16", "20221201T000000")]:
        _write_run(raw, env, arch, stamp, cpu=stamp != "20230101T000000")
    (raw / "cloud" / "vgg16" / "notes.txt").write_text("not a log\n")
    runs = seaa2023.discover_runs(raw)
    got = {r.run_id: r.stamp for r in runs.itertuples()}
    assert got == {
        "cloud/resnet50/000": "20230102T000000",
        "cloud/vgg16/000": "20221205T095541",
        "cloud/vgg16/001": "20230101T000000",
        "cloud/vgg16/002": "20230310T120000",
        "local-v2/vgg16/000": "20221201T000000",
    }
    missing = runs.set_index("run_id").loc["cloud/vgg16/001"]
    assert missing["cpu_file"] is None and missing["gpu_file"] is not None

    logs = seaa2023.read_logs(raw, workers=1)
    assert logs.runs.set_index("run_id")["n_cpu_samples"].to_dict()["cloud/vgg16/001"] == 0
    assert (logs.runs["n_gpu_samples"] == 5).all()
    recorded = logs.skips[logs.skips["run_id"] == "cloud/vgg16/001"]
    assert recorded["reason"].tolist() == ["no cpu-mem-usage file for this stamp"]
    assert set(logs.gpu["source_file"]) == {
        f"{e}/{a}/gpu-power-{s}.csv" for e, a, s in
        [("cloud", "vgg16", "20230310T120000"), ("cloud", "vgg16", "20221205T095541"),
         ("cloud", "vgg16", "20230101T000000"), ("cloud", "resnet50", "20230102T000000"),
         ("local-v2", "vgg16", "20221201T000000")]}

    # two reader threads give the same tables as one
    pooled = seaa2023.read_logs(raw, workers=2)
    pd.testing.assert_frame_equal(pooled.gpu, logs.gpu)
    pd.testing.assert_frame_equal(pooled.cpu, logs.cpu)
    pd.testing.assert_frame_equal(pooled.runs, logs.runs)


def test_empty_gpu_log_among_good_runs(tmp_path: Path) -> None:
    raw = tmp_path / "raw"
    _write_run(raw, "cloud", "vgg16", "20221205T095541")
    _write_run(raw, "cloud", "vgg16", "20221206T095541")
    (raw / "cloud" / "vgg16" / "gpu-power-20221206T095541.csv").write_text("")
    logs = seaa2023.read_logs(raw, workers=1)
    assert logs.runs["n_gpu_samples"].tolist() == [5, 0]
    assert str(logs.gpu["time_utc"].dtype) == "datetime64[ms, UTC]"
    bad = logs.skips[logs.skips["run_id"] == "cloud/vgg16/001"]
    assert bad["reason"].tolist() == ["empty file"]
    assert bad["file"].tolist() == ["cloud/vgg16/gpu-power-20221206T095541.csv"]


def test_no_logs_is_an_error(tmp_path: Path) -> None:
    (tmp_path / "raw" / "cloud").mkdir(parents=True)
    with pytest.raises(FileNotFoundError):
        seaa2023.read_logs(tmp_path / "raw", workers=1)


def test_model_metrics_not_parquet(tmp_path: Path) -> None:
    path = tmp_path / "model_metrics.gzip"
    path.write_bytes(b"\x1f\x8b not parquet")
    with pytest.raises(InputFormatError, match="not a readable Parquet"):
        seaa2023.read_model_metrics(path)


@pytest.mark.parametrize("with_good_run", [True, False])
def test_merge_and_clean_survive_missing_and_empty_logs(tmp_path: Path,
                                                        with_good_run: bool) -> None:
    raw = tmp_path / "raw"
    _write_run(raw, "cloud", "vgg16", "20221206T000000", cpu=False)  # GPU log only
    if with_good_run:
        _write_run(raw, "cloud", "vgg16", "20221205T000000")
        _write_run(raw, "cloud", "vgg16", "20221207T000000")
        (raw / "cloud" / "vgg16" / "gpu-power-20221207T000000.csv").write_text("")
    merged = stage02_merge.merge_seaa2023(raw, workers=1)  # no crash inside pandas
    counts = merged.match_counts.set_index("run_id")
    gpu_only = "cloud/vgg16/001" if with_good_run else "cloud/vgg16/000"
    assert (counts.loc[gpu_only, "matched"], counts.loc[gpu_only, "unmatched"]) == (0, 5)
    cleaned = stage03_clean.clean_dataset(merged, "x", contamination=None)
    removed = cleaned.ledger.removed_table().set_index("run_id")
    if not with_good_run:  # no run has RAM samples: the step is skipped, the run kept
        note = cleaned.ledger.steps_table().set_index("step").loc["missing RAM samples", "note"]
        assert note.startswith("skipped: no run has RAM samples") and len(cleaned.runs) == 1
        return
    assert "RAM samples for 0.0% of the run" in removed.loc[gpu_only, "reason"]
    assert removed.loc["cloud/vgg16/002", "reason"] == "fewer than 2 samples: empty file"
    assert counts.loc["cloud/vgg16/000", "matched"] == 5


#: Published runs of both GPU header variants (local-v2: raw nvidia-smi; cloud: renamed).
BATCH_RUNS = [("local-v2", "mobilenet_v2", "20230221T090112"),
              ("local-v2", "mobilenet_v2", "20230221T093210"),
              ("cloud", "mobilenet_v2", "20221205T095541"),
              ("cloud", "mobilenet_v2", "20221205T104713")]


def _set_field(path: Path, line: int, field: int, value: bytes) -> None:
    """Set field ``field`` (0-based) of 1-based ``line`` (keeping a ", " separator's space)."""
    lines = path.read_bytes().split(b"\n")
    cells = lines[line - 1].split(b",")
    cells[field] = (b" " if cells[field].startswith(b" ") else b"") + value
    lines[line - 1] = b",".join(cells)
    path.write_bytes(b"\n".join(lines))


def test_all_logs_at_once_read_as_each_log_alone(tmp_path: Path, seaa2023_root: Path) -> None:
    """read_logs parses the clean logs of a header variant in one batch and the others file by
    file: the samples and skips equal those of read_gpu_log / read_cpu_log on each file."""
    raw = tmp_path / "raw"
    for env, arch, stamp in BATCH_RUNS:
        (raw / env / arch).mkdir(parents=True, exist_ok=True)
        for prefix in ("gpu-power", "cpu-mem-usage"):
            name = f"{prefix}-{stamp}.csv"
            (raw / env / arch / name).write_bytes(
                (seaa2023_root / "raw" / env / arch / name).read_bytes())
    local, cloud = raw / "local-v2" / "mobilenet_v2", raw / "cloud" / "mobilenet_v2"
    _set_field(local / "gpu-power-20230221T093210.csv", 10, 6, b"12 Wx")  # not a number
    _set_field(cloud / "gpu-power-20221205T095541.csv", 20, 8, b"555")  # implausible
    _set_field(cloud / "cpu-mem-usage-20221205T104713.csv", 7, 0, b"2022-12-05")  # no time
    bom = cloud / "cpu-mem-usage-20221205T095541.csv"  # read as usual
    bom.write_bytes(b"\xef\xbb\xbf" + bom.read_bytes())
    logs = seaa2023.read_logs(raw, workers=2)
    expected_skips = set()
    for run in logs.runs.itertuples():
        for table, path, reader in ((logs.gpu, run.gpu_file, seaa2023.read_gpu_log),
                                    (logs.cpu, run.cpu_file, seaa2023.read_cpu_log)):
            alone = reader(path)
            got = table[table["run_id"] == run.run_id].drop(columns=["run_id", "source_file"])
            pd.testing.assert_frame_equal(got.reset_index(drop=True), alone.data,
                                          check_exact=True)
            rel = str(Path(path).relative_to(raw))
            expected_skips |= {(rel, s.line, s.column, s.reason) for s in alone.skips}
    got_skips = {(s.file, None if pd.isna(s.line) else s.line,
                  None if pd.isna(s.column) else s.column, s.reason)
                 for s in logs.skips.itertuples()}
    assert got_skips == expected_skips
    reasons = " | ".join(logs.skips["reason"])
    assert "non-numeric value" in reasons and "gpu_temperature 555" in reasons
    assert "unparsable timestamp" in reasons
