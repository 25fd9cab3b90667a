"""Group commit: callers queued behind a running group go together, each with its own result."""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence

import pytest

from service.db.group import GroupCommit


class Recorder:
    """A ``run`` that records its groups and can hold the first one until released."""

    def __init__(self, hold_first: bool = False) -> None:
        self.groups: list[list[int]] = []
        self.release = threading.Event()
        self.started = threading.Event()
        self.hold_first = hold_first

    def __call__(self, items: Sequence[int]) -> list[int | BaseException]:
        self.groups.append(list(items))
        if self.hold_first and len(self.groups) == 1:
            self.started.set()
            assert self.release.wait(10)
        return [ValueError(f"odd {i}") if i % 2 else i * 10 for i in items]


def _submit_all(
    gc: GroupCommit[int, int], run: Recorder, items: list[int]
) -> dict[int, int | BaseException]:
    out: dict[int, int | BaseException] = {}

    def call(i: int) -> None:
        try:
            out[i] = gc.submit(i, run)
        except BaseException as exc:
            out[i] = exc

    first = threading.Thread(target=call, args=(items[0],))
    first.start()
    assert run.started.wait(10)
    rest = [threading.Thread(target=call, args=(i,)) for i in items[1:]]
    for t in rest:
        t.start()
    deadline = time.monotonic() + 10
    while len(gc._queue) < len(rest) and time.monotonic() < deadline:
        time.sleep(0.005)
    run.release.set()
    for t in [first, *rest]:
        t.join(10)
    return out


def test_callers_queued_behind_a_group_go_together_with_their_own_results() -> None:
    gc: GroupCommit[int, int] = GroupCommit()
    run = Recorder(hold_first=True)
    out = _submit_all(gc, run, [0, *range(1, 9)])
    assert run.groups[0] == [0]
    assert sorted(run.groups[1]) == list(range(1, 9))  # all eight in one group
    assert len(run.groups) == 2
    for i in range(9):
        result = out[i]
        if i % 2:
            assert isinstance(result, ValueError) and str(result) == f"odd {i}"
        else:
            assert result == i * 10


def test_a_group_is_at_most_max_group_and_nobody_is_left_behind() -> None:
    gc: GroupCommit[int, int] = GroupCommit(max_group=3)
    run = Recorder(hold_first=True)
    out = _submit_all(gc, run, [0, 2, 4, 6, 8, 10, 12, 14])
    assert all(len(g) <= 3 for g in run.groups)
    assert sorted(i for g in run.groups for i in g) == [0, 2, 4, 6, 8, 10, 12, 14]
    assert out == {i: i * 10 for i in range(0, 16, 2)}


def test_an_error_of_run_itself_reaches_every_caller_of_its_group_only() -> None:
    gc: GroupCommit[int, int] = GroupCommit()
    calls: list[list[int]] = []

    def run(items: Sequence[int]) -> list[int | BaseException]:
        calls.append(list(items))
        if 3 in items:
            raise RuntimeError("the group's transaction failed")
        return [i for i in items]

    with pytest.raises(RuntimeError, match="transaction failed"):
        gc.submit(3, run)
    assert gc.submit(4, run) == 4  # the next group is not affected
    assert calls == [[3], [4]]


def test_a_run_that_returns_the_wrong_number_of_results_fails_its_callers() -> None:
    gc: GroupCommit[int, int] = GroupCommit()
    with pytest.raises(RuntimeError, match="a group of 1 got 0 results"):
        gc.submit(1, lambda items: [])


def test_an_idle_caller_runs_alone_at_once() -> None:
    gc: GroupCommit[int, int] = GroupCommit()
    run = Recorder()
    assert [gc.submit(i, run) for i in (0, 2, 4)] == [0, 20, 40]
    assert run.groups == [[0], [2], [4]]


def test_a_leader_waits_for_the_callers_the_previous_group_just_answered() -> None:
    """A group ends with callers queued behind it: its own callers are about to call again
    (a client answered sends its next request), so the next leader waits, briefly, for as
    many as were waiting in all, and they go in one group instead of alternating halves."""
    gc: GroupCommit[int, int] = GroupCommit(linger_s=0.5)
    run = Recorder(hold_first=True)
    out: dict[int, int | BaseException] = {}

    def call(i: int, again: int | None = None) -> None:
        out[i] = gc.submit(i, run)
        if again is not None:
            time.sleep(0.02)  # the client's own work before its next request
            out[again] = gc.submit(again, run)

    first = threading.Thread(target=call, args=(0, 100))
    first.start()
    assert run.started.wait(10)
    time.sleep(0.2)  # the first group takes a while: the linger may be as long
    rest = [threading.Thread(target=call, args=(i,)) for i in (2, 4, 6)]
    for t in rest:
        t.start()
    deadline = time.monotonic() + 10
    while len(gc._queue) < 3 and time.monotonic() < deadline:
        time.sleep(0.005)
    run.release.set()
    for t in [first, *rest]:
        t.join(10)
    assert run.groups[0] == [0]
    assert sorted(run.groups[1]) == [2, 4, 6, 100], run.groups
    assert out == {0: 0, 2: 20, 4: 40, 6: 60, 100: 1000}
