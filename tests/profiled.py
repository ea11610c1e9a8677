"""Running ``python -m helpers profile`` from the tests: the command line (output and GPU locks
under the test's folder), the child's environment (no enclosing profiler, this checkout on
PYTHONPATH) and the one run folder it wrote."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from helpers import marks
from helpers.readers.project import discover_runs

ROOT = Path(__file__).resolve().parents[1]


def profiler(tmp_path: Path, *args: str) -> list[str]:
    """The profiler's command line, writing under ``tmp_path`` with its own lock folder."""
    return [sys.executable, "-m", "helpers", "profile", "--raw-root", str(tmp_path / "raw"),
            "--lock-dir", str(tmp_path / "locks"), "--environment", "test", *args]


def child_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != marks.ENV_VAR}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    return env


def run_profiler(tmp_path: Path, *args: str, timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run(profiler(tmp_path, *args), capture_output=True, text=True,
                          env=child_env(), cwd=tmp_path, timeout=timeout, check=False)


def only_run(tmp_path: Path) -> Path:
    (run_dir,) = discover_runs(tmp_path / "raw")
    return run_dir
