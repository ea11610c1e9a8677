"""One profiler per GPU on a node: advisory locks on lock files named by GPU UUID.

``python -m helpers profile`` (:mod:`helpers.collect.profile`) holds an exclusive ``flock`` on
``<lock_dir>/<uuid>.lock`` for every GPU it samples, for as long as it runs. A second profiler
of any of those GPUs on the same node (for example one started per ``torchrun`` rank, which
would count each GPU once per rank) is refused with :class:`DevicesBusy`, which names the GPU and
the process holding it. The kernel releases the locks when the holder exits, however it exits,
so a crashed profiler never leaves a GPU locked. The lock files themselves stay (empty of
meaning once unlocked).
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import re
import tempfile
from pathlib import Path

#: Environment variable overriding the lock folder (default ``<tmp>/helpers-profile-locks``).
LOCK_DIR_ENV = "HELPERS_PROFILE_LOCK_DIR"
_UNSAFE = re.compile(r"[^A-Za-z0-9_.-]")


class DevicesBusy(RuntimeError):
    """A GPU is already held by another profiler on this node."""


def default_lock_dir() -> Path:
    """:data:`LOCK_DIR_ENV`, else ``helpers-profile-locks`` in the system's temporary folder
    (shared by every user of the node)."""
    return Path(os.environ.get(LOCK_DIR_ENV) or Path(tempfile.gettempdir())
                / "helpers-profile-locks")


class DeviceLock:
    """Exclusive locks on a set of GPUs (by UUID), taken all or none."""

    def __init__(self, uuids: list[str], lock_dir: Path | None = None) -> None:
        self.uuids = list(uuids)
        self.lock_dir = Path(lock_dir) if lock_dir is not None else default_lock_dir()
        self._fds: list[int] = []

    def acquire(self, holder: str) -> None:
        """Lock every GPU or none; ``holder`` (e.g. ``'pid 123: python train.py'``) is written
        into each lock file for the refusal message of a later profiler. Raises
        :class:`DevicesBusy` naming the first GPU held elsewhere."""
        if not self.uuids:
            return
        _make_shared_dir(self.lock_dir)
        try:
            for uuid in self.uuids:
                path = self.lock_dir / f"{_UNSAFE.sub('_', uuid)}.lock"
                fd = _open_lock_file(path)
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    other = _read_holder(fd)
                    os.close(fd)
                    raise DevicesBusy(
                        f"GPU {uuid} is already being profiled on this node ({other}); profile "
                        "a job once, from outside: wrap torchrun (or the launcher), not each "
                        f"rank (lock file {path})") from None
                self._fds.append(fd)
                _write_holder(fd, holder)
        except BaseException:
            self.release()
            raise

    def release(self) -> None:
        """Unlock and close (idempotent)."""
        for fd in self._fds:
            with contextlib.suppress(OSError):
                fcntl.flock(fd, fcntl.LOCK_UN)
            with contextlib.suppress(OSError):
                os.close(fd)
        self._fds = []

    def __enter__(self) -> DeviceLock:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


def _make_shared_dir(path: Path) -> None:
    """Create the lock folder writable by every user (sticky, like /tmp) where it is new."""
    if path.is_dir():
        return
    path.mkdir(parents=True, exist_ok=True)
    with contextlib.suppress(OSError):  # another user's folder: leave its mode alone
        os.chmod(path, 0o1777)


def _open_lock_file(path: Path) -> int:
    """Open (create) a lock file; read-only where another user owns it (flock works on it)."""
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o666)
    except PermissionError:
        return os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    with contextlib.suppress(OSError):
        os.fchmod(fd, 0o666)
    return fd


def _write_holder(fd: int, holder: str) -> None:
    with contextlib.suppress(OSError):  # a read-only lock file: no holder text
        os.ftruncate(fd, 0)
        os.pwrite(fd, holder.encode("utf-8", "replace")[:4000], 0)


def _read_holder(fd: int) -> str:
    try:
        text = os.pread(fd, 4000, 0).decode("utf-8", "replace").strip()
    except OSError:
        text = ""
    return f"held by {text}" if text else "held by another process"
