"""helpers.core.io: atomic writes never leave a partial target, and leftovers are cleaned."""

from __future__ import annotations

import os
import signal
import stat
import threading
from pathlib import Path

import pandas as pd
import pytest

from helpers.core import io as atomic_io
from helpers.core.io import atomic_path, write_csv, write_json, write_parquet, write_text


def temporaries(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.endswith(".tmp"))


def test_writes_leave_the_target_only_and_follow_the_umask(tmp_path):
    df = pd.DataFrame({"a": [1, 2], "b": ["x", "y"]})
    write_parquet(df, tmp_path / "t.parquet")
    write_csv(df, tmp_path / "sub" / "t.csv")
    write_json({"b": 1, "a": [1.5]}, tmp_path / "t.json")
    write_text("hello\n", tmp_path / "t.txt")
    pd.testing.assert_frame_equal(pd.read_parquet(tmp_path / "t.parquet"), df)
    assert (tmp_path / "sub" / "t.csv").read_text() == "a,b\n1,x\n2,y\n"
    assert (tmp_path / "t.json").read_text() == '{\n  "a": [\n    1.5\n  ],\n  "b": 1\n}\n'
    assert temporaries(tmp_path) == [] and temporaries(tmp_path / "sub") == []
    umask = os.umask(0)
    os.umask(umask)
    assert stat.S_IMODE((tmp_path / "t.txt").stat().st_mode) == 0o666 & ~umask


def test_data_is_fsynced_before_the_rename(tmp_path, monkeypatch):
    calls = []
    real_fsync, real_replace = atomic_io._fsync, os.replace
    monkeypatch.setattr(atomic_io, "_fsync", lambda p: (calls.append("fsync"), real_fsync(p)))
    monkeypatch.setattr(os, "replace", lambda a, b: (calls.append("replace"), real_replace(a, b)))
    write_text("x", tmp_path / "t.txt")
    assert calls == ["fsync", "replace"]


def test_exception_mid_write_keeps_the_old_target(tmp_path):
    target = tmp_path / "t.txt"
    write_text("old\n", target)

    def half_then_fail(p: Path) -> None:
        p.write_text("partial, no newline")
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        atomic_io.write_atomic(target, half_then_fail)
    assert target.read_text() == "old\n" and temporaries(tmp_path) == []


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_killed_write_leaves_old_target_and_next_write_cleans_up(tmp_path):
    target = tmp_path / "t.txt"
    write_text("old\n", target)
    pid = os.fork()
    if pid == 0:  # child: killed in the middle of writing
        try:
            with atomic_path(target) as tmp:
                tmp.write_text("partial")
                os.kill(os.getpid(), signal.SIGKILL)
        finally:
            os._exit(1)
    _, status = os.waitpid(pid, 0)
    assert os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGKILL
    assert target.read_text() == "old\n"
    (leftover,) = temporaries(tmp_path)
    assert leftover.startswith(f".t.txt.{pid}.") and (tmp_path / leftover).read_text() == "partial"
    write_text("new\n", target)
    assert target.read_text() == "new\n" and temporaries(tmp_path) == []


def test_cleanup_spares_writes_in_progress_and_other_targets(tmp_path):
    target = tmp_path / "t.csv"
    alive = os.getppid()  # a running process other than this one
    kept = [f".t.csv.{alive}.abc_1234.tmp",  # another process's write in progress
            ".t.csv.gz.99999999.abcdefgh.tmp",  # another target's
            ".t.csv.notes"]  # not a temporary file
    stale = [f".t.csv.{os.getpid()}.zzzzzzzz.tmp",  # this process's, no write in progress
             ".t.csv.4194999.abcdefgh.tmp",  # a pid that does not run (above pid_max)
             ".t.csv.k3j_9x2q.tmp"]  # an older version's, without pid
    for name in kept + stale:
        (tmp_path / name).write_text("x")
    with atomic_path(target) as tmp:
        tmp.write_text("a\n")
        inner = tmp_path / "t.csv.bak"
        write_text("b\n", inner)  # another target while this write is in progress
        assert tmp.exists()
        write_text("c\n", target)  # same target, nested: the outer temporary file is spared
        assert tmp.exists()
    assert target.read_text() == "a\n"
    left = sorted(p.name for p in tmp_path.iterdir())
    assert left == sorted(kept + ["t.csv", "t.csv.bak"])


def test_threads_writing_one_target_all_succeed(tmp_path):
    target = tmp_path / "t.txt"
    contents = [f"writer {i}\n" * 200 for i in range(8)]
    errors = []

    def writer(text: str) -> None:
        try:
            for _ in range(20):
                write_text(text, target)
        except Exception as err:  # pragma: no cover - the assertion below reports it
            errors.append(err)

    threads = [threading.Thread(target=writer, args=(c,)) for c in contents]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert errors == []
    assert target.read_text() in contents and temporaries(tmp_path) == []
