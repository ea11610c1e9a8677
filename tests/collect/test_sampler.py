"""Sampler, GPU and CPU backends: energy against analytic values, gaps, and every exit path."""

from __future__ import annotations

import dataclasses
import math
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import psutil
import pynvml
import pytest

from helpers.collect.devices.cpu import CpuMonitor, RaplReader, default_cpu_tdp_w
from helpers.collect.devices.fake_nvml import FakeNvmlBackend, sine_power
from helpers.collect.devices.gpu import GpuReadError
from helpers.collect.devices.nvml import NvmlBackend, visible_nvml_indices
from helpers.collect.sampler import Sampler
from helpers.core import energy
from helpers.core.raw_format import SAMPLE_COLUMNS
from helpers.readers.project import read_run


def run_dir(tmp_path: Path, run: int = 0) -> Path:
    return tmp_path / "raw" / "local-test" / "tinycnn" / f"{run:03d}"


def busy(seconds: float) -> None:
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        pass


def trapezoid(t: np.ndarray, p: np.ndarray) -> float:
    return float(np.sum(0.5 * (p[1:] + p[:-1]) * np.diff(t)))


# -- energy ----------------------------------------------------------------------------------
def test_energy_matches_analytic_integral_and_counter(tmp_path):
    power_w, energy_j = sine_power(base_w=250.0, amp_w=100.0, period_s=1.0)
    fake = FakeNvmlBackend(power=(power_w, energy_j))
    folder = run_dir(tmp_path)
    with Sampler(
        folder,
        interval_s=0.01,
        flush_every_s=0.2,
        gpu_backend=fake,
        counter_period_s=0.25,
        metadata={"dataset": "unit"},
    ) as sampler:
        for epoch in range(3):
            sampler.mark("epoch_start", epoch=epoch)
            time.sleep(0.4)
            sampler.mark("epoch_end", epoch=epoch, val_accuracy=np.float32(0.5))
    summary = sampler.stop()  # idempotent: the same summary again
    run = read_run(folder)
    ev = run.events.set_index("event")
    t0 = fake.elapsed_s(ev.loc["run_start", "monotonic_s"])
    t1 = fake.elapsed_s(ev.loc["run_end", "monotonic_s"])
    analytic_j = energy_j(t1) - energy_j(t0)

    # the counter is exact; the trapezoid's error grows with the sampling gaps, which a loaded
    # machine stretches: bound it by the largest gap h of this run (|error| <= T w^2 A h^2 / 12
    # for a sine of amplitude A, plus the reading's lag at both ends)
    h = np.diff(run.samples["monotonic_s"].to_numpy()).max()
    trap_tol_j = (t1 - t0) * (2 * np.pi) ** 2 * 100.0 * h**2 / 12 + 2 * 350.0 * 0.002
    assert summary.gpu_energy_trapezoid_j[0] == pytest.approx(analytic_j, abs=trap_tol_j)
    assert summary.gpu_energy_counter_j[0] == pytest.approx(analytic_j, rel=1e-3)
    assert summary.gpu_energy_method == "nvml_counter"
    assert summary.gpu_energy_j == summary.gpu_energy_counter_j[0]
    assert summary.duration_s == pytest.approx(t1 - t0)
    with pytest.raises(dataclasses.FrozenInstanceError):
        summary.n_samples = 0  # type: ignore[misc]

    s = run.samples
    assert list(s.columns) == list(SAMPLE_COLUMNS)
    assert len(s) == summary.n_samples > 100
    assert (s["gpu_index"] == 0).all() and s["gap_reason"].isna().all()
    from_file_j = trapezoid(s["monotonic_s"].to_numpy(), s["gpu_power_w"].to_numpy())
    assert from_file_j == pytest.approx(summary.gpu_energy_trapezoid_j[0], rel=1e-6)
    counter = s["gpu_energy_counter_j"].dropna()
    assert counter.iloc[-1] - counter.iloc[0] == pytest.approx(analytic_j, rel=1e-3)
    # the slow counter: at every event (or read < counter_reuse_s before it), otherwise at
    # most every counter_period_s
    read_t = s.loc[counter.index, "monotonic_s"].to_numpy()
    for t_event in run.events["monotonic_s"]:
        assert ((read_t <= t_event) & (read_t > t_event - 0.01)).any()
    # run_start -> epoch_start, epoch_end -> epoch_start (twice), epoch_end -> run_end
    back_to_back = run.events["monotonic_s"].diff() < 0.01
    assert back_to_back.sum() == 4
    assert not set(run.events.loc[back_to_back, "monotonic_s"]) & set(read_t)
    assert fake.counter_calls[0] == len(counter)
    assert len(counter) <= len(run.events) + summary.duration_s / 0.25 + 2
    assert len(counter) < len(s) / 5

    meta = run.metadata
    assert meta["status"] == "ok" and meta["return_code"] == 0
    assert (meta["environment"], meta["architecture"], meta["run"]) == ("local-test", "tinycnn", 0)
    assert meta["dataset"] == "unit"
    assert meta["gpus"][0]["energy_counter_supported"] is True
    assert meta["sampler"]["n_samples"] == len(s)
    assert meta["summary"]["gpu_energy_counter_j"][0] == pytest.approx(summary.gpu_energy_j)
    assert 0 < meta["sampler"]["overhead_pct_of_core"] < 50
    assert fake.shut_down
    assert list(run.events["event"]) == ["run_start"] + ["epoch_start", "epoch_end"] * 3 + [
        "run_end"
    ]
    assert run.events["info"].iloc[2] == {"val_accuracy": 0.5}


