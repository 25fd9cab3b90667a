"""Verify a chain of audit events: links, contents and signed heads; export and re-read it.

Without keys only the hash chain is checked. With trusted public keys every ``chain.signed``
event must sign its predecessor with a trusted key (or a key that a ``key.rotated`` event
introduced and a trusted signature then covered), no run of unsigned events may be longer
than the signing interval, and the chain's tail after the last signature must be shorter
than it. Truncating the tail by fewer events than the interval is what remains undetectable
here; a deletion certificate pins its chain position for that (``--certificate``).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from sqlalchemy import select
from sqlalchemy.orm import Session

from service.audit.jcs import canonical
from service.audit.keys import KeyError_, key_id, parse_public, verify
from service.audit.log import GENESIS, SIGNED, event_hash, head_message
from service.db.tables import AuditEventRow

Event = tuple[int, str, str, dict[str, Any], str, str]  # seq, at, kind, data, prev, hash


@dataclass(frozen=True)
class ChainReport:
    n_events: int
    head: str
    broken_at: int | None = None
    problem: str | None = None
    n_signatures: int = 0
    signed_upto: int = 0
    key_ids: tuple[str, ...] = field(default_factory=tuple)

    @property
    def ok(self) -> bool:
        return self.broken_at is None


class _Broken(Exception):
    def __init__(self, seq: int, problem: str) -> None:
        super().__init__(problem)
        self.seq, self.problem = seq, problem


@dataclass
class _Signatures:
    """The signature rules, fed one event at a time."""

    trusted: dict[str, Ed25519PublicKey]
    pending: dict[str, Ed25519PublicKey] = field(default_factory=dict)
    run_start: int = 1
    run: int = 0
    interval: int | None = None
    count: int = 0
    signed_upto: int = 0
    used: set[str] = field(default_factory=set)

    def see(self, seq: int, kind: str, data: dict[str, Any], prev: str) -> None:
        if kind == "key.rotated":
            self.pending.update(_rotated_key(seq, data))
        if kind != SIGNED:
            if self.run == 0:
                self.run_start = seq
            self.run += 1
            return
        head_seq, head_hash, kid, interval, sig = _fields(seq, data)
        if head_seq != seq - 1 or head_hash != prev:
            raise _Broken(seq, f"event {seq} signs event {head_seq}, not its predecessor")
        pub = self.trusted.get(kid)
        if pub is None:
            raise _Broken(seq, f"event {seq} is signed by key {kid}, which is not trusted")
        if not verify(pub, sig, head_message(head_seq, head_hash)):
            raise _Broken(seq, f"event {seq}: the signature does not verify with key {kid}")
        limit = max(interval, self.interval or interval)
        if self.run > limit:
            raise _Broken(
                self.run_start,
                f"events {self.run_start}..{seq - 1} are not covered by a signature within "
                f"{limit} events",
            )
        self.trusted.update(self.pending)
        self.pending.clear()
        self.interval, self.run, self.signed_upto = interval, 0, head_seq
        self.count += 1
        self.used.add(kid)

    def finish(self, n: int) -> None:
        if n and self.interval is None:
            raise _Broken(1, "no event of the chain is signed")
        if self.interval is not None and self.run >= self.interval:
            raise _Broken(
                self.run_start,
                f"events {self.run_start}..{self.run_start + self.run - 1} were never signed "
                f"(the chain signs every {self.interval} events)",
            )


def _fields(seq: int, data: dict[str, Any]) -> tuple[int, str, str, int, str]:
    try:
        head_seq, head_hash = int(data["head_seq"]), str(data["head_hash"])
        kid, interval, sig = str(data["key_id"]), int(data["interval"]), str(data["signature"])
    except (KeyError, TypeError, ValueError) as exc:
        raise _Broken(seq, f"event {seq} is a malformed signature event") from exc
    return head_seq, head_hash, kid, max(interval, 1), sig


def _rotated_key(seq: int, data: dict[str, Any]) -> dict[str, Ed25519PublicKey]:
    try:
        pub = parse_public(str(data["public_key"]).encode("ascii"), f"event {seq}")
    except (KeyError, KeyError_, UnicodeEncodeError) as exc:
        raise _Broken(seq, f"event {seq} rotates to an unreadable public key") from exc
    if key_id(pub) != data.get("new_key_id"):
        raise _Broken(seq, f"event {seq} names a key id that is not its public key's")
    return {key_id(pub): pub}


def verify_chain(
    events: Iterable[Event], keys: Mapping[str, Ed25519PublicKey] | None = None
) -> ChainReport:
    """``events`` in seq order; names the first event whose position, link, content or
    signature does not hold. ``keys=None`` checks the hash chain only."""
    prev, expected, n = GENESIS, 1, 0
    sigs = None if keys is None else _Signatures(dict(keys))
    try:
        for seq, at, kind, data, prev_hash, digest in events:
            n += 1
            if seq != expected:
                what = "missing" if seq > expected else "out of order or duplicated"
                raise _Broken(expected, f"event {expected} is {what} (found {seq})")
            if prev_hash != prev:
                raise _Broken(seq, f"event {seq} does not link to event {seq - 1}")
            if event_hash(prev_hash, seq, at, kind, data) != digest:
                raise _Broken(seq, f"event {seq} ({kind}) was altered")
            if sigs is not None:
                sigs.see(seq, kind, data, prev)
            prev, expected = digest, seq + 1
        if sigs is not None:
            sigs.finish(n)
    except _Broken as broken:
        return ChainReport(n, prev, broken.seq, broken.problem)
    if sigs is None:
        return ChainReport(n, prev)
    return ChainReport(
        n,
        prev,
        n_signatures=sigs.count,
        signed_upto=sigs.signed_upto,
        key_ids=tuple(sorted(sigs.used)),
    )


def pinned_problem(events: list[Event], pins: Mapping[str, tuple[int, str]]) -> str | None:
    """Each pin (a certificate's chain position, by name) must be an event of the chain with
    that hash: a chain cut back past a certificate, or rewritten under it, fails here even
    where the signatures alone cannot tell (a tail shorter than the signing interval)."""
    by_seq = {seq: digest for seq, _, _, _, _, digest in events}
    for name, (seq, digest) in pins.items():
        found = by_seq.get(seq)
        if found != digest:
            what = "is missing" if found is None else "has another hash"
            return f"{name} pins event {seq} ({digest[:16]}), which {what} in the chain"
    return None


def load_chain(s: Session) -> list[Event]:
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


def export_lines(events: Iterable[Event]) -> Iterator[bytes]:
    """One canonical JSON object per line: what ``read_export`` and ``audit verify --chain``
    read back without the database."""
    for seq, at, kind, data, prev_hash, digest in events:
        yield (
            canonical(
                {
                    "seq": seq,
                    "at": at,
                    "kind": kind,
                    "data": data,
                    "prev_hash": prev_hash,
                    "hash": digest,
                }
            )
            + b"\n"
        )


def read_export(path: Path) -> Iterator[Event]:
    with path.open("rb") as fh:
        for lineno, line in enumerate(fh, 1):
            try:
                obj = json.loads(line)
                yield (
                    int(obj["seq"]),
                    str(obj["at"]),
                    str(obj["kind"]),
                    dict(obj["data"]),
                    str(obj["prev_hash"]),
                    str(obj["hash"]),
                )
            except (ValueError, KeyError, TypeError) as exc:
                raise ValueError(f"{path}:{lineno}: not an exported audit event") from exc
