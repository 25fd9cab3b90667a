"""Accepting a deletion request: one transaction erases, cuts, reroutes and records.

Inside a single write transaction:

1. the request is persisted (or an earlier one with the same ``Idempotency-Key`` returned);
2. the matching active records are tombstoned: payload nulled, ``erased_by`` set;
3. for every model holding them (model row locked), the routing version is bumped to ``v``,
   their placements get ``erased_version = v``, every live checkpoint trained on an affected
   slice is retired, each affected sequence is cut to its clean prefix, a retrain job is
   created for it (superseding any older job of that sequence, whose requests move to the new
   one) and every affected shard is re-routed;
4. the request becomes ``effective`` (or ``completed`` when no retraining is needed).

Files follow the commit: the caller deletes the retired checkpoint files
(``Accepted.retired``); the retrain job drops the erased rows from the shard's activation
cache before it trains (``service.jobs.shards.shard_cache``).
"""

from __future__ import annotations

import calendar
import datetime as dt
import hashlib
import uuid
from collections import defaultdict
from dataclasses import dataclass

from sqlalchemy import and_, select, text
from sqlalchemy.orm import Session

from models.config import canonical_json
from service.approximate.deletion import quarantine, queue_unlearning
from service.audit import certificates
from service.audit import log as audit
from service.db.base import utcnow
from service.db.tables import (
    CheckpointRow,
    DatasetRow,
    DeletionEventRow,
    DeletionJobRow,
    DeletionRequestRow,
    JobRow,
    ModelRow,
    PlacementRow,
    RecordRow,
    SliceRow,
)
from service.lineage.errors import Conflict, NotFound, Unprocessable
from service.lineage.publish import trained_steps
from service.lineage.registry import get_model
from service.lineage.routing import refresh_routing, served_depths, shard_sequences
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


def _replay(session: Session, key: str, body: str) -> DeletionRequestRow | None:
    if not _advisory_lock(session, key):
        raise Conflict(f"a request with Idempotency-Key {key!r} is still in flight")
    row = session.scalar(
        select(DeletionRequestRow).where(DeletionRequestRow.idempotency_key == key)
    )
    if row is not None and row.body_sha256 != body:
        raise Unprocessable(f"Idempotency-Key {key!r} was used with a different body")
    return row


def _matching(
    session: Session, req: DeletionInput, secret: bytes
) -> tuple[list[RecordRow], list[str]]:
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


def accept_deletion(
    session: Session,
    req: DeletionInput,
    *,
    secret: bytes,
    idempotency_key: str | None = None,
    now: dt.datetime | None = None,
) -> Accepted:
    """Run steps 1-4 above in ``session``'s transaction (the caller commits)."""
    body = req.body_sha256()
    if idempotency_key is not None:
        existing = _replay(session, idempotency_key, body)
        if existing is not None:
            return Accepted(existing, replayed=True)
    now = utcnow() if now is None else now
    rows, not_found = _matching(session, req, secret)
    if not rows:
        what = "subject" if req.subject_id is not None else "record ids"
        raise NoMatch(f"no records match the {what}", not_found)
    request = DeletionRequestRow(
        public_id=str(uuid.uuid4()),
        idempotency_key=idempotency_key,
        body_sha256=body,
        subject_key=None if req.subject_id is None else subject_key(secret, req.subject_id),
        dataset=req.dataset,
        record_ids=None if req.record_ids is None else list(req.record_ids),
        reason=req.reason,
        state="received",
        received_at=now,
        due_at=add_month(now),
        cut=[],
    )
    session.add(request)
    session.flush()
    session.add(DeletionEventRow(request_id=request.id, state="received", at=now))
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
    active = [r for r in rows if r.state == "active"]
    audit.append(
        session,
        "records.erased",
        {
            "request": request.public_id,
            "n_records": len(active),
            "content_sha256": sorted(r.content_sha256 for r in active),
        },
        at=now,
    )
    quarantine(session, request.id, active)  # what approximate models must still unlearn
    for r in active:
        r.state, r.payload, r.erased_at, r.erased_by = "erased", None, now, request.id
    request.n_records = len(active)
    session.flush()
    cuts, jobs, retired, unlearning = _cut_models(session, request, [r.id for r in active])
    request.cut = cuts
    request.state = "effective" if jobs else "completed"
    request.effective_at = now
    if not active:
        request.outcome = "already_erased"
    elif not jobs:
        request.outcome = "no_model_affected"
    session.add(
        DeletionEventRow(
            request_id=request.id, state="effective", at=now, detail={"retired": sorted(retired)}
        )
    )
    audit.append(
        session,
        "request.effective",
        {"request": request.public_id, "cut": cuts, "retired": sorted(retired)},
        at=now,
    )
    if unlearning:
        # Erased from storage and from every exact model; approximate models still serve
        # weights trained on the records until their unlearned version is published.
        request.state = "unlearning"
        session.add(DeletionEventRow(request_id=request.id, state="unlearning", at=now))
        audit.append(session, "request.unlearning", {"request": request.public_id}, at=now)
    if not jobs:
        request.completed_at = now
        session.add(DeletionEventRow(request_id=request.id, state="completed", at=now))
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
        not_found=tuple(not_found),
        retired=tuple(retired),
    )


