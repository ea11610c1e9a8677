"""Fixtures shared by the collect tests: a running marks receiver (``received``) that records
what the code under test sends through :mod:`helpers.marks`."""

from __future__ import annotations

import pytest

from helpers import marks
from helpers.collect.marks_server import MarksReceiver


class Received:
    """What a profiler's marks receiver got: events ``(name, epoch, info)`` and metadata."""

    def __init__(self) -> None:
        self.events: list[tuple[str, int | None, dict]] = []
        self.metadata: dict = {}
        self.receiver = MarksReceiver(lambda n, e, i: self.events.append((n, e, i)),
                                      self.metadata.update)
        self.stopped = False

    def stop(self) -> None:
        """Stop the receiver (once): every mark sent so far is then handled."""
        if not self.stopped:
            self.stopped = True
            self.receiver.stop()

    def names(self) -> list[tuple[str, int | None]]:
        return [(name, epoch) for name, epoch, _ in self.events]

    def info(self, name: str) -> list[dict]:
        return [info for n, _, info in self.events if n == name]


@pytest.fixture
def received(monkeypatch):
    got = Received()
    got.receiver.start()
    got.receiver.start_dispatch()
    monkeypatch.setenv(marks.ENV_VAR, got.receiver.address)
    yield got
    got.stop()
