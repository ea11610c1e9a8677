"""CPU, process and RAM readings for the sampler (psutil and RAPL).

Units: percent (system CPU 0-100 over all logical cores; process CPU in % of one core, so it can
exceed 100), MB (= MiB, 2**20 bytes, as the published psutil logs), joules, watts.

* System CPU % comes from CPU-time deltas between reads (busy = all - idle - iowait, psutil's
  definition), kept here so other callers of ``psutil.cpu_percent`` don't disturb it.
* On Linux, per-tick values are read from /proc files held open (``pread`` at offset 0) and
  parsed as psutil parses them (RAM used = MemTotal - MemAvailable, as psutil 7); psutil's own
  calls reopen each file and cost about 4x more CPU per tick in a VM. Elsewhere psutil is used.
* Process CPU % and RSS cover the training process and all its descendants (DataLoader workers):
  per-process CPU-time deltas; the list of descendants is refreshed every ``children_refresh_s``
  (default 2 s) because scanning ``/proc`` for them costs 0.7-1.5 ms. A new worker's CPU time
  before its discovery is counted at discovery (none is lost); a worker's last interval before it
  exits is lost. RSS is summed, so pages shared between a parent and forked workers count more
  than once (an upper bound).
* CPU energy: RAPL package counters ``/sys/class/powercap/intel-rapl:<n>/energy_uj`` (zones named
  ``package-*``) summed over packages, wrap-corrected with ``max_energy_range_uj``; reported as
  joules accumulated since :meth:`CpuMonitor.start`. Where unreadable (no RAPL, as in most VMs, or
  root-only since Linux 5.10) the counter is NaN and ``rapl_status`` says why.
* CPU power estimate: ``TDP x system utilisation`` (whole package, like RAPL). Default TDP is
  Green Algorithms' per-core figure for an unknown CPU, 12 W per physical core (their
  ``TDP_cpu.csv``, model ``Any``), times the physical cores (logical if unknown). Tagged
  ``'estimate:tdp_x_utilisation(tdp_w=<W>)'``.
"""

from __future__ import annotations

import math
import os
import re
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import psutil

from helpers.core import rules
from helpers.core.units import BYTES_PER_MIB, DEFAULT_CPU_TDP_W_PER_CORE, KIB_PER_MIB

NAN = math.nan
RAPL_ROOT = Path("/sys/class/powercap")
#: Shortest utilisation window (s): kernel CPU times advance in 10-ms clock ticks.
MIN_WINDOW_S = 0.05
_PACKAGE_ZONE = re.compile(r"^intel-rapl:\d+$")


def default_cpu_tdp_w() -> float:
    """12 W x physical cores (logical cores where psutil cannot tell), in watts."""
    cores = psutil.cpu_count(logical=False) or psutil.cpu_count(logical=True) or 1
    return DEFAULT_CPU_TDP_W_PER_CORE * cores


@dataclass(slots=True)
class CpuReading:
    """One tick of CPU/RAM readings; NaN where unreadable."""

    cpu_usage_pct: float
    process_cpu_pct: float
    process_rss_mb: float
    system_ram_used_mb: float
    system_ram_total_mb: float
    cpu_energy_counter_j: float
    cpu_power_estimate_w: float

    @classmethod
    def unread(cls, cpu_energy_counter_j: float = NAN) -> CpuReading:
        """A reading whose fields were not read (NaN), optionally with the RAPL counter (J)."""
        return cls(NAN, NAN, NAN, NAN, NAN, cpu_energy_counter_j, NAN)


