"""API keys in the database: create, list, revoke, and authenticate a bearer token.

A token is checked against its row's hash in constant time, and the row is read on every
call (no cache): a revocation takes effect at once in every API process sharing the DB.
Creating and revoking a key are audit-chain events that name the key, never its secret.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from service.access import tokens
from service.access.errors import Unauthenticated
from service.access.principal import Principal, PrincipalType, status_principal
from service.access.scopes import Scope
from service.audit import log as audit
from service.db.base import utcnow
from service.db.tables import ApiKeyRow, DeletionRequestRow, ModelRow
from service.lineage.errors import NotFound, Unprocessable

TOUCH_EVERY = dt.timedelta(seconds=60)  # last_used_at is written at most this often


def create_key(
    s: Session,
    name: str,
    scopes: Iterable[Scope],
    *,
    role: str | None = None,
    expires_at: dt.datetime | None = None,
    now: dt.datetime | None = None,
) -> tuple[ApiKeyRow, str]:
    """A new key and its token (the only time the token exists outside the caller)."""
    now = utcnow() if now is None else now
    if not name.strip() or len(name) > 200:
        raise Unprocessable("a key needs a name of 1-200 characters")
    if expires_at is not None and expires_at <= now:
        raise Unprocessable("the expiry must be in the future")
    new = tokens.new_key()
    row = ApiKeyRow(
        key_id=new.key_id,
        name=name,
        role=role,
        scopes=sorted(str(x) for x in scopes),
        secret_sha256=new.sha256,
        created_by=audit.actor_of(s),
        created_at=now,
        expires_at=expires_at,
    )
    s.add(row)
    s.flush()
    audit.append(
        s,
        "key.created",
        {
            "key_id": row.key_id,
            "name": name,
            "role": role,
            "scopes": row.scopes,
            "expires_at": None if expires_at is None else expires_at.isoformat(),
        },
        at=now,
    )
    return row, new.token


def list_keys(s: Session, *, include_revoked: bool = False) -> list[ApiKeyRow]:
    query = select(ApiKeyRow).order_by(ApiKeyRow.id)
    if not include_revoked:
        query = query.where(ApiKeyRow.revoked_at.is_(None))
    return list(s.scalars(query))


def get_key(s: Session, key_id: str) -> ApiKeyRow:
    """The key with this id; a whole token is taken for its key id, and never echoed."""
    if key_id.startswith((tokens.KEY_PREFIX, tokens.STATUS_PREFIX)):
        from_token = tokens.key_id_of(key_id)
        if from_token is None:
            raise NotFound("no API key matches that token (give the key id, e.g. 4d2bqvw7yflb)")
        key_id = from_token
    row = s.scalar(select(ApiKeyRow).where(ApiKeyRow.key_id == key_id))
    if row is None:
        shown = key_id if len(key_id) <= 16 else key_id[:16] + "..."
        raise NotFound(f"no API key {shown!r}")
    return row


def revoke_key(s: Session, key_id: str, *, now: dt.datetime | None = None) -> ApiKeyRow:
    """Refused from the next call on; revoking a revoked key changes nothing."""
    row = get_key(s, key_id)
    if row.revoked_at is None:
        row.revoked_at = utcnow() if now is None else now
        audit.append(s, "key.revoked", {"key_id": row.key_id, "name": row.name}, at=row.revoked_at)
    return row


def authenticate(s: Session, token: str, *, now: dt.datetime | None = None) -> Principal:
    """The principal a bearer token stands for, or :class:`Unauthenticated` saying why."""
    return authenticate_use(s, token, now=now)[0]


def authenticate_use(
    s: Session, token: str, *, now: dt.datetime | None = None
) -> tuple[Principal, bool]:
    """:func:`authenticate`, and whether the key's use is due to be recorded (:func:`touch`),
    read from the same row."""
    now = utcnow() if now is None else now
    if tokens.is_status_token(token):
        digest = tokens.digest(token)
        public_id = s.scalar(
            select(DeletionRequestRow.public_id).where(
                DeletionRequestRow.status_token_sha256 == digest
            )
        )
        if public_id is None:
            raise Unauthenticated("unknown status token")
        return status_principal(public_id), False
    key_id = tokens.key_id_of(token)
    if key_id is None:
        raise Unauthenticated("not an unlearn API key or status token")
    row = s.scalar(select(ApiKeyRow).where(ApiKeyRow.key_id == key_id))
    # Compare against a dummy hash when the key id is unknown: same work either way.
    stored = "0" * 64 if row is None else row.secret_sha256
    if not tokens.same(tokens.digest(token), stored) or row is None:
        raise Unauthenticated("unknown API key")
    if row.revoked_at is not None:
        raise Unauthenticated(f"API key {row.key_id} was revoked")
    if row.expires_at is not None and row.expires_at <= now:
        raise Unauthenticated(f"API key {row.key_id} expired")
    principal = Principal(
        PrincipalType.KEY, row.key_id, row.name, frozenset(map(Scope, row.scopes))
    )
    last = row.last_used_at
    return principal, last is None or last < now - TOUCH_EVERY


def touch(s: Session, key_id: str, *, now: dt.datetime | None = None) -> bool:
    """Record a use of the key, at most once per :data:`TOUCH_EVERY` (saves a write per
    call); ``True`` when it wrote."""
    now = utcnow() if now is None else now
    result = s.execute(
        update(ApiKeyRow)
        .where(ApiKeyRow.key_id == key_id)
        .where((ApiKeyRow.last_used_at.is_(None)) | (ApiKeyRow.last_used_at < now - TOUCH_EVERY))
        .values(last_used_at=now)
    )
    return bool(getattr(result, "rowcount", 0))


def models_of(s: Session, principal: Principal, *, lock: bool = False) -> int:
    """How many models the principal registered (the per-key cap); ``lock`` holds the key's
    row until the transaction ends (PostgreSQL; SQLite writers are serial anyway)."""
    if lock and principal.is_key:
        s.execute(select(ApiKeyRow.id).where(ApiKeyRow.key_id == principal.id).with_for_update())
    return int(
        s.scalar(
            select(func.count()).select_from(ModelRow).where(ModelRow.created_by == principal.ref)
        )
        or 0
    )
