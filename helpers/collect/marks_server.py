"""The profiler's end of :mod:`helpers.marks`: receive marks and hand them to the sampler.

:class:`MarksReceiver` binds an AF_UNIX datagram socket in a fresh private folder (its path goes
to the profiled command in :data:`helpers.marks.ENV_VAR`). One thread takes the datagrams off the
socket every :data:`POLL_S` (50 ms) rather than waiting on it: a mark that had to wake a waiting
receiver would pay for the wake-up and, on a busy machine, for being preempted by it (hundreds
of microseconds on a loaded 2-core virtual machine, benchmarks/bench_profile_overhead.py). An
event is therefore recorded up to 50 ms after its call (``metadata.profile.marks.delay_s``),
half a sampling interval and less than the 100 ms at which NVML's energy counter moves. A second
thread decodes the messages and calls the handlers, so a handler that waits (``Sampler.mark``
waits for its edge sample, a few ms) never holds up the socket.

Which marks count (:func:`route`): phase events and metadata from local rank 0, or from a
process without ``LOCAL_RANK`` (one per node under ``torchrun``, whose ranks all run the same
loop); the same from other ranks are counted in :attr:`MarksReceiver.counts` only. Marks with free
names are recorded from every rank, with ``rank`` added to their info where the sender has one
other than local rank 0. Metadata keys that the sampler and profiler own (status, host, gpus, ...)
are refused and listed.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import shutil
import socket
import statistics
import tempfile
import threading
import time
from collections import Counter, deque
from collections.abc import Callable
from pathlib import Path
from typing import Any

from helpers import marks
from helpers.core.raw_format import PHASE_EVENTS

#: Events recorded from local rank 0 only.
RANK0_EVENTS = frozenset(PHASE_EVENTS) | {"eval_end"}
#: metadata.json keys a mark may not set (written by the sampler or the profiler).
RESERVED_KEYS = frozenset({
    "raw_format_version", "status", "return_code", "started_utc", "ended_utc", "host", "gpus",
    "gpu_status", "cuda_visible_devices", "versions", "sampler", "cpu_power", "summary",
    "environment", "architecture", "run", "profile",
})
#: How often the receiving thread takes the queued datagrams off the socket (s).
POLL_S = 0.05
_MAX_DATAGRAM = 1 << 16
_SOCKET_NAME = "marks.sock"
_IDLE_S = 0.5  # the dispatching thread checks for stop this often when idle (s)

EventHandler = Callable[[str, int | None, dict[str, Any]], None]
MetadataHandler = Callable[[dict[str, Any]], None]


def route(message: dict[str, Any]) -> str:
    """What to do with a decoded message: ``'event'``, ``'metadata'``, ``'other rank'`` (not
    recorded) or ``'malformed: <why>'``."""
    kind, name = message.get("kind"), message.get("name")
    if not isinstance(name, str) or not name or kind not in ("event", "metadata"):
        return "malformed: kind or name"
    if not isinstance(message.get("fields"), dict):
        return "malformed: fields"
    epoch = message.get("epoch")
    if epoch is not None and (not isinstance(epoch, int) or isinstance(epoch, bool)):
        return "malformed: epoch"
    primary = message.get("local_rank") in (None, 0)
    if kind == "metadata" or name in RANK0_EVENTS:
        return kind if primary else "other rank"
    return "event"


class MarksReceiver:
    """Receives :mod:`helpers.marks` messages on a datagram socket; see the module docstring.

    ``on_event(name, epoch, info)`` and ``on_metadata(fields)`` are called from one thread, in
    arrival order, once :meth:`start_dispatch` was called (messages wait until then)."""

    def __init__(self, on_event: EventHandler, on_metadata: MetadataHandler) -> None:
        self.on_event = on_event
        self.on_metadata = on_metadata
        self._dir = Path(tempfile.mkdtemp(prefix="hp-", dir=_short_tmp()))
        self.address = str(self._dir / _SOCKET_NAME)
        self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self._sock.bind(self.address)
        with contextlib.suppress(OSError):
            self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
        self._sock.setblocking(False)
        self._queue: deque[tuple[bytes, float]] = deque()
        self._arrived = threading.Condition()
        self._stopping = threading.Event()
        self._dispatch_ok = threading.Event()
        self._threads: list[threading.Thread] = []
        self.counts: Counter[str] = Counter()  # 'received', 'recorded events', ...
        self.by_rank: Counter[str] = Counter()  # sender rank ('none' without RANK) -> messages
        self.refused_keys: set[str] = set()
        self.errors: list[str] = []  # handler failures (first 10)
        self._delays_s: list[float] = []

    def start(self) -> None:
        """Start taking datagrams off the socket (they are queued until :meth:`start_dispatch`)."""
        for target, name in ((self._receive_loop, "marks-receive"),
                             (self._dispatch_loop, "marks-dispatch")):
            thread = threading.Thread(target=target, name=name, daemon=True)
            thread.start()
            self._threads.append(thread)

    def start_dispatch(self) -> None:
        """Let queued and later messages through to the handlers."""
        self._dispatch_ok.set()

    def stop(self) -> None:
        """Take what is still queued in the socket, hand everything to the handlers, stop the
        threads, remove the socket folder (idempotent). Call it after the command has ended, so
        that every mark it sent is in the socket."""
        if self._sock.fileno() < 0:
            return
        self._dispatch_ok.set()
        self._stopping.set()
        with self._arrived:
            self._arrived.notify()
        for thread in self._threads:
            thread.join(timeout=30.0)
        self._threads = []
        self._drain_socket()
        self._dispatch_all()
        self._sock.close()
        shutil.rmtree(self._dir, ignore_errors=True)

    def report(self) -> dict[str, Any]:
        """Counts for ``metadata.profile.marks``: messages received, recorded, not recorded
        (other ranks, malformed), per sender rank, refused metadata keys, handler errors, and
        the delay from a mark's call to its hand-over to the sampler (s)."""
        delays = self._delays_s
        return {
            "counts": dict(sorted(self.counts.items())),
            "by_rank": dict(sorted(self.by_rank.items())),
            "refused_metadata_keys": sorted(self.refused_keys),
            "errors": self.errors,
            "delay_s": {"median": statistics.median(delays) if delays else None,
                        "max": max(delays) if delays else None},
        }

    # -- threads ---------------------------------------------------------------------------
    def _receive_loop(self) -> None:
        while not self._stopping.wait(POLL_S):
            self._drain_socket()

    def _enqueue(self, data: bytes) -> None:
        with self._arrived:
            self._queue.append((data, time.monotonic()))
            self._arrived.notify()

    def _drain_socket(self) -> None:
        while True:
            try:
                data = self._sock.recv(_MAX_DATAGRAM)
            except OSError:
                return
            if data:
                self._enqueue(data)

    def _dispatch_loop(self) -> None:
        self._dispatch_ok.wait()
        while not self._stopping.is_set():
            with self._arrived:
                if not self._queue:
                    self._arrived.wait(_IDLE_S)
            self._dispatch_all()

    def _dispatch_all(self) -> None:
        while True:
            with self._arrived:
                if not self._queue:
                    return
                data, _ = self._queue.popleft()
            self._handle(data)

    def _handle(self, data: bytes) -> None:
        self.counts["received"] += 1
        try:
            message = json.loads(data)
        except ValueError:
            self.counts["malformed"] += 1
            return
        if not isinstance(message, dict):
            self.counts["malformed"] += 1
            return
        rank = message.get("rank")
        self.by_rank["none" if rank is None else str(rank)] += 1
        where = route(message)
        if where.startswith("malformed") or where == "other rank":
            self.counts[where] += 1
            return
        sent = message.get("mono")
        if isinstance(sent, int | float) and math.isfinite(sent):
            self._delays_s.append(max(0.0, time.monotonic() - sent))
        fields = dict(message["fields"])
        try:
            if where == "metadata":
                refused = RESERVED_KEYS & fields.keys()
                self.refused_keys |= refused
                self.on_metadata({k: v for k, v in fields.items() if k not in refused})
                self.counts["recorded metadata"] += 1
            else:
                if message.get("local_rank") not in (None, 0) and rank is not None:
                    fields["rank"] = rank
                self.on_event(message["name"], message.get("epoch"), fields)
                self.counts["recorded events"] += 1
        except Exception as err:  # a bad mark must not stop the profiler
            self.counts["handler errors"] += 1
            if len(self.errors) < 10:
                self.errors.append(f"{message.get('name')}: {type(err).__name__}: {err}")


def _short_tmp() -> str:
    """A temporary folder whose socket paths fit AF_UNIX's 108 bytes."""
    tmp = tempfile.gettempdir()
    return tmp if len(tmp) < 60 else "/tmp"


def child_environment(address: str, base: dict[str, str] | None = None) -> dict[str, str]:
    """``base`` (default: this process's environment) with :data:`helpers.marks.ENV_VAR` set to
    ``address``."""
    env = dict(os.environ if base is None else base)
    env[marks.ENV_VAR] = address
    return env
