"""Read-side views: a record's lineage, a model's status, a deletion request's timeline."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

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
    RoutingRow,
    SequenceRow,
    SequenceStepRow,
)
from service.lineage.errors import Conflict, NotFound


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
                "content_sha256": record.content_sha256,
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


def model_status(s: Session, model: ModelRow) -> dict[str, Any]:
    if model.kind == "approximate":
        return approximate_status(s, model)
    routes = {
        r.shard: r for r in s.scalars(select(RoutingRow).where(RoutingRow.model_id == model.id))
    }
    shards = []
    for shard in range(model.n_shards):
        seqs = list(
            s.scalars(
                select(SequenceRow)
                .where(SequenceRow.model_id == model.id, SequenceRow.shard == shard)
                .order_by(SequenceRow.position)
            )
        )
        route = routes.get(shard)
        served = None if route is None else route.sequence_id
        shards.append(
            {
                "shard": shard,
                "served_sequence": next((q.position for q in seqs if q.id == served), None),
                "served_depth": 0 if route is None else route.depth,
                "sequences": [
                    {
                        "position": q.position,
                        "permutation": list(q.permutation),
                        "valid_depth": q.valid_depth,
                    }
                    for q in seqs
                ],
            }
        )
    return {
        "id": model.id,
        "kind": model.kind,
        "status": model.status,
        "error": model.error,
        "routing_version": model.routing_version,
        "n_shards": model.n_shards,
        "n_slices": int(model.config["n_slices"]),
        "budget": model.budget,
        "selection": model.selection,
        "config_hash": model.config_hash,
        "shards": shards,
        "jobs": [job_view(j) for j in _open_jobs(s, model)],
    }


def approximate_status(s: Session, model: ModelRow) -> dict[str, Any]:
    from service.approximate.versions import version_view, versions

    rows = versions(s, model.id)
    live = next((v.version for v in rows if v.state == "live"), None)
    return {
        "id": model.id,
        "kind": "approximate",
        "status": model.status,
        "error": model.error,
        "routing_version": model.routing_version,
        "family": model.family,
        "method": model.method,
        "config": dict(model.config),
        "config_hash": model.config_hash,
        "live_version": live,
        "versions": [version_view(v) for v in rows],
        "jobs": [job_view(j) for j in _open_jobs(s, model)],
    }


def _open_jobs(s: Session, model: ModelRow) -> list[JobRow]:
    return list(
        s.scalars(
            select(JobRow)
            .where(JobRow.model_id == model.id, JobRow.state.in_(("queued", "running")))
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


def request_view(s: Session, req: DeletionRequestRow) -> dict[str, Any]:
    from service.approximate.versions import unlearn_attempts

    events = s.scalars(
        select(DeletionEventRow)
        .where(DeletionEventRow.request_id == req.id)
        .order_by(DeletionEventRow.id)
    )
    jobs = list(
        s.scalars(
            select(JobRow)
            .join(DeletionJobRow, DeletionJobRow.job_id == JobRow.id)
            .where(DeletionJobRow.request_id == req.id)
            .order_by(JobRow.id)
        )
    )
    unlearning = unlearn_attempts(s, req.id)
    return {
        "id": req.public_id,
        "state": req.state,
        "method": _method(unlearning),
        "outcome": req.outcome,
        "reason": req.reason,
        "dataset": req.dataset,
        "record_ids": req.record_ids,
        "subject": req.subject_key is not None,
        "n_records": req.n_records,
        "cut": list(req.cut),
        "received_at": req.received_at.isoformat(),
        "effective_at": None if req.effective_at is None else req.effective_at.isoformat(),
        "completed_at": None if req.completed_at is None else req.completed_at.isoformat(),
        "due_at": req.due_at.isoformat(),
        "timeline": [{"state": e.state, "at": e.at.isoformat()} for e in events],
        "jobs": [job_view(j) for j in jobs],
        "unlearning": unlearning,
    }


def _method(unlearning: list[dict[str, Any]]) -> str:
    """``approximate`` when a version that is (or was) served, or one still being made, comes
    from an approximate method; rejected versions do not count."""
    counted = [u for u in unlearning if (u["version"] or {}).get("state") != "rejected"]
    return "approximate" if any(not u["exact"] for u in counted) else "exact"


def get_request(s: Session, public_id: str) -> DeletionRequestRow:
    req = s.scalar(select(DeletionRequestRow).where(DeletionRequestRow.public_id == public_id))
    if req is None:
        raise NotFound(f"no deletion request {public_id!r}")
    return req


def certificate_document(s: Session, public_id: str) -> str:
    """The signed certificate of a completed request, exactly as issued."""
    from service.audit.certificates import get_certificate

    req = get_request(s, public_id)
    if req.state != "completed":
        raise Conflict(
            f"request {public_id} is {req.state}: its certificate is issued when it completes"
        )
    cert = get_certificate(s, req.id)
    if cert is None:
        raise NotFound(f"request {public_id} completed before certificates were issued")
    return cert.document
