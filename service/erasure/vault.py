"""Payloads in the database, sealed under data keys; erasure destroys the keys.

Every session of the service's database carries the :class:`Vault` (the key-encryption key)
in ``Session.info``, as it carries the audit signer. Payloads are sealed when they are
stored and opened where a job reads them; nothing else ever sees the plaintext.

Erasing records (:func:`shred`, in the accepting transaction) deletes the data keys they were
sealed under, after re-sealing any record that shares a key and stays (a subject erased from
one dataset keeps its records in another). From that commit on, every copy of the erased
ciphertext (WAL, free pages, dead tuples, replicas, backups, exports) is unreadable.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import delete, insert, select, update
from sqlalchemy.orm import Session

from service.db.base import utcnow
from service.db.engine import Database
from service.db.tables import DataKeyRow, DestroyedKeyRow, RecordRow
from service.erasure import crypto, probes
from service.states import RecordState

VAULT = "erasure_vault"
_KEYS = "erasure_vault_keys"  # Session.info: data keys unwrapped in this session


class KeyDestroyed(LookupError):
    """A payload whose data key was destroyed: erased, never to be read again."""


@dataclass(frozen=True)
class Vault:
    """``kek`` wraps new data keys; ``previous`` KEKs only unwrap (during a rotation); when a
    key was wrapped by a KEK this vault does not hold, ``reload`` (the settings' key files,
    read again) is asked once, so a process learns a rotation made by another."""

    kek: bytes
    previous: tuple[bytes, ...] = ()
    reload: Callable[[], Vault] | None = field(default=None, compare=False, repr=False)

    @property
    def kek_id(self) -> str:
        return crypto.kek_id(self.kek)

    def unwrapping(self, kek_id: str) -> bytes | None:
        for kek in (self.kek, *self.previous):
            if crypto.kek_id(kek) == kek_id:
                return kek
        return None


def install(db: Database, vault: Vault) -> None:
    """Every session of ``db`` seals and opens payloads with ``vault``."""
    db.extend_sessions({VAULT: vault}, _forget_keys)


def _forget_keys(s: Session) -> None:
    s.info.pop(_KEYS, None)


def vault_of(s: Session) -> Vault:
    vault = s.info.get(VAULT)
    if not isinstance(vault, Vault):
        raise RuntimeError("this database session has no vault installed (Service.open does)")
    return vault


def _cache(s: Session) -> dict[str, bytes]:
    keys: dict[str, bytes] = s.info.setdefault(_KEYS, {})
    return keys


def new_keys(s: Session, owners: Sequence[str | None]) -> list[str]:
    """One new data key per entry of ``owners``; returns their ids, in order."""
    vault = vault_of(s)
    cache = _cache(s)
    rows, ids = [], []
    for owner in owners:
        key_id, key = crypto.new_key_id(), crypto.new_data_key()
        cache[key_id] = key
        ids.append(key_id)
        rows.append(
            {
                "id": key_id,
                "owner": owner,
                "kek_id": vault.kek_id,
                "wrapped": crypto.wrap(vault.kek, key_id, key),
            }
        )
    for start in range(0, len(rows), 5000):
        s.execute(insert(DataKeyRow), rows[start : start + 5000])
    return ids


def subject_keys(s: Session, owners: Iterable[str]) -> dict[str, str]:
    """The data key id of each subject key, created for subjects that have none yet."""
    wanted = sorted(set(owners))
    found: dict[str, str] = {}
    for start in range(0, len(wanted), 1000):
        chunk = wanted[start : start + 1000]
        for owner, key_id in s.execute(
            select(DataKeyRow.owner, DataKeyRow.id).where(DataKeyRow.owner.in_(chunk))
        ):
            if owner is not None:
                found.setdefault(owner, key_id)
    missing = [o for o in wanted if o not in found]
    found.update(zip(missing, new_keys(s, missing), strict=True))
    return found


def data_key(s: Session, key_id: str) -> bytes:
    cache = _cache(s)
    if key_id not in cache:
        row = s.get(DataKeyRow, key_id)
        if row is None:
            raise KeyDestroyed(f"data key {key_id} was destroyed: its payloads are erased")
        cache[key_id] = crypto.unwrap(_kek_for(s, row.kek_id), key_id, row.wrapped)
    return cache[key_id]


def _kek_for(s: Session, kek_id: str) -> bytes:
    vault = vault_of(s)
    kek = vault.unwrapping(kek_id)
    if kek is None and vault.reload is not None:
        vault = vault.reload()
        s.info[VAULT] = vault
        kek = vault.unwrapping(kek_id)
    if kek is None:
        raise crypto.SealError(f"no key-encryption key {kek_id} is configured")
    return kek


def seal(s: Session, key_id: str, payload: dict[str, Any]) -> dict[str, str]:
    return crypto.seal_payload(key_id, data_key(s, key_id), payload)


def open_payload(s: Session, envelope: dict[str, Any]) -> dict[str, Any]:
    """The plaintext of a sealed payload (:class:`KeyDestroyed` once it is erased)."""
    return crypto.open_payload(data_key(s, crypto.envelope_key(envelope)), envelope)


def open_payloads(s: Session, envelopes: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """:func:`open_payload` of many, their data keys read in a few queries, not one each."""
    cache = _cache(s)
    wanted = sorted({crypto.envelope_key(e) for e in envelopes} - set(cache))
    for start in range(0, len(wanted), 1000):
        # Columns, not ORM rows: building thousands of mapped objects cost more than the crypto.
        for key_id, kek_id, wrapped in s.execute(
            select(DataKeyRow.id, DataKeyRow.kek_id, DataKeyRow.wrapped).where(
                DataKeyRow.id.in_(wanted[start : start + 1000])
            )
        ):
            cache[key_id] = crypto.unwrap(_kek_for(s, kek_id), key_id, wrapped)
    return [open_payload(s, e) for e in envelopes]


def destroy(s: Session, key_ids: Iterable[str], request_id: int | None = None) -> int:
    """Delete the data keys, leaving for each a ``destroyed_keys`` row: when, for which
    request, and the probe a scan finds a stale copy of its wrapped bytes by."""
    return sum(_destroy(s, dict.fromkeys(key_ids, request_id)).values())


def _destroy(s: Session, request_of: dict[str, int | None]) -> dict[int | None, int]:
    """:func:`destroy` of each key for its request; how many each request destroyed."""
    ids = sorted(request_of)
    cache = _cache(s)
    counts: dict[int | None, int] = defaultdict(int)
    now = utcnow()
    for start in range(0, len(ids), 1000):
        chunk = ids[start : start + 1000]
        gone = [
            {"id": key_id, "request_id": request_of[key_id], "destroyed_at": now}
            | dict(zip(("anchor", "wrapped_sha256"), probes.key_probe(bytes(w)), strict=True))
            for key_id, w in s.execute(
                select(DataKeyRow.id, DataKeyRow.wrapped).where(DataKeyRow.id.in_(chunk))
            )
        ]
        if gone:
            s.execute(insert(DestroyedKeyRow), gone)
            s.execute(delete(DataKeyRow).where(DataKeyRow.id.in_([g["id"] for g in gone])))
        for g in gone:
            counts[request_of[str(g["id"])]] += 1
        for key_id in chunk:
            cache.pop(key_id, None)
    return counts


def quarantine_owner(request_id: int) -> str:
    """The owner of the data key a request's quarantined forget payloads are sealed under."""
    return f"request:{request_id}"


