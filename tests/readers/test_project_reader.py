"""helpers.readers.project: the project's raw run folders, good and bad."""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

import pytest

from helpers.collect.devices.fake_nvml import FakeNvmlBackend
from helpers.collect.sampler import Sampler
from helpers.core.errors import InputFormatError
from helpers.core.raw_format import EVENT_COLUMNS, SAMPLE_COLUMNS
from helpers.readers.project import discover_runs, read_run


@pytest.fixture(scope="module")
def recorded_run(tmp_path_factory) -> Path:
    """A real run written by the sampler with the fake GPU (one gap row, quoted gap text)."""
    folder = tmp_path_factory.mktemp("raw") / "env" / "arch" / "000"
    fake = FakeNvmlBackend(error_reads={3})
    with Sampler(folder, interval_s=0.01, flush_every_s=0.05, gpu_backend=fake) as sampler:
        sampler.mark("epoch_start", epoch=0)
        time.sleep(0.15)
        sampler.mark("epoch_end", epoch=0, note='comma, "quote"')
    return folder


@pytest.fixture
def run_copy(recorded_run, tmp_path) -> Path:
    target = tmp_path / "env" / "arch" / "000"
    shutil.copytree(recorded_run, target)
    return target


def lines(path: Path) -> list[str]:
    return path.read_text().splitlines(keepends=True)


def write_lines(path: Path, content: list[str]) -> None:
    path.write_text("".join(content))


def test_reads_a_recorded_run(recorded_run):
    run = read_run(recorded_run)
    assert list(run.samples.columns) == list(SAMPLE_COLUMNS)
    assert list(run.events.columns) == list(EVENT_COLUMNS)
    assert run.samples["timestamp_ms"].dtype == "int64"
    assert str(run.samples["gpu_index"].dtype) == "Int64"
    assert run.samples["gpu_power_w"].dtype == "float64"
    assert run.skipped == []
    assert run.samples["gap_reason"].notna().sum() == 1
    assert "as scripted" in run.samples["gap_reason"].dropna().iloc[0]
    assert run.events["info"].iloc[2] == {"note": 'comma, "quote"'}
    assert run.events["epoch"].tolist()[1:3] == [0, 0]
    assert run.metadata["status"] == "ok"
    assert len(run.samples) == run.metadata["sampler"]["n_samples"]


def test_torn_last_line_is_skipped_with_its_line_number(run_copy):
    samples = run_copy / "samples.csv"
    n_lines = len(lines(samples))
    with samples.open("a") as fh:
        fh.write("1795375083036,669.61,0,Fake GPU H1")  # SIGKILL mid-write
    events = run_copy / "events.csv"
    with events.open("a") as fh:
        fh.write("17953750")
    run = read_run(run_copy)
    assert len(run.samples) == n_lines - 1
    assert run.skipped[0][0] == n_lines + 1
    assert run.skipped[0][1].startswith("samples.csv: torn last line")
    assert run.skipped[1][1].startswith("events.csv: torn last line")


def test_header_only_file_gives_empty_table(run_copy):
    samples = run_copy / "samples.csv"
    write_lines(samples, lines(samples)[:1])
    run = read_run(run_copy)
    assert run.samples.empty and list(run.samples.columns) == list(SAMPLE_COLUMNS)


def _error(run_dir: Path) -> InputFormatError:
    with pytest.raises(InputFormatError) as info:
        read_run(run_dir)
    return info.value


def test_unknown_header_names_the_column(run_copy):
    samples = run_copy / "samples.csv"
    content = lines(samples)
    content[0] = content[0].replace("gpu_power_w,", "gpu_power_watts,")
    write_lines(samples, content)
    err = _error(run_copy)
    assert (err.path, err.line, err.column) == (samples, 1, "gpu_power_watts")
    assert "unknown header" in str(err)


def test_missing_header_column(run_copy):
    events = run_copy / "events.csv"
    content = [",".join(line.split(",")[:4]) + "\n" for line in lines(events)[:1]]
    write_lines(events, content)
    err = _error(run_copy)
    assert (err.path.name, err.line, err.column) == ("events.csv", 1, "info")