def _cut_models(
    session: Session, request: DeletionRequestRow, record_pks: list[int]
) -> tuple[list[dict[str, object]], set[int], list[str], bool]:
    """Step 3 for every model holding the records; returns (cuts, job ids, retired shas,
    whether an approximate model must unlearn)."""
    if not record_pks:
        return [], set(), [], False
    by_model: dict[int, list[PlacementRow]] = defaultdict(list)
    for p in session.scalars(select(PlacementRow).where(PlacementRow.record_pk.in_(record_pks))):
        by_model[p.model_id].append(p)
    cuts: list[dict[str, object]] = []
    jobs: set[int] = set()
    retired: list[str] = []
    unlearning = False
    for model_id in sorted(by_model):
        model = get_model(session, model_id, lock=True)
        if model.status == "failed":
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
        if model.kind == "approximate":
            jobs.add(queue_unlearning(session, model, request))
            unlearning = True
            continue
        for shard, slices in sorted(deleted.items()):
            retired += _retire(session, model_id, shard, slices)
            for seq in shard_sequences(session, model_id, shard):
                hit = [i for i, s in enumerate(seq.permutation) if s in slices]
                if not hit:
                    continue
                if not trained_steps(session, seq.id):
                    continue  # the train job has not published this shard yet
                before, seq.valid_depth = seq.valid_depth, min(seq.valid_depth, hit[0])
                job = _retrain_job(session, model, seq.id, seq.valid_depth + 1, request)
                jobs.add(job)
                cuts.append(
                    {
                        "model": model_id,
                        "shard": shard,
                        "sequence": seq.position,
                        "from_depth": before,
                        "to_depth": seq.valid_depth,
                        "job": job,
                    }
                )
        refresh_routing(session, model, deleted)
        audit.append(
            session,
            "routing.published",
            {
                "model": model_id,
                "routing_version": version,
                "cause": request.public_id,
                "served": served_depths(session, model_id),
            },
        )
        if model.status in ("pending", "training"):
            train = session.scalar(select(JobRow).where(JobRow.key == f"train:{model_id}"))
            if train is not None and train.state in ("queued", "running"):
                _link(session, request.id, train.id)
                jobs.add(train.id)
    return cuts, jobs, retired, unlearning


def _retire(session: Session, model_id: int, shard: int, slices: set[int]) -> list[str]:
    """Every live checkpoint of the shard trained on one of ``slices`` is tainted now."""
    shas = []
    for ckpt in session.scalars(
        select(CheckpointRow).where(
            CheckpointRow.model_id == model_id,
            CheckpointRow.shard == shard,
            CheckpointRow.state == "live",
        )
    ):
        if slices.intersection(ckpt.slice_ids):
            ckpt.state, ckpt.retired_at = "retired", utcnow()
            shas.append(ckpt.sha256)
    return shas


def _link(session: Session, request_id: int, job_id: int) -> None:
    if session.get(DeletionJobRow, (request_id, job_id)) is None:
        session.add(DeletionJobRow(request_id=request_id, job_id=job_id))


def _retrain_job(
    session: Session,
    model: ModelRow,
    sequence_id: int,
    from_step: int,
    request: DeletionRequestRow | None,
) -> int:
    """The idempotent retrain job for (sequence, cut step, erased set); older pending jobs
    of the sequence are superseded and their requests carried over.

    Every erasure in a model bumps its routing version, so the version names the model's
    erased-record set: the key costs O(1) however many records were erased before."""
    key = f"retrain:{sequence_id}:{from_step}:v{model.routing_version}"
    job = session.scalar(select(JobRow).where(JobRow.key == key))
    if job is None:
        job = JobRow(
            kind="retrain",
            key=key,
            model_id=model.id,
            sequence_id=sequence_id,
            from_step=from_step,
            state="queued",
        )
        session.add(job)
        session.flush()
    older = list(
        session.scalars(
            select(JobRow).where(
                JobRow.sequence_id == sequence_id,
                JobRow.kind == "retrain",
                JobRow.state.in_(("queued", "running")),
                JobRow.id != job.id,
            )
        )
    )
    for old in older:
        old.state, old.superseded_by, old.finished_at = "superseded", job.id, utcnow()
        for link in session.scalars(select(DeletionJobRow).where(DeletionJobRow.job_id == old.id)):
            _link(session, link.request_id, job.id)
    if request is not None:
        _link(session, request.id, job.id)
    session.flush()
    return job.id


def ensure_retrain(
    session: Session, model: ModelRow, sequence_id: int, from_step: int, shard: int
) -> int:
    """A retrain job for a sequence found unclean at publish time, linked to the requests
    that erased its records (used when deletions arrive while a job trains)."""
    job_id = _retrain_job(session, model, sequence_id, from_step, None)
    requesters = session.scalars(
        select(RecordRow.erased_by)
        .join(PlacementRow, PlacementRow.record_pk == RecordRow.id)
        .where(
            and_(
                PlacementRow.model_id == model.id,
                PlacementRow.shard == shard,
                PlacementRow.erased_version.is_not(None),
                RecordRow.erased_by.is_not(None),
            )
        )
        .distinct()
    )
    for rid in requesters:
        assert rid is not None
        state = session.scalar(select(DeletionRequestRow.state).where(DeletionRequestRow.id == rid))
        if state not in ("completed", "failed"):
            _link(session, rid, job_id)
    return job_id
