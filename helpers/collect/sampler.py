"""Background sampler of GPU/CPU/RAM power and usage during training, with phase events.

Usage (the file layout is documented in ``docs/raw-format.md``)::

    with Sampler(run_dir, metadata={"dataset": "cifar10"}) as sampler:
        sampler.mark("epoch_start", epoch=0)
        ...
        sampler.mark("epoch_end", epoch=0, val_accuracy=0.91)
        sampler.update_metadata(batch_size=64)

Claiming: :meth:`Sampler.start` creates ``samples.csv`` exclusively (``O_EXCL``), so of two samplers
started on one folder the second fails with ``FileExistsError`` and writes nothing.

A daemon sampling thread, the only one that calls the devices, takes one sample every ``interval_s``
(one row per GPU, or one CPU-only row); a second daemon thread appends the rows to ``samples.csv``
every ``flush_every_s`` (write + fsync), so a SIGKILL loses at most the last ``flush_every_s`` of
samples. A write that fails (disk full, I/O error, read-only folder) keeps what it could not write
and retries at the next flush (at most ``max_unwritten_rows`` rows wait in memory; rows sampled past
that are dropped); what is still unwritten or dropped at :meth:`stop` is counted in metadata and
makes the status ``failed: write error: ...``. :meth:`Sampler.mark` has the sampling thread take an
extra sample at the phase edge itself, including the slow GPU energy counter (about 3 ms per read on
an H100), which otherwise is read every ``counter_period_s``. mark() never waits on a stalled device
call: once a reading has taken ``stall_s``, the event gets a row without readings and the stalled
reading, when it returns, a row stamped at its return (``gap_reason`` says so for both). An edge
within ``counter_reuse_s`` (10 ms) of the last counter read reuses that reading: back-to-back marks
(``epoch_end`` then ``epoch_start``) cost one read, and the counter, which moves every 100 ms, is no
staler than the reading's few ms (docs/methods.md#gpu-measurement). With GPUs, readings other than
power and energy (GPU temperature, clock, memory, the 1-s average; host CPU %, RSS, RAM) are taken
once per ``slow_period_s`` (1 s) and at phase edges, which keeps the sampler's CPU time per 100-ms
tick to the instant-power and utilisation reads (docs/gpu-measurements.md). A failing GPU read gives
a *gap row* (GPU fields empty, ``gap_reason`` set) and sampling goes on. Every exit path
(:meth:`stop`, an exception or KeyboardInterrupt inside ``with``, SIGTERM, interpreter exit) flushes
and rewrites ``metadata.json`` with the status; where metadata.json cannot be written, it keeps the
``running`` written at start (never ``ok``). While the run goes on, :meth:`Sampler.energy_so_far_j`
gives its energy so far from the same running totals as the final summary (for online forecasts).

Timestamps: ``monotonic_s`` is ``time.monotonic()``; ``timestamp_ms`` is the UTC wall clock read
once at :meth:`start` and advanced by the monotonic clock, so it never jumps backwards (NTP steps
during a run do not move it).
"""

from __future__ import annotations

import atexit
import contextlib
import csv
import io
import json
import math
import os
import platform
import signal
import socket
import sys
import threading
import time
import warnings
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psutil

from helpers import __version__ as helpers_version
from helpers.collect.devices.cpu import CpuMonitor, CpuReading
from helpers.collect.devices.gpu import (
    GpuBackend,
    GpuInfo,
    GpuReading,
    package_version,
)
from helpers.collect.devices.nvml import NvmlBackend
from helpers.core import rules
from helpers.core.io import write_json
from helpers.core.raw_format import (
    EVENT_COLUMNS,
    EVENTS_FILE,
    METADATA_FILE,
    RAW_FORMAT_VERSION,
    SAMPLE_COLUMNS,
    SAMPLES_FILE,
)

NAN = math.nan
_SIGTERM_CODE = 128 + signal.SIGTERM
_EDGE_POLL_S = 0.005  # how often a waiting mark() checks for a stalled device read
_EDGE_MAX_WAIT_S = 1.0  # mark() gives up on a sampling thread that does not answer (s)
# Run-folder CSV files are written through these two names (tests inject disk faults here).
_write_fd: Callable[[int, bytearray], int] = os.write
_fsync_fd: Callable[[int], None] = os.fsync
#: Default cap on rows (and events) held in memory while writes fail: about 20 MB of samples,
#: 2.8 hours at 10 samples a second on one GPU. Rows sampled while this many wait are dropped,
#: counted (``metadata.sampler.rows_lost``, ``rows_dropped``) and named in the run's status.
MAX_UNWRITTEN_ROWS = 100_000


class SamplerTerminated(SystemExit):
    """Raised in the main thread on SIGTERM (exit code 143) so every exit path runs."""