def test_no_energy_counter_falls_back_to_trapezoid(tmp_path):
    fake = FakeNvmlBackend(energy_counter=False)
    with Sampler(run_dir(tmp_path), interval_s=0.01, gpu_backend=fake) as sampler:
        sampler.mark("epoch_start", epoch=0)
        time.sleep(0.2)
    summary = sampler.stop()
    assert fake.counter_calls == [0]
    assert math.isnan(summary.gpu_energy_counter_j[0])
    assert summary.gpu_energy_method == "trapezoid"
    assert summary.gpu_energy_j == summary.gpu_energy_trapezoid_j[0] > 0
    run = read_run(run_dir(tmp_path))
    assert run.samples["gpu_energy_counter_j"].isna().all()
    assert run.metadata["gpus"][0]["unsupported"] == {"energy_counter": "fake: disabled"}


def test_nvml_missing_gives_nan_and_reason_never_zero(tmp_path, monkeypatch):
    def no_library():
        raise pynvml.NVMLError(pynvml.NVML_ERROR_LIBRARY_NOT_FOUND)

    monkeypatch.setattr(pynvml, "nvmlInit", no_library)
    backend = NvmlBackend()
    with Sampler(run_dir(tmp_path), interval_s=0.02, gpu_backend=backend) as sampler:
        busy_until = time.monotonic() + 0.3  # keep a core busy: an idle machine estimates 0 J
        while time.monotonic() < busy_until:
            pass
    summary = sampler.stop()
    reason = "NVML unavailable: NVMLError_LibraryNotFound: NVML Shared Library Not Found"
    assert backend.status == reason and backend.devices() == []
    assert summary.gpu_energy_counter_j == () and summary.gpu_energy_trapezoid_j == ()
    assert math.isnan(summary.gpu_energy_j)
    assert summary.gpu_energy_method == f"unmeasured: {reason}"
    run = read_run(run_dir(tmp_path))
    assert run.metadata["gpu_status"] == reason
    assert run.metadata["gpus"] == []
    assert run.metadata["summary"]["gpu_energy_j"] is None
    gpu_cols = [c for c in SAMPLE_COLUMNS if c.startswith("gpu_")]
    assert run.samples[gpu_cols].isna().all().all()  # empty cells, not zeros
    # utilisation is a difference of CPU times: the first row may have no interval yet
    assert run.samples["cpu_usage_pct"].iloc[1:].notna().all()
    assert run.samples["system_ram_used_mb"].gt(0).all()
    assert summary.cpu_energy_j > 0
    if math.isnan(summary.cpu_energy_rapl_j):
        assert summary.cpu_energy_method.startswith("estimate:tdp_x_utilisation(tdp_w=")
        assert run.samples["cpu_energy_counter_j"].isna().all()
    else:
        assert summary.cpu_energy_method == "rapl"


