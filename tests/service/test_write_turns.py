"""SQLite writers of one process take turns in arrival order, so a writer that has waited
long is never overtaken by newcomers (SQLite's own busy handler retries with sleeps and
grants the lock to whoever retries first)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path

from sqlalchemy import text

from service.db.engine import Database, TurnQueue


def _wait_for(predicate: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.005)


def test_turns_are_granted_in_arrival_order() -> None:
    turns = TurnQueue()
    order: list[int] = []
    release = threading.Event()

    def holder() -> None:
        with turns.turn():
            release.wait()

    def writer(n: int) -> None:
        with turns.turn():
            order.append(n)

    first = threading.Thread(target=holder)
    first.start()
    _wait_for(lambda: turns._owner is not None)
    threads = []
    for n in range(6):
        t = threading.Thread(target=writer, args=(n,))
        t.start()
        threads.append(t)
        _wait_for(lambda: len(turns._waiting) == len(threads))  # queued before the next
    release.set()
    for t in [first, *threads]:
        t.join(10)
    assert order == list(range(6))


def test_a_thread_may_take_its_turn_again() -> None:
    turns = TurnQueue()
    with turns.turn(), turns.turn():
        pass
    done = threading.Event()

    def other() -> None:
        with turns.turn():
            done.set()

    t = threading.Thread(target=other)
    t.start()
    t.join(10)
    assert done.is_set(), "the turn was released after the nested exit"


def test_sqlite_writers_queue_and_all_commit(tmp_path: Path) -> None:
    db = Database.from_url(f"sqlite:///{tmp_path / 'turns.db'}")
    with db.write() as s:
        s.execute(text("CREATE TABLE t (n INTEGER)"))

    def writer(n: int) -> None:
        for i in range(20):
            with db.write() as s:
                s.execute(text("INSERT INTO t VALUES (:n)"), {"n": n * 100 + i})

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    with db.read() as s:
        assert s.scalar(text("SELECT count(*) FROM t")) == 160
    db.dispose()
