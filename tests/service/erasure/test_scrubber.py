"""The scrub after erasures: the first of a burst at once, the rest together a moment later."""

from __future__ import annotations

import threading
import time

import pytest

from service.erasure import scrub as scrub_module
from service.erasure.scrub import Scrubber


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
    scrubber = Scrubber(db=object(), interval_s=0.2)  # type: ignore[arg-type]
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
