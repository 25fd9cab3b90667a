"""Engines and sessions for SQLite (embedded) and PostgreSQL (production).

Write transactions on SQLite start with ``BEGIN IMMEDIATE`` so two writers queue on the
database lock instead of failing when a read upgrades to a write. Writers of one process
also take turns in arrival order (:class:`TurnQueue`) before they begin: SQLite's busy
handler retries with sleeps of up to 100 ms, so under load a writer that has waited long
keeps losing to newcomers (p99 5.8 s against a p50 of 0.24 s with 16 clients). Between
processes (several API processes, workers, CLI commands) the turn is an exclusive ``flock``
on a lock file beside the database (``unlearn.db.lock``): a writer blocked on it wakes the
moment the holder ends its transaction instead of sleeping in the busy handler, which stays
as the fallback for writers that do not take turns. On PostgreSQL writers serialise on row
locks (``SELECT ... FOR UPDATE`` on the models they touch).
"""

from __future__ import annotations

import fcntl
import os
import threading
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker

SQLITE_BUSY_MS = 30_000
# Connections kept open per engine. The API runs each call's DB work in a thread of a pool of
# up to 40; with SQLAlchemy's default of 5 kept (10 more opened and closed per use), a busy
# API opened a connection for most calls: 7% of its CPU on SQLite, far more on PostgreSQL
# (a server process per connection).
POOL_SIZE = 16
MAX_OVERFLOW = 24


def private_sqlite_files(path: Path) -> None:
    """The database file, created readable by its owner only (SQLite gives its WAL and shm
    files the database file's mode); files left looser by an older version are tightened."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    os.close(os.open(path, os.O_RDWR | os.O_CREAT, 0o600))
    for f in (path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")):
        try:
            if f.stat().st_mode & 0o077:
                f.chmod(0o600)
        except FileNotFoundError:
            pass


def make_engine(url: str) -> Engine:
    """An engine whose logs and errors never show bound parameters (hashes, payloads)."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite":
        return create_engine(
            url,
            pool_pre_ping=True,
            hide_parameters=True,
            pool_size=POOL_SIZE,
            max_overflow=MAX_OVERFLOW,
        )
    if parsed.database and parsed.database != ":memory:":
        private_sqlite_files(Path(parsed.database))
    engine = create_engine(
        url,
        connect_args={"check_same_thread": False, "timeout": 30},
        hide_parameters=True,
        pool_size=POOL_SIZE,
        max_overflow=MAX_OVERFLOW,
    )

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.isolation_level = None  # we emit BEGIN ourselves (below)
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA foreign_keys=ON")
        cur.execute("PRAGMA journal_mode=WAL")
        # Deleted content (destroyed data keys, nulled payloads) is overwritten, not left in
        # free pages.
        cur.execute("PRAGMA secure_delete=ON")
        cur.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_MS}")
        cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Any) -> None:
        immediate = conn.get_execution_options().get("sqlite_immediate", False)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")

    return engine


class TurnQueue:
    """A lock granted in arrival order; a thread that holds it may take it again. With a
    ``lock_file``, the outermost turn also holds an exclusive ``flock`` on it, so turns are
    exclusive between processes too (in no set order across processes)."""

    def __init__(self, lock_file: Path | None = None) -> None:
        self._cond = threading.Condition()
        self._waiting: deque[int] = deque()
        self._owner: int | None = None
        self._depth = 0
        self._lock_file = lock_file
        self._fd: int | None = None
        self._fd_pid = 0

    @contextmanager
    def turn(self) -> Iterator[None]:
        me = threading.get_ident()
        with self._cond:
            if self._owner != me:
                self._waiting.append(me)
                while self._owner is not None or self._waiting[0] != me:
                    self._cond.wait()
                self._waiting.popleft()
                self._owner = me
            self._depth += 1
            outermost = self._depth == 1
        try:
            if outermost:
                self._flock(fcntl.LOCK_EX)
            yield
        finally:
            with self._cond:
                self._depth -= 1
                if self._depth == 0:
                    self._flock(fcntl.LOCK_UN)
                    self._owner = None
                    self._cond.notify_all()

    def _flock(self, operation: int) -> None:
        """``flock`` the lock file (blocking; other threads run meanwhile). The file is
        opened once per process: a forked child must not share its parent's open file, whose
        lock the two would hold as one."""
        if self._lock_file is None:
            return
        if self._fd is None or self._fd_pid != os.getpid():
            if operation == fcntl.LOCK_UN:
                return  # never locked in this process
            self._fd = os.open(self._lock_file, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
            self._fd_pid = os.getpid()
        fcntl.flock(self._fd, operation)


@dataclass
class Database:
    """One engine and two session factories: plain (reads) and writer."""

    engine: Engine

    def __post_init__(self) -> None:
        self._read = sessionmaker(self.engine, expire_on_commit=False)
        writer = self.engine.execution_options(sqlite_immediate=True)
        self._write = sessionmaker(writer, expire_on_commit=False)
        snap = self.engine
        if self.engine.dialect.name == "postgresql":
            snap = self.engine.execution_options(isolation_level="REPEATABLE READ")
        self._snapshot = sessionmaker(snap, expire_on_commit=False)
        self._before_dispose: list[Callable[[], None]] = []
        self._turns = None
        if self.engine.dialect.name == "sqlite":
            name = self.engine.url.database
            file_db = bool(name) and name != ":memory:" and not str(name).startswith("file:")
            self._turns = TurnQueue(Path(f"{name}.lock") if file_db else None)

    @classmethod
    def from_url(cls, url: str) -> Database:
        return cls(make_engine(url))

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    @contextmanager
    def read(self) -> Iterator[Session]:
        with self._read() as session:
            yield session

    @contextmanager
    def snapshot(self) -> Iterator[Session]:
        """A read-only transaction whose queries all see one consistent state (WAL snapshot
        on SQLite, REPEATABLE READ on PostgreSQL)."""
        with self._snapshot() as session, session.begin():
            yield session

    @contextmanager
    def write(self) -> Iterator[Session]:
        """A transaction that commits on success and rolls back on any error."""
        if self._turns is None:
            with self._write() as session, session.begin():
                yield session
            return
        with self._turns.turn(), self._write() as session, session.begin():
            yield session

    def extend_sessions(
        self, info: dict[str, Any], before_commit: Callable[[Session], None]
    ) -> None:
        """Put ``info`` into every new session's ``Session.info`` and call ``before_commit``
        inside each transaction just before it commits (the audit chain's signing hook)."""
        for maker in (self._read, self._write, self._snapshot):
            maker.configure(info={**maker.kw.get("info", {}), **info})
            event.listen(maker, "before_commit", before_commit)

    def on_dispose(self, hook: Callable[[], None]) -> None:
        """Call ``hook`` whenever :meth:`dispose` runs, before the engine closes."""
        self._before_dispose.append(hook)

    def dispose(self) -> None:
        for hook in list(self._before_dispose):
            hook()
        self.engine.dispose()
