"""``python -m helpers profile [options] -- <command …>``: measure any training command.

The profiler runs the command as a child process and, from its own process, samples the GPUs the
job uses and the CPU/RAM of the command's process tree with
:class:`helpers.collect.sampler.Sampler`, writing one run folder in the raw format
(docs/raw-format.md) that notebooks 02-06 read. The command may send phase marks with
:mod:`helpers.marks` (the profiler passes its address in ``HELPERS_PROFILE_MARKS``); each becomes
an event with an edge sample. docs/own-training.md is the user's guide.

Order of a run:

1. Refusals, before anything is started or written: a profiler around the profiler (the marks
   variable is set already), a command that is not found (exit 127, as a shell) or not
   executable (126), GPUs that another profiler on this node holds (exit 125;
   :mod:`helpers.collect.device_lock`).
2. The GPUs: those visible through ``CUDA_VISIBLE_DEVICES`` (all without it) are locked and
   sampled. Where NVML lists the processes on each GPU, the profiler looks for the command's
   process tree there every 2 s, and at the end leaves out the GPUs the job never used (their
   rows are removed from ``samples.csv``; ``metadata.profile.gpu_selection`` says which and
   why). Where the list is unreadable or never shows the job (a container's PID namespace), every
   visible GPU stays.
3. The command starts behind a gate (a small Python process waits on a pipe, then ``exec``\\ s
   the command, keeping its process id): the sampler starts on that process id and marks
   ``run_start``; then the gate opens, so the run covers the command from its first instruction.
4. SIGINT, SIGTERM, SIGHUP, SIGUSR1 and SIGUSR2 sent to the profiler are forwarded to the
   command, except those the terminal sent (Ctrl-C), which the command received itself.
5. When the command ends: the marks still queued are recorded, ``run_end`` is marked, and the
   profiler exits with the command's exit code (128 + N when a signal N killed it). The status
   is ``ok`` for exit code 0, else ``failed: ...`` (cleaning removes such runs).
6. A summary on stderr: duration, energy per GPU and total, CPU (process tree) and RAM, in J and
   kWh with the method of each figure, and CO2e at ``--intensity`` g/kWh. The figures come from
   the run folder through the same functions as the analysis (docs/methods.md#energy), over the
   whole run; they are stored in ``metadata.profile.energy``.

``--fake-gpus N`` replaces NVML by the test double :class:`FakeNvmlBackend` with N scripted GPUs
(:func:`fake_gpu_curve`): for tests and demonstrations without a GPU; its figures are not
measurements.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import io
import math
import os
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from helpers.collect.device_lock import DeviceLock, DevicesBusy
from helpers.collect.devices.fake_nvml import FakeNvmlBackend, sine_power
from helpers.collect.devices.gpu import GpuBackend, GpuInfo
from helpers.collect.marks_server import MarksReceiver, child_environment
from helpers.core.raw_format import METADATA_FILE, SAMPLES_FILE
from helpers.core.units import DEFAULT_CARBON_INTENSITY_G_PER_KWH
from helpers.marks import ENV_VAR

#: Exit code when the profiler refuses or fails (the command did not run, or its run folder
#: could not be written), as ``env`` and container runtimes use it.
EXIT_PROFILER = 125
#: Exit codes of a command that is not executable / not found, as a shell gives them.
EXIT_NOT_EXECUTABLE = 126
EXIT_NOT_FOUND = 127
#: Signals forwarded to the command.
FORWARDED_SIGNALS: tuple[signal.Signals, ...] = (
    signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGUSR1, signal.SIGUSR2)
#: Default output root, relative to the project root: the dataset ``profiled``
#: (``make figures DATASETS=profiled``).
DEFAULT_RAW_ROOT = Path("data_inputs") / "profiled" / "raw"
#: How often the job's processes are looked up in NVML's per-GPU process lists (s).
GPU_PROCESS_POLL_S = 2.0
_LABEL = re.compile(r"[^A-Za-z0-9_.+-]+")
_SI_KERNEL = 0x80  # siginfo si_code of a signal the kernel sent (a terminal's Ctrl-C)
#: The gate: a Python process that waits for one byte on a pipe, then ``exec``\ s the command in
#: its place (same process id), with the signal dispositions Python changed put back.
_GATE = """import os, signal, sys
fd = int(sys.argv[1])
go = os.read(fd, 1)
os.close(fd)
if not go:
    sys.exit(%d)