@dataclass(frozen=True)
class SamplerSummary:
    """Totals of one sampled run. Energies in J; NaN where unmeasured (the method says why)."""

    status: str
    return_code: int | None
    n_samples: int  # rows written to samples.csv
    n_ticks: int  # sampling instants (timer ticks + mark() edges)
    n_gap_rows: int  # rows with a gap_reason
    n_events: int  # rows written to events.csv
    n_flushes: int
    duration_s: float  # run_start to run_end
    mean_tick_interval_s: float
    gpu_energy_counter_j: tuple[float, ...]  # per GPU: counter delta, first to last reading
    gpu_energy_trapezoid_j: tuple[float, ...]  # per GPU: trapezoid of gpu_power_w over time
    gpu_energy_j: float  # all GPUs: counters where all readable, else trapezoids
    gpu_energy_method: str  # 'nvml_counter', 'trapezoid' or 'unmeasured: <reason>'
    cpu_energy_rapl_j: float
    cpu_energy_estimate_j: float  # trapezoid of cpu_power_estimate_w
    cpu_energy_j: float
    cpu_energy_method: str  # 'rapl', 'estimate:tdp_x_utilisation(tdp_w=...)' or 'unmeasured: ...'
    sampler_cpu_s: float  # CPU time of the sampler thread + mark() samples + final flush
    overhead_pct_of_core: float  # sampler_cpu_s / duration_s x 100

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict (NaN -> None)."""
        return _json_ready(asdict(self))


_GpuRow = tuple[list[str], str, float, float]  # cells, gap reason, power (W), counter (J)
_Reading = tuple[list[_GpuRow], CpuReading, str]  # per GPU, host reading, host gap reason


class _Trapezoid:
    """Running trapezoid integral of a power series (W) over time (s), skipping NaN points."""

    __slots__ = ("t", "p", "energy_j", "n")

    def __init__(self) -> None:
        self.t = self.p = NAN
        self.energy_j = 0.0
        self.n = 0

    def add(self, t: float, p: float) -> None:
        if math.isnan(p):
            return
        if self.n:
            self.energy_j += 0.5 * (p + self.p) * (t - self.t)
        self.t, self.p = t, p
        self.n += 1

    @property
    def value_j(self) -> float:
        return self.energy_j if self.n >= 2 else NAN


class _Span:
    """First and last finite value of a cumulative counter."""

    __slots__ = ("first", "last")

    def __init__(self) -> None:
        self.first = self.last = NAN

    def add(self, value: float) -> None:
        if math.isnan(value):
            return
        if math.isnan(self.first):
            self.first = value
        self.last = value

    @property
    def delta(self) -> float:
        return self.last - self.first


@dataclass(eq=False)
class _Edge:
    """A phase-edge sample that :meth:`Sampler.mark` asks the sampling thread for."""

    counter: bool  # read the energy counter
    event: str | None  # run_start / run_end bound the run; None: no event (energy_so_far_j)
    state: str = "queued"  # then 'reading' and 'done', or 'abandoned' (recorded without readings)
    t: float = NAN  # monotonic_s of its row (s)
    ts_ms: int = 0
    done: threading.Event = field(default_factory=threading.Event)


class _AppendOnlyFile:
    """A CSV file that only grows, written with ``os.write``. Bytes that a failed write leaves
    unwritten stay pending and go first at the next :meth:`flush`, so the file is always a prefix
    of the rows given to it (at worst ending in a torn line); nothing is lost before
    :meth:`close`, unless writes fail so long that ``max_pending_lines`` lines wait: rows given
    then are dropped (counted in :attr:`dropped`), which bounds the memory held."""

    def __init__(self, path: Path, exclusive: bool, max_pending_lines: int) -> None:
        """Create ``path``: ``exclusive`` fails with ``FileExistsError`` where it exists (an atomic
        claim, ``O_EXCL``); otherwise an existing file is emptied."""
        flags = os.O_WRONLY | os.O_CREAT | (os.O_EXCL if exclusive else os.O_TRUNC)
        self.path = path
        self.fd = os.open(path, flags | getattr(os, "O_CLOEXEC", 0), 0o666)
        self.pending = bytearray()
        self.pending_lines = 0
        self.max_pending_lines = max_pending_lines
        self.dropped = 0  # rows never queued: max_pending_lines lines were waiting
        self.lines_written = 0
        self._synced = True

    def add(self, rows: list[list[str]]) -> None:
        """Queue ``rows`` (RFC 4180, ``\\n`` line ends) for the next :meth:`flush`; rows past
        ``max_pending_lines`` unwritten lines are dropped and counted."""
        room = max(0, self.max_pending_lines - self.pending_lines)
        self.dropped += max(0, len(rows) - room)
        rows = rows[:room]
        if rows:
            text = io.StringIO()
            csv.writer(text, lineterminator="\n").writerows(rows)
            data = text.getvalue().encode("utf-8")
            self.pending += data
            self.pending_lines += data.count(b"\n")

    def flush(self) -> None:
        """Write what is pending and fsync; on ``OSError`` what was not written stays pending."""
        while self.pending:
            n = _write_fd(self.fd, self.pending)
            written = self.pending.count(b"\n", 0, n)
            self.lines_written += written
            self.pending_lines -= written
            del self.pending[:n]
            self._synced = False
        if not self._synced:
            _fsync_fd(self.fd)
            self._synced = True

    def close(self) -> int:
        """Close the file; return the number of rows never written (dropped ones included)."""
        os.close(self.fd)
        return self.pending.count(b"\n") + self.dropped


class Sampler:
    """Samples GPU/CPU/RAM in a background thread and writes the project's raw run folder."""

    def __init__(
        self,
        run_dir: Path,
        interval_s: float = 0.1,
        flush_every_s: float = 5.0,
        gpu_backend: GpuBackend | None = None,
        pid: int | None = None,
        counter_period_s: float = 5.0,
        counter_reuse_s: float = 0.01,
        slow_period_s: float = 1.0,
        cpu_tdp_w: float | None = None,
        metadata: dict | None = None,
        handle_sigterm: bool = True,
        stall_s: float = 0.05,
        max_unwritten_rows: int = MAX_UNWRITTEN_ROWS,
    ) -> None:
        """``run_dir``: ``<raw_root>/<environment>/<architecture>/<run:03d>`` (created; must not
        hold a previous run). ``pid``: process whose tree CPU/RSS is attributed (default this
        one). ``cpu_tdp_w``: TDP for the CPU power estimate (default 12 W per physical core).
        ``handle_sigterm``: turn SIGTERM into :class:`SamplerTerminated` while running (only when
        started from the main thread and no other handler is installed).

        ``slow_period_s`` (s): with GPUs, the readings that are not the run's power signal (GPU
        temperature, SM clock, memory and 1-s average power; system and process CPU %, process
        RSS, system RAM) are taken on timer ticks at least this far apart and at every phase
        edge; rows between leave them empty. Instant GPU power, utilisation, RAPL and the energy
        counters keep their own rates. Without GPUs the host readings are the power signal (the
        CPU estimate) and are read on every tick. 0: every reading on every tick.

        ``stall_s`` (s): a device reading that takes this long has stalled (an NVML call takes at
        most a few ms): :meth:`mark` stops waiting for it, and the reading is stamped when it
        returned, with a ``gap_reason``.

        ``max_unwritten_rows``: while writes fail, at most this many rows (and as many events)
        wait in memory for the next write (:data:`MAX_UNWRITTEN_ROWS`); later ones are dropped
        until a write succeeds, counted in metadata and named in the final status."""
        if min(interval_s, flush_every_s, stall_s, max_unwritten_rows) <= 0 or min(
                counter_period_s, counter_reuse_s, slow_period_s) < 0:
            raise ValueError("interval_s, flush_every_s, stall_s and max_unwritten_rows must be "
                             "> 0, counter_period_s, counter_reuse_s and slow_period_s >= 0")
        self.max_unwritten_rows = int(max_unwritten_rows)
        self.run_dir = Path(run_dir)
        self.interval_s = float(interval_s)
        self.flush_every_s = float(flush_every_s)
        self.counter_period_s = float(counter_period_s)
        self.counter_reuse_s = float(counter_reuse_s)
        self.slow_period_s = float(slow_period_s)
        self.stall_s = float(stall_s)
        self.handle_sigterm = handle_sigterm
        self._backend: GpuBackend = gpu_backend if gpu_backend is not None else NvmlBackend()
        self._cpu = CpuMonitor(pid=pid, tdp_w=cpu_tdp_w)
        self._meta: dict[str, Any] = dict(metadata or {})
        self._lock = threading.Lock()  # buffers, clocks, totals; never held during a device call
        self._io_lock = threading.Lock()  # file writes, in order
        self._stop_lock = threading.Lock()
        self._mark_lock = threading.Lock()  # one edge sample at a time
        self._stop_evt = threading.Event()
        self._wake = threading.Lock()  # held; mark() releases it to wake the sampling thread
        self._wake.acquire()
        self._thread: threading.Thread | None = None  # samples: the only caller of the devices
        self._writer: threading.Thread | None = None  # flushes every flush_every_s
        self._gpus: list[GpuInfo] = []
        self._rows: list[list[str]] = []
        self._events: list[list[str]] = []
        self._edges: list[_Edge] = []
        self._meta_dirty = False
        self._started = False
        self._summary: SamplerSummary | None = None
        self._samples_file: _AppendOnlyFile | None = None
        self._events_file: _AppendOnlyFile | None = None
        self._prev_sigterm: Any = None
        self._sigterm_seen = False
        self._thread_error: str | None = None
        self._last_write_error: str | None = None
        self._write_error_of: dict[str, str] = {}  # file name -> its last write error
        # counts and accumulators
        self._n_ticks = self._n_gaps = self._n_flushes = 0
        self._n_late = self._n_thread_errors = self._n_write_errors = 0
        self._cpu_s = 0.0
        self._mono0 = self._wall0_ms = 0.0
        self._t_start = self._t_end = NAN
        self._last_row_t = -math.inf
        self._reading_since = NAN  # monotonic start of the device reading in progress
        self._counter_t: list[float] = []
        self._slow_t = -math.inf  # last timer tick that took the slow readings
        self._gpu_trap: list[_Trapezoid] = []
        self._gpu_counter: list[_Span] = []
        self._cpu_trap = _Trapezoid()
        self._rapl = _Span()
        self._latest_is_edge = False  # no timer tick since the last edge sample

    # -- public API ------------------------------------------------------------------------
    def start(self) -> None:
        """Claim the run folder by creating ``samples.csv`` exclusively (``FileExistsError`` where
        it exists: another sampler's run, and nothing is written), probe devices, write
        metadata.json (status 'running') and the CSV headers, start the sampling and writing
        threads and mark ``run_start``. A start that fails after the claim removes the files it
        created. A no-op while already running (``with`` starts the sampler); after :meth:`stop`
        it raises ``RuntimeError``."""
        if self._summary is not None:
            raise RuntimeError("Sampler already stopped: use a new Sampler and run folder")
        if self._started:
            return
        self.run_dir.mkdir(parents=True, exist_ok=True)
        samples_path = self.run_dir / SAMPLES_FILE
        try:
            self._samples_file = _AppendOnlyFile(samples_path, exclusive=True,
                                                 max_pending_lines=self.max_unwritten_rows)
        except FileExistsError:
            raise FileExistsError(
                f"{samples_path} exists: the folder holds another sampler's run (a run folder "
                "holds one run; use a new folder)") from None
        try:
            self._open_run()
        except BaseException:
            self._release_claim()
            raise
        self._install_handlers()
        self._started = True
        self._thread = threading.Thread(target=self._loop, name="energy-sampler", daemon=True)
        self._writer = threading.Thread(target=self._write_loop, name="energy-sampler-writer",
                                        daemon=True)
        self._thread.start()
        self._writer.start()
        self.mark("run_start")

    def _open_run(self) -> None:
        """:meth:`start` after the claim: devices, metadata.json, CSV headers."""
        self._backend.init()
        self._gpus = self._backend.devices()
        n = len(self._gpus)
        self._counter_t = [-math.inf] * n
        self._slow_t = -math.inf
        self._gpu_trap = [_Trapezoid() for _ in range(n)]
        self._gpu_counter = [_Span() for _ in range(n)]
        self._cpu.start()
        self._mono0 = time.monotonic()
        self._wall0_ms = time.time_ns() / 1e6
        self._meta = {**self._initial_metadata(), **self._meta}
        write_json(_json_ready(self._meta), self.run_dir / METADATA_FILE)
        self._events_file = _AppendOnlyFile(self.run_dir / EVENTS_FILE, exclusive=False,
                                            max_pending_lines=self.max_unwritten_rows)
        for file, header in ((self._samples_file, SAMPLE_COLUMNS),
                             (self._events_file, EVENT_COLUMNS)):
            file.add([list(header)])
            file.flush()

    def _release_claim(self) -> None:
        """After a failed start: close and remove the run files (all this sampler's, as it holds
        the claim), as far as the folder allows, so that the folder can be used again."""
        for file in (self._samples_file, self._events_file):
            if file is not None:
                with contextlib.suppress(OSError):
                    file.close()
        for name in (EVENTS_FILE, METADATA_FILE, SAMPLES_FILE):  # the claim last
            with contextlib.suppress(OSError):
                (self.run_dir / name).unlink(missing_ok=True)

    def mark(self, event: str, epoch: int | None = None, *,
             energy_info: Callable[[float, str], Mapping[str, Any]] | None = None,
             read_counter: bool = True, **info: Any) -> None:
        """Record a phase event with a sample taken at that instant (energy counter included;
        ``read_counter=False`` leaves the ~3-ms counter read to the periodic one, for edges whose
        energy nothing needs, such as ``eval_start``).

        The sampling thread takes the sample and mark() waits for it, but not on a stalled device
        call: once a reading has taken ``stall_s``, the event is recorded at that moment with a
        row without readings (``gap_reason`` says why), and mark() returns.

        ``energy_info``: called with :meth:`energy_so_far_j`'s ``(J, method)`` as of this event's
        edge sample; the mapping it returns is added to ``info``. It runs under the sampler's
        lock, so it must be quick and must not call the sampler; an exception propagates and the
        event is not recorded. It lets the caller put what it derives from the energy at the
        event (e.g. a forecast) into the event itself. After a stalled edge, the energy is the
        one at the last reading before it."""
        if energy_info is not None and not read_counter:
            raise ValueError("energy_info needs the counter read at the mark (read_counter=True)")
        if not self._started:
            raise RuntimeError("Sampler.mark() before start()")
        if self._summary is not None:
            raise RuntimeError("Sampler.mark() after stop()")
        t_cpu = time.thread_time()
        with self._mark_lock:
            edge = self._edge_sample(read_counter, event)
            with self._lock:
                if energy_info is not None:
                    info = {**info, **energy_info(*self._energy_so_far())}
                info_json = json.dumps(_json_ready(info), sort_keys=True, default=str)
                self._events.append(
                    [
                        str(edge.ts_ms),
                        f"{edge.t:.6f}",
                        _one_line(event),
                        "" if epoch is None else str(int(epoch)),
                        _one_line(info_json),
                    ]
                )
                self._cpu_s += time.thread_time() - t_cpu

    def update_metadata(self, **fields: Any) -> None:
        """Merge ``fields`` into metadata.json (written at the next flush, at stop, or now if the
        sampler has already stopped)."""
        with self._lock:
            self._meta.update(fields)
            self._meta_dirty = True
            stopped = self._summary is not None
        if stopped:
            self._write_metadata()

    def energy_so_far_j(self) -> tuple[float, str]:
        """Energy (J) since :meth:`start` of the component the run's energy comes from, and how
        it was obtained; thread-safe.

        With GPUs: the sum over GPUs of the energy-counter deltas where every GPU has a counter,
        else of the running trapezoids of ``gpu_power_w`` (method ``gpu/nvml_counter`` or
        ``gpu/trapezoid``). Without a GPU: RAPL where readable, else the running trapezoid of
        ``cpu_power_estimate_w`` (``cpu/rapl`` or ``cpu/estimate:tdp_x_utilisation(...)``).
        Nothing measurable: ``(nan, 'unmeasured: <component>: <reason>')``. These are the running
        totals that :meth:`stop` reports as ``gpu_energy_j``/``cpu_energy_j``.

        Cheap: when no timer tick came after the last :meth:`mark`, no device is read and the
        value is the one at that mark (right after ``mark()``: exactly the value at the event).
        Otherwise one edge sample is taken now (a ``samples.csv`` row without an event; energy
        counters read), so the value is the one at the call. After :meth:`stop`: the value at
        ``run_end``. To get the value at a mark whatever the timing, pass ``energy_info`` to
        :meth:`mark`. During a device stall (``stall_s``): the value at the last reading."""
        if not self._started:
            raise RuntimeError("Sampler.energy_so_far_j() before start()")
        t_cpu = time.thread_time()
        with self._mark_lock:
            if not (self._latest_is_edge or self._stop_evt.is_set()):
                self._edge_sample(True, None)
            with self._lock:
                result = self._energy_so_far()
                self._cpu_s += time.thread_time() - t_cpu
        return result

    def stop(self, status: str = "ok", return_code: int | None = 0) -> SamplerSummary:
        """Mark ``run_end``, stop the threads, flush, rewrite metadata.json; idempotent.

        The status written is a true one: rows or events that the last flush could not write
        either are counted (``metadata.sampler.rows_lost``, ``events_lost``) and turn ``ok`` into
        ``failed: write error: ...`` (or are added to a failed status). If metadata.json cannot
        be written, it keeps the status ``running`` written at start; the returned summary's
        status says why. Either loss also gives a ``RuntimeWarning``."""
        with self._stop_lock:
            if self._summary is not None:
                return self._summary
            if not self._started:
                raise RuntimeError("Sampler.stop() before start()")
            self.mark("run_end")
            self._stop_evt.set()
            self._wake_sampler()
            for thread in (self._thread, self._writer):
                thread.join(timeout=10.0 + 10 * self.interval_s)
            t_cpu = time.thread_time()
            self._flush()
            lost = (self._samples_file.close(), self._events_file.close())
            self._cpu_s += time.thread_time() - t_cpu
            summary = self._summarise(self._final_status(status, *lost), return_code)
            with self._lock:
                self._summary = summary
                self._meta.update(
                    status=summary.status,
                    return_code=return_code,
                    ended_utc=_utc_iso(self._wall0_ms + 1000 * (self._t_end - self._mono0)),
                    summary=summary.to_dict(),
                )
                self._meta["sampler"].update(self._sampler_counts(summary, *lost))
            try:
                self._write_metadata()
            except OSError as err:
                self._write_failed(METADATA_FILE, err)
                note = f"metadata.json not written ({type(err).__name__}: {err}); it says 'running'"
                summary = replace(summary, status=_add_failure(summary.status, note))
                self._summary = summary
            if summary.status != _one_line(status):
                warnings.warn(f"Sampler.stop(): {self.run_dir}: {summary.status}", RuntimeWarning,
                              stacklevel=2)
            self._backend.shutdown()
            self._cpu.close()
            self._remove_handlers()
            return summary

    @property
    def gpus(self) -> list[GpuInfo]:
        """GPUs sampled in this run (after :meth:`start`)."""
        return list(self._gpus)

    def __enter__(self) -> Sampler:
        if not self._started:
            self.start()
        return self

    def __exit__(self, exc_type, exc, tb) -> bool:
        if exc_type is None or (issubclass(exc_type, SystemExit) and exc.code in (0, None)):
            self.stop("ok", 0)
        elif isinstance(exc, SamplerTerminated):
            self.stop("failed: SIGTERM", _SIGTERM_CODE)
        else:
            code = 130 if isinstance(exc, KeyboardInterrupt) else 1
            if isinstance(exc, SystemExit) and isinstance(exc.code, int):
                code = exc.code
            detail = f": {exc}" if str(exc) else ""
            self.stop(f"failed: {exc_type.__name__}{detail}", code)
        return False

    # -- sampling --------------------------------------------------------------------------
    def _loop(self) -> None:
        """Sampling thread, the only caller of the devices: the edge samples that mark() asks
        for, and a timer sample every ``interval_s``."""
        t_cpu = time.thread_time()
        next_t = time.monotonic() + self.interval_s
        while not self._stop_evt.is_set():
            # a lock wait (woken early by mark()) costs about what a plain sleep costs per wake-up
            self._wake.acquire(timeout=max(0.0, next_t - time.monotonic()))
            tick = time.monotonic() >= next_t
            if tick:
                next_t += self.interval_s
            try:
                self._serve_edges()
                if tick:
                    self._tick()
            except Exception as err:  # keep sampling, report it in metadata
                self._thread_failed(err)
            if tick and next_t < time.monotonic():  # fell behind (a slow read): skip, don't burst
                self._n_late += 1
                next_t = time.monotonic()
        with self._lock:
            self._cpu_s += time.thread_time() - t_cpu

    def _write_loop(self) -> None:
        """Writing thread: flush every ``flush_every_s`` until :meth:`stop`."""
        t_cpu = time.thread_time()
        while not self._stop_evt.wait(self.flush_every_s):
            try:
                self._flush()
            except Exception as err:  # keep going, report it in metadata
                self._thread_failed(err)
        with self._lock:
            self._cpu_s += time.thread_time() - t_cpu

    def _thread_failed(self, err: Exception) -> None:
        with self._lock:
            self._n_thread_errors += 1
            if self._thread_error is None:
                self._thread_error = f"{type(err).__name__}: {err}"

    def _wake_sampler(self) -> None:
        with contextlib.suppress(RuntimeError):  # already released: the thread wakes anyway
            self._wake.release()

    def _tick(self) -> None:
        """One timer sample, inside the run only (from run_start to run_end)."""
        if math.isnan(self._t_start) or not math.isnan(self._t_end):
            return
        t0 = time.monotonic()
        self._record(t0, self._read(t0, edge=False, counter=False), None)

    def _serve_edges(self) -> None:
        """Take the edge samples asked for, in order (sampling thread)."""
        while True:
            with self._lock:
                if not self._edges:
                    return
                edge = self._edges.pop(0)
                if edge.state != "queued":  # mark() gave up waiting: recorded already
                    continue
                edge.state = "reading"
            t0 = time.monotonic()
            try:
                reading = self._read(t0, edge=True, counter=edge.counter)
            except Exception as err:
                with self._lock:
                    if edge.state == "reading":
                        self._abandon(edge, f"edge sample failed: {type(err).__name__}: {err}")
                raise
            self._record(t0, reading, edge)

    def _edge_sample(self, counter: bool, event: str | None) -> _Edge:
        """Have the sampling thread take an edge sample and wait for it, but not on a device
        read that has stalled (``stall_s``) nor longer than ``_EDGE_MAX_WAIT_S``: then the edge
        is recorded now without readings (caller holds ``_mark_lock``)."""
        edge = _Edge(counter, event)
        with self._lock:
            self._edges.append(edge)
        self._wake_sampler()
        give_up_at = time.monotonic() + _EDGE_MAX_WAIT_S
        while not edge.done.wait(_EDGE_POLL_S):
            now = time.monotonic()
            stalled_s = now - self._reading_since  # NaN while no reading is in progress
            if stalled_s >= self.stall_s or now >= give_up_at or not self._thread.is_alive():
                why = (f"a device read has stalled for {stalled_s:.3f} s" if stalled_s >= 0
                       else "the sampling thread did not answer")
                with self._lock:
                    if edge.state != "done":
                        self._abandon(edge, f"edge sample without readings: {why}")
                break
        return edge

    def _abandon(self, edge: _Edge, why: str) -> None:
        """Record ``edge`` now with a row without readings (caller holds ``_lock``)."""
        edge.state = "abandoned"
        t = time.monotonic()
        gpu_rows = [([str(g.index), g.name, *[""] * 11, _num(g.power_limit_w)], "")
                    for g in self._gpus]
        self._append_rows(t, gpu_rows, [""] * 6, why)
        self._stamp(edge, t)

    def _stamp(self, edge: _Edge, t: float) -> None:
        """Give ``edge`` its time and wake its mark() (caller holds ``_lock``)."""
        edge.t, edge.ts_ms = t, self._ts_ms(t)
        if edge.event == "run_start":
            self._t_start = t
        elif edge.event == "run_end":
            self._t_end = t
        edge.done.set()

    def _ts_ms(self, t: float) -> int:
        return round(self._wall0_ms + 1000.0 * (t - self._mono0))

    def _read(self, t: float, edge: bool, counter: bool) -> _Reading:
        """Read all sources once (sampling thread, no lock held). ``edge``: a phase-edge sample:
        reads the energy counter (unless ``counter`` is False or a read is fresh) and leaves the
        CPU utilisation baselines to the timer ticks."""
        self._reading_since = t
        try:
            slow = edge or t - self._slow_t >= self.slow_period_s
            if slow and not edge:
                self._slow_t = t
            gpus = [self._gpu_row(info, t, edge and counter, slow) for info in self._gpus]
            host = slow or not self._gpus  # without GPUs the CPU estimate is the power signal
            cpu, cpu_gap = (self._read_cpu(advance=not edge) if host
                            else (self._cpu.read_counter_only(), ""))
        finally:
            self._reading_since = NAN
        return gpus, cpu, cpu_gap

    def _record(self, t0: float, reading: _Reading, edge: _Edge | None) -> None:
        """Buffer a reading begun at ``t0`` and update the running totals. It is stamped ``t0``,
        or, if it stalled or its edge was recorded without it, when it returned (then it is not
        an edge sample); after run_end it is dropped (outside the run). Takes ``_lock``."""
        took_s = time.monotonic() - t0
        gpus, cpu, cpu_gap = reading
        with self._lock:
            late = edge is not None and edge.state == "abandoned"
            t, note = t0, ""
            if late or took_s >= self.stall_s or t0 < self._last_row_t:
                t = time.monotonic()
                note = f"stalled device read: took {took_s:.3f} s, stamped when it returned"
            if t > self._t_end:
                return
            for i, (_, _, power_w, counter_j) in enumerate(gpus):
                self._gpu_trap[i].add(t, power_w)
                self._gpu_counter[i].add(counter_j)
            self._cpu_trap.add(t, cpu.cpu_power_estimate_w)
            self._rapl.add(cpu.cpu_energy_counter_j)
            tail = [
                _num(cpu.cpu_usage_pct),
                _num(cpu.process_cpu_pct),
                _num(cpu.process_rss_mb),
                _num(cpu.system_ram_used_mb),
                _exact(cpu.cpu_energy_counter_j),
                _num(cpu.cpu_power_estimate_w),
            ]
            reason = "; ".join(r for r in (cpu_gap, note) if r)
            self._append_rows(t, [(cells, gap) for cells, gap, _, _ in gpus], tail, reason)
            self._latest_is_edge = edge is not None and not late and edge.counter
            if edge is not None and not late:
                edge.state = "done"
                self._stamp(edge, t)

    def _append_rows(self, t: float, gpu_rows: list[tuple[list[str], str]], tail: list[str],
                     reason: str) -> None:
        """Buffer one sampling instant: a row per GPU (or one CPU-only row) with the GPU cells
        and gap, the CPU cells ``tail`` and a ``reason`` for every row (caller holds ``_lock``)."""
        head = [str(self._ts_ms(t)), f"{t:.6f}"]
        for cells, gap in gpu_rows or [([""] * 14, "")]:
            why = "; ".join(r for r in (gap, reason) if r)
            self._rows.append([*head, *cells, *tail, _one_line(why) if why else ""])
            self._n_gaps += bool(why)
        self._n_ticks += 1
        self._last_row_t = t

    def _gpu_row(self, info: GpuInfo, t: float, edge: bool, slow: bool) -> _GpuRow:
        """Cells ``gpu_index`` .. ``gpu_power_limit_w`` of one GPU, its gap reason, power (W)
        and energy counter (J; NaN where not read). ``edge``: read the energy counter unless a
        read is fresh (< ``counter_reuse_s``); ``slow``: also read the slowly changing metrics
        (``gpu.SLOW_METRICS``)."""
        i = info.index
        gaps: list[str] = []
        reading: GpuReading | None
        try:
            reading = self._backend.read(i, slow=slow)
        except Exception as err:
            reading = None
            gaps.append(f"{type(err).__name__}: {err}")
        counter = NAN
        since = t - self._counter_t[i]
        due = since >= self.counter_period_s or (edge and since >= self.counter_reuse_s)
        if info.energy_counter_supported and due:
            self._counter_t[i] = t
            try:
                counter = self._backend.read_energy_j(i)
            except Exception as err:
                gaps.append(f"energy counter: {type(err).__name__}: {err}")
        if reading is None:
            cells = [str(i), info.name] + [""] * 4 + [_exact(counter)] + [""] * 6
            cells.append(_num(info.power_limit_w))
            return cells, "; ".join(gaps), NAN, counter
        cells = [
            str(i),
            info.name,
            _num(reading.power_w),
            reading.power_source,
            _num(reading.power_instant_w),
            _num(reading.power_avg_w),
            _exact(counter),
            _num(reading.usage_pct),
            _num(reading.memory_usage_pct),
            _num(reading.memory_used_mb),
            _num(reading.memory_total_mb),
            _num(reading.temperature_c),
            _num(reading.sm_clock_mhz),
            _num(info.power_limit_w),
        ]
        return cells, "; ".join(gaps), reading.power_w, counter

    def _read_cpu(self, advance: bool) -> tuple[CpuReading, str]:
        try:
            return self._cpu.read(advance), ""
        except Exception as err:  # psutil failures are unexpected: keep sampling, say why
            return CpuReading.unread(), f"cpu read: {type(err).__name__}: {err}"

    # -- output ----------------------------------------------------------------------------
    def _flush(self) -> None:
        """Append buffered rows and events (write + fsync); rewrite metadata.json if it changed.
        A write that fails is counted, and what it could not write is kept for the next flush."""
        with self._io_lock:
            with self._lock:
                rows, self._rows = self._rows, []
                events, self._events = self._events, []
                meta_dirty, self._meta_dirty = self._meta_dirty, False
            self._samples_file.add(rows)
            self._events_file.add(events)
            for file in (self._samples_file, self._events_file):
                try:
                    file.flush()
                except OSError as err:
                    self._write_failed(file.path.name, err)
            self._n_flushes += 1
        if meta_dirty:
            try:
                self._write_metadata()
            except OSError as err:
                self._write_failed(METADATA_FILE, err)
                with self._lock:
                    self._meta_dirty = True

    def _write_metadata(self) -> None:
        """Write metadata.json atomically; raises ``OSError``."""
        with self._io_lock:
            with self._lock:
                snapshot = _json_ready(self._meta)
            write_json(snapshot, self.run_dir / METADATA_FILE)

    def _write_failed(self, name: str, err: OSError) -> None:
        with self._lock:
            self._n_write_errors += 1
            self._last_write_error = _one_line(f"{name}: {type(err).__name__}: {err}")
            self._write_error_of[name] = self._last_write_error

    def _final_status(self, status: str, rows_lost: int, events_lost: int) -> str:
        """``status``, failed with the reason where rows or events were never written."""
        status = _one_line(status)
        if not (rows_lost or events_lost):
            return status
        errors = [self._write_error_of.get(name, name) for name, lost in
                  ((SAMPLES_FILE, rows_lost), (EVENTS_FILE, events_lost)) if lost]
        errors += [f"{file.path.name}: {file.dropped} dropped while {file.max_pending_lines} "
                   "unwritten waited" for file in (self._samples_file, self._events_file)
                   if file.dropped]
        return _add_failure(status, f"{rows_lost} rows and {events_lost} events not written "
                                    f"({'; '.join(errors)})")

    def _gpu_counters_j(self) -> tuple[float, ...]:
        """Per GPU: energy-counter delta so far (NaN where the counter is unsupported)."""
        return tuple(
            s.delta if g.energy_counter_supported else NAN
            for s, g in zip(self._gpu_counter, self._gpus, strict=True)
        )

    def _gpu_energy(self, counters: tuple[float, ...],
                    traps: tuple[float, ...]) -> tuple[float, str]:
        """All GPUs, by :func:`helpers.core.rules.gpu_energy_rule` on the running totals."""
        reason = ("fewer than two valid power samples on a GPU" if self._gpus
                  else self._backend.status)
        return rules.gpu_energy_rule(counters, traps, reason)

    def _cpu_energy(self) -> tuple[float, str]:
        """By :func:`helpers.core.rules.cpu_energy_rule` on the running totals."""
        return rules.cpu_energy_rule(self._rapl.delta, self._cpu_trap.value_j,
                                     self._cpu.estimate_method,
                                     "fewer than two valid CPU power estimates and no RAPL")

    def _energy_so_far(self) -> tuple[float, str]:
        """:meth:`energy_so_far_j` from the running totals (caller holds ``_lock``)."""
        if self._gpus:
            traps = tuple(t.value_j for t in self._gpu_trap)
            energy_j, method = self._gpu_energy(self._gpu_counters_j(), traps)
            component = "gpu"
        else:
            energy_j, method = self._cpu_energy()
            component = "cpu"
        if math.isnan(energy_j):
            return NAN, rules.unmeasured(f"{component}: {rules.unmeasured_reason(method)}")
        return energy_j, f"{component}/{method}"

    def _summarise(self, status: str, return_code: int | None) -> SamplerSummary:
        duration = self._t_end - self._t_start
        counters = self._gpu_counters_j()
        traps = tuple(t.value_j for t in self._gpu_trap)
        gpu_j, gpu_method = self._gpu_energy(counters, traps)
        rapl_j = self._rapl.delta
        estimate_j = self._cpu_trap.value_j
        cpu_j, cpu_method = self._cpu_energy()
        return SamplerSummary(
            status=status,
            return_code=return_code,
            n_samples=self._samples_file.lines_written - 1,  # after the header
            n_ticks=self._n_ticks,
            n_gap_rows=self._n_gaps,
            n_events=self._events_file.lines_written - 1,
            n_flushes=self._n_flushes,
            duration_s=duration,
            mean_tick_interval_s=duration / (self._n_ticks - 1) if self._n_ticks > 1 else NAN,
            gpu_energy_counter_j=counters,
            gpu_energy_trapezoid_j=traps,
            gpu_energy_j=gpu_j,
            gpu_energy_method=gpu_method,
            cpu_energy_rapl_j=rapl_j,
            cpu_energy_estimate_j=estimate_j,
            cpu_energy_j=cpu_j,
            cpu_energy_method=cpu_method,
            sampler_cpu_s=self._cpu_s,
            overhead_pct_of_core=100.0 * self._cpu_s / duration if duration > 0 else NAN,
        )

    def _sampler_counts(self, summary: SamplerSummary, rows_lost: int,
                        events_lost: int) -> dict[str, Any]:
        return {
            "n_samples": summary.n_samples,
            "rows_lost": rows_lost,  # sampled, never written (the last write failed too)
            "events_lost": events_lost,
            "rows_dropped": self._samples_file.dropped,  # of rows_lost: past max_unwritten_rows
            "events_dropped": self._events_file.dropped,
            "write_errors": self._n_write_errors,  # failed writes, retried or not
            "last_write_error": self._last_write_error,
            "n_ticks": summary.n_ticks,
            "n_gap_rows": summary.n_gap_rows,
            "n_events": summary.n_events,
            "n_late_ticks": self._n_late,
            "sampler_cpu_s": summary.sampler_cpu_s,
            "overhead_pct_of_core": summary.overhead_pct_of_core,
            "thread_error": self._thread_error,  # first error in the sampling thread
            "n_thread_errors": self._n_thread_errors,
            "process_status": self._cpu.process_status,
        }

    def _initial_metadata(self) -> dict[str, Any]:
        identity: dict[str, Any] = {}
        parts = self.run_dir.resolve().parts
        if len(parts) >= 3 and parts[-1].isdigit():
            identity = {"environment": parts[-3], "architecture": parts[-2], "run": int(parts[-1])}
        vm = psutil.virtual_memory()
        return {
            "raw_format_version": RAW_FORMAT_VERSION,
            "dataset": None,
            **identity,
            "status": "running",
            "return_code": None,
            "started_utc": _utc_iso(self._wall0_ms),
            "ended_utc": None,
            "host": {
                "hostname": socket.gethostname(),
                "os": platform.platform(),
                "cpu_model": _cpu_model(),
                "logical_cores": psutil.cpu_count(logical=True),
                "physical_cores": psutil.cpu_count(logical=False),
                "ram_gb": vm.total / 2**30,
            },
            "gpus": [
                {
                    "index": g.index,
                    "nvml_index": g.nvml_index,
                    "name": g.name,
                    "uuid": g.uuid,
                    "power_limit_w": g.power_limit_w,
                    "memory_total_mb": g.memory_total_mb,
                    "energy_counter_supported": g.energy_counter_supported,
                    "unsupported": g.unsupported,
                }
                for g in self._gpus
            ],
            "gpu_status": self._backend.status,
            "cuda_visible_devices": os.environ.get("CUDA_VISIBLE_DEVICES"),
            "versions": {**_versions(), **self._backend.versions()},
            "sampler": {
                "interval_s": self.interval_s,
                "flush_every_s": self.flush_every_s,
                "counter_period_s": self.counter_period_s,
                "counter_reuse_s": self.counter_reuse_s,
                "slow_period_s": self.slow_period_s,
                "stall_s": self.stall_s,
                "max_unwritten_rows": self.max_unwritten_rows,
                "pid": self._cpu.pid,
                "monotonic_start_s": self._mono0,
            },
            "cpu_power": {
                "energy_method": self._cpu.energy_method,
                "estimate_method": self._cpu.estimate_method,
                "tdp_w": self._cpu.tdp_w,
                "rapl_status": self._cpu.rapl.status,
            },
        }

    # -- exit paths ------------------------------------------------------------------------
    def _install_handlers(self) -> None:
        atexit.register(self._at_exit)
        in_main = threading.current_thread() is threading.main_thread()
        if self.handle_sigterm and in_main:
            if signal.getsignal(signal.SIGTERM) is signal.SIG_DFL:
                self._prev_sigterm = signal.signal(signal.SIGTERM, self._on_sigterm)

    def _remove_handlers(self) -> None:
        atexit.unregister(self._at_exit)
        if self._prev_sigterm is not None:
            try:
                signal.signal(signal.SIGTERM, self._prev_sigterm)
            except ValueError:  # stop() called off the main thread: leave the handler
                pass
            self._prev_sigterm = None

    def _on_sigterm(self, signum: int, frame: Any) -> None:
        self._sigterm_seen = True
        raise SamplerTerminated(_SIGTERM_CODE)

    def _at_exit(self) -> None:
        if self._summary is None:
            if self._sigterm_seen:
                self.stop("failed: SIGTERM", _SIGTERM_CODE)
            else:
                self.stop("failed: interpreter exited without Sampler.stop()", None)


