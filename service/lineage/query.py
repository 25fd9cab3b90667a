"""Read-side lineage: a record's lineage, a request by id, job views (kind-independent; the
model and request views that read the kinds are in ``service.usecases.views``)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from service.db.tables import (
    CheckpointRow,
    DatasetRow,
    DeletionRequestRow,
    JobRow,
    ModelRow,
    PlacementRow,
    RecordRow,
    RoutingRow,
    SequenceStepRow,
)
from service.lineage.errors import NotFound
from service.states import OPEN_JOB_STATES


def record_lineage(s: Session, record_id: str, dataset: str | None = None) -> list[dict[str, Any]]:
    """Where a record sits in every model and which checkpoints it shaped (and whether one of
    those is served now)."""
    query = select(RecordRow, DatasetRow.name).join(
        DatasetRow, DatasetRow.id == RecordRow.dataset_id
    )
    query = query.where(RecordRow.record_id == record_id)
    if dataset is not None:
        query = query.where(DatasetRow.name == dataset)
    found = s.execute(query).all()
    if not found:
        raise NotFound(f"no record {record_id!r}" + (f" in {dataset!r}" if dataset else ""))
    served = _served_checkpoints(s)
    out = []
    for record, ds_name in found:
        models = []
        for p in s.scalars(select(PlacementRow).where(PlacementRow.record_pk == record.id)):
            ckpts = s.scalars(
                select(CheckpointRow)
                .where(CheckpointRow.model_id == p.model_id, CheckpointRow.shard == p.shard)
                .order_by(CheckpointRow.id)
            )
            shaped = [
                {
                    "sha256": c.sha256,
                    "step": c.step,
                    "slices": list(c.slice_ids),
                    "state": c.state,
                    "served": c.id in served,
                }
                for c in ckpts
                if p.slice in c.slice_ids
                and (p.erased_version is None or p.erased_version > c.data_version)
            ]
            models.append(
                {
                    "model": p.model_id,
                    "shard": p.shard,
                    "slice": p.slice,
                    "erased_version": p.erased_version,
                    "checkpoints": shaped,
                }
            )
        out.append(
            {
                "dataset": ds_name,
                "record_id": record.record_id,
                "state": record.state,
                "content_hmac": record.content_hmac,
                "erased_at": None if record.erased_at is None else record.erased_at.isoformat(),
                "models": models,
            }
        )
    return out


def _served_checkpoints(s: Session) -> set[int]:
    rows = s.execute(
        select(SequenceStepRow.checkpoint_id)
        .join(RoutingRow, RoutingRow.sequence_id == SequenceStepRow.sequence_id)
        .where(SequenceStepRow.step <= RoutingRow.depth)
    )
    return {r for (r,) in rows}


def open_jobs(s: Session, model: ModelRow) -> list[JobRow]:
    """The model's queued and running jobs, oldest first."""
    return list(
        s.scalars(
            select(JobRow)
            .where(JobRow.model_id == model.id, JobRow.state.in_(OPEN_JOB_STATES))
            .order_by(JobRow.id)
        )
    )


def job_view(job: JobRow) -> dict[str, Any]:
    return {
        "id": job.id,
        "kind": job.kind,
        "state": job.state,
        "sequence_id": job.sequence_id,
        "from_step": job.from_step,
        "params": job.params,
        "attempts": job.attempts,
        "progress": {"done": job.progress_done, "total": job.progress_total},
        "error": None if job.error is None else job.error.strip().splitlines()[-1],
    }


def get_request(s: Session, public_id: str) -> DeletionRequestRow:
    req = s.scalar(select(DeletionRequestRow).where(DeletionRequestRow.public_id == public_id))
    if req is None:
        raise NotFound(f"no deletion request {public_id!r}")
    return req
