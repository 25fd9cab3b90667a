"""After a transaction that destroyed data keys: push the deleted key rows out of the places
the database keeps old pages, as far as the database lets us.

- SQLite runs with ``secure_delete`` (deleted content is overwritten in the database file);
  a ``wal_checkpoint(TRUNCATE)`` then copies the WAL back and truncates it to zero bytes.
  It cannot finish while another connection reads an older snapshot; it is run again after
  the next erasure or job.
- PostgreSQL: ``VACUUM FULL data_keys`` rewrites the key table without the dead rows (it
  holds the table's lock for the rewrite: milliseconds for thousands of keys). WAL segments,
  replicas and base backups keep their copies (wrapped by the key-encryption key) for as long
  as they are retained: that exposure is stated in the README.
"""

from __future__ import annotations

import logging

from sqlalchemy import text

from service.db.engine import Database

log = logging.getLogger(__name__)


def scrub(db: Database, tables: tuple[str, ...] = ("data_keys",)) -> bool:
    """``True`` when the old copies are gone as far as this database can tell. On
    PostgreSQL ``tables`` are rewritten (``VACUUM FULL``: a plain VACUUM frees a dead row's
    slot but leaves its bytes in the page until a live row lands there)."""
    try:
        if db.dialect == "sqlite":
            with db.engine.connect() as conn:
                busy, _, _ = conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)").one()
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
