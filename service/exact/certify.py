"""An S3T model's part of a deletion certificate: config and backbone hashes, routing
versions, the checkpoints the request cut, the purge of the erased rows from the model's
activation caches, and the model work the cuts started.

A request completes when its records are erased, not when the model is retrained: so the
certificate states each cut sequence's depth when it was signed and names the retrain job
that restores it (``model_work``). That job's own audit events (``job.finished`` with its
evidence, the from-scratch check when it ran, or ``job.failed``) report the outcome."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from service.db.tables import (
    CheckpointRow,
    DeletionEventRow,
    DeletionJobRow,
    DeletionRequestRow,
    JobRow,
    ModelRow,
    SequenceRow,
)
from service.lineage.publish import sequence_chain
from service.states import JobKind, JobState, RequestState


def exact_entry(
    s: Session, req: DeletionRequestRow, model: ModelRow, erased_version: int | None
) -> dict[str, Any]:
    return {
        "model": model.id,
        "config_sha256": model.config_hash,
        "backbone_sha256": model.backbone_sha256,
        "routing_version_before": None if erased_version is None else erased_version - 1,
        "routing_version_after": model.routing_version,
        "checkpoints_cut": sorted(c.sha256 for c in _retired(s, req) if c.model_id == model.id),
        "sequences": [_replacement(s, model, c) for c in req.cut if int(c["model"]) == model.id],
        "activation_cache_purge": _cache_purge(s, req, model.id),
        "model_work": _model_work(s, req, model.id),
    }


def _retired(s: Session, req: DeletionRequestRow) -> list[CheckpointRow]:
    detail = s.scalar(
        select(DeletionEventRow.detail).where(
            DeletionEventRow.request_id == req.id,
            DeletionEventRow.state == RequestState.EFFECTIVE,
        )
    )
    shas = list((detail or {}).get("retired", []))
    if not shas:
        return []
    return list(s.scalars(select(CheckpointRow).where(CheckpointRow.sha256.in_(shas))))


def _replacement(s: Session, model: ModelRow, cut: Mapping[str, Any]) -> dict[str, Any]:
    seq = s.scalar(
        select(SequenceRow).where(
            SequenceRow.model_id == model.id,
            SequenceRow.shard == cut["shard"],
            SequenceRow.position == cut["sequence"],
        )
    )
    assert seq is not None
    chain = sequence_chain(s, seq, seq.valid_depth)
    return {
        "shard": cut["shard"],
        "sequence": cut["sequence"],
        "cut_to_depth": cut["to_depth"],
        "depth_now": seq.valid_depth,
        "replaced_by": [c.sha256 for c in chain[int(cut["to_depth"]) :]],
        "restored_by_job": cut["job"],
    }


def _done_jobs(s: Session, req: DeletionRequestRow, model_id: int) -> list[JobRow]:
    return list(
        s.scalars(
            select(JobRow)
            .join(DeletionJobRow, DeletionJobRow.job_id == JobRow.id)
            .where(
                DeletionJobRow.request_id == req.id,
                JobRow.model_id == model_id,
                JobRow.state == JobState.DONE,
            )
            .order_by(JobRow.id)
        )
    )


def _cache_purge(s: Session, req: DeletionRequestRow, model_id: int) -> list[dict[str, Any]]:
    """The purge jobs that took the erased rows out of the model's activation caches."""
    return [
        {
            "job": job.id,
            "finished_at": None if job.finished_at is None else job.finished_at.isoformat(),
            "cache_rows_removed": (job.evidence or {}).get("cache_rows_removed", 0),
        }
        for job in _done_jobs(s, req, model_id)
        if job.kind == JobKind.PURGE
    ]


def _model_work(s: Session, req: DeletionRequestRow, model_id: int) -> list[dict[str, Any]]:
    """The retrain jobs this request's cuts created, as they stood at signing; each one's
    outcome is in the audit chain under its id (``job.finished`` / ``job.failed``)."""
    ids = sorted({int(c["job"]) for c in req.cut if int(c["model"]) == model_id})
    jobs: list[JobRow] = (
        list(s.scalars(select(JobRow).where(JobRow.id.in_(ids)).order_by(JobRow.id))) if ids else []
    )
    return [
        {
            "job": job.id,
            "kind": job.kind,
            "from_step": job.from_step,
            "state_at_signing": job.state,
            "superseded_by": job.superseded_by,
        }
        for job in jobs
    ]
