"""The scrub after erasures: the first of a burst at once, the rest together a moment later."""

from __future__ import annotations

import threading
import time

import pytest

from service.erasure import scrub as scrub_module
from service.erasure.scrub import Scrubber


class FakeDatabase:
    """What the scrubber uses of a ``Database`` besides the ``scrub`` it is given."""

    def __init__(self) -> None:
        self.hooks: list[object] = []

    def on_dispose(self, hook: object) -> None:
        self.hooks.append(hook)

    def dispose(self) -> None:
        for hook in self.hooks:
            hook()  # type: ignore[operator]


def test_a_burst_is_scrubbed_at_once_then_together_once_more(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    calls: list[float] = []
    done = threading.Event()

    def fake(db: object, tables: tuple[str, ...] = ("data_keys",)) -> bool:
        calls.append(time.monotonic())
        if len(calls) == 2:
            done.set()
        return True

    monkeypatch.setattr(scrub_module, "scrub", fake)
    scrubber = Scrubber(db=FakeDatabase(), interval_s=0.2)  # type: ignore[arg-type]
    start = time.monotonic()
    scrubber.soon()
    assert len(calls) == 1  # the first erasure: at once
    for _ in range(5):
        scrubber.soon()  # the rest of the burst: one trailing scrub
    assert len(calls) == 1
    assert done.wait(5)
    time.sleep(0.3)
    assert len(calls) == 2
    assert calls[1] - start >= 0.2
    scrubber.soon()  # a quiet moment later: at once again
    assert len(calls) == 3


def test_a_pending_scrub_runs_when_the_database_is_disposed_and_not_after(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Disposing the engine first runs the scrub a timer still waits for: a timer firing
    after it would open a connection nobody closes."""
    calls: list[float] = []
    monkeypatch.setattr(scrub_module, "scrub", lambda db, tables=(): calls.append(1) or True)
    db = FakeDatabase()
    scrubber = Scrubber(db=db, interval_s=0.5)  # type: ignore[arg-type]
    scrubber.soon()
    scrubber.soon()  # pending, on a timer
    assert len(calls) == 1 and len(db.hooks) == 1
    db.dispose()
    assert len(calls) == 2, "the pending scrub ran at dispose"
    time.sleep(0.7)
    assert len(calls) == 2, "and its timer did not run it again"
    db.dispose()  # nothing pending: nothing runs
    assert len(calls) == 2
