"""A deletion request's input, its idempotent replay and the records it matches (the
lineage core of ``service.usecases.accept_deletion``)."""

from __future__ import annotations

import calendar
import datetime as dt
import hashlib
import hmac
from dataclasses import dataclass

from sqlalchemy import select, text
from sqlalchemy.orm import Session

from models.config import canonical_json
from service.db.tables import DatasetRow, DeletionRequestRow, RecordRow
from service.lineage.errors import Conflict, NotFound, Unprocessable
from sharding import subject_key

MAX_RECORD_IDS = 10_000


@dataclass(frozen=True)
class DeletionInput:
    """Exactly one of ``subject_id`` and ``record_ids``; ``dataset`` narrows the match."""

    subject_id: str | None = None
    record_ids: tuple[str, ...] | None = None
    dataset: str | None = None
    reason: str | None = None

    def __post_init__(self) -> None:
        if (self.subject_id is None) == (self.record_ids is None):
            raise Unprocessable("give exactly one of subject_id and record_ids")
        if self.subject_id is not None and not self.subject_id.strip():
            raise Unprocessable("subject_id must not be blank")
        if self.record_ids is not None:
            if not self.record_ids:
                raise Unprocessable("record_ids must not be empty")
            if len(self.record_ids) > MAX_RECORD_IDS:
                raise Unprocessable(f"at most {MAX_RECORD_IDS} record ids per request")
            if any(not r.strip() for r in self.record_ids):
                raise Unprocessable("record ids must not be blank")

    def body_sha256(self) -> str:
        """Fingerprint of the request body, for idempotent replays."""
        body = {
            "subject_id": self.subject_id,
            "record_ids": None if self.record_ids is None else list(self.record_ids),
            "dataset": self.dataset,
            "reason": self.reason,
        }
        return hashlib.sha256(canonical_json(body).encode("utf-8")).hexdigest()


class NoMatch(NotFound):
    """Nothing to erase: answered (``completed``/``no_match``) without touching the DB."""

    def __init__(self, message: str, not_found: list[str]) -> None:
        super().__init__(message)
        self.not_found = not_found


@dataclass(frozen=True)
class Accepted:
    request: DeletionRequestRow
    replayed: bool
    not_found: tuple[str, ...] = ()
    retired: tuple[str, ...] = ()  # checkpoint files to delete after the commit
    status_token: str | None = None  # the subject's token, in this answer only


def scoped_key(secret: bytes, owner: str, key: str) -> str:
    """How an ``Idempotency-Key`` is stored: a keyed hash (HMAC-SHA256 with the deployment
    secret, as subject keys are) of the key and the principal that sent it. Two callers' keys
    never collide, one caller cannot replay another's request, and a portal that puts a
    ticket or subject id in the key leaves no readable or guessable copy of it."""
    message = f"idempotency\n{owner}\n{key}".encode()
    return hmac.new(secret, message, hashlib.sha256).hexdigest()


def add_month(at: dt.datetime) -> dt.datetime:
    """One calendar month later (GDPR Art. 12(3)); the day is clamped to the month's end."""
    year, month = (at.year + 1, 1) if at.month == 12 else (at.year, at.month + 1)
    day = min(at.day, calendar.monthrange(year, month)[1])
    return at.replace(year=year, month=month, day=day)


def _advisory_lock(session: Session, key: str) -> bool:
    """PostgreSQL: hold a transaction lock on the key; ``False`` if another holds it."""
    if session.get_bind().dialect.name != "postgresql":
        return True
    h = int.from_bytes(hashlib.sha256(key.encode()).digest()[:8], "big", signed=True)
    return bool(session.scalar(text("SELECT pg_try_advisory_xact_lock(:h)"), {"h": h}))


def replay(
    session: Session, stored: str, body: str, shown: str | None = None
) -> DeletionRequestRow | None:
    """The request an earlier call stored under ``stored`` made, if any (same body, or
    422); errors quote the key as the caller sent it (``shown``)."""
    shown = stored if shown is None else shown
    if not _advisory_lock(session, stored):
        raise Conflict(f"a request with Idempotency-Key {shown!r} is still in flight")
    row = session.scalar(
        select(DeletionRequestRow).where(DeletionRequestRow.idempotency_key == stored)
    )
    if row is not None and row.body_sha256 != body:
        raise Unprocessable(f"Idempotency-Key {shown!r} was used with a different body")
    return row


def matching(
    session: Session, req: DeletionInput, secret: bytes
) -> tuple[list[RecordRow], list[str]]:
    """The records ``req`` names (any state) and the record ids not found."""
    query = select(RecordRow)
    if req.dataset is not None:
        ds = session.scalar(select(DatasetRow.id).where(DatasetRow.name == req.dataset))
        if ds is None:
            raise NotFound(f"no dataset named {req.dataset!r}")
        query = query.where(RecordRow.dataset_id == ds)
    if req.subject_id is not None:
        rows = list(
            session.scalars(
                query.where(RecordRow.subject_key == subject_key(secret, req.subject_id))
            )
        )
        return rows, []
    assert req.record_ids is not None
    wanted = sorted(set(req.record_ids))
    rows = []
    for start in range(0, len(wanted), 500):
        chunk = wanted[start : start + 500]
        rows += list(session.scalars(query.where(RecordRow.record_id.in_(chunk))))
    found = {r.record_id for r in rows}
    return rows, [r for r in wanted if r not in found]
