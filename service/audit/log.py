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
from dataclasses import dataclass
from typing import Any, NamedTuple

from sqlalchemy import select, text
from sqlalchemy.orm import Session

from service.access.principal import SYSTEM
from service.audit.jcs import canonical
from service.audit.keys import Signer
from service.db.base import utcnow
from service.db.engine import Database
from service.db.tables import AuditEventRow

GENESIS = "0" * 64
ACTOR = "audit_actor"  # Session.info key: the principal's actor() the session acts for
_LOCK = 0x61756469  # "audi": the advisory lock key of the chain head


def event_hash(prev_hash: str, seq: int, at: str, kind: str, data: dict[str, Any]) -> str:
    body = canonical({"seq": seq, "at": at, "kind": kind, "data": data})
    return hashlib.sha256(prev_hash.encode("ascii") + body).hexdigest()


class EventRef(NamedTuple):
    seq: int
    hash: str


@dataclass(frozen=True)
class Sealer:
    """Signs the chain's head: after every event whose ``seq`` is 1 mod ``every`` (so no run
    of unsigned events is longer than ``every`` and a chain always starts signed), and at
    commit after events that must be signed at once (``SEAL_NOW``)."""

    signer: Signer
    every: int


SEALER = "audit_sealer"
SEAL_NOW = frozenset({"request.completed", "request.failed", "certificate.issued", "key.rotated"})
SIGNED = "chain.signed"
_DUE, _HEAD, _HEAD_TX = "audit_seal_due", "audit_head", "audit_head_transaction"
_LOCKED = "audit_locked_transaction"


def head_message(seq: int, digest: str) -> bytes:
    return b"unlearn audit head\n" + canonical({"seq": seq, "hash": digest})


def _head(s: Session) -> EventRef | None:
    """The chain's head: read once per transaction (under the chain's lock), then known
    from this transaction's own appends (``_HEAD``, stamped with its transaction; appends
    never run in a savepoint, whose rollback would leave the cache ahead)."""
    cached = s.info.get(_HEAD)
    if cached is not None and s.info.get(_HEAD_TX) is s.get_transaction():
        return cached  # type: ignore[no-any-return]
    row = s.execute(
        select(AuditEventRow.seq, AuditEventRow.hash).order_by(AuditEventRow.seq.desc()).limit(1)
    ).first()
    return None if row is None else EventRef(row[0], row[1])


def actor_of(s: Session) -> dict[str, str]:
    """Who this session acts for: the caller the application layer put in, else the system
    (background jobs)."""
    actor: dict[str, str] = s.info.get(ACTOR) or SYSTEM.actor()
    return dict(actor)


def lock(s: Session) -> None:
    """Hold the chain's lock for the rest of the transaction (PostgreSQL; SQLite writers are
    serial anyway). Taken by ``append``; a caller that must see every earlier writer's
    commit before it reads (a deletion matching its records) takes it first."""
    if s.info.get(_LOCKED) is s.get_transaction():
        return  # held until this transaction ends
    if s.get_bind().dialect.name == "postgresql":
        s.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _LOCK})
    s.info[_LOCKED] = s.get_transaction()


def append(
    s: Session, kind: str, data: dict[str, Any], *, at: dt.datetime | None = None
) -> EventRef:
    """Add one event after the current head; returns its position and hash. The event's
    data names its actor (``actor_of``), which the hash covers like the rest."""
    data = {**data, "actor": actor_of(s)}
    lock(s)
    head = _head(s)
    seq, prev = (1, GENESIS) if head is None else (head.seq + 1, head.hash)
    stamp = (utcnow() if at is None else at).isoformat()
    digest = event_hash(prev, seq, stamp, kind, data)
    s.add(AuditEventRow(seq=seq, at=stamp, kind=kind, data=data, prev_hash=prev, hash=digest))
    s.info[_HEAD], s.info[_HEAD_TX] = EventRef(seq, digest), s.get_transaction()
    sealer = s.info.get(SEALER)
    if sealer is not None and kind != SIGNED:
        if (seq - 1) % sealer.every == 0:
            sign_head(s, sealer, EventRef(seq, digest))
        elif kind in SEAL_NOW:
            s.info[_DUE] = True
    return EventRef(seq, digest)


def sign_head(s: Session, sealer: Sealer, head: EventRef) -> EventRef:
    kid, signature = sealer.signer.sign(head_message(*head))
    s.info[_DUE] = False
    data = {
        "head_seq": head.seq,
        "head_hash": head.hash,
        "key_id": kid,
        "interval": sealer.every,
        "signature": signature,
    }
    return append(s, SIGNED, data)


def sign_now(s: Session) -> EventRef:
    """Sign the current head at once (e.g. right after a key rotation)."""
    sealer = s.info.get(SEALER)
    if sealer is None:
        raise RuntimeError("this database session has no signing key installed")
    head = _head(s)
    if head is None:
        raise ValueError("the audit chain is empty: nothing to sign")
    return sign_head(s, sealer, head)


def seal_before_commit(s: Session) -> None:
    """Session hook: sign the head if an event of this transaction asked for it."""
    sealer, head = s.info.get(SEALER), s.info.get(_HEAD)
    if sealer is not None and head is not None and s.info.get(_DUE):
        sign_head(s, sealer, head)


def install(db: Database, signer: Signer, every: int) -> None:
    """Every session of ``db`` signs the chain with ``signer``."""
    db.extend_sessions({SEALER: Sealer(signer, every)}, seal_before_commit)
