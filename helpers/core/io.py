"""Atomic, deterministic file output: write to a temporary file beside the target, then rename."""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pandas as pd


@contextmanager
def atomic_path(target: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary path next to ``target``; on success rename it onto ``target``.

    Parent folders are created. If the body raises, the temporary file is removed and the
    previous ``target`` (if any) is left untouched.
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    umask = os.umask(0)
    os.umask(umask)
    tmp_path.chmod(0o666 & ~umask)  # mkstemp makes 0600; outputs should follow the umask
    try:
        yield tmp_path
        os.replace(tmp_path, target)
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


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
