"""The few reads the application layer needs that the lineage read side does not offer yet:
a page of requests, every model, the queued jobs of a model or request, what the demo and
its curl examples point at. Each is one SELECT in the caller's session."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from service.db.tables import (
    AuditEventRow,
    DatasetRow,
    DeletionJobRow,
    DeletionRequestRow,
    JobRow,
    ModelRow,
    RecordRow,
)
from service.states import JobState, ModelState, RecordState


def request_rows(
    s: Session,
    *,
    state: str | None = None,
    received_after: dt.datetime | None = None,
    received_before: dt.datetime | None = None,
    before_id: int | None = None,
    limit: int,
) -> list[DeletionRequestRow]:
    """Newest first; ``before_id`` is the keyset cursor (rows with a smaller id)."""
    query = select(DeletionRequestRow).order_by(DeletionRequestRow.id.desc())
    if state is not None:
        query = query.where(DeletionRequestRow.state == state)
    if received_after is not None:
        query = query.where(DeletionRequestRow.received_at >= received_after)
    if received_before is not None:
        query = query.where(DeletionRequestRow.received_at < received_before)
    if before_id is not None:
        query = query.where(DeletionRequestRow.id < before_id)
    return list(s.scalars(query.limit(limit)))


def all_models(s: Session) -> list[ModelRow]:
    return list(s.scalars(select(ModelRow)))


def model_state(s: Session, model_id: int) -> str | None:
    return s.scalar(select(ModelRow.status).where(ModelRow.id == model_id))


def queued_jobs(s: Session, *, model_id: int) -> list[int]:
    return list(
        s.scalars(
            select(JobRow.id).where(JobRow.model_id == model_id, JobRow.state == JobState.QUEUED)
        )
    )


def next_queued_job(s: Session, *, request_id: str) -> int | None:
    """The oldest queued job of the request with this public id."""
    return s.scalar(
        select(JobRow.id)
        .join(DeletionJobRow, DeletionJobRow.job_id == JobRow.id)
        .join(DeletionRequestRow, DeletionRequestRow.id == DeletionJobRow.request_id)
        .where(DeletionRequestRow.public_id == request_id, JobRow.state == JobState.QUEUED)
        .order_by(JobRow.id)
        .limit(1)
    )


def has_ready_model(s: Session) -> bool:
    return (
        s.scalar(select(ModelRow.id).where(ModelRow.status == ModelState.READY).limit(1))
        is not None
    )


def has_dataset(s: Session, name: str) -> bool:
    return s.scalar(select(DatasetRow.id).where(DatasetRow.name == name)) is not None


def newest_model(s: Session) -> ModelRow | None:
    return s.scalar(select(ModelRow).order_by(ModelRow.id.desc()).limit(1))


def first_active_record(s: Session, dataset_id: int) -> str | None:
    return s.scalar(
        select(RecordRow.record_id)
        .where(RecordRow.dataset_id == dataset_id, RecordRow.state == RecordState.ACTIVE)
        .order_by(RecordRow.id)
        .limit(1)
    )


@dataclass(frozen=True)
class HeldOutScore:
    """A ``model.evaluated`` event: what the served ensemble scored on the held-out set."""

    routing_version: int
    dataset: str
    correct: int
    total: int

    @property
    def accuracy(self) -> float | None:
        return None if self.total == 0 else self.correct / self.total


def last_held_out_score(s: Session, model_id: int) -> HeldOutScore | None:
    """The model's latest held-out evaluation (``service.jobs.evaluate``), if any."""
    events = s.scalars(
        select(AuditEventRow.data)
        .where(AuditEventRow.kind == "model.evaluated")
        .order_by(AuditEventRow.seq.desc())
    )
    for data in events:
        if int(data["model"]) == model_id:
            return HeldOutScore(
                int(data["routing_version"]),
                str(data.get("dataset", "")),
                int(data["n_correct"]),
                int(data["n_total"]),
            )
    return None