def test_nvml_error_mid_run_records_gap_and_continues(tmp_path):
    fake = FakeNvmlBackend(error_reads={5, 6, 7})
    with Sampler(run_dir(tmp_path), interval_s=0.01, slow_period_s=0.0,
                 gpu_backend=fake) as sampler:
        time.sleep(0.3)
    summary = sampler.stop()
    s = read_run(run_dir(tmp_path)).samples
    gaps = s[s["gap_reason"].notna()]
    assert summary.n_gap_rows == len(gaps) == 3
    assert list(gaps.index) == [5, 6, 7]
    assert gaps["gap_reason"].str.contains("injected failure at read 6, as scripted").any()
    assert gaps["gpu_power_w"].isna().all() and gaps["gpu_usage_pct"].isna().all()
    assert gaps["gpu_index"].eq(0).all() and gaps["cpu_usage_pct"].notna().all()
    after = s.loc[8:]
    assert len(after) > 10 and after["gpu_power_w"].notna().all()
    assert math.isfinite(summary.gpu_energy_trapezoid_j[0])


# -- exit paths ------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("exc", "status", "code"),
    [
        (ValueError("boom"), "failed: ValueError: boom", 1),
        (KeyboardInterrupt(), "failed: KeyboardInterrupt", 130),
    ],
)
def test_exception_inside_with_keeps_samples_and_fails(tmp_path, exc, status, code):
    folder = run_dir(tmp_path)
    with (
        pytest.raises(type(exc)),
        Sampler(folder, interval_s=0.01, flush_every_s=10.0, gpu_backend=FakeNvmlBackend()),
    ):
        time.sleep(0.15)
        raise exc
    run = read_run(folder)
    assert run.metadata["status"] == status
    assert run.metadata["return_code"] == code
    assert len(run.samples) > 5  # flushed on the way out, although flush_every_s is 10 s
    assert run.events["event"].iloc[-1] == "run_end"


def _child_script(folder: Path, body: str) -> str:
    return textwrap.dedent(
        f"""
        import sys, time
        from pathlib import Path
        from helpers.collect.devices.fake_nvml import FakeNvmlBackend
        from helpers.collect.sampler import Sampler
        folder = Path({str(folder)!r})
        """
    ) + textwrap.dedent(body)


def test_sigkill_keeps_everything_up_to_last_flush(tmp_path):
    folder = run_dir(tmp_path)
    body = """
        s = Sampler(folder, interval_s=0.01, flush_every_s=0.1, gpu_backend=FakeNvmlBackend())
        s.start()
        s.mark("epoch_start", epoch=0)
        while True:
            time.sleep(0.01)
    """
    child = subprocess.Popen([sys.executable, "-c", _child_script(folder, body)])
    samples = folder / "samples.csv"
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if samples.exists() and samples.read_bytes().count(b"\n") > 40:
                break
            time.sleep(0.05)
        seen = samples.read_bytes()
        child.send_signal(signal.SIGKILL)
        child.wait(10)
    finally:
        if child.poll() is None:
            child.kill()
    assert child.returncode == -signal.SIGKILL
    after = samples.read_bytes()
    assert after.startswith(seen)  # nothing flushed before the kill was lost
    run = read_run(folder)
    assert run.metadata["status"] == "running"
    assert len(run.samples) >= seen.count(b"\n") - 1 > 40
    assert list(run.events["event"][:2]) == ["run_start", "epoch_start"]
    assert all("torn last line" in reason for _, reason in run.skipped)


