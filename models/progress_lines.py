"""Progress as plain lines, for a log file or a worker's log where bars cannot draw.

Each task writes one line when it starts, at most one every ``interval_s`` while it
advances, and one when it ends:
``job 4 train model 1: shard 0 sequence (0, 1, 2): 1,280/5,120 examples (25%), 212
examples/s, ETA 18 s``.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from models.progress import Advance

INTERVAL_S = 10.0


class LineProgress:
    """``emit`` receives each line (``print`` to stderr, a logger's ``info``); ``clock``
    is a monotonic clock in seconds (a fake one in tests)."""

    def __init__(
        self,
        emit: Callable[[str], None],
        *,
        interval_s: float = INTERVAL_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.emit, self.interval_s, self.clock = emit, interval_s, clock

    def __enter__(self) -> LineProgress:
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    @contextmanager
    def task(self, description: str, total: int, *, unit: str = "items") -> Iterator[Advance]:
        start = last = self.clock()
        done = 0
        self.emit(f"{description}: started, {total:,} {unit}")

        def advance(n: int) -> None:
            nonlocal done, last
            done += n
            now = self.clock()
            if now - last >= self.interval_s:
                last = now
                self.emit(f"{description}: {progress_line(done, total, unit, now - start)}")

        yield advance
        elapsed = self.clock() - start
        self.emit(f"{description}: done, {done:,} {unit} in {duration(elapsed)}")


def progress_line(done: int, total: int, unit: str, elapsed_s: float) -> str:
    """``1,280/5,120 examples (25%), 212 examples/s, ETA 18 s``."""
    share = f" ({100 * done // total}%)" if total > 0 else ""
    text = f"{done:,}/{total:,} {unit}{share}"
    if elapsed_s <= 0 or done <= 0:
        return text
    rate = done / elapsed_s
    shown = f"{rate:,.1f}" if rate < 10 else f"{rate:,.0f}"
    eta = duration(max(total - done, 0) / rate)
    return f"{text}, {shown} {unit}/s, ETA {eta}"


def duration(seconds: float) -> str:
    """``42 s``, ``3 min 05 s``, ``2 h 07 min``."""
    s = round(seconds)
    if s < 60:
        return f"{s} s"
    if s < 3600:
        return f"{s // 60} min {s % 60:02d} s"
    return f"{s // 3600} h {s % 3600 // 60:02d} min"
