"""Accepting deletion requests: one transaction erases, cuts, reroutes and records.

Inside a single write transaction, for one request or for a group of them accepted together
(``accept_deletions``; the application layer groups concurrent calls, ``service.db.group``):

1. the request is persisted with the principal that filed it and the hash of a fresh status
   token for the data subject (or an earlier one with the same ``Idempotency-Key`` from the
   same principal returned, with a new status token replacing the old);
2. the matching active records are tombstoned: the keyed probes of their texts left for
   the erasure scan (``service.erasure.probes``), payload nulled, ``erased_by`` set, and the
   data keys their payloads were sealed under destroyed (records sharing a key that stay
   are re-sealed under a new one first; each kind may first keep what it still needs:
   approximate models quarantine the payloads they must unlearn, under the request's key);
3. for every model holding them (model row locked), the routing version is bumped to ``v``
   and their placements get ``erased_version = v``; then the model's kind acts: an S3T
   model persists the pure planner's plan (``sharding.plan_deletion``: tainted checkpoints
   retired, sequences cut to their clean prefix, shards re-routed, one retrain job per cut
   sequence), an approximate model queues its unlearning job;
4. the request becomes ``effective`` (or ``completed`` when no model work is needed, with
   its signed certificate).

Files follow the commit: the caller deletes the retired checkpoint files
(``Accepted.retired``); each S3T model's ``purge`` job (queued in step 3, on the erasure
queue) zeroes and drops the erased rows of its activation caches within seconds.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field

from sqlalchemy import select
from sqlalchemy.orm import Session

from service.access import tokens
from service.access.principal import SYSTEM, Principal
from service.audit import certificates
from service.audit import log as audit
from service.db.base import utcnow
from service.db.tables import (
    DeletionEventRow,
    DeletionRequestRow,
    PlacementRow,
    RecordRow,
    SliceRow,
)
from service.erasure import probes, vault
from service.kind import DeletionEffect, Erasure, Hit
from service.kinds import KINDS, kind_of
from service.lineage.deletion import (
    Accepted,
    DeletionInput,
    NoMatch,
    add_month,
    matching,
    replay,
    scoped_key,
)
from service.lineage.errors import LineageError, Unprocessable
from service.lineage.registry import get_model
from service.states import ModelState, RecordState, RequestOutcome, RequestState
from sharding import subject_key

__all__ = [
    "Accepted",
    "DeletionInput",
    "NoMatch",
    "Submission",
    "accept_deletion",
    "accept_deletions",
]


@dataclass(frozen=True)
class Submission:
    """One caller's deletion request, as a group of them is accepted."""

    req: DeletionInput
    principal: Principal
    idempotency_key: str | None = None


Outcome = Accepted | LineageError


@dataclass
class _Fresh:
    """A submission that is accepted anew (not a replay): what matching found for it."""

    index: int
    sub: Submission
    stored: str | None
    token: str
    token_sha256: str
    body: str
    rows: list[RecordRow]
    missing: list[str]
    active: list[RecordRow]
    request: DeletionRequestRow | None = None
    effect: DeletionEffect = field(default_factory=DeletionEffect)


def accept_deletion(
    session: Session,
    req: DeletionInput,
    *,
    secret: bytes,
    principal: Principal,
    idempotency_key: str | None = None,
    now: dt.datetime | None = None,
) -> Accepted:
    """Steps 1-4 above for one request in ``session``'s transaction (the caller commits)."""
    (outcome,) = accept_deletions(
        session, [Submission(req, principal, idempotency_key)], secret=secret, now=now
    )
    if isinstance(outcome, LineageError):
        raise outcome
    return outcome


def accept_deletions(
    session: Session,
    subs: Sequence[Submission],
    *,
    secret: bytes,
    now: dt.datetime | None = None,
) -> list[Outcome]:
    """Steps 1-4 above for requests accepted together (group commit), in order, in
    ``session``'s transaction (the caller commits). Each gets its own outcome: accepted (or
    replayed), or the error its caller gets (no match, unknown dataset, a reused key with
    another body); an erroneous request leaves nothing behind. The result equals accepting
    them one after another, except that they share each model's new routing version, its
    purge job and one retrain job per cut sequence."""
    outcomes: list[Outcome | None] = [None] * len(subs)
    actor = session.info.get(audit.ACTOR)
    fresh, duplicates = _replays(session, subs, secret, outcomes)
    if fresh:
        # Deletions serialise before they match (they would at their first event anyway):
        # two at once of one subject must not both see, and shred, the same data key.
        audit.lock(session)
        fresh = _match(session, fresh, secret, outcomes)
    if fresh:
        _accept(session, fresh, secret, utcnow() if now is None else now)
        for f in fresh:
            assert f.request is not None
            outcomes[f.index] = Accepted(
                f.request,
                replayed=False,
                not_found=tuple(f.missing),
                retired=tuple(f.effect.retired),
                status_token=f.token,
            )
    for index, first in duplicates:
        earlier = outcomes[first]
        if isinstance(earlier, Accepted):
            token, token_sha256 = tokens.new_status_token()
            earlier.request.status_token_sha256 = token_sha256  # the newest caller's token
            outcomes[index] = Accepted(
                earlier.request, replayed=True, not_found=earlier.not_found, status_token=token
            )
        else:
            outcomes[index] = earlier
    session.info[audit.ACTOR] = actor
    session.flush()
    return [o for o in outcomes if o is not None]