class RaplReader:
    """Sum of RAPL package energy counters, wrap-corrected, in joules since :meth:`open`."""

    def __init__(self, root: Path = RAPL_ROOT) -> None:
        self.root = Path(root)
        self.status = "not opened"
        self._zones: list[tuple[Path, int]] = []  # (energy_uj path, max_energy_range_uj)
        self._last_uj: list[int] = []
        self._total_uj = 0

    def open(self) -> bool:
        """Find readable package zones; return whether RAPL is usable (else ``status`` says why)."""
        if not self.root.is_dir():
            self.status = f"RAPL unavailable: {self.root} does not exist"
            return False
        zones = sorted(p for p in self.root.iterdir() if _PACKAGE_ZONE.match(p.name))
        packages = [z for z in zones if _read_text(z / "name").startswith("package")]
        if not packages:
            self.status = f"RAPL unavailable: no package zone under {self.root}"
            return False
        try:
            self._zones = [
                (z / "energy_uj", int(_read_text(z / "max_energy_range_uj"))) for z in packages
            ]
            self._last_uj = [int(p.read_text()) for p, _ in self._zones]
        except (OSError, ValueError) as err:
            self._zones = []
            self.status = f"RAPL unreadable: {type(err).__name__}: {err}"
            return False
        self._total_uj = 0
        self.status = "ok: " + ", ".join(z.name for z in packages)
        return True

    @property
    def available(self) -> bool:
        return bool(self._zones)

    def read_j(self) -> float:
        """Joules since :meth:`open` over all packages; NaN when unavailable or a read fails."""
        if not self._zones:
            return NAN
        try:
            now = [int(p.read_text()) for p, _ in self._zones]
        except (OSError, ValueError):
            return NAN
        for i, ((_, max_range), value) in enumerate(zip(self._zones, now, strict=True)):
            delta = value - self._last_uj[i]
            if delta < 0:  # the counter wrapped at max_energy_range_uj
                delta += max_range
            self._total_uj += delta
            self._last_uj[i] = value
        return self._total_uj / 1e6


class _PsutilSource:
    """System, RAM and per-process readings through psutil (portable)."""

    def __init__(self) -> None:
        self._procs: dict[int, psutil.Process] = {}

    def system_busy_all(self) -> tuple[float, float]:
        """(busy, all) CPU time over all cores since boot, as psutil.cpu_percent defines them
        (any unit: only their ratio of differences is used)."""
        t = psutil.cpu_times()
        total = sum(t) - getattr(t, "guest", 0.0) - getattr(t, "guest_nice", 0.0)
        return total - t.idle - getattr(t, "iowait", 0.0), total

    def memory_mb(self) -> tuple[float, float]:
        """(used, total) system RAM in MiB; used = total - available, psutil's definition."""
        vm = psutil.virtual_memory()
        return vm.used / BYTES_PER_MIB, vm.total / BYTES_PER_MIB

    def process(self, pid: int) -> tuple[float, float]:
        """(user + system CPU s, RSS bytes) of one process; raises ``psutil.Error`` once gone."""
        proc = self._procs.get(pid)
        if proc is None:
            proc = self._procs[pid] = psutil.Process(pid)
        with proc.oneshot():
            times = proc.cpu_times()
            return times.user + times.system, float(proc.memory_info().rss)

    def forget(self, pid: int) -> None:
        self._procs.pop(pid, None)

    def close(self) -> None:
        self._procs.clear()


