"""Every job row is created here, each with its idempotency key, and linked to the deletion
requests that wait on it. Callers own the transaction (this module only flushes)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sqlalchemy import func, select, update
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
    """The idempotent retrain job for (sequence, cut step, erased set); older open jobs of
    the sequence are superseded (a running one stops at its next heartbeat).

    Retraining is the model's work: no request waits on it, so superseding moves nothing
    and the job costs O(1) rows whatever the backlog. Every erasure in a model bumps its
    routing version, so the version names the model's erased-record set: the key costs O(1)
    however many records were erased before. ``again`` tells a deliberate new attempt (an
    operator's restore after a failure) from the job the key would otherwise name."""
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
    session.execute(
        update(JobRow)
        .where(
            JobRow.sequence_id == sequence_id,
            JobRow.kind == JobKind.RETRAIN,
            JobRow.state.in_(OPEN_JOB_STATES),
            JobRow.id != job.id,
        )
        .values(state=JobState.SUPERSEDED, superseded_by=job.id, finished_at=utcnow())
        .execution_options(synchronize_session="fetch")
    )
    return job.id


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
