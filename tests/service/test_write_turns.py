"""SQLite writers of one process take turns in arrival order, so a writer that has waited
long is never overtaken by newcomers (SQLite's own busy handler retries with sleeps and
grants the lock to whoever retries first); writers of different processes take the turn
through a lock file, and wake when it is free."""

from __future__ import annotations

import fcntl
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

from sqlalchemy import text

from service.db.engine import Database, TurnQueue

ROOT = Path(__file__).resolve().parents[2]


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


WRITER = """
import sys, time
from sqlalchemy import text
from service.db.engine import Database
db = Database.from_url(sys.argv[1])
print("ready", flush=True)
with db.write() as s:
    s.execute(text("INSERT INTO t VALUES (1)"))
print(time.time(), flush=True)
"""


def test_a_writer_in_another_process_waits_for_the_turn_and_goes_at_once(
    tmp_path: Path,
) -> None:
    """The turn is a ``flock`` on ``unlearn.db.lock``: held here (as a writer of another
    process holds it), a writer of this process cannot begin, even though SQLite itself is not
    locked; released, it goes at once instead of sleeping in SQLite's busy handler."""
    path = tmp_path / "unlearn.db"
    db = Database.from_url(f"sqlite:///{path}")
    with db.write() as s:
        s.execute(text("CREATE TABLE t (n INTEGER)"))
    lock = os.open(tmp_path / "unlearn.db.lock", os.O_RDWR)
    fcntl.flock(lock, fcntl.LOCK_EX)
    child = subprocess.Popen(
        [sys.executable, "-c", WRITER, f"sqlite:///{path}"],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert child.stdout is not None
        assert child.stdout.readline().strip() == "ready"
        time.sleep(1.0)
        assert child.poll() is None, "the writer went while another process had the turn"
        with db.read() as s:
            assert s.scalar(text("SELECT count(*) FROM t")) == 0
        released = time.time()
        fcntl.flock(lock, fcntl.LOCK_UN)
        committed = float(child.stdout.readline())
        assert child.wait(30) == 0
    finally:
        os.close(lock)
        child.kill()
        child.wait(30)
        if child.stdout is not None:
            child.stdout.close()
    assert committed - released < 0.5
    with db.read() as s:
        assert s.scalar(text("SELECT count(*) FROM t")) == 1
    db.dispose()


def test_a_forked_child_takes_its_own_turn(tmp_path: Path) -> None:
    """A child forked after the parent opened its lock file opens its own: the two never
    hold one lock between them."""
    db = Database.from_url(f"sqlite:///{tmp_path / 'unlearn.db'}")
    with db.write() as s:
        s.execute(text("CREATE TABLE t (n INTEGER)"))
    read_end, write_end = os.pipe()
    with db.write():
        pid = os.fork()
        if pid == 0:  # the child: its turn must wait for the parent's
            os.close(read_end)
            try:
                turns = db._turns
                assert turns is not None and turns._fd is not None
                other = os.open(tmp_path / "unlearn.db.lock", os.O_RDWR)
                try:
                    fcntl.flock(other, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    verdict = b"free"  # the parent's lock is not held: a bug
                except BlockingIOError:
                    verdict = b"held"
                turns._owner, turns._depth = None, 0  # as a fresh process would be
                started = time.monotonic()
                with turns.turn():
                    pass
                waited = time.monotonic() - started
                os.write(write_end, verdict + (b" waited" if waited > 0.3 else b" went"))
            finally:
                os._exit(0)
        os.close(write_end)
        time.sleep(0.6)  # the child tries its turn meanwhile
    verdict = os.read(read_end, 64)
    os.waitpid(pid, 0)
    os.close(read_end)
    assert verdict == b"held waited"
    db.dispose()
