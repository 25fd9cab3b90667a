"""Every job row is created here, each with its idempotency key, and linked to the deletion
requests that wait on it. Callers own the transaction (this module only flushes)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from service.db.base import utcnow
from service.db.tables import (
    DeletionJobRow,
    DeletionRequestRow,
    JobRow,
    ModelRow,
    SequenceRow,
)
from service.states import OPEN_JOB_STATES, JobKind, JobState


def _train_key(model_id: int) -> str:
    return f"train:{model_id}"


def train_job(session: Session, model_id: int) -> JobRow:
    """The ``train`` job of a new S3T model (every shard)."""
    job = JobRow(kind=JobKind.TRAIN, key=_train_key(model_id), model_id=model_id)
    session.add(job)
    return job


def open_train_job(session: Session, model_id: int) -> JobRow | None:
    """The model's ``train`` job while it is queued or running."""
    job = session.scalar(select(JobRow).where(JobRow.key == _train_key(model_id)))
    return job if job is not None and job.state in OPEN_JOB_STATES else None


def fit_job(session: Session, model_id: int) -> JobRow:
    """The ``fit`` job of a new approximate model (its version 1)."""
    job = JobRow(kind=JobKind.FIT, key=f"fit:{model_id}", model_id=model_id)
    session.add(job)
    return job


def link(session: Session, request_id: int, job_id: int) -> None:
    """The request waits on the job (idempotent)."""
    if session.get(DeletionJobRow, (request_id, job_id)) is None:
        session.add(DeletionJobRow(request_id=request_id, job_id=job_id))


def link_new(session: Session, request_ids: Iterable[int], job_id: int) -> None:
    """Requests created in this transaction wait on the job (none can be linked yet)."""
    session.add_all(DeletionJobRow(request_id=r, job_id=job_id) for r in request_ids)


def unlearn_job(
    session: Session,
    model: ModelRow,
    request: DeletionRequestRow,
    method: str | None,
    overrides: dict[str, Any],
) -> JobRow:
    """A new ``unlearn`` job of ``model`` for ``request`` (the n-th for the pair), linked."""
    n = (
        session.scalar(
            select(func.count())
            .select_from(JobRow)
            .join(DeletionJobRow, DeletionJobRow.job_id == JobRow.id)
            .where(
                DeletionJobRow.request_id == request.id,
                JobRow.model_id == model.id,
                JobRow.kind == JobKind.UNLEARN,
            )
        )
        or 0
    )
    job = JobRow(
        kind=JobKind.UNLEARN,
        key=f"unlearn:{model.id}:{request.id}:{n + 1}",
        model_id=model.id,
        state=JobState.QUEUED,
        params={"method": method, "overrides": dict(overrides)},
    )
    session.add(job)
    session.flush()
    link(session, request.id, job.id)
    return job


def purge_job(session: Session, model: ModelRow, request: DeletionRequestRow) -> int:
    """The ``purge`` job that drops the request's records from ``model``'s activation caches,
    linked: a queued one of the model is reused (it reads the erased set when it runs), else a
    new one. The queued row is locked, so a worker cannot claim it and read the erased set
    before this transaction commits."""
    job = session.scalar(
        select(JobRow)
        .where(
            JobRow.model_id == model.id,
            JobRow.kind == JobKind.PURGE,
            JobRow.state == JobState.QUEUED,
        )
        .order_by(JobRow.id)
        .limit(1)
        .with_for_update()
    )
    if job is None:
        job = JobRow(
            kind=JobKind.PURGE,
            key=f"purge:{model.id}:v{model.routing_version}",
            model_id=model.id,
            state=JobState.QUEUED,
        )
        session.add(job)
        session.flush()
    link(session, request.id, job.id)
    return job.id


def retrain_job(
    session: Session, model: ModelRow, sequence_id: int, from_step: int, *, again: str = ""
) -> int:
    """The retrain job that rebuilds the sequence from ``from_step``; the sequence's other
    open jobs are superseded (a running one stops at its next heartbeat).

    Deletions that hit a sequence before its rebuild starts share one job: a queued job that
    no attempt has touched yet (it reads the records when it runs) and starts at or before
    ``from_step`` is kept (its row locked, so no worker claims it before this transaction
    commits). Otherwise a new job is made, keyed by the sequence, the cut step and the
    routing version (which names the model's erased-record set), so the key costs O(1)
    however many records were erased before. Retraining is the model's work: no request
    waits on it, and superseding moves nothing. ``again`` asks for a new job in any case (an
    operator's restore after a failure)."""
    open_jobs = list(
        session.scalars(
            select(JobRow)
            .where(
                JobRow.sequence_id == sequence_id,
                JobRow.kind == JobKind.RETRAIN,
                JobRow.state.in_(OPEN_JOB_STATES),
            )
            .order_by(JobRow.id)
            .with_for_update()
        )
    )
    job = None if again else next((j for j in open_jobs if _untouched(j, from_step)), None)
    if job is None:
        key = f"retrain:{sequence_id}:{from_step}:v{model.routing_version}{again}"
        job = session.scalar(select(JobRow).where(JobRow.key == key))
    if job is None:
        job = JobRow(
            kind=JobKind.RETRAIN,
            key=key,
            model_id=model.id,
            sequence_id=sequence_id,
            from_step=from_step,
            state=JobState.QUEUED,
        )
        session.add(job)
        session.flush()
    now = utcnow()
    for other in open_jobs:
        if other.id != job.id:
            other.state, other.superseded_by, other.finished_at = JobState.SUPERSEDED, job.id, now
    return job.id


def _untouched(job: JobRow, from_step: int) -> bool:
    """A queued retrain no attempt has started (no recorded steps: ``service.jobs.resume``)
    that rebuilds at least the steps from ``from_step``."""
    return (
        job.state == JobState.QUEUED
        and not job.attempts
        and not (job.params or {}).get("steps")
        and job.from_step is not None
        and job.from_step <= from_step
    )


def running_retrains(session: Session, model_id: int, shards: Iterable[int]) -> list[JobRow]:
    """The model's retrain jobs running now on ``shards``: each read its shard's records
    (its last step trains on every slice) from a snapshot taken before this transaction."""
    return list(
        session.scalars(
            select(JobRow)
            .join(SequenceRow, SequenceRow.id == JobRow.sequence_id)
            .where(
                JobRow.model_id == model_id,
                JobRow.kind == JobKind.RETRAIN,
                JobRow.state == JobState.RUNNING,
                SequenceRow.shard.in_(list(shards)),
            )
            .order_by(JobRow.id)
        )
    )
