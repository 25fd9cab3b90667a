"""Group commit: callers that arrive while a group is being written wait and go together.

Every deletion takes the audit chain's lock, so accepts are serial however many threads the
API runs; one accept's SQL is mostly fixed cost (transaction, chain head, the model's cut and
jobs), which a group pays once. :class:`GroupCommit` lets the first caller that finds no
group running lead: it takes everything queued (up to ``max_group``), runs it with one call
of the leader's ``run`` and hands each caller its own result, or its own exception. A caller
that arrives meanwhile queues for the next group. Under load the next leader waits (at most
``linger_s``, and no longer than the previous group took) until as many callers are queued as
there were when the previous group ended, its own and those queued behind it: the callers it
just answered are about to call again. Without that wait 16 clients settled into two
alternating groups of 8, each paying the fixed cost; an idle service runs each call alone
at once.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Generic, TypeVar

T = TypeVar("T")
R = TypeVar("R")

Run = Callable[[Sequence[T]], Sequence["R | BaseException"]]


@dataclass
class _Slot(Generic[T, R]):
    item: T
    done: bool = False
    result: R | None = None
    error: BaseException | None = None


@dataclass
class GroupCommit(Generic[T, R]):
    """``submit(item, run)``: ``run`` gets a group of items and returns, in order, each one's
    result or the exception to raise in its caller; an exception ``run`` raises itself is
    raised in every caller of that group."""

    max_group: int = 64
    linger_s: float = 0.1
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    _queue: list[_Slot[T, R]] = field(default_factory=list, repr=False)
    _leading: bool = field(default=False, repr=False)
    _last: int = field(default=0, repr=False)
    _took: float = field(default=0.0, repr=False)

    def __post_init__(self) -> None:
        self._done = threading.Condition(self._lock)  # followers wait for their group
        self._arrived = threading.Condition(self._lock)  # a lingering leader waits for them

    def submit(self, item: T, run: Run[T, R]) -> R:
        slot: _Slot[T, R] = _Slot(item)
        with self._lock:
            self._queue.append(slot)
            self._arrived.notify()
        return self._wait_or_lead(slot, run)

    def _wait_or_lead(self, slot: _Slot[T, R], run: Run[T, R]) -> R:
        with self._lock:
            while not slot.done and self._leading:
                self._done.wait()
            if slot.done:
                return self._outcome(slot)
            self._leading = True
            self._linger()
            group, self._queue = self._queue[: self.max_group], self._queue[self.max_group :]
        started = time.monotonic()
        try:
            self._run(group, run)
        finally:
            with self._lock:
                self._leading = False
                self._last = min(len(group) + len(self._queue), self.max_group)
                self._took = time.monotonic() - started
                self._done.notify_all()
        return self._outcome(slot) if slot.done else self._wait_or_lead(slot, run)

    def _linger(self) -> None:
        """Under load (the previous group had company), wait for as many callers as were
        waiting when it ended (its own and those queued behind it), up to ``linger_s`` and no
        longer than it took: those it just answered are about to call again, and a group pays
        its fixed cost once. An idle service never waits."""
        if self._last <= 1:
            return
        deadline = time.monotonic() + min(self.linger_s, self._took)
        while len(self._queue) < min(self._last, self.max_group):
            left = deadline - time.monotonic()
            if left <= 0:
                return
            self._arrived.wait(left)

    @staticmethod
    def _run(group: list[_Slot[T, R]], run: Run[T, R]) -> None:
        try:
            results = list(run([s.item for s in group]))
            if len(results) != len(group):
                raise RuntimeError(f"a group of {len(group)} got {len(results)} results")
        except BaseException as exc:
            results = [exc] * len(group)
        for slot, result in zip(group, results, strict=True):
            if isinstance(result, BaseException):
                slot.error = result
            else:
                slot.result = result
            slot.done = True

    @staticmethod
    def _outcome(slot: _Slot[T, R]) -> R:
        if slot.error is not None:
            raise slot.error
        return slot.result  # type: ignore[return-value]