def destroy_owner(s: Session, owner: str, request_id: int | None = None) -> int:
    ids = list(s.scalars(select(DataKeyRow.id).where(DataKeyRow.owner == owner)))
    return destroy(s, ids, request_id)


def shred(s: Session, erased: Sequence[RecordRow]) -> dict[int, int]:
    """Destroy the data keys of ``erased`` (already tombstoned, payload null, ``erased_by``
    set: one or more requests) after moving every record that shares one of them and stays
    active onto a new key of its owner. Returns how many keys each request destroyed (a key
    two of them held counts for the first)."""
    key_ids = {r.data_key_id for r in erased if r.data_key_id is not None}
    if not key_ids:
        return {}
    request_of: dict[str, int | None] = {}
    for r in erased:  # in order: a key two requests held counts for the first
        if r.data_key_id is not None:
            request_of.setdefault(r.data_key_id, r.erased_by)
    staying = list(
        s.scalars(
            select(RecordRow).where(
                RecordRow.data_key_id.in_(sorted(key_ids)),
                RecordRow.state == RecordState.ACTIVE,
            )
        )
    )
    by_owner: dict[str | None, list[RecordRow]] = defaultdict(list)
    for r in staying:
        by_owner[r.subject_key].append(r)
    for owner, records in by_owner.items():
        new_id = new_keys(s, [owner])[0]
        for r in records:
            assert r.payload is not None
            r.payload = seal(s, new_id, open_payload(s, r.payload))
            r.data_key_id = new_id
    for r in erased:
        r.data_key_id = None
    s.flush()
    s.execute(
        update(RecordRow)
        .where(RecordRow.data_key_id.in_(sorted(key_ids)), RecordRow.state != RecordState.ACTIVE)
        .values(data_key_id=None)
    )
    counts = _destroy(s, request_of)
    return {request_id: n for request_id, n in counts.items() if request_id is not None}


def rewrap(s: Session, new: Vault) -> int:
    """Wrap every data key under ``new``'s KEK (payloads are not touched); afterwards the
    old KEK opens nothing. Returns how many keys were rewrapped."""
    s.info[VAULT] = new
    n = 0
    for row in s.scalars(select(DataKeyRow).order_by(DataKeyRow.id)):
        if row.kek_id == new.kek_id:
            continue
        key = crypto.unwrap(_kek_for(s, row.kek_id), row.id, row.wrapped)
        row.wrapped, row.kek_id = crypto.wrap(new.kek, row.id, key), new.kek_id
        n += 1
    s.flush()
    return n
