"""Phase marks from inside any training process, for the profiler that runs it.

``python -m helpers profile -- python train.py`` (:mod:`helpers.collect.profile`) samples the
job's GPUs and CPU from its own process; the training script only says where it is::

    from helpers import marks

    marks.metadata(params=n_params, images_per_epoch=len(train_set))
    for epoch in range(epochs):
        marks.epoch_start(epoch)
        train_one_epoch()
        marks.eval_start(epoch)
        accuracy, f1 = evaluate()
        marks.epoch_end(epoch, val_accuracy=accuracy, val_f1=f1)

Each call sends one datagram to the profiler, which records the event in ``events.csv`` with an
*edge sample* taken when it receives it (docs/raw-format.md). Without a profiler (the variable
:data:`ENV_VAR` unset) every call returns at once and does nothing, so the calls can stay in the
script. A call costs a few microseconds (``benchmarks/bench_profile_overhead.py``) and never
raises for a missing profiler: a message the profiler cannot take (it has exited) is dropped and
counted (:func:`dropped`), with one warning. The profiler collects the messages every 50 ms, so a
call never has to wake it (which would cost more than the call); where more messages come within
those 50 ms than the kernel queues for it (``net.unix.max_dgram_qlen``, often 10), a call waits
for room, at most :data:`SEND_TIMEOUT_S`, and is dropped after that.

Time stamps: each message carries the sender's ``time.monotonic()`` (CLOCK_MONOTONIC, one clock
for all processes of a Linux machine) and wall clock, its process id and its ``RANK`` and
``LOCAL_RANK`` (set by ``torchrun``). The profiler records phase events and metadata from local
rank 0 (or a process without a rank) only and counts the others; see docs/own-training.md.

Only the standard library is imported, nothing at import time but ``os`` and ``time``.
"""

from __future__ import annotations

import os
import time
from typing import Any

#: Environment variable through which the profiler tells its command where to send marks (the
#: path of its AF_UNIX datagram socket). Set by the profiler in the command's environment.
ENV_VAR = "HELPERS_PROFILE_MARKS"
#: Version of the message layout (a JSON object, see :func:`encode`).
MESSAGE_VERSION = 1
#: Longest wait (s) for room in the profiler's queue before a message is dropped.
SEND_TIMEOUT_S = 0.1

_state: dict[str, Any] = {"address": None, "sock": None, "json": None, "rank": None,
                          "local_rank": None}
_dropped = 0
_warned = False


def active() -> bool:
    """Whether a profiler receives the marks of this process (:data:`ENV_VAR` is set)."""
    return bool(os.environ.get(ENV_VAR))


def epoch_start(epoch: int) -> None:
    """A training epoch begins (``epoch`` counts from 0)."""
    _send("event", "epoch_start", epoch, {})


def epoch_end(epoch: int, **metrics: float) -> None:
    """A training epoch ends; ``metrics`` go to the event's ``info`` (the analysis reads
    ``val_accuracy`` and ``val_f1``, fractions 0-1)."""
    _send("event", "epoch_end", epoch, metrics)


def eval_start(epoch: int | None = None) -> None:
    """Evaluation begins (of ``epoch``, where given)."""
    _send("event", "eval_start", epoch, {})


def eval_end(epoch: int | None = None, **metrics: float) -> None:
    """Evaluation ends; recorded as the event ``eval_end`` (a free name: the pipeline's eval
    phase ends at the next ``*_end`` event) with ``metrics`` in its ``info``."""
    _send("event", "eval_end", epoch, metrics)


def mark(name: str, epoch: int | None = None, **fields: Any) -> None:
    """Any event ``name`` (a phase event of docs/raw-format.md or a free name), with ``fields``
    (JSON values) in its ``info``."""
    if not isinstance(name, str) or not name.strip():
        raise ValueError(f"mark name must be non-empty text, got {name!r}")
    _send("event", name, epoch, fields)


def metadata(**fields: Any) -> None:
    """Run-level facts for ``metadata.json``, merged into it by the profiler. Keys the analysis
    reads (docs/raw-format.md#keys-the-analysis-reads): ``params``, ``gflops_per_image``,
    ``images_per_epoch``, ``train_size``, ``val_size``, ``batch_size``, ``input_size_px``,
    ``epochs_trained``, ``epochs_planned``, ``accuracy``, ``f1`` (fractions 0-1), ``dataset``,
    ``device``, ``seed``; other keys are kept."""
    _send("metadata", "metadata", None, fields)


def dropped() -> int:
    """Messages of this process that could not be delivered (no receiver, queue full, too
    large)."""
    return _dropped


def encode(kind: str, name: str, epoch: int | None, fields: dict[str, Any]) -> bytes:
    """One message as UTF-8 JSON: ``v`` (:data:`MESSAGE_VERSION`), ``kind`` (``event`` or
    ``metadata``), ``name``, ``epoch`` (int or null), ``fields``, ``mono`` (sender's
    ``time.monotonic()``, s), ``wall`` (sender's ``time.time()``, s), ``pid``, ``rank`` and
    ``local_rank`` (ints from ``RANK``/``LOCAL_RANK``, null where unset)."""
    json = _state["json"]
    if json is None:
        import json

        _state["json"] = json
    message = {"v": MESSAGE_VERSION, "kind": kind, "name": name,
               "epoch": None if epoch is None else int(epoch), "fields": fields,
               "mono": time.monotonic(), "wall": time.time(), "pid": os.getpid(),
               "rank": _state["rank"], "local_rank": _state["local_rank"]}
    return json.dumps(message, separators=(",", ":"), default=_plain).encode("utf-8")


def _plain(value: Any) -> Any:
    """JSON fallback: numpy/torch scalars as numbers, anything else as its text."""
    item = getattr(value, "item", None)
    if callable(item) and getattr(value, "ndim", 0) == 0:
        return item()
    return str(value)


def _send(kind: str, name: str, epoch: int | None, fields: dict[str, Any]) -> None:
    address = os.environ.get(ENV_VAR)
    if not address:
        return
    try:
        if address != _state["address"]:
            _connect(address)
        _state["sock"].send(encode(kind, name, epoch, fields))
    except OSError as err:  # receiver gone, its queue full for too long, message too large
        _drop(address, err)


def _connect(address: str) -> None:
    """A datagram socket connected to ``address`` (raises ``OSError`` where nobody listens
    there; the next call tries again), and this process's ranks."""
    import socket

    if _state["sock"] is not None:
        _state["sock"].close()
    _state.update(address=None, sock=None, rank=_env_int("RANK"),
                  local_rank=_env_int("LOCAL_RANK"))
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.settimeout(SEND_TIMEOUT_S)
    try:
        sock.connect(address)
    except OSError:
        sock.close()
        raise
    _state.update(address=address, sock=sock)


def _env_int(name: str) -> int | None:
    value = os.environ.get(name, "").strip()
    return int(value) if value.lstrip("-").isdigit() else None


def _drop(address: str, err: OSError) -> None:
    global _dropped, _warned
    _dropped += 1
    if not _warned:
        _warned = True
        import warnings

        warnings.warn(f"helpers.marks: a mark could not reach the profiler at {address} "
                      f"({type(err).__name__}: {err}); undelivered marks are dropped and counted "
                      "(helpers.marks.dropped())", RuntimeWarning, stacklevel=4)
