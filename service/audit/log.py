"""Append events to the chain, in the caller's transaction; verify a chain of events.

``hash = sha256(prev_hash || canonical_json(event))`` where the event is
``{"seq", "at", "kind", "data"}`` and the first ``prev_hash`` is 64 zeros. Appends are
serialised (PostgreSQL: a transaction advisory lock; SQLite: writers already are), so the
chain never forks; the database rejects UPDATE and DELETE on the table (triggers, migration
0002).
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select, text
from sqlalchemy.orm import Session

from service.audit.jcs import canonical
from service.db.base import utcnow
from service.db.tables import AuditEventRow

GENESIS = "0" * 64
_LOCK = 0x61756469  # "audi": the advisory lock key of the chain head


def event_hash(prev_hash: str, seq: int, at: str, kind: str, data: dict[str, Any]) -> str:
    body = canonical({"seq": seq, "at": at, "kind": kind, "data": data})
    return hashlib.sha256(prev_hash.encode("ascii") + body).hexdigest()


def append(s: Session, kind: str, data: dict[str, Any], *, at: dt.datetime | None = None) -> str:
    """Add one event after the current head; returns its hash."""
    if s.get_bind().dialect.name == "postgresql":
        s.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _LOCK})
    head = s.execute(
        select(AuditEventRow.seq, AuditEventRow.hash).order_by(AuditEventRow.seq.desc()).limit(1)
    ).first()
    seq, prev = (1, GENESIS) if head is None else (head[0] + 1, head[1])
    stamp = (utcnow() if at is None else at).isoformat()
    digest = event_hash(prev, seq, stamp, kind, data)
    s.add(AuditEventRow(seq=seq, at=stamp, kind=kind, data=data, prev_hash=prev, hash=digest))
    s.flush()
    return digest


@dataclass(frozen=True)
class ChainReport:
    n_events: int
    head: str
    broken_at: int | None = None
    problem: str | None = None

    @property
    def ok(self) -> bool:
        return self.broken_at is None


def verify_chain(events: Iterable[tuple[int, str, str, dict[str, Any], str, str]]) -> ChainReport:
    """``events`` as (seq, at, kind, data, prev_hash, hash) in seq order; names the first
    event whose position, link or content does not match."""
    prev, expected_seq, n = GENESIS, 1, 0
    for seq, at, kind, data, prev_hash, digest in events:
        n += 1
        if seq != expected_seq:
            what = "missing" if seq > expected_seq else "out of order or duplicated"
            return ChainReport(
                n, prev, expected_seq, f"event {expected_seq} is {what} (found {seq})"
            )
        if prev_hash != prev:
            return ChainReport(n, prev, seq, f"event {seq} does not link to event {seq - 1}")
        if event_hash(prev_hash, seq, at, kind, data) != digest:
            return ChainReport(n, prev, seq, f"event {seq} ({kind}) was altered")
        prev, expected_seq = digest, seq + 1
    return ChainReport(n, prev)


def load_chain(s: Session) -> list[tuple[int, str, str, dict[str, Any], str, str]]:
    rows = s.execute(
        select(
            AuditEventRow.seq,
            AuditEventRow.at,
            AuditEventRow.kind,
            AuditEventRow.data,
            AuditEventRow.prev_hash,
            AuditEventRow.hash,
        ).order_by(AuditEventRow.id)
    )
    return [(a, b, c, dict(d), e, f) for a, b, c, d, e, f in rows]
