"""After a transaction that destroyed data keys: push the deleted key rows out of the places
the database keeps old pages, as far as the database lets us.

- SQLite runs with ``secure_delete`` (deleted content is overwritten in the database file);
  a ``wal_checkpoint(TRUNCATE)`` then copies the WAL back and truncates it to zero bytes.
  It cannot finish while another connection reads an older snapshot, and it does not wait
  for one (it would stall every deletion behind the API's reads); it is run again after
  the next erasure or job.
- PostgreSQL: ``VACUUM FULL data_keys`` rewrites the key table without the dead rows (it
  holds the table's lock for the rewrite: milliseconds for thousands of keys). WAL segments,
  replicas and base backups keep their copies (wrapped by the key-encryption key) for as long
  as they are retained: that exposure is stated in the README.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field

from sqlalchemy import text

from service.db.engine import SQLITE_BUSY_MS, Database

log = logging.getLogger(__name__)


def scrub(db: Database, tables: tuple[str, ...] = ("data_keys",)) -> bool:
    """``True`` when the old copies are gone as far as this database can tell. On
    PostgreSQL ``tables`` are rewritten (``VACUUM FULL``: a plain VACUUM frees a dead row's
    slot but leaves its bytes in the page until a live row lands there)."""
    try:
        if db.dialect == "sqlite":
            with db.engine.connect() as conn:
                # Never wait for readers (the busy handler would sleep while every API call
                # reads): copy what can be copied now; the next erasure or job tries again.
                conn.exec_driver_sql("PRAGMA busy_timeout=0")
                try:
                    busy, _, _ = conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)").one()
                finally:
                    conn.exec_driver_sql(f"PRAGMA busy_timeout={SQLITE_BUSY_MS}")
            return not busy
        if db.dialect == "postgresql":
            with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
                # Never queue behind a long transaction (and stall every reader behind us):
                # give up after a moment; the next erasure or job tries again.
                # The setting is the session's, and the connection goes back to the pool:
                # reset it, or later transactions on it would fail after 2 s of waiting.
                conn.execute(text("SET lock_timeout = '2s'"))
                try:
                    conn.execute(text(f"VACUUM FULL {', '.join(tables)}"))
                finally:
                    conn.execute(text("RESET lock_timeout"))
            return True
    except Exception:
        log.exception("could not scrub destroyed data keys now; the next erasure retries")
    return False


@dataclass
class Scrubber:
    """:func:`scrub` after erasures, at most once per ``interval_s``: the first erasure of a
    burst is scrubbed at once, the rest together ``interval_s`` after the previous scrub (a
    timer; the process waits for it before it exits). ``VACUUM FULL`` rewrites the whole key
    table, which under a burst of deletions would cost more than accepting them."""

    db: Database
    interval_s: float = 1.0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    _last: float = field(default=float("-inf"), repr=False)
    _timer: threading.Timer | None = field(default=None, repr=False)
    _runs: int = field(default=0, repr=False)
    _hooked: bool = field(default=False, repr=False)

    def soon(self) -> None:
        with self._lock:
            wait = self._last + self.interval_s - time.monotonic()
            if wait > 0:
                if self._timer is None:
                    if not self._hooked:  # a pending scrub runs before the engine closes
                        self.db.on_dispose(self.settle)
                        self._hooked = True
                    self._timer = threading.Timer(wait, self._run)
                    self._timer.start()
                return
            self._last = time.monotonic()
        scrub(self.db)

    def _run(self) -> None:
        with self._lock:
            self._timer, self._last = None, time.monotonic()
            self._runs += 1
        scrub(self.db)

    def settle(self) -> None:
        """Run a pending scrub now, not on its timer: called before the database's engine is
        disposed, so no scrub opens a connection after it (one nobody would close)."""
        with self._lock:
            timer, runs = self._timer, self._runs
        if timer is None:
            return
        timer.cancel()
        timer.join()
        with self._lock:
            ran = self._runs != runs
            if not ran:
                self._timer, self._last = None, time.monotonic()
        if not ran:
            scrub(self.db)
