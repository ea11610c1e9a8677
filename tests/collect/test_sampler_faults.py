"""Sampler under injected faults: full disk, read-only folder, racing samplers, NVML errors and
stalls. After each, what the files hold, the metadata counts and the status agree and are true.

Faults on the disk are injected, not real: the run-folder CSV files are written through
``helpers.collect.sampler._write_fd``/``_fsync_fd`` and metadata.json through its ``write_json``,
which the :class:`Disk` fixture makes fail. A read-only folder is simulated the same way
(``EROFS``), because these tests may run as root, for whom ``chmod`` does not stop writes.
"""

from __future__ import annotations

import errno
import multiprocessing
import os
import threading
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from helpers.analysis.clean import failed_runs
from helpers.collect import sampler as sampler_module
from helpers.collect.devices.fake_nvml import FakeNvmlBackend
from helpers.collect.sampler import Sampler, SamplerSummary
from helpers.readers.project import ProjectRun, read_run


def run_dir(tmp_path: Path, run: int = 0) -> Path:
    return tmp_path / "raw" / "local-test" / "tinycnn" / f"{run:03d}"


class Disk:
    """Makes the sampler's writes fail while :attr:`failing` names an errno (None: writes work).
    A failing CSV write first writes ``short_bytes`` of what it was given (a short write, as a
    filling disk gives), then raises; ``csv_only`` leaves metadata.json writable."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.failing: int | None = None
        self.csv_only = False
        self.short_bytes = 37
        self.failures = 0
        real_write, real_fsync = os.write, os.fsync
        real_json = sampler_module.write_json

        def write(fd: int, data: bytearray) -> int:
            if self.failing is None:
                return real_write(fd, data)
            self.failures += 1
            if self.short_bytes and len(data) > self.short_bytes and self.failures % 2:
                return real_write(fd, data[: self.short_bytes])  # the next call raises
            raise OSError(self.failing, os.strerror(self.failing))

        def fsync(fd: int) -> None:
            if self.failing is not None:
                raise OSError(self.failing, os.strerror(self.failing))
            real_fsync(fd)

        def write_json(obj, target):
            if self.failing is not None and not self.csv_only:
                raise OSError(self.failing, os.strerror(self.failing))
            return real_json(obj, target)

        monkeypatch.setattr(sampler_module, "_write_fd", write)
        monkeypatch.setattr(sampler_module, "_fsync_fd", fsync)
        monkeypatch.setattr(sampler_module, "write_json", write_json)


@pytest.fixture
def disk(monkeypatch: pytest.MonkeyPatch) -> Disk:
    return Disk(monkeypatch)


def check_consistent(folder: Path, summary: SamplerSummary, n_gpus: int = 1) -> ProjectRun:
    """The files, the metadata counts and the status agree: every sampled row is either in
    samples.csv or counted as lost, and the status is 'ok' only when nothing was lost."""
    run = read_run(folder)
    sampler = run.metadata["sampler"]
    assert len(run.samples) == sampler["n_samples"] == summary.n_samples
    assert len(run.events) == sampler["n_events"] == summary.n_events
    assert summary.n_samples + sampler["rows_lost"] == summary.n_ticks * max(1, n_gpus)
    lost = sampler["rows_lost"] + sampler["events_lost"]
    assert (run.metadata["status"] == "ok") == (lost == 0) == (summary.status == "ok")
    assert (np.diff(run.samples["monotonic_s"].to_numpy()) >= 0).all()
    with_row = run.events["monotonic_s"].isin(run.samples["monotonic_s"])
    assert with_row.all() or lost  # every event has its edge row, unless rows were lost
    return run


# -- full disk, read-only folder ----------------------------------------------------------------
def test_disk_full_then_freed_loses_nothing(tmp_path, disk):
    folder = run_dir(tmp_path)
    with Sampler(folder, interval_s=0.01, flush_every_s=0.02,
                 gpu_backend=FakeNvmlBackend()) as sampler:
        for epoch in range(24):
            if epoch == 4:
                disk.failing = errno.ENOSPC
            if epoch == 16:
                disk.failing = None
            sampler.mark("epoch_start", epoch=epoch)
            time.sleep(0.015)
            sampler.mark("epoch_end", epoch=epoch)
            if epoch == 15:
                sampler.update_metadata(written_while_full=True)
    summary = sampler.stop()
    run = check_consistent(folder, summary)
    meta = run.metadata
    assert disk.failures > 5 and meta["sampler"]["write_errors"] > 5
    assert "No space left on device" in meta["sampler"]["last_write_error"]
    assert meta["status"] == "ok" and meta["sampler"]["rows_lost"] == 0
    assert meta["written_while_full"] is True  # the metadata rewrite was retried too
    assert run.skipped == []  # short writes were completed: no torn line inside the file
    assert sorted(set(run.events["epoch"].dropna())) == list(range(24))
    assert np.diff(run.samples["monotonic_s"].to_numpy()).max() < 0.2  # no hole


def test_write_error_until_stop_fails_the_run_and_counts_the_loss(tmp_path, disk):
    folder = run_dir(tmp_path)
    disk.csv_only = True  # an I/O error on the CSV files; metadata.json still writable
    disk.short_bytes = 0
    with pytest.warns(RuntimeWarning, match="not written"):
        with Sampler(folder, interval_s=0.01, flush_every_s=0.02,
                     gpu_backend=FakeNvmlBackend()) as sampler:
            time.sleep(0.1)
            disk.failing = errno.EIO
            sampler.mark("epoch_start", epoch=0)
            time.sleep(0.1)
    summary = sampler.stop()
    run = check_consistent(folder, summary)
    meta = run.metadata
    assert meta["sampler"]["rows_lost"] > 5 and meta["sampler"]["events_lost"] == 2
    assert meta["status"].startswith("failed: write error: ")
    assert "(samples.csv: OSError: [Errno 5] Input/output error; events.csv: " in meta["status"]
    assert meta["return_code"] == 0
    assert list(run.events["event"]) == ["run_start"]
    # cleaning drops the run, naming the reason
    reason = failed_runs(pd.DataFrame({"status": [meta["status"]], "return_code": [0]}))
    assert "write error" in reason.iloc[0]


@pytest.mark.parametrize("code", [errno.ENOSPC, errno.EROFS], ids=["disk-full", "read-only"])
def test_unwritable_folder_at_stop_never_claims_ok(tmp_path, disk, code):
    """Nothing, metadata.json included, can be written from mid-run on: the folder keeps the
    status 'running' written at start, which readers take for an unfinished run."""
    folder = run_dir(tmp_path)
    sampler = Sampler(folder, interval_s=0.01, flush_every_s=0.02, gpu_backend=FakeNvmlBackend())
    with pytest.warns(RuntimeWarning, match="metadata.json not written"), sampler:
        time.sleep(0.1)
        disk.failing = code
        sampler.update_metadata(batch_size=32)
        time.sleep(0.1)
    summary = sampler.stop()
    assert summary.status.startswith("failed: write error: ")
    assert "metadata.json not written" in summary.status
    disk.failing = None
    run = read_run(folder)
    assert run.metadata["status"] == "running" and "batch_size" not in run.metadata
    assert 5 < len(run.samples) == summary.n_samples < summary.n_ticks
    assert list(run.events["event"]) == ["run_start"]


def test_rows_waiting_for_a_failing_disk_are_capped_counted_and_named(tmp_path, disk):
    """A disk full for long: at most ``max_unwritten_rows`` rows wait in memory; rows sampled
    past the cap are dropped, counted in metadata and named in the status; once the disk is
    freed, the rows that waited are written and sampling goes on."""
    folder = run_dir(tmp_path)
    disk.csv_only = True  # metadata.json stays writable, so the final status can be read
    cap, waiting = 20, []
    with pytest.warns(RuntimeWarning, match="dropped while 20 unwritten waited"):
        with Sampler(folder, interval_s=0.01, flush_every_s=0.02, gpu_backend=FakeNvmlBackend(),
                     max_unwritten_rows=cap) as sampler:
            time.sleep(0.05)
            disk.failing = errno.ENOSPC
            deadline = time.monotonic() + 10.0
            while sampler._samples_file.dropped <= 5 and time.monotonic() < deadline:
                waiting.append(sampler._samples_file.pending_lines)  # rows held in memory
                time.sleep(0.01)
            disk.failing = None
            time.sleep(0.1)
    summary = sampler.stop()
    run = check_consistent(folder, summary)
    meta = run.metadata["sampler"]
    assert max(waiting) <= cap and max(waiting) > cap // 2  # bounded, and the cap was reached
    assert meta["rows_dropped"] > 5 and meta["rows_lost"] == meta["rows_dropped"]
    assert meta["events_dropped"] == meta["events_lost"] == 0
    assert run.metadata["status"].startswith("failed: write error: ")
    assert f"samples.csv: {meta['rows_dropped']} dropped while 20 unwritten waited" in \
        run.metadata["status"]
    assert list(run.events["event"]) == ["run_start", "run_end"]  # written after the disk freed
    assert run.skipped == []  # no torn line: whole rows were dropped


def test_failed_start_releases_the_folder(tmp_path, disk):
    folder = run_dir(tmp_path)
    disk.failing = errno.ENOSPC
    with pytest.raises(OSError, match="No space left"):
        Sampler(folder, gpu_backend=FakeNvmlBackend()).start()
    assert list(folder.iterdir()) == []
    disk.failing = None
    with Sampler(folder, interval_s=0.01, gpu_backend=FakeNvmlBackend()) as sampler:
        time.sleep(0.05)
    check_consistent(folder, sampler.stop())


# -- two samplers on one folder -----------------------------------------------------------------
def _start_and_record(folder: Path) -> str:
    """Start a sampler on ``folder``: 'won' after a short run, 'lost' on FileExistsError."""
    sampler = Sampler(folder, interval_s=0.01, flush_every_s=0.02, gpu_backend=FakeNvmlBackend(),
                      handle_sigterm=False)
    try:
        sampler.start()
    except FileExistsError as err:
        assert "another sampler's run" in str(err)
        return "lost"
    sampler.mark("epoch_start", epoch=0)
    time.sleep(0.005)
    sampler.stop()
    return "won"


def _check_race(folders: list[Path], results: list[list[str]]) -> None:
    for folder, outcome in zip(folders, results, strict=True):
        assert sorted(outcome) == ["lost", "won"], folder
        run = read_run(folder)
        assert run.metadata["status"] == "ok"
        assert list(run.events["event"]) == ["run_start", "epoch_start", "run_end"]
        assert len(run.samples) == run.metadata["sampler"]["n_samples"] >= 3


def test_two_threads_racing_on_one_folder(tmp_path):
    folders = [run_dir(tmp_path, i) for i in range(20)]
    results: list[list[str]] = [[] for _ in folders]
    barrier = threading.Barrier(2)

    def contender() -> None:
        for i, folder in enumerate(folders):
            barrier.wait(timeout=10)
            results[i].append(_start_and_record(folder))

    threads = [threading.Thread(target=contender) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    _check_race(folders, results)


def _process_contender(folders: list[Path], barrier, queue) -> None:
    for folder in folders:
        barrier.wait(timeout=10)
        queue.put((str(folder), _start_and_record(folder)))


@pytest.mark.skipif("fork" not in multiprocessing.get_all_start_methods(), reason="needs fork")
def test_two_processes_racing_on_one_folder(tmp_path):
    ctx = multiprocessing.get_context("fork")
    folders = [run_dir(tmp_path, i) for i in range(20)]
    barrier, queue = ctx.Barrier(2), ctx.Queue()
    procs = [ctx.Process(target=_process_contender, args=(folders, barrier, queue))
             for _ in range(2)]
    for p in procs:
        p.start()
    outcomes = [queue.get(timeout=30) for _ in range(2 * len(folders))]
    for p in procs:
        p.join(10)
        assert p.exitcode == 0
    results = [[o for f, o in outcomes if f == str(folder)] for folder in folders]
    _check_race(folders, results)


# -- NVML errors and stalls ---------------------------------------------------------------------
def test_nvml_errors_at_edges_give_gap_rows_and_keep_events(tmp_path):
    fake = FakeNvmlBackend(error_reads=set(range(10**6)))
    folder = run_dir(tmp_path)
    with Sampler(folder, interval_s=0.01, gpu_backend=fake) as sampler:
        for epoch in range(3):
            sampler.mark("epoch_start", epoch=epoch)
            time.sleep(0.02)
            sampler.mark("epoch_end", epoch=epoch)
    summary = sampler.stop()
    run = check_consistent(folder, summary)
    assert summary.status == "ok" and summary.n_gap_rows == len(run.samples) > 10
    assert run.samples["gap_reason"].str.contains("injected failure").all()
    assert run.samples["gpu_power_w"].isna().all()
    assert len(run.events) == 8 and summary.gpu_energy_method == "nvml_counter"
    at_edges = run.samples["monotonic_s"].isin(run.events["monotonic_s"])
    assert run.samples.loc[at_edges, "gpu_energy_counter_j"].notna().sum() >= 4


def test_mark_does_not_wait_for_a_stalled_nvml_call(tmp_path):
    fake = FakeNvmlBackend(stall_reads={10}, stall_s=1.0)
    folder = run_dir(tmp_path)
    with Sampler(folder, interval_s=0.01, gpu_backend=fake) as sampler:
        assert fake.stall_started.wait(5)
        time.sleep(0.06)  # the reading has now stalled for longer than stall_s (0.05 s)
        took = []
        for event in ("epoch_end", "epoch_start"):
            t0 = time.monotonic()
            sampler.mark(event, epoch=0)
            took.append(time.monotonic() - t0)
        t0 = time.monotonic()
        energy_j, _ = sampler.energy_so_far_j()
        took.append(time.monotonic() - t0)
        assert max(took) < 0.05, took
        time.sleep(1.1)  # the stall ends; sampling goes on
        sampler.mark("epoch_end", epoch=1)
    summary = sampler.stop()
    run = check_consistent(folder, summary)
    s, ev = run.samples, run.events.set_index("event")
    stalled_edges = s[s["gap_reason"].str.startswith("edge sample without readings", na=False)]
    # the two marks and energy_so_far_j() during the stall: edge rows without readings
    assert len(stalled_edges) == 3 and stalled_edges["gpu_power_w"].isna().all()
    assert set(run.events["monotonic_s"].iloc[1:3]) < set(stalled_edges["monotonic_s"])
    stalled = s[s["gap_reason"].str.startswith("stalled device read", na=False)]
    assert len(stalled) == 1 and stalled["gpu_power_w"].notna().all()
    assert stalled["monotonic_s"].iloc[0] > stalled_edges["monotonic_s"].max()
    after = s[s["monotonic_s"] > stalled["monotonic_s"].iloc[0]]
    assert len(after) > 10 and after["gap_reason"].isna().all()
    last_end = ev["monotonic_s"]["epoch_end"].iloc[-1]
    assert s.loc[s["monotonic_s"] == last_end, "gpu_energy_counter_j"].notna().all()
    assert np.isfinite(energy_j) and summary.status == "ok"