# -- formatting helpers ---------------------------------------------------------------------
def _num(value: float) -> str:
    """10 significant digits; empty for NaN."""
    return "" if value != value else f"{value:.10g}"


def _exact(value: float) -> str:
    """Shortest round-trip repr (for cumulative counters); empty for NaN."""
    return "" if value != value else repr(float(value))


def _one_line(text: str) -> str:
    return " ".join(str(text).splitlines())


def _add_failure(status: str, note: str) -> str:
    """``failed: write error: <note>`` for an ok run, else the note added to the status."""
    return f"failed: write error: {note}" if status == "ok" else f"{status}; write error: {note}"


def _json_ready(obj: Any) -> Any:
    """Replace NaN/inf by None (strict JSON), tuples by lists and numpy/torch scalars by Python
    numbers, recursively."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {str(k): _json_ready(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_json_ready(v) for v in obj]
    if hasattr(obj, "item") and getattr(obj, "ndim", 1) == 0:  # numpy / torch scalars
        return _json_ready(obj.item())
    return obj


def _utc_iso(ms: float) -> str:
    return datetime.fromtimestamp(ms / 1000.0, tz=UTC).isoformat(timespec="milliseconds")


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _versions() -> dict[str, str | None]:
    """Python and library versions; torch's without importing it."""
    if "torch" in sys.modules:
        torch = sys.modules["torch"]
        torch_version = getattr(torch, "__version__", None)
        cuda = getattr(getattr(torch, "version", None), "cuda", None)
    else:
        torch_version, cuda = package_version("torch"), None
    return {
        "python": platform.python_version(),
        "helpers": helpers_version,
        "torch": None if torch_version is None else str(torch_version),
        "torch_cuda": cuda,
        "psutil": psutil.__version__,
    }

