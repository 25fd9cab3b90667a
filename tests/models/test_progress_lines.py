"""Plain progress lines: one at the start and end of each task, one per interval between."""

from __future__ import annotations

import itertools
import re

from models.progress_lines import LineProgress, duration, progress_line


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_a_line_at_start_every_interval_and_at_the_end() -> None:
    clock = FakeClock()
    lines: list[str] = []
    stamped: list[float] = []

    def emit(line: str) -> None:
        lines.append(line)
        stamped.append(clock.now)

    progress = LineProgress(emit, interval_s=5.0, clock=clock)
    with progress.task("shard 0 sequence (0, 1)", 600, unit="examples") as advance:
        for _ in range(60):  # 10 examples a second for 60 s
            clock.now += 1.0
            advance(10)
    assert lines[0] == "shard 0 sequence (0, 1): started, 600 examples"
    assert lines[-1] == "shard 0 sequence (0, 1): done, 600 examples in 1 min 00 s"
    middle = lines[1:-1]
    assert len(middle) == 12, lines  # t = 5, 10, ..., 60
    gaps = [b - a for a, b in itertools.pairwise(stamped[:-1])]
    assert all(g == 5.0 for g in gaps), gaps  # at least, and at most, one per interval
    head = "shard 0 sequence (0, 1): "
    assert middle[0] == head + "50/600 examples (8%), 10 examples/s, ETA 55 s"
    assert re.fullmatch(r".*: 600/600 examples \(100%\), 10 examples/s, ETA 0 s", middle[-1])


def test_no_line_between_intervals() -> None:
    clock = FakeClock()
    lines: list[str] = []
    progress = LineProgress(lines.append, interval_s=30.0, clock=clock)
    with progress.task("caching shard 1", 1000, unit="records") as advance:
        for _ in range(29):
            clock.now += 1.0
            advance(1)
        assert len(lines) == 1  # only the start
        clock.now += 1.0
        advance(1)
        assert lines[-1] == "caching shard 1: 30/1,000 records (3%), 1.0 records/s, ETA 16 min 10 s"
    assert len(lines) == 3


def test_the_numbers_of_a_line() -> None:
    assert progress_line(1280, 5120, "examples", 6.0) == (
        "1,280/5,120 examples (25%), 213 examples/s, ETA 18 s"
    )
    assert progress_line(0, 5120, "examples", 0.0) == "0/5,120 examples (0%)"
    assert progress_line(3, 0, "steps", 1.0) == "3/0 steps, 3.0 steps/s, ETA 0 s"
    assert [duration(s) for s in (0.4, 42, 185, 7620)] == [
        "0 s",
        "42 s",
        "3 min 05 s",
        "2 h 07 min",
    ]