def _replays(
    session: Session, subs: Sequence[Submission], secret: bytes, outcomes: list[Outcome | None]
) -> tuple[list[_Fresh], list[tuple[int, int]]]:
    """Step 1's replays: each submission whose key stored a request earlier gets it back
    (with a new status token); a key a submission of this group used before is a replay of
    that one, done once it is accepted. Returns the rest, and those (index, earlier index)."""
    fresh: list[_Fresh] = []
    duplicates: list[tuple[int, int]] = []
    first_of: dict[str, tuple[int, str]] = {}
    for index, sub in enumerate(subs):
        body = sub.req.body_sha256()
        key = sub.idempotency_key
        stored = None if key is None else scoped_key(secret, sub.principal.ref, key)
        token, token_sha256 = tokens.new_status_token()
        try:
            if stored is not None and stored in first_of:
                earlier, earlier_body = first_of[stored]
                if earlier_body != body:
                    raise Unprocessable(f"Idempotency-Key {key!r} was used with a different body")
                duplicates.append((index, earlier))
                continue
            existing = None if stored is None else replay(session, stored, body, key)
        except LineageError as exc:
            outcomes[index] = exc
            continue
        if existing is not None:
            existing.status_token_sha256 = token_sha256
            not_found = tuple(existing.not_found or ())
            outcomes[index] = Accepted(
                existing, replayed=True, not_found=not_found, status_token=token
            )
            continue
        if stored is not None:
            first_of[stored] = (index, body)
        fresh.append(_Fresh(index, sub, stored, token, token_sha256, body, [], [], []))
    return fresh, duplicates


def _match(
    session: Session, fresh: list[_Fresh], secret: bytes, outcomes: list[Outcome | None]
) -> list[_Fresh]:
    """The records each request names; a record an earlier request of the group erases is
    already erased for a later one. Requests that match nothing get their error."""
    claimed: set[int] = set()
    kept = []
    for f in fresh:
        try:
            f.rows, f.missing = matching(session, f.sub.req, secret)
            if not f.rows:
                what = "subject" if f.sub.req.subject_id is not None else "record ids"
                raise NoMatch(f"no records match the {what}", f.missing)
        except LineageError as exc:
            outcomes[f.index] = exc
            continue
        f.active = [r for r in f.rows if r.state == RecordState.ACTIVE and r.id not in claimed]
        claimed.update(r.id for r in f.active)
        kept.append(f)
    return kept


def _accept(session: Session, fresh: list[_Fresh], secret: bytes, now: dt.datetime) -> None:
    """Steps 1-4 for the requests that matched: persisted, erased, cut, effective."""
    for f in fresh:
        req = f.sub.req
        f.request = DeletionRequestRow(
            public_id=str(uuid.uuid4()),
            idempotency_key=f.stored,
            body_sha256=f.body,
            subject_key=None if req.subject_id is None else subject_key(secret, req.subject_id),
            dataset=req.dataset,
            record_ids=None if req.record_ids is None else list(req.record_ids),
            not_found=list(f.missing) or None,
            reason=req.reason,
            state=RequestState.RECEIVED,
            received_at=now,
            due_at=add_month(now),
            cut=[],
            requested_by=f.sub.principal.actor(),
            status_token_sha256=f.token_sha256,
        )
    session.add_all([f.request for f in fresh if f.request is not None])
    session.flush()
    for f in fresh:
        request = _row(f)
        session.info[audit.ACTOR] = f.sub.principal.actor()
        session.add(DeletionEventRow(request_id=request.id, state=RequestState.RECEIVED, at=now))
        audit.append(
            session,
            "request.received",
            {
                "request": request.public_id,
                "subject_key": request.subject_key,
                "dataset": f.sub.req.dataset,
                "n_record_ids": None if f.sub.req.record_ids is None else len(f.sub.req.record_ids),
            },
            at=now,
        )
        audit.append(
            session,
            "records.erased",
            {
                "request": request.public_id,
                "n_records": len(f.active),
                "content_hmac": sorted(r.content_hmac for r in f.active),
            },
            at=now,
        )
    erasures = [Erasure(_row(f).id, f.active) for f in fresh if f.active]
    if erasures:
        for kind in KINDS.values():
            kind.before_erasure(session, erasures)
    erased = [r for f in fresh for r in f.active]
    _leave_probes(session, erased, secret)
    for f in fresh:
        for r in f.active:
            r.state, r.payload, r.erased_at, r.erased_by = RecordState.ERASED, None, now, _row(f).id
        _row(f).n_records = len(f.active)
    session.flush()
    # Crypto-shredding: the data keys of the erased payloads go in this transaction, so
    # every copy of their ciphertext anywhere is unreadable from its commit on.
    shredded = vault.shred(session, erased)
    principals = {f.sub.principal.ref for f in fresh}
    session.info[audit.ACTOR] = (
        fresh[0].sub.principal.actor() if len(principals) == 1 else SYSTEM.actor()
    )
    _cut_models(session, fresh)
    for f in fresh:
        session.info[audit.ACTOR] = f.sub.principal.actor()
        _effective(session, f, shredded.get(_row(f).id, 0), now)