class _ProcfsSource(_PsutilSource):
    """The same readings from /proc files held open and re-read with ``pread`` at offset 0.

    psutil opens and closes each file per call; in a VM after a 100-ms sleep that costs about
    4x more CPU (measured here: 413 vs 93 us per tick). Values are those psutil computes.
    """

    _TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
    _PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096

    def __init__(self) -> None:
        super().__init__()
        self._fds: dict[str, int] = {}

    @classmethod
    def usable(cls) -> bool:
        return sys.platform.startswith("linux") and os.access("/proc/stat", os.R_OK)

    def _pread(self, path: str, size: int = 8192) -> bytes:
        fd = self._fds.get(path)
        if fd is None:
            fd = self._fds[path] = os.open(path, os.O_RDONLY)
        return os.pread(fd, size, 0)

    def system_busy_all(self) -> tuple[float, float]:
        first = self._pread("/proc/stat", 4096).split(b"\n", 1)[0].split()[1:]
        v = [float(x) for x in first]  # user nice system idle iowait irq softirq steal guest gn
        total = sum(v) - sum(v[8:10])  # in clock ticks: integers, so ratios stay exact
        return total - v[3] - (v[4] if len(v) > 4 else 0.0), total

    def memory_mb(self) -> tuple[float, float]:
        fields = dict(
            line.split(b":", 1) for line in self._pread("/proc/meminfo").splitlines() if line
        )
        total_kb = float(fields[b"MemTotal"].split()[0])
        avail_kb = float(fields.get(b"MemAvailable", b"0").split()[0])
        if not 0 < avail_kb <= total_kb:  # old kernels, containers: psutil's own estimate
            return super().memory_mb()
        return (total_kb - avail_kb) / KIB_PER_MIB, total_kb / KIB_PER_MIB

    def process(self, pid: int) -> tuple[float, float]:
        try:
            stat = self._pread(f"/proc/{pid}/stat", 4096)
        except OSError as err:  # ENOENT / ESRCH: the process has ended
            self.forget(pid)
            raise psutil.NoSuchProcess(pid) from err
        after_comm = stat.rsplit(b")", 1)[1].split()  # fields 3.. of proc(5)
        cpu_s = (float(after_comm[11]) + float(after_comm[12])) / self._TICKS
        # field 24, rss (pages): the kernel's get_mm_rss, the value statm's 'resident' (psutil)
        # also shows; one file per tick instead of two
        return cpu_s, float(after_comm[21]) * self._PAGE

    def forget(self, pid: int) -> None:
        fd = self._fds.pop(f"/proc/{pid}/stat", None)
        if fd is not None:
            os.close(fd)

    def close(self) -> None:
        for fd in self._fds.values():
            os.close(fd)
        self._fds.clear()


