"""helpers.marks: a no-op without a profiler, and every call's message arrives at the profiler's
receiver (helpers.collect.marks_server) with the event, epoch, fields and sender's rank; phase
marks of other local ranks are counted, not recorded; a profiler that is gone costs a dropped
message and one warning, never an exception."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from helpers import marks
from helpers.collect.marks_server import MarksReceiver, route

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def clean_env(monkeypatch):
    """No profiler, no ranks; the module's socket is closed and forgotten afterwards."""
    for name in (marks.ENV_VAR, "RANK", "LOCAL_RANK"):
        monkeypatch.delenv(name, raising=False)
    yield monkeypatch
    if marks._state["sock"] is not None:
        marks._state["sock"].close()
    marks._state.update(address=None, sock=None, rank=None, local_rank=None)


@pytest.fixture
def receiver(clean_env):
    """A started receiver whose handlers append to ``.got``; stopped at the end."""
    got: list[tuple] = []
    rx = MarksReceiver(on_event=lambda *a: got.append(("event", *a)),
                       on_metadata=lambda fields: got.append(("metadata", fields)))
    rx.got = got
    rx.start()
    rx.start_dispatch()
    clean_env.setenv(marks.ENV_VAR, rx.address)
    yield rx
    rx.stop()


def test_without_a_profiler_every_call_is_a_no_op(clean_env):
    before = (marks.dropped(), marks._state["address"])
    assert not marks.active()
    marks.epoch_start(0)
    marks.eval_start(0)
    marks.eval_end(0, loss=1.0)
    marks.epoch_end(0, val_accuracy=0.9)
    marks.mark("anything", epoch=3, x=1)
    marks.metadata(params=1)
    assert (marks.dropped(), marks._state["address"]) == before


def test_importing_marks_loads_nothing_heavy():
    code = ("import sys, helpers.marks\n"
            "print(sorted(m for m in sys.modules if m.split('.')[0] in "
            "('socket', 'json', 'torch', 'psutil', 'pynvml', 'numpy') "
            "or m.startswith('helpers.collect')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         cwd=ROOT, check=True).stdout
    assert out.strip() == "[]"


def test_messages_round_trip_to_the_receiver(receiver):
    assert marks.active()
    marks.metadata(params=11_000, gflops_per_image=np.float64(0.5), status="ok")
    marks.epoch_start(0)
    marks.eval_start(0)
    marks.eval_end(0, val_loss=0.25)
    marks.epoch_end(0, val_accuracy=np.float32(0.5), val_f1=0.4)
    marks.mark("checkpoint", epoch=0, path="ckpt-0.pt")
    receiver.stop()
    assert receiver.got == [
        ("metadata", {"params": 11_000, "gflops_per_image": 0.5}),
        ("event", "epoch_start", 0, {}),
        ("event", "eval_start", 0, {}),
        ("event", "eval_end", 0, {"val_loss": 0.25}),
        ("event", "epoch_end", 0, {"val_accuracy": 0.5, "val_f1": 0.4}),
        ("event", "checkpoint", 0, {"path": "ckpt-0.pt"}),
    ]
    report = receiver.report()
    assert report["counts"] == {"received": 6, "recorded events": 5, "recorded metadata": 1}
    assert report["refused_metadata_keys"] == ["status"]
    assert report["by_rank"] == {"none": 6}
    assert 0 <= report["delay_s"]["median"] <= report["delay_s"]["max"] < 5.0
    assert marks.dropped() == 0


def test_phase_marks_of_other_local_ranks_are_counted_not_recorded(receiver, clean_env):
    clean_env.setenv("RANK", "3")
    clean_env.setenv("LOCAL_RANK", "1")
    marks._connect(receiver.address)  # ranks are read when the address is first used
    marks.epoch_start(0)
    marks.metadata(params=1)
    marks.mark("rank_note", value=2)
    receiver.stop()
    assert receiver.got == [("event", "rank_note", None, {"value": 2, "rank": 3})]
    assert receiver.report()["counts"]["other rank"] == 2
    assert receiver.report()["by_rank"] == {"3": 3}


def test_a_message_carries_time_pid_and_ranks():
    before = time.monotonic()
    message = json.loads(marks.encode("event", "epoch_end", 2, {"val_f1": 0.5}))
    assert message["v"] == marks.MESSAGE_VERSION
    assert (message["kind"], message["name"], message["epoch"]) == ("event", "epoch_end", 2)
    assert before <= message["mono"] <= time.monotonic()
    assert abs(message["wall"] - time.time()) < 5
    assert route({**message, "local_rank": 0}) == "event"
    assert route({**message, "local_rank": 1}) == "other rank"
    assert route({**message, "epoch": "2"}) == "malformed: epoch"
    assert route({**message, "kind": "other"}).startswith("malformed")


def test_a_gone_profiler_drops_and_counts_with_one_warning(clean_env, tmp_path):
    clean_env.setenv(marks.ENV_VAR, str(tmp_path / "nobody.sock"))
    first = marks.dropped()
    warned = marks._warned
    marks._warned = False
    try:
        with pytest.warns(RuntimeWarning, match="could not reach the profiler"):
            marks.epoch_start(0)
        marks.epoch_end(0)
    finally:
        marks._warned = warned
    assert marks.dropped() == first + 2


def test_bad_mark_names_are_refused(clean_env):
    with pytest.raises(ValueError, match="non-empty"):
        marks.mark("  ")