def _row(f: _Fresh) -> DeletionRequestRow:
    assert f.request is not None
    return f.request


def _effective(session: Session, f: _Fresh, shredded: int, now: dt.datetime) -> None:
    """Step 4 for one request: effective (unlearning, or completed when no model waits)."""
    request, effect = _row(f), f.effect
    request.data_keys_destroyed = shredded
    request.cut = effect.cuts
    request.state = RequestState.EFFECTIVE if effect.jobs else RequestState.COMPLETED
    request.effective_at = now
    if not f.active:
        request.outcome = RequestOutcome.ALREADY_ERASED
    elif not effect.jobs:
        request.outcome = RequestOutcome.NO_MODEL_AFFECTED
    retired = sorted(effect.retired)
    session.add(
        DeletionEventRow(
            request_id=request.id,
            state=RequestState.EFFECTIVE,
            at=now,
            detail={"retired": retired},
        )
    )
    audit.append(
        session,
        "request.effective",
        {
            "request": request.public_id,
            "cut": effect.cuts,
            "retired": retired,
            "data_keys_destroyed": shredded,
        },
        at=now,
    )
    if effect.unlearning:
        # Erased from storage and from every exact model; approximate models still serve
        # weights trained on the records until their unlearned version is published.
        request.state = RequestState.UNLEARNING
        session.add(DeletionEventRow(request_id=request.id, state=RequestState.UNLEARNING, at=now))
        audit.append(session, "request.unlearning", {"request": request.public_id}, at=now)
    if not effect.jobs:
        request.completed_at = now
        session.add(DeletionEventRow(request_id=request.id, state=RequestState.COMPLETED, at=now))
        completed = audit.append(
            session,
            "request.completed",
            {"request": request.public_id, "outcome": request.outcome},
            at=now,
        )
        certificates.issue(session, request, completed)


def _leave_probes(session: Session, records: list[RecordRow], secret: bytes) -> None:
    """Keyed digests of each erased text's shingles on its tombstone, for the erasure scan
    (``unlearn verify --erasure``); the payloads still open at this point."""
    sealed = [(r, r.payload) for r in records if r.payload is not None]
    key = probes.probe_key(secret)
    opened = vault.open_payloads(session, [envelope for _, envelope in sealed])
    for (r, _), payload in zip(sealed, opened, strict=True):
        text = payload.get("text")
        r.probes = probes.text_probes(key, text) if isinstance(text, str) else None


def _cut_models(session: Session, fresh: list[_Fresh]) -> None:
    """Step 3 for every model holding the records, each model once for the group: its
    routing version bumped (shared by the group), placements stamped, its kind's effect
    merged into each request's."""
    owner = {r.id: n for n, f in enumerate(fresh) for r in f.active}
    if not owner:
        return
    by_model: dict[int, list[PlacementRow]] = defaultdict(list)
    pks = sorted(owner)
    for start in range(0, len(pks), 1000):
        chunk = pks[start : start + 1000]
        for p in session.scalars(select(PlacementRow).where(PlacementRow.record_pk.in_(chunk))):
            by_model[p.model_id].append(p)
    for model_id in sorted(by_model):
        model = get_model(session, model_id, lock=True)
        if model.status == ModelState.FAILED:
            continue
        version = model.routing_version + 1
        model.routing_version = version
        deleted: dict[int, dict[int, set[int]]] = defaultdict(lambda: defaultdict(set))
        erased: Counter[tuple[int, int]] = Counter()
        for p in by_model[model_id]:
            p.erased_version = version
            deleted[owner[p.record_pk]][p.shard].add(p.slice)
            erased[p.shard, p.slice] += 1
        for counter in session.scalars(select(SliceRow).where(SliceRow.model_id == model_id)):
            counter.n_erased += erased[counter.shard, counter.slice]
        order = sorted(deleted)
        hits = [Hit(_row(fresh[n]), deleted[n]) for n in order]
        for n, effect in zip(order, kind_of(model).on_deletion(session, model, hits), strict=True):
            total = fresh[n].effect
            total.cuts += effect.cuts
            total.jobs |= effect.jobs
            total.retired += effect.retired
            total.unlearning = total.unlearning or effect.unlearning
