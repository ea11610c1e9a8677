"""Atomic, deterministic file output: write to a temporary file beside the target, then rename.

An interrupted write (an exception, a kill, a power cut) never leaves a partial target: the data
is fsynced before the rename, so the target is the old file or the complete new one. The
temporary file that a killed process leaves behind (``.<name>.<pid>.<random>.tmp``) is removed
at the next write of the same target.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import tempfile
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pandas as pd

# what follows the target's name in a temporary file's name: ``<pid>.<random>`` (mkstemp's random
# part is [a-z0-9_]); without the pid, from versions that did not record it
_TMP_NAME = re.compile(r"(?:(\d+)\.)?[a-z0-9_]+")
_writing: set[Path] = set()  # temporary files of this process's writes in progress
_writing_lock = threading.Lock()


@contextmanager
def atomic_path(target: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary path next to ``target``; on success fsync it and rename it onto
    ``target``.

    Parent folders are created. If the body raises, the temporary file is removed and the
    previous ``target`` (if any) is left untouched. Temporary files that earlier, interrupted
    writes of ``target`` left behind are removed first: those of processes that no longer run
    (told apart by pid, so the writers of one target should share a machine) and this
    process's own that no write in progress uses.
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    with _writing_lock:
        _remove_stale_temporaries(target)
        fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.{os.getpid()}.", suffix=".tmp",
                                   dir=target.parent)
        tmp_path = Path(tmp)
        _writing.add(tmp_path)
    try:
        os.close(fd)
        umask = os.umask(0)
        os.umask(umask)
        tmp_path.chmod(0o666 & ~umask)  # mkstemp makes 0600; outputs should follow the umask
        yield tmp_path
        _fsync(tmp_path)
        os.replace(tmp_path, target)
    finally:
        with _writing_lock:
            _writing.discard(tmp_path)
        tmp_path.unlink(missing_ok=True)


def _remove_stale_temporaries(target: Path) -> None:
    """Remove the temporary files of interrupted writes of ``target`` (caller holds
    ``_writing_lock``)."""
    prefix, suffix = f".{target.name}.", ".tmp"
    for name in os.listdir(target.parent):
        if not (name.startswith(prefix) and name.endswith(suffix)):
            continue
        match = _TMP_NAME.fullmatch(name[len(prefix):-len(suffix)])
        path = target.parent / name
        if match is None or path in _writing:
            continue
        pid = int(match.group(1) or 0)
        if pid and pid != os.getpid() and _process_runs(pid):
            continue  # another process's write in progress
        with contextlib.suppress(FileNotFoundError):
            path.unlink()


def _process_runs(pid: int) -> bool:
    """Whether process ``pid`` exists. Windows cannot be asked without side effects: yes."""
    if os.name == "nt":
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by another user
        return True
    except (OverflowError, ValueError):  # not a pid
        return False
    return True


def _fsync(path: Path) -> None:
    """Flush ``path``'s data to the disk."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_atomic(target: str | os.PathLike[str], writer: Callable[[Path], Any]) -> Path:
    """Call ``writer(tmp_path)`` and atomically move the result onto ``target``."""
    with atomic_path(target) as tmp:
        writer(tmp)
    return Path(target)


def write_parquet(df: pd.DataFrame, target: str | os.PathLike[str]) -> Path:
    """Write ``df`` as Parquet atomically, byte-identical on rerun (no index, no pandas metadata
    that carries run-specific state)."""
    return write_atomic(
        target, lambda p: df.to_parquet(p, index=False, engine="pyarrow", compression="zstd")
    )


def write_csv(df: pd.DataFrame, target: str | os.PathLike[str]) -> Path:
    """Write ``df`` as CSV atomically (no index)."""
    return write_atomic(target, lambda p: df.to_csv(p, index=False))


def write_json(obj: Any, target: str | os.PathLike[str]) -> Path:
    """Write ``obj`` as sorted, indented JSON atomically."""

    def _dump(p: Path) -> None:
        p.write_text(json.dumps(obj, indent=2, sort_keys=True, default=str) + "\n")

    return write_atomic(target, _dump)


def write_text(text: str, target: str | os.PathLike[str]) -> Path:
    """Write ``text`` atomically."""
    return write_atomic(target, lambda p: p.write_text(text))
