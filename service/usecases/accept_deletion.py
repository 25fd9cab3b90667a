"""Accepting a deletion request: one transaction erases, cuts, reroutes and records.

Inside a single write transaction:

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
from collections import defaultdict

from sqlalchemy import select
from sqlalchemy.orm import Session

from service.access import tokens
from service.access.principal import Principal
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
from service.kind import DeletionEffect
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
from service.lineage.registry import get_model
from service.states import ModelState, RecordState, RequestOutcome, RequestState
from sharding import subject_key

__all__ = ["Accepted", "DeletionInput", "NoMatch", "accept_deletion"]


def accept_deletion(
    session: Session,
    req: DeletionInput,
    *,
    secret: bytes,
    principal: Principal,
    idempotency_key: str | None = None,
    now: dt.datetime | None = None,
) -> Accepted:
    """Run steps 1-4 above in ``session``'s transaction (the caller commits)."""
    body = req.body_sha256()
    stored = None if idempotency_key is None else scoped_key(secret, principal.ref, idempotency_key)
    token, token_sha256 = tokens.new_status_token()
    if stored is not None:
        existing = replay(session, stored, body, idempotency_key)
        if existing is not None:
            existing.status_token_sha256 = token_sha256
            not_found = tuple(existing.not_found or ())
            return Accepted(existing, replayed=True, not_found=not_found, status_token=token)
    now = utcnow() if now is None else now
    # Deletions serialise before they match (they would at their first event anyway): two at
    # once of one subject must not both see, and shred, the same data key.
    audit.lock(session)
    rows, missing = matching(session, req, secret)
    if not rows:
        what = "subject" if req.subject_id is not None else "record ids"
        raise NoMatch(f"no records match the {what}", missing)
    request = DeletionRequestRow(
        public_id=str(uuid.uuid4()),
        idempotency_key=stored,
        body_sha256=body,
        subject_key=None if req.subject_id is None else subject_key(secret, req.subject_id),
        dataset=req.dataset,
        record_ids=None if req.record_ids is None else list(req.record_ids),
        not_found=list(missing) or None,
        reason=req.reason,
        state=RequestState.RECEIVED,
        received_at=now,
        due_at=add_month(now),
        cut=[],
        requested_by=principal.actor(),
        status_token_sha256=token_sha256,
    )
    session.add(request)
    session.flush()
    session.add(DeletionEventRow(request_id=request.id, state=RequestState.RECEIVED, at=now))
    audit.append(
        session,
        "request.received",
        {
            "request": request.public_id,
            "subject_key": request.subject_key,
            "dataset": req.dataset,
            "n_record_ids": None if req.record_ids is None else len(req.record_ids),
        },
        at=now,
    )
    active = [r for r in rows if r.state == RecordState.ACTIVE]
    audit.append(
        session,
        "records.erased",
        {
            "request": request.public_id,
            "n_records": len(active),
            "content_hmac": sorted(r.content_hmac for r in active),
        },
        at=now,
    )
    if active:
        for kind in KINDS.values():
            kind.before_erasure(session, request.id, active)
    _leave_probes(session, active, secret)
    for r in active:
        r.state, r.payload, r.erased_at, r.erased_by = RecordState.ERASED, None, now, request.id
    request.n_records = len(active)
    session.flush()
    # Crypto-shredding: the data keys of the erased payloads go in this transaction, so
    # every copy of their ciphertext anywhere is unreadable from its commit on.
    shredded = vault.shred(session, active)
    request.data_keys_destroyed = shredded
    effect = _cut_models(session, request, [r.id for r in active])
    request.cut = effect.cuts
    request.state = RequestState.EFFECTIVE if effect.jobs else RequestState.COMPLETED
    request.effective_at = now
    if not active:
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
    session.flush()
    return Accepted(
        request,
        replayed=False,
        not_found=tuple(missing),
        retired=tuple(effect.retired),
        status_token=token,
    )


def _leave_probes(session: Session, records: list[RecordRow], secret: bytes) -> None:
    """Keyed digests of each erased text's shingles on its tombstone, for the erasure scan
    (``unlearn verify --erasure``); the payloads still open at this point."""
    sealed = [(r, r.payload) for r in records if r.payload is not None]
    key = probes.probe_key(secret)
    opened = vault.open_payloads(session, [envelope for _, envelope in sealed])
    for (r, _), payload in zip(sealed, opened, strict=True):
        text = payload.get("text")
        r.probes = probes.text_probes(key, text) if isinstance(text, str) else None


def _cut_models(
    session: Session, request: DeletionRequestRow, record_pks: list[int]
) -> DeletionEffect:
    """Step 3 for every model holding the records, merged over the models."""
    total = DeletionEffect()
    if not record_pks:
        return total
    by_model: dict[int, list[PlacementRow]] = defaultdict(list)
    for p in session.scalars(select(PlacementRow).where(PlacementRow.record_pk.in_(record_pks))):
        by_model[p.model_id].append(p)
    for model_id in sorted(by_model):
        model = get_model(session, model_id, lock=True)
        if model.status == ModelState.FAILED:
            continue
        version = model.routing_version + 1
        model.routing_version = version
        deleted: dict[int, set[int]] = defaultdict(set)
        for p in by_model[model_id]:
            p.erased_version = version
            deleted[p.shard].add(p.slice)
            counter = session.get(SliceRow, (model_id, p.shard, p.slice))
            assert counter is not None
            counter.n_erased += 1
        effect = kind_of(model).on_deletion(session, model, request, deleted)
        total.cuts += effect.cuts
        total.jobs |= effect.jobs
        total.retired += effect.retired
        total.unlearning = total.unlearning or effect.unlearning
    return total