def test_non_numeric_value_names_file_line_column(run_copy):
    samples = run_copy / "samples.csv"
    content = lines(samples)
    cells = content[4].split(",")
    cells[list(SAMPLE_COLUMNS).index("gpu_power_w")] = "312.5 W"
    content[4] = ",".join(cells)
    write_lines(samples, content)
    err = _error(run_copy)
    assert (err.path, err.line, err.column) == (samples, 5, "gpu_power_w")
    assert "non-numeric value '312.5 W'" in str(err)


def test_wrong_field_count_mid_file(run_copy):
    samples = run_copy / "samples.csv"
    content = lines(samples)
    content[6] = content[6].rstrip("\n") + ",extra\n"
    write_lines(samples, content)
    err = _error(run_copy)
    assert err.line == 7 and "24 fields, header has 23" in str(err)


@pytest.mark.parametrize("name", ["samples.csv", "events.csv", "metadata.json"])
def test_empty_file(run_copy, name):
    (run_copy / name).write_text("")
    err = _error(run_copy)
    assert err.path.name == name and "empty file" in str(err)


@pytest.mark.parametrize("name", ["samples.csv", "events.csv", "metadata.json"])
def test_missing_file(run_copy, name):
    (run_copy / name).unlink()
    err = _error(run_copy)
    assert err.path.name == name and "missing file" in str(err)


def test_timestamps_going_backwards(run_copy):
    samples = run_copy / "samples.csv"
    content = lines(samples)
    content[8], content[9] = content[9], content[8]
    write_lines(samples, content)
    err = _error(run_copy)
    assert err.line == 10 and err.column in {"timestamp_ms", "monotonic_s"}
    assert "backwards" in str(err)


def test_missing_timestamp(run_copy):
    events = run_copy / "events.csv"
    content = lines(events)
    content[2] = "," + content[2].split(",", 1)[1]
    write_lines(events, content)
    err = _error(run_copy)
    assert (err.line, err.column) == (3, "timestamp_ms")


def test_event_info_must_be_a_json_object(run_copy):
    events = run_copy / "events.csv"
    content = lines(events)
    content[1] = content[1].rstrip("\n").rsplit(",", 1)[0] + ",[1 2]\n"
    write_lines(events, content)
    err = _error(run_copy)
    assert (err.path.name, err.line, err.column) == ("events.csv", 2, "info")


def test_bad_metadata(run_copy):
    meta = run_copy / "metadata.json"
    meta.write_text('{\n  "status": "ok",\n  oops\n}\n')
    err = _error(run_copy)
    assert err.line == 3 and "invalid JSON" in str(err)
    meta.write_text(json.dumps({"raw_format_version": 99}))
    assert "raw_format_version 99 not supported" in str(_error(run_copy))


def test_discover_runs_sorted_by_environment_architecture_run(tmp_path):
    for env, arch, run in [("b", "vgg", 2), ("a", "vgg", 10), ("a", "vgg", 2), ("a", "cnn", 0)]:
        folder = tmp_path / env / arch / f"{run:03d}"
        folder.mkdir(parents=True)
        (folder / "metadata.json").write_text("{}")
    (tmp_path / "a" / "vgg" / "notes").mkdir()
    (tmp_path / "a" / "vgg" / "004").mkdir()  # empty: not a run
    found = [p.relative_to(tmp_path).as_posix() for p in discover_runs(tmp_path)]
    assert found == ["a/cnn/000", "a/vgg/002", "a/vgg/010", "b/vgg/002"]
    with pytest.raises(FileNotFoundError):
        discover_runs(tmp_path / "missing")


def test_large_file_parses_fast(run_copy):
    samples = run_copy / "samples.csv"
    content = lines(samples)
    row = content[1].split(",")
    header, n = content[0], 100_000
    body = []
    for i in range(n):
        row[0], row[1] = str(1_700_000_000_000 + 100 * i), f"{i * 0.1:.6f}"
        body.append(",".join(row))
    write_lines(samples, [header, *body])
    start = time.perf_counter()
    run = read_run(run_copy)
    elapsed = time.perf_counter() - start
    assert len(run.samples) == n
    assert elapsed < 5.0