for name in ("SIGPIPE", "SIGXFSZ"):
    if hasattr(signal, name):
        signal.signal(getattr(signal, name), signal.SIG_DFL)
try:
    os.execv(sys.argv[2], sys.argv[2:])
except OSError as err:
    print(f"helpers profile: {sys.argv[2]}: {err.strerror}", file=sys.stderr)
    sys.exit(%d if isinstance(err, FileNotFoundError) else %d)
"""


def fake_gpu_curve(index: int) -> tuple[Callable[[float], float], Callable[[float], float]]:
    """Scripted power of fake GPU ``index`` (``--fake-gpus``): ``(power_w(t), energy_j(t))`` with
    t in s since the backend started, power ``150 + 100 index + 50 sin(2 pi t / (4 + index))``
    W and its exact integral (J): a different curve per GPU, so a GPU counted twice or missed
    shows in the total."""
    return sine_power(base_w=150.0 + 100.0 * index, amp_w=50.0, period_s=4.0 + index)


@dataclass(frozen=True)
class Options:
    """Parsed command line (see :func:`build_parser` for the meaning of each)."""

    command: list[str]
    raw_root: Path
    environment: str
    architecture: str
    run: int | None
    run_dir: Path | None
    dataset: str | None
    interval_s: float
    cpu_tdp_w: float | None
    intensity_g_per_kwh: float
    fake_gpus: int
    lock_dir: Path | None
    quiet: bool


def build_parser() -> argparse.ArgumentParser:
    """The options of ``python -m helpers profile``."""
    p = argparse.ArgumentParser(
        prog="python -m helpers profile",
        usage="%(prog)s [options] -- command [args ...]",
        description="Run a training command, measure its GPUs, CPU and RAM, and write a run "
                    "folder in the raw format (docs/own-training.md).")
    p.add_argument("--raw-root", type=Path, default=None,
                   help="output root; the run goes to <raw-root>/<environment>/<architecture>/"
                        "<run:03d> (default: data_inputs/profiled/raw of the project)")
    p.add_argument("--environment", default=None,
                   help="environment label (default: this machine's host name)")
    p.add_argument("--architecture", default=None,
                   help="architecture label (default: the script or program name)")
    p.add_argument("--run", type=int, default=None,
                   help="run number (default: the next free one)")
    p.add_argument("--run-dir", type=Path, default=None,
                   help="write to this folder instead (must not hold a run)")
    p.add_argument("--dataset", default=None, help="data set trained on (metadata 'dataset')")
    p.add_argument("--interval-s", type=float, default=0.1,
                   help="sampling interval in s (default 0.1 = 10 Hz)")
    p.add_argument("--cpu-tdp-w", type=float, default=None,
                   help="CPU package TDP in W for the CPU power estimate "
                        "(default 12 W per physical core)")
    p.add_argument("--intensity", dest="intensity_g_per_kwh", type=float,
                   default=DEFAULT_CARBON_INTENSITY_G_PER_KWH,
                   help="carbon intensity in g CO2e/kWh for the summary "
                        f"(default {DEFAULT_CARBON_INTENSITY_G_PER_KWH:g})")
    p.add_argument("--fake-gpus", type=int, default=0, metavar="N",
                   help="TEST DOUBLE: sample N scripted fake GPUs instead of NVML "
                        "(for tests without a GPU; not a measurement)")
    p.add_argument("--lock-dir", type=Path, default=None,
                   help="folder of the per-GPU lock files (default: $HELPERS_PROFILE_LOCK_DIR "
                        "or <tmp>/helpers-profile-locks)")
    p.add_argument("--quiet", action="store_true", help="no summary on stderr")
    return p


def parse_args(argv: list[str]) -> Options:
    """Options and the command (after ``--``, or from the first argument that is not an
    option). Raises ``SystemExit`` (code 2) on a usage error, including a missing command."""
    parser = build_parser()
    if "--" in argv:
        cut = argv.index("--")
        ns, command = parser.parse_args(argv[:cut]), argv[cut + 1:]
    else:
        parser.add_argument("command", nargs=argparse.REMAINDER)
        ns = parser.parse_args(argv)
        command = ns.command
    if not command:
        parser.error("no command to profile: python -m helpers profile [options] -- command ...")
    if ns.interval_s <= 0 or ns.fake_gpus < 0 or (ns.run is not None and ns.run < 0):
        parser.error("--interval-s must be > 0, --fake-gpus and --run >= 0")
    if ns.run is not None and ns.run_dir is not None:
        parser.error("give --run or --run-dir, not both")
    from helpers.core.datasets import project_root

    return Options(
        command=list(command),
        raw_root=ns.raw_root if ns.raw_root is not None else project_root() / DEFAULT_RAW_ROOT,
        environment=label(ns.environment or socket.gethostname(), "environment"),
        architecture=label(ns.architecture or command_label(command), "architecture"),
        run=ns.run, run_dir=ns.run_dir, dataset=ns.dataset, interval_s=ns.interval_s,
        cpu_tdp_w=ns.cpu_tdp_w, intensity_g_per_kwh=ns.intensity_g_per_kwh,
        fake_gpus=ns.fake_gpus, lock_dir=ns.lock_dir, quiet=ns.quiet)


def label(text: str, what: str) -> str:
    """A folder-safe label: runs of characters other than letters, digits and ``_.+-`` become
    ``-``. Raises ``SystemExit`` when nothing is left."""
    out = _LABEL.sub("-", text.split(".")[0] if what == "environment" else text).strip("-.")
    if not out:
        raise SystemExit(f"helpers profile: {what} label {text!r} has no usable characters")
    return out


def command_label(command: list[str]) -> str:
    """Default architecture label: the first ``*.py`` argument's stem, else the module after
    ``-m``, else the program name."""
    for i, arg in enumerate(command):
        if arg.endswith(".py"):
            return Path(arg).stem
        if arg == "-m" and i + 1 < len(command):
            return command[i + 1].rsplit(".", 1)[-1]
    return Path(command[0]).name


def resolve_program(program: str) -> tuple[str | None, int, str]:
    """``(path, 0, '')`` of the program to run, or ``(None, exit code, message)`` where it is not
    found (127) or not executable (126), as a shell says it."""
    if "/" in program:
        path = Path(program)
        if not path.exists():
            return None, EXIT_NOT_FOUND, f"{program}: No such file or directory"
        if path.is_dir() or not os.access(path, os.X_OK):
            return None, EXIT_NOT_EXECUTABLE, f"{program}: Permission denied"
        return program, 0, ""
    found = shutil.which(program)
    if found is None:
        return None, EXIT_NOT_FOUND, f"{program}: command not found"
    return found, 0, ""


# -- entry point ----------------------------------------------------------------------------
def main(argv: list[str]) -> int:
    """Run ``python -m helpers profile``; returns the exit code (the command's, or a refusal's)."""
    try:
        opts = parse_args(argv)
    except SystemExit as stop:
        return stop.code if isinstance(stop.code, int) else _fail(str(stop.code), 2)
    if os.environ.get(ENV_VAR):
        return _fail(f"refusing to profile: this process runs under a profiler already "
                     f"({ENV_VAR} is set); profile the job once, from outside (under torchrun: "
                     "wrap torchrun, not each rank)")
    program, code, why = resolve_program(opts.command[0])
    if program is None:
        return _fail(why, code)
    backend = make_backend(opts.fake_gpus)
    backend.init()
    gpus = backend.devices()
    lock = DeviceLock([g.uuid for g in gpus], opts.lock_dir)
    try:
        lock.acquire(f"pid {os.getpid()} on {socket.gethostname()}: {shlex.join(opts.command)}")
    except DevicesBusy as err:
        backend.shutdown()
        return _fail(f"refusing to profile: {err}")
    try:
        run_dir = claim_run_dir(opts)
    except (OSError, ValueError) as err:
        lock.release()
        backend.shutdown()
        return _fail(f"cannot create the run folder: {err}")
    try:
        return _profile(opts, [program, *opts.command[1:]], backend, gpus, run_dir)
    finally:
        lock.release()


def _fail(message: str, code: int = EXIT_PROFILER) -> int:
    print(f"helpers profile: {message}", file=sys.stderr, flush=True)
    return code


def make_backend(fake_gpus: int) -> GpuBackend:
    """NVML, or ``fake_gpus`` scripted GPUs (:func:`fake_gpu_curve`)."""
    if fake_gpus:
        return FakeNvmlBackend(n_gpus=fake_gpus,
                               gpu_power=[fake_gpu_curve(i) for i in range(fake_gpus)])
    from helpers.collect.devices.nvml import NvmlBackend

    return NvmlBackend()


def claim_run_dir(opts: Options) -> Path:
    """Create the run folder: ``--run-dir`` (may exist, but must not hold a run), or
    ``<raw_root>/<environment>/<architecture>/<run:03d>`` with ``--run`` or the next free
    number (created exclusively, so two profilers never share one)."""
    if opts.run_dir is not None:
        opts.run_dir.mkdir(parents=True, exist_ok=True)
        if (opts.run_dir / SAMPLES_FILE).exists():
            raise ValueError(f"{opts.run_dir} holds a run already (a run folder holds one run)")
        return opts.run_dir
    parent = opts.raw_root / opts.environment / opts.architecture
    parent.mkdir(parents=True, exist_ok=True)
    if opts.run is not None:
        run_dir = parent / f"{opts.run:03d}"
        run_dir.mkdir()  # FileExistsError: that run exists
        return run_dir
    taken = [int(p.name) for p in parent.iterdir() if p.name.isdigit()]
    number = max(taken, default=-1) + 1
    while True:
        run_dir = parent / f"{number:03d}"
        try:
            run_dir.mkdir()
            return run_dir
        except FileExistsError:
            number += 1


class _Started:
    """A backend that :func:`main` has initialised already (the sampler's ``init`` is a no-op)."""

    def __init__(self, backend: GpuBackend) -> None:
        self._backend = backend

    def init(self) -> None:
        """Already done."""

    def __getattr__(self, name: str) -> Any:
        return getattr(self._backend, name)


# -- one profiled run -----------------------------------------------------------------------
def _profile(opts: Options, command: list[str], backend: GpuBackend, gpus: list[GpuInfo],
             run_dir: Path) -> int:
    from helpers.collect.sampler import Sampler

    holder: dict[str, Sampler] = {}
    receiver = MarksReceiver(
        on_event=lambda name, epoch, info: holder["sampler"].mark(name, epoch, **info),
        on_metadata=lambda fields: holder["sampler"].update_metadata(**fields))
    gate_r, gate_w = os.pipe()
    script = _GATE % (EXIT_PROFILER, EXIT_NOT_FOUND, EXIT_NOT_EXECUTABLE)
    try:
        proc = subprocess.Popen([sys.executable, "-I", "-S", "-c", script, str(gate_r), *command],
                                pass_fds=(gate_r,), env=child_environment(receiver.address))
    except OSError as err:
        os.close(gate_w)
        receiver.stop()
        return _fail(f"cannot start the command: {type(err).__name__}: {err}")
    finally:
        os.close(gate_r)
    blocked = {*FORWARDED_SIGNALS, signal.SIGCHLD}
    old_mask = signal.pthread_sigmask(signal.SIG_BLOCK, blocked)  # threads below inherit it
    forwarded: list[str] = []
    try:
        sampler = Sampler(run_dir, interval_s=opts.interval_s, gpu_backend=_Started(backend),
                          pid=proc.pid, cpu_tdp_w=opts.cpu_tdp_w, handle_sigterm=False,
                          metadata=_initial_metadata(opts, backend))
        try:
            sampler.start()
        except Exception as err:  # the command has not begun (the gate is closed): end it
            proc.kill()
            proc.wait()
            receiver.stop()
            return _fail(f"cannot start sampling: {type(err).__name__}: {err}")
        holder["sampler"] = sampler
        watcher = _JobGpus(gpus, proc.pid, opts.fake_gpus > 0)
        receiver.start()
        receiver.start_dispatch()
        watcher.start()
        cpu0 = time.process_time()
        os.write(gate_w, b"go\n")
        os.close(gate_w)
        gate_w = -1
        return_code = _wait(proc, forwarded)
        profiler_cpu_s = time.process_time() - cpu0
        watcher.stop()
        receiver.stop()
        status = _status(return_code)
        sampler.update_metadata(profile={
            **_initial_metadata(opts, backend)["profile"], "signals_forwarded": forwarded,
            "marks": receiver.report(), "profiler_cpu_s": profiler_cpu_s})
        sampler.stop(status, return_code)
        selection = watcher.selection()
        if selection["left_out"]:
            leave_out_gpus(run_dir, selection["left_out"])
        try:
            figures = run_figures(run_dir, opts.intensity_g_per_kwh)
        except Exception as err:  # the run folder stays; only the summary is missing
            _update_profile(run_dir, gpu_selection=selection)
            _fail(f"no summary: {type(err).__name__}: {err} (run folder {run_dir})")
            return _exit_code(return_code)
        _update_profile(run_dir, gpu_selection=selection, energy=figures)
        if not opts.quiet:
            print(format_summary(opts.command, return_code, run_dir, figures, receiver.report(),
                                 selection), file=sys.stderr, flush=True)
        return _exit_code(return_code)
    finally:
        if gate_w >= 0:
            os.close(gate_w)
        _drain_signals(blocked)
        signal.pthread_sigmask(signal.SIG_SETMASK, old_mask)


def _initial_metadata(opts: Options, backend: GpuBackend) -> dict[str, Any]:
    profile: dict[str, Any] = {"command": list(opts.command), "tool": "python -m helpers profile"}
    if opts.fake_gpus:
        profile["fake_gpus"] = {
            "n": opts.fake_gpus,
            "note": "TEST DOUBLE: scripted GPUs (helpers.collect.profile.fake_gpu_curve), "
                    "not a measurement",
            "t0_monotonic_s": getattr(backend, "t0", None)}
    meta: dict[str, Any] = {"profile": profile, "device": "cuda" if backend.devices() else "cpu"}
    if opts.dataset is not None:
        meta["dataset"] = opts.dataset
    return meta


def _wait(proc: subprocess.Popen, forwarded: list[str]) -> int:
    """Wait for the command with the forwarded signals blocked, forwarding each one a process
    sent (a terminal's Ctrl-C reached the command itself); returns its return code."""
    waited = {*FORWARDED_SIGNALS, signal.SIGCHLD}
    while True:
        code = proc.poll()
        if code is not None:
            return code
        info = signal.sigtimedwait(waited, 1.0)
        if info is None or info.si_signo == signal.SIGCHLD:
            continue
        name = signal.Signals(info.si_signo).name
        if info.si_code == _SI_KERNEL:
            forwarded.append(f"{name} (from the terminal; not forwarded)")
            continue
        with contextlib.suppress(ProcessLookupError):
            proc.send_signal(info.si_signo)
        forwarded.append(name)


def _drain_signals(blocked: set[signal.Signals]) -> None:
    """Consume forwarded signals still pending, so that unblocking them does not interrupt the
    caller (they were meant for the command, which has ended)."""
    while signal.sigtimedwait(blocked, 0) is not None:
        pass


def _status(return_code: int) -> str:
    if return_code == 0:
        return "ok"
    if return_code < 0:
        return f"failed: killed by signal {_signal_name(-return_code)}"
    return f"failed: return code {return_code}"


def _signal_name(number: int) -> str:
    try:
        return signal.Signals(number).name
    except ValueError:
        return str(number)


def _exit_code(return_code: int) -> int:
    """The profiler's exit code: the command's, or 128 + N for a command killed by signal N."""
    return 128 - return_code if return_code < 0 else return_code


def _update_profile(run_dir: Path, **fields: Any) -> None:
    """Merge ``fields`` into ``metadata.profile`` (after the sampler has stopped)."""
    import json

    from helpers.core.io import write_json

    path = run_dir / METADATA_FILE
    meta = json.loads(path.read_text(encoding="utf-8"))
    meta.setdefault("profile", {}).update(fields)
    write_json(_finite(meta), path)


def _finite(obj: Any) -> Any:
    """NaN/inf -> None, recursively (strict JSON)."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {k: _finite(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_finite(v) for v in obj]
    return obj


# -- GPUs the job used -----------------------------------------------------------------------
class _JobGpus:
    """Looks for the command's process tree in NVML's per-GPU process lists every
    :data:`GPU_PROCESS_POLL_S` (a thread of its own; NVML is thread-safe). :meth:`selection`
    says which sampled GPUs the job never used, where that can be told."""

    def __init__(self, gpus: list[GpuInfo], pid: int, fake: bool) -> None:
        self.gpus = gpus
        self.pid = pid
        self.fake = fake
        self.seen: set[int] = set()  # run-local indices where a job process was listed
        self.reason = ""
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        if self.fake:
            self.reason = "fake GPUs have no process list"
        elif not self.gpus:
            self.reason = "no GPU sampled"
        else:
            self._thread = threading.Thread(target=self._loop, name="job-gpus", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10.0)

    def selection(self) -> dict[str, Any]:
        """``{'sampled': [...], 'used': [...], 'left_out': [...], 'reason': ...}`` (run-local
        GPU indices)."""
        sampled = [g.index for g in self.gpus]
        if self.seen:
            used = sorted(self.seen)
            reason = "GPUs where NVML listed a process of the job"
        else:
            used = sampled
            reason = ("every visible GPU kept: " + (self.reason or
                      "NVML never listed a process of the job (a container's PID namespace "
                      "hides them, or the job did not use a GPU)"))
        return {"sampled": sampled, "used": used,
                "left_out": [i for i in sampled if i not in used], "reason": reason}

    def _loop(self) -> None:
        import psutil
        import pynvml

        try:
            pynvml.nvmlInit()
        except Exception as err:
            self.reason = f"NVML process lists unreadable: {type(err).__name__}: {err}"
            return
        try:
            handles = {g.index: pynvml.nvmlDeviceGetHandleByUUID(g.uuid) for g in self.gpus}
            while True:
                try:
                    root = psutil.Process(self.pid)
                    tree = {self.pid, *(c.pid for c in root.children(recursive=True))}
                except psutil.Error:
                    tree = {self.pid}
                for index, handle in handles.items():
                    procs = [*pynvml.nvmlDeviceGetComputeRunningProcesses(handle),
                             *pynvml.nvmlDeviceGetGraphicsRunningProcesses(handle)]
                    if tree & {p.pid for p in procs}:
                        self.seen.add(index)
                if self._stop.wait(GPU_PROCESS_POLL_S):
                    return
        except Exception as err:  # keep every GPU rather than guess
            self.seen.clear()
            self.reason = f"NVML process lists unreadable: {type(err).__name__}: {err}"
        finally:
            with contextlib.suppress(Exception):
                pynvml.nvmlShutdown()


def leave_out_gpus(run_dir: Path, indices: list[int]) -> None:
    """Remove the rows of GPUs ``indices`` (run-local) from ``samples.csv`` and their entries
    from ``metadata.gpus`` (moved to ``metadata.profile.gpus_left_out``); the sampler's
    ``summary`` keeps its totals over every sampled GPU."""
    import json

    from helpers.core.io import write_json, write_text

    drop = {str(i) for i in indices}
    path = run_dir / SAMPLES_FILE
    rows = list(csv.reader(io.StringIO(path.read_text(encoding="utf-8"))))
    column = rows[0].index("gpu_index")
    kept = [rows[0], *(r for r in rows[1:] if r[column] not in drop)]
    text = io.StringIO()
    csv.writer(text, lineterminator="\n").writerows(kept)
    write_text(text.getvalue(), path)
    meta_path = run_dir / METADATA_FILE
    meta = json.loads(meta_path.read_text(encoding="utf-8"))
    gpus = meta.get("gpus") or []
    meta["gpus"] = [g for g in gpus if str(g.get("index")) not in drop]
    meta.setdefault("profile", {})["gpus_left_out"] = [
        g for g in gpus if str(g.get("index")) in drop]
    write_json(meta, meta_path)


# -- figures ---------------------------------------------------------------------------------
def run_figures(run_dir: Path, intensity_g_per_kwh: float) -> dict[str, Any]:
    """Energies (J) of the whole run from its folder, as the analysis computes them
    (docs/methods.md#energy): per GPU and all GPUs (NVML counter, else trapezoid), CPU of the
    command's process tree (RAPL, else TDP x process utilisation), RAM (process RSS model), their
    total and CO2e (g) at ``intensity_g_per_kwh``; each with its method."""
    from helpers.core import energy, rules
    from helpers.readers.project import read_run

    run = read_run(run_dir)
    s, meta = run.samples, run.metadata
    t = s["monotonic_s"].to_numpy(float)
    duration_s = float(t.max() - t.min()) if len(t) else math.nan
    gpu_rows = s[s["gpu_index"].notna()]
    per_gpu, series = [], []
    for index, g in gpu_rows.groupby("gpu_index"):
        one = (g["monotonic_s"].to_numpy(float), g["gpu_power_w"].to_numpy(float),
               g["gpu_energy_counter_j"].to_numpy(float))
        series.append(one)
        e_j, method, _ = energy.gpu_energy_j([one], "fewer than two power samples")
        per_gpu.append({"index": int(index), "name": str(g["gpu_name"].iloc[0]),
                        "energy_j": e_j, "method": method})
    if series:
        gpu_j, gpu_method, _ = energy.gpu_energy_j(series, "a GPU without two power samples")
    else:
        gpu_j, gpu_method = 0.0, rules.NO_GPU
    host = s.drop_duplicates("monotonic_s", keep="first")
    th = host["monotonic_s"].to_numpy(float)
    tdp_w = (meta.get("cpu_power") or {}).get("tdp_w") or math.nan
    cores = (meta.get("host") or {}).get("logical_cores") or math.nan
    cpu_w = rules.process_cpu_power_estimate_w(float(tdp_w), host["process_cpu_pct"].to_numpy(
        float), float(cores))
    cpu_j, cpu_method = energy.cpu_energy_j(
        th, host["cpu_energy_counter_j"].to_numpy(float), cpu_w,
        rules.process_cpu_estimate_method(float(tdp_w)), "no RAPL and no CPU power estimate")
    ram_j, ram_method = energy.ram_energy_j(th, host["process_rss_mb"].to_numpy(float),
                                            rules.PROCESS_RSS, "no process RSS samples")
    total_j = gpu_j + cpu_j + ram_j
    return {"window": "whole run (first to last sample)", "duration_s": duration_s,
            "gpus": per_gpu, "gpu_energy_j": gpu_j, "gpu_energy_method": gpu_method,
            "cpu_energy_j": cpu_j, "cpu_energy_method": cpu_method,
            "ram_energy_j": ram_j, "ram_energy_method": ram_method,
            "total_energy_j": total_j, "carbon_intensity_g_per_kwh": intensity_g_per_kwh,
            "co2e_g": float(energy.emissions_g(total_j, intensity_g_per_kwh)),
            "n_epochs_marked": int((run.events["event"] == "epoch_end").sum())}


def format_summary(command: list[str], return_code: int, run_dir: Path,
                   figures: dict[str, Any], marks_report: dict[str, Any],
                   selection: dict[str, Any]) -> str:
    """The summary printed at the end (stderr)."""
    from helpers.core import energy
    from helpers.core.datasets import relative_to_project

    how = (f"exited with code {return_code}" if return_code >= 0
           else f"was killed by {_signal_name(-return_code)}")
    lines = [f"helpers profile: {shlex.join(command)} {how} after "
             f"{figures['duration_s']:.1f} s",
             f"  run folder  {relative_to_project(run_dir)}"]

    def row(what: str, energy_j: float, method: str) -> None:
        kwh = energy.j_to_kwh(energy_j)
        lines.append(f"  {what:<28} {energy_j:>12.1f} J  {kwh:>11.6f} kWh  {method}")

    for g in figures["gpus"]:
        row(f"GPU {g['index']} ({g['name']})", g["energy_j"], g["method"])
    row("GPUs, total" if figures["gpus"] else "GPU", figures["gpu_energy_j"],
        figures["gpu_energy_method"])
    row("CPU (process tree)", figures["cpu_energy_j"], figures["cpu_energy_method"])
    row("RAM (process RSS)", figures["ram_energy_j"], figures["ram_energy_method"])
    row("total", figures["total_energy_j"], "sum of the above")
    lines.append(f"  {'CO2e':<28} {figures['co2e_g']:>12.3f} g at "
                 f"{figures['carbon_intensity_g_per_kwh']:g} g CO2e/kWh")
    if selection["left_out"]:
        lines.append(f"  GPUs left out (the job never used them): {selection['left_out']}")
    counts = marks_report["counts"]
    lines.append(f"  marks: {counts.get('recorded events', 0)} events recorded, "
                 f"{counts.get('other rank', 0)} phase marks of other ranks not recorded, "
                 f"{figures['n_epochs_marked']} epochs")
    return "\n".join(lines)