class CpuMonitor:
    """Reads system CPU %, process-tree CPU % and RSS, RAM, RAPL energy and the CPU estimate.

    On Linux the per-tick reads use held /proc file descriptors (:class:`_ProcfsSource`), else
    psutil; descendants of ``pid`` are found with psutil. Call :meth:`close` when done.
    """

    def __init__(
        self,
        pid: int | None = None,
        tdp_w: float | None = None,
        rapl_root: Path = RAPL_ROOT,
        children_refresh_s: float = 2.0,
        use_procfs: bool | None = None,
    ) -> None:
        self.pid = os.getpid() if pid is None else pid
        self.tdp_w = default_cpu_tdp_w() if tdp_w is None else float(tdp_w)
        self.children_refresh_s = children_refresh_s
        self.rapl = RaplReader(rapl_root)
        self.process_status = "not started"
        procfs = _ProcfsSource.usable() if use_procfs is None else use_procfs
        self._source: _PsutilSource = _ProcfsSource() if procfs else _PsutilSource()
        self._root: psutil.Process | None = None
        self._tree: list[int] = []
        self._proc_cpu_s: dict[int, float] = {}
        self._children_at = -math.inf
        self._sys_busy = self._sys_all = 0.0
        self._last_t = 0.0
        self._last_pct: tuple[float, float] | None = None  # (system %, process %) of last window

    @property
    def estimate_method(self) -> str:
        return rules.cpu_estimate_method(self.tdp_w)

    @property
    def energy_method(self) -> str:
        """``'rapl'`` when the counter is readable, else the estimate's tag."""
        return rules.RAPL if self.rapl.available else self.estimate_method

    def start(self) -> None:
        """Take the reference readings that the first :meth:`read` differences against."""
        self.rapl.open()
        self._sys_busy, self._sys_all = self._source.system_busy_all()
        self._last_t = time.monotonic()
        try:
            self._root = psutil.Process(self.pid)
            self.process_status = "ok"
        except psutil.Error as err:
            self._root = None
            self.process_status = f"process {self.pid} not readable: {type(err).__name__}"
        self._tree, self._last_pct, self._children_at = [], None, -math.inf
        tree = self._read_tree(self._last_t)
        self._proc_cpu_s = {pid: cpu_s for pid, (cpu_s, _) in tree.items()}

    def close(self) -> None:
        """Release held file descriptors."""
        self._source.close()

    def read(self, advance: bool = True) -> CpuReading:
        """Utilisation over the last window, current memory, cumulative RAPL energy.

        A window runs from one advancing read to the next; it only closes when the kernel's CPU
        time has moved on and it lasts at least ``MIN_WINDOW_S`` (CPU times tick every 10 ms),
        otherwise the previous window's utilisation is repeated. ``advance=False`` (samples at
        phase edges) always repeats the last closed window's utilisation, so an edge sample a few
        ms after a tick doesn't report a quantised few-millisecond average.
        """
        now = time.monotonic()
        busy, total = self._source.system_busy_all()
        tree = self._read_tree(now)
        closes = advance and total > self._sys_all and now - self._last_t >= MIN_WINDOW_S
        if closes or self._last_pct is None:
            cpu_pct, proc_pct = self._utilisation(now, busy, total, tree)
        else:
            cpu_pct, proc_pct = self._last_pct
        if closes:
            self._last_pct = (cpu_pct, proc_pct)
            self._sys_busy, self._sys_all, self._last_t = busy, total, now
            self._proc_cpu_s = {pid: cpu_s for pid, (cpu_s, _) in tree.items()}
        if self.pid in tree:
            rss_mb = sum(rss for _, rss in tree.values()) / BYTES_PER_MIB
        else:
            self.process_status = f"process {self.pid} ended"
            proc_pct = rss_mb = NAN
        used_mb, total_mb = self._source.memory_mb()
        return CpuReading(
            cpu_usage_pct=cpu_pct,
            process_cpu_pct=proc_pct,
            process_rss_mb=rss_mb,
            system_ram_used_mb=used_mb,
            system_ram_total_mb=total_mb,
            cpu_energy_counter_j=self.rapl.read_j(),
            cpu_power_estimate_w=rules.cpu_power_estimate_w(self.tdp_w, cpu_pct),
        )

    def read_counter_only(self) -> CpuReading:
        """A reading of the RAPL counter alone (J; NaN where unreadable), other fields NaN: for
        samples between full readings. Leaves the utilisation window open."""
        return CpuReading.unread(self.rapl.read_j())

    def _utilisation(
        self, now: float, busy: float, total: float, tree: dict[int, tuple[float, float]]
    ) -> tuple[float, float]:
        """(system CPU %, process-tree CPU % of one core) since the last closed window."""
        d_all = total - self._sys_all
        cpu_pct = NAN
        if d_all > 0:  # clamped like psutil.cpu_percent
            cpu_pct = min(100.0, max(0.0, 100.0 * (busy - self._sys_busy) / d_all))
        dt = now - self._last_t
        # a descendant first seen now started after the baseline: all its time is new
        cpu_s = sum(c - self._proc_cpu_s.get(pid, 0.0) for pid, (c, _) in tree.items())
        proc_pct = 100.0 * cpu_s / dt if dt > 0 and self.pid in tree else NAN
        return cpu_pct, proc_pct

    def _refresh_children(self, now: float) -> None:
        if self._root is None or now - self._children_at < self.children_refresh_s:
            return
        self._children_at = now
        try:
            children = [p.pid for p in self._root.children(recursive=True)]
        except psutil.Error:
            children = []
        tree = [self.pid, *children]
        for pid in set(self._tree) - set(tree):  # left the tree (reparented): stop reading it
            self._source.forget(pid)
        self._tree = tree

    def _read_tree(self, now: float) -> dict[int, tuple[float, float]]:
        """pid -> (CPU s, RSS bytes) for the live processes of the tree."""
        self._refresh_children(now)
        tree: dict[int, tuple[float, float]] = {}
        for pid in list(self._tree):
            try:
                tree[pid] = self._source.process(pid)
            except psutil.Error:
                self._tree.remove(pid)
                self._source.forget(pid)
        return tree


def _read_text(path: Path) -> str:
    try:
        return path.read_text().strip()
    except OSError:
        return ""