@pytest.mark.parametrize(
    ("body", "status", "returncode"),
    [
        (
            """
            with Sampler(folder, interval_s=0.01, flush_every_s=10, gpu_backend=FakeNvmlBackend()):
                print("ready", flush=True)
                time.sleep(30)
            """,
            "failed: SIGTERM",
            143,
        ),
        (
            """
            s = Sampler(folder, interval_s=0.01, flush_every_s=10, gpu_backend=FakeNvmlBackend())
            s.start()
            print("ready", flush=True)
            time.sleep(0.1)
            """,
            "failed: interpreter exited without Sampler.stop()",
            0,
        ),
    ],
    ids=["sigterm", "atexit"],
)
def test_sigterm_and_exit_without_stop_are_recorded(tmp_path, body, status, returncode):
    folder = run_dir(tmp_path)
    child = subprocess.Popen(
        [sys.executable, "-c", _child_script(folder, body)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert child.stdout.readline().strip() == "ready"
        time.sleep(0.2)
        if returncode == 143:
            child.send_signal(signal.SIGTERM)
        child.wait(20)
    finally:
        if child.poll() is None:
            child.kill()
    assert child.returncode == returncode
    run = read_run(folder)
    assert run.metadata["status"] == status
    assert len(run.samples) > 3
    assert run.events["event"].iloc[-1] == "run_end"


# -- API details -----------------------------------------------------------------------------
def test_update_metadata_and_refusing_to_overwrite(tmp_path):
    folder = run_dir(tmp_path)
    sampler = Sampler(
        folder,
        interval_s=0.01,
        flush_every_s=0.05,
        gpu_backend=FakeNvmlBackend(),
        metadata={"dataset": "d", "seed": 1},
    )
    with pytest.raises(RuntimeError):
        sampler.mark("epoch_start")
    sampler.start()
    sampler.start()  # no-op while running (code may call start() inside `with`)
    sampler.update_metadata(batch_size=32)
    time.sleep(0.2)  # a flush rewrites metadata.json while running
    assert read_run(folder).metadata["batch_size"] == 32
    assert read_run(folder).metadata["status"] == "running"
    sampler.stop()
    sampler.update_metadata(accuracy=0.75)  # after stop: written at once
    meta = read_run(folder).metadata
    assert (meta["seed"], meta["batch_size"], meta["accuracy"], meta["status"]) == (
        1,
        32,
        0.75,
        "ok",
    )
    with pytest.raises(RuntimeError):
        sampler.mark("epoch_end")
    with pytest.raises(RuntimeError):
        sampler.start()
    assert read_run(folder).events["event"].tolist().count("run_start") == 1
    with pytest.raises(FileExistsError):
        Sampler(folder, gpu_backend=FakeNvmlBackend()).start()


def test_two_gpus_give_one_row_each_per_tick(tmp_path):
    with Sampler(run_dir(tmp_path), interval_s=0.01, gpu_backend=FakeNvmlBackend(n_gpus=2)) as s:
        time.sleep(0.1)
    summary = s.stop()
    samples = read_run(run_dir(tmp_path)).samples
    assert summary.n_samples == 2 * summary.n_ticks == len(samples)
    assert list(samples["gpu_index"][:4]) == [0, 1, 0, 1]
    assert samples.groupby("monotonic_s").size().eq(2).all()
    assert summary.gpu_energy_j == pytest.approx(sum(summary.gpu_energy_counter_j))


# -- GPU device selection ----------------------------------------------------------------------
UUIDS = ["GPU-aaaa-1111", "GPU-bbbb-2222", "GPU-cccc-3333"]


@pytest.mark.parametrize(
    ("value", "expected", "note"),
    [
        (None, [0, 1, 2], None),
        ("2,0", [2, 0], "CUDA_DEVICE_ORDER"),
        ("GPU-bbbb", [1], None),
        ("0,7,1", [0], "'7' invalid"),
        ("", [], None),
        ("-1", [], "invalid"),
        ("MIG-abc,GPU-cccc-3333", [2], "MIG device"),
        ("GPU-", [], "matches 3 GPUs"),
    ],
)
def test_visible_devices_follow_cuda_rules(monkeypatch, value, expected, note):
    monkeypatch.delenv("CUDA_DEVICE_ORDER", raising=False)
    indices, notes = visible_nvml_indices(value, UUIDS)
    assert indices == expected
    if note is None:
        assert notes == []
    else:
        assert any(note in n for n in notes)


# -- CPU ---------------------------------------------------------------------------------------
def _rapl_zone(root: Path, name: str, zone: str, energy_uj: int, max_uj: int) -> Path:
    z = root / name
    z.mkdir(parents=True)
    (z / "name").write_text(zone + "\n")
    (z / "energy_uj").write_text(f"{energy_uj}\n")
    (z / "max_energy_range_uj").write_text(f"{max_uj}\n")
    return z


def test_rapl_sums_packages_and_handles_wrap(tmp_path):
    p0 = _rapl_zone(tmp_path, "intel-rapl:0", "package-0", 990_000_000, 1_000_000_000)
    p1 = _rapl_zone(tmp_path, "intel-rapl:1", "package-1", 5_000_000, 1_000_000_000)
    _rapl_zone(tmp_path, "intel-rapl:0:0", "core", 1, 10)  # sub-zone: part of package-0
    _rapl_zone(tmp_path, "intel-rapl:2", "psys", 1, 10)  # platform, not a package
    rapl = RaplReader(tmp_path)
    assert rapl.open() and rapl.status == "ok: intel-rapl:0, intel-rapl:1"
    (p0 / "energy_uj").write_text("15000000\n")  # wrapped: +10 J +15 J
    (p1 / "energy_uj").write_text("7000000\n")  # +2 J
    assert rapl.read_j() == pytest.approx(27.0)
    (p0 / "energy_uj").write_text("16000000\n")
    assert rapl.read_j() == pytest.approx(28.0)


def test_counter_only_reading_keeps_rapl_and_the_utilisation_window(tmp_path):
    z = _rapl_zone(tmp_path, "intel-rapl:0", "package-0", 1_000_000, 10**12)
    monitor = CpuMonitor(rapl_root=tmp_path)
    monitor.start()
    (z / "energy_uj").write_text("4000000\n")  # +3 J
    only = monitor.read_counter_only()
    assert only.cpu_energy_counter_j == pytest.approx(3.0)
    assert all(math.isnan(v) for v in (only.cpu_usage_pct, only.process_cpu_pct,
                                        only.system_ram_used_mb, only.cpu_power_estimate_w))
    window_start = monitor._last_t
    time.sleep(0.06)
    monitor.read_counter_only()
    assert monitor._last_t == window_start  # the utilisation window stays open
    monitor.close()


def test_rapl_unreadable_is_nan_with_reason(tmp_path):
    missing = RaplReader(tmp_path / "nope")
    assert not missing.open() and "does not exist" in missing.status
    assert math.isnan(missing.read_j())
    z = _rapl_zone(tmp_path, "intel-rapl:0", "package-0", 1, 10)
    (z / "energy_uj").write_text("not a number\n")
    bad = RaplReader(tmp_path)
    assert not bad.open() and bad.status.startswith("RAPL unreadable: ValueError")


def test_cpu_monitor_attributes_process_cpu_and_estimates_power():
    monitor = CpuMonitor(tdp_w=50.0)
    monitor.start()
    t0, c0 = time.monotonic(), time.process_time()
    busy(0.4)
    reading = monitor.read()
    expected_pct = 100 * (time.process_time() - c0) / (time.monotonic() - t0)
    assert reading.process_cpu_pct == pytest.approx(expected_pct, abs=10)  # 10-ms clock ticks
    assert reading.process_cpu_pct > 5
    assert 0 <= reading.cpu_usage_pct <= 100
    assert reading.cpu_power_estimate_w == pytest.approx(50.0 * reading.cpu_usage_pct / 100)
    assert 10 < reading.process_rss_mb < reading.system_ram_total_mb
    assert 0 < reading.system_ram_used_mb < reading.system_ram_total_mb
    assert monitor.estimate_method == "estimate:tdp_x_utilisation(tdp_w=50.0)"
    cores = psutil.cpu_count(logical=False) or psutil.cpu_count(logical=True)
    assert default_cpu_tdp_w() == 12.0 * cores


def test_cpu_monitor_counts_child_processes():
    child = subprocess.Popen(
        [sys.executable, "-c", "import time\nend=time.time()+1.2\nwhile time.time()<end: pass"]
    )
    try:
        proc = psutil.Process(child.pid)
        monitor = CpuMonitor(children_refresh_s=0.0)
        monitor.start()
        t0, c0 = time.monotonic(), sum(proc.cpu_times()[:2])
        time.sleep(0.6)  # this process idles; its child spins
        reading = monitor.read()
        child_pct = 100 * (sum(proc.cpu_times()[:2]) - c0) / (time.monotonic() - t0)
    finally:
        child.kill()
        child.wait()
    assert child_pct > 5  # the child got CPU even on a loaded machine
    assert reading.process_cpu_pct >= child_pct - 10  # ... and it is attributed to this tree


def test_cpu_monitor_reports_ended_process_as_nan():
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    monitor = CpuMonitor(pid=child.pid)
    monitor.start()
    child.wait()
    reading = monitor.read()
    assert math.isnan(reading.process_cpu_pct) and math.isnan(reading.process_rss_mb)
    assert "ended" in monitor.process_status or "not readable" in monitor.process_status


def test_thread_error_is_recorded_and_sampling_goes_on(tmp_path):
    sampler = Sampler(
        run_dir(tmp_path), interval_s=0.01, flush_every_s=0.02, gpu_backend=FakeNvmlBackend()
    )
    real_flush, calls = sampler._flush, []

    def failing_once() -> None:
        calls.append(1)
        if len(calls) == 1:
            raise OSError("disk full")
        real_flush()

    sampler._flush = failing_once
    with sampler:
        time.sleep(0.2)
    run = read_run(run_dir(tmp_path))
    assert run.metadata["sampler"]["thread_error"] == "OSError: disk full"
    assert run.metadata["sampler"]["n_thread_errors"] == 1
    assert len(calls) > 2 and len(run.samples) > 10


def test_procfs_fast_path_agrees_with_psutil():
    fast, portable = CpuMonitor(use_procfs=True), CpuMonitor(use_procfs=False)
    assert type(fast._source).__name__ == "_ProcfsSource"
    for monitor in (fast, portable):
        monitor.start()
    busy(0.2)
    a, b = fast.read(), portable.read()
    assert a.system_ram_total_mb == pytest.approx(b.system_ram_total_mb)
    assert a.system_ram_used_mb == pytest.approx(b.system_ram_used_mb, rel=0.05)
    assert a.process_rss_mb == pytest.approx(b.process_rss_mb, rel=0.05)
    assert a.process_cpu_pct == pytest.approx(b.process_cpu_pct, abs=15)
    assert a.cpu_usage_pct == pytest.approx(b.cpu_usage_pct, abs=15)
    fs, ps = fast._source, portable._source
    busy_f, all_f = fs.system_busy_all()
    busy_p, all_p = ps.system_busy_all()
    ticks = os.sysconf("SC_CLK_TCK")
    assert all_f / ticks == pytest.approx(all_p, abs=1.0)
    assert busy_f / ticks == pytest.approx(busy_p, abs=1.0)
    cpu_f, rss_f = fs.process(os.getpid())
    cpu_p, rss_p = ps.process(os.getpid())
    assert cpu_f == pytest.approx(cpu_p, abs=0.05) and rss_f == pytest.approx(rss_p, rel=0.01)
    with pytest.raises(psutil.NoSuchProcess):
        fs.process(2**22 + 7)  # above pid_max: never a live process
    fast.close()
    assert fs._fds == {}


def test_utilisation_windows_are_not_shorter_than_the_minimum():
    monitor = CpuMonitor()
    monitor.start()
    busy(0.1)
    closed = monitor.read()  # closes the first window
    edge = monitor.read(advance=False)
    too_soon = monitor.read()  # < MIN_WINDOW_S later: repeats the closed window
    assert (edge.cpu_usage_pct, edge.process_cpu_pct) == (
        closed.cpu_usage_pct,
        closed.process_cpu_pct,
    )
    assert too_soon.process_cpu_pct == closed.process_cpu_pct
    time.sleep(0.12)  # idle: the next window shows this process resting
    assert monitor.read().process_cpu_pct < closed.process_cpu_pct
    monitor.close()


class _ScriptedNvml:
    """Stand-ins for the pynvml functions NvmlBackend calls: two GPUs; GPU 1 lacks the instant
    power field and the energy counter; reads can be made to fail."""

    def __init__(self) -> None:
        self.fail_reads = False

    def install(self, monkeypatch) -> None:
        for name in dir(self):
            if name.startswith("nvml"):
                monkeypatch.setattr(pynvml, name, getattr(self, name))

    def nvmlInit(self):
        pass

    def nvmlShutdown(self):
        pass

    def nvmlSystemGetDriverVersion(self):
        return "580.1"

    def nvmlSystemGetNVMLVersion(self):
        return "13.580.1"

    def nvmlDeviceGetCount(self):
        return 2

    def nvmlDeviceGetHandleByIndex(self, i):
        return i

    def nvmlDeviceGetUUID(self, h):
        return f"GPU-{h}aaa"

    def nvmlDeviceGetName(self, h):
        return b"NVIDIA H100 80GB HBM3"

    def nvmlDeviceGetPowerManagementLimit(self, h):
        return 700_000

    def nvmlDeviceGetMemoryInfo(self, h):
        return type("Mem", (), {"used": 2 * 2**30, "total": 80 * 2**30})()

    def nvmlDeviceGetFieldValues(self, h, ids):
        if self.fail_reads:
            raise pynvml.NVMLError(pynvml.NVML_ERROR_GPU_IS_LOST)
        values = (pynvml.c_nvmlFieldValue_t * 1)()
        values[0].valueType = pynvml.NVML_VALUE_TYPE_UNSIGNED_INT
        values[0].value.uiVal = 312_456
        values[0].nvmlReturn = pynvml.NVML_SUCCESS if h == 0 else pynvml.NVML_ERROR_NOT_SUPPORTED
        return values

    def nvmlDeviceGetPowerUsage(self, h):
        return 300_000

    def nvmlDeviceGetUtilizationRates(self, h):
        return type("Util", (), {"gpu": 97, "memory": 41})()

    def nvmlDeviceGetTemperature(self, h, sensor):
        return 61

    def nvmlDeviceGetClockInfo(self, h, clock):
        return 1980

    def nvmlDeviceGetTotalEnergyConsumption(self, h):
        if h == 1:
            raise pynvml.NVMLError(pynvml.NVML_ERROR_NOT_SUPPORTED)
        return 123_456_789


def test_nvml_backend_reads_fields_and_falls_back(monkeypatch):
    scripted = _ScriptedNvml()
    scripted.install(monkeypatch)
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    backend = NvmlBackend()
    backend.init()
    gpu0, gpu1 = backend.devices()
    assert backend.status == "ok"
    assert (gpu0.name, gpu0.uuid, gpu0.power_limit_w) == ("NVIDIA H100 80GB HBM3", "GPU-0aaa", 700)
    assert gpu0.energy_counter_supported and not gpu1.energy_counter_supported
    assert "NotSupported" in gpu1.unsupported["energy_counter"]
    r0, r1 = backend.read(0), backend.read(1)
    assert (r0.power_w, r0.power_source, r0.power_avg_w) == (312.456, "instant_field", 300.0)
    assert (r1.power_w, r1.power_source) == (300.0, "power_usage_avg")
    assert math.isnan(r1.power_instant_w)
    assert (r0.usage_pct, r0.memory_usage_pct, r0.temperature_c, r0.sm_clock_mhz) == (
        97,
        41,
        61,
        1980,
    )
    assert (r0.memory_used_mb, r0.memory_total_mb) == (2048, 81920)
    assert backend.read_energy_j(0) == 123_456.789
    assert math.isnan(backend.read_energy_j(1))
    # slow=False skips the slow metrics; GPU 1 (no instant field) keeps its 1-s average power
    q0, q1 = backend.read(0, slow=False), backend.read(1, slow=False)
    assert (q0.power_w, q0.usage_pct, q0.memory_usage_pct) == (312.456, 97, 41)
    assert all(math.isnan(v) for v in (q0.power_avg_w, q0.memory_used_mb, q0.temperature_c,
                                        q0.sm_clock_mhz))
    assert (q1.power_w, q1.power_source, q1.power_avg_w) == (300.0, "power_usage_avg", 300.0)
    assert math.isnan(q1.temperature_c)
    assert backend.versions()["driver"] == "580.1"
    scripted.fail_reads = True
    with pytest.raises(GpuReadError, match="NVMLError_GpuIsLost"):
        backend.read(0)
    backend.shutdown()


def test_nvml_backend_respects_cuda_visible_devices(monkeypatch):
    _ScriptedNvml().install(monkeypatch)
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "GPU-1")
    backend = NvmlBackend()
    backend.init()
    (only,) = backend.devices()
    assert (only.index, only.nvml_index, only.uuid) == (0, 1, "GPU-1aaa")
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")
    none = NvmlBackend()
    none.init()
    assert none.devices() == [] and "no GPU visible to the run (2 on the system)" in none.status


def test_sampler_over_scripted_nvml_end_to_end(tmp_path, monkeypatch):
    _ScriptedNvml().install(monkeypatch)
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    with Sampler(run_dir(tmp_path), interval_s=0.01, counter_period_s=0.0) as sampler:
        time.sleep(0.1)
    summary = sampler.stop()
    run = read_run(run_dir(tmp_path))
    s = run.samples
    assert summary.gpu_energy_counter_j[0] == 0.0  # the scripted counter stands still
    assert math.isnan(summary.gpu_energy_counter_j[1])
    assert summary.gpu_energy_method == "trapezoid"  # not every GPU has a counter
    assert s.loc[s["gpu_index"] == 1, "gpu_power_source"].eq("power_usage_avg").all()
    assert s.loc[s["gpu_index"] == 0, "gpu_energy_counter_j"].eq(123_456.789).all()
    assert run.metadata["versions"]["driver"] == "580.1"
    assert [g["uuid"] for g in run.metadata["gpus"]] == ["GPU-0aaa", "GPU-1aaa"]


def test_slow_metrics_are_read_every_slow_period_only(tmp_path):
    fake = FakeNvmlBackend()
    with Sampler(run_dir(tmp_path), interval_s=0.01, slow_period_s=0.05, gpu_backend=fake):
        time.sleep(0.6)
    s = read_run(run_dir(tmp_path)).samples
    assert s["gpu_power_w"].notna().all() and s["gpu_usage_pct"].notna().all()
    events = read_run(run_dir(tmp_path)).events
    at_edge = s["monotonic_s"].isin(events["monotonic_s"])
    assert at_edge.sum() == len(events)
    slow_rows = s[s["gpu_temperature_c"].notna()]
    assert 5 <= len(slow_rows) <= len(s) / 3
    assert s.loc[s["gpu_temperature_c"].isna(), "gap_reason"].isna().all()  # not a gap
    assert fake.slow_reads[0] == len(slow_rows) < fake.read_calls[0]
    meta = read_run(run_dir(tmp_path)).metadata
    assert meta["sampler"]["slow_period_s"] == 0.05
    # host readings on the same rows: timer ticks >= slow_period_s apart, and every edge sample
    host_rows = s[s["system_ram_used_mb"].notna()]
    assert host_rows.index.equals(slow_rows.index)
    assert s.loc[at_edge, "gpu_temperature_c"].notna().all()
    ticks = slow_rows[~at_edge[slow_rows.index]]
    assert (np.diff(ticks["monotonic_s"].to_numpy()) >= 0.05 - 1e-9).all()
    # the CPU estimate only on host rows; NaN only before the first utilisation window closes
    assert s.loc[s["system_ram_used_mb"].isna(), "cpu_power_estimate_w"].isna().all()
    settled = host_rows["monotonic_s"] > host_rows["monotonic_s"].iloc[0] + 0.15
    assert host_rows.loc[settled, "cpu_power_estimate_w"].notna().all()


def test_without_gpus_host_readings_are_taken_every_tick(tmp_path):
    with Sampler(run_dir(tmp_path), interval_s=0.01, slow_period_s=1.0,
                 gpu_backend=FakeNvmlBackend(n_gpus=0)) as sampler:
        time.sleep(0.3)
    summary = sampler.stop()
    s = read_run(run_dir(tmp_path)).samples
    assert len(s) > 15 and s["system_ram_used_mb"].notna().all()
    # NaN utilisation only before the first window closes (kernel CPU times tick every 10 ms)
    settled = s["monotonic_s"] > s["monotonic_s"].iloc[0] + 0.15
    assert s.loc[settled, "cpu_power_estimate_w"].notna().all() and summary.cpu_energy_j >= 0


def test_slow_host_readings_keep_cpu_energy_of_the_window(tmp_path):
    """CPU estimate energy from 1-in-10 host rows equals the trapezoid of those rows, and the
    grid's window integral over the same samples agrees with the sampler's running total."""
    with Sampler(run_dir(tmp_path), interval_s=0.01, slow_period_s=0.1,
                 gpu_backend=FakeNvmlBackend()) as sampler:
        time.sleep(0.6)
    summary = sampler.stop()
    s = read_run(run_dir(tmp_path)).samples
    host = s[s["cpu_power_estimate_w"].notna()]
    t, p = host["monotonic_s"].to_numpy(), host["cpu_power_estimate_w"].to_numpy()
    assert len(host) < len(s) / 3
    trapezoid_j = float(np.sum(0.5 * (p[1:] + p[:-1]) * np.diff(t)))
    assert summary.cpu_energy_estimate_j == pytest.approx(trapezoid_j, rel=1e-4, abs=1e-9)
    window = energy.window_trapezoid_j(s["monotonic_s"].to_numpy(),
                                       s["cpu_power_estimate_w"].to_numpy(float), t[0], t[-1])
    assert window == pytest.approx(trapezoid_j, rel=1e-9, abs=1e-12)


def test_mark_without_counter_read_leaves_it_to_the_periodic_one(tmp_path):
    fake = FakeNvmlBackend()
    with Sampler(run_dir(tmp_path), interval_s=0.01, counter_period_s=10.0,
                 gpu_backend=fake) as sampler:
        time.sleep(0.05)
        sampler.mark("eval_start", epoch=0, read_counter=False)
        time.sleep(0.05)
        sampler.mark("epoch_end", epoch=0)
        with pytest.raises(ValueError, match="read_counter"):
            sampler.mark("epoch_start", epoch=1, read_counter=False,
                         energy_info=lambda j, m: {})
    run = read_run(run_dir(tmp_path))
    s, ev = run.samples, run.events.set_index("event")["monotonic_s"]
    counter_at = s.set_index("monotonic_s")["gpu_energy_counter_j"]
    assert math.isnan(counter_at[ev["eval_start"]]) and not math.isnan(counter_at[ev["epoch_end"]])
    assert fake.counter_calls[0] == 2  # run_start, epoch_end (run_end < 10 ms later reuses it)
