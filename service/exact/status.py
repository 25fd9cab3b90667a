"""An S3T model's status view: every shard's served sequence, depth and health, every
sequence's valid depth, the open jobs and the model work that failed.

Health is derived, never stored: a trained model is ``ready`` while every shard serves its
full depth, ``degraded`` while some shard serves less (a deletion cut it and its retrain has
not published yet, or failed), and ``unavailable`` when no shard can serve at all. The stored
lifecycle states (``pending``, ``training``, ``failed``) are reported as they are.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from service.db.tables import CheckpointRow, JobRow, ModelRow, RoutingRow, SequenceRow
from service.db.tables import SequenceStepRow as StepRow
from service.lineage.query import job_view, open_jobs
from service.states import JobState, ModelState, ShardHealth


def shard_health(depth: int, n_slices: int, records: int) -> ShardHealth:
    """A shard serving ``depth`` of ``n_slices`` steps whose served step saw ``records``."""
    if depth == 0:
        return ShardHealth.DEAD
    if records == 0:
        return ShardHealth.EMPTY  # every record of its prefix erased: routed, not served
    return ShardHealth.FULL if depth == n_slices else ShardHealth.DEGRADED


def model_health(status: str, shards: list[ShardHealth]) -> str:
    """The model's reported status: its lifecycle state, or for a trained model its health."""
    if status != ModelState.READY:
        return status
    if not any(h in (ShardHealth.FULL, ShardHealth.DEGRADED) for h in shards):
        return ModelState.UNAVAILABLE
    if any(h in (ShardHealth.DEAD, ShardHealth.DEGRADED) for h in shards):
        return ModelState.DEGRADED
    return ModelState.READY


def exact_status(s: Session, model: ModelRow) -> dict[str, Any]:
    n_slices = int(model.config["n_slices"])
    routes = {
        r.shard: r for r in s.scalars(select(RoutingRow).where(RoutingRow.model_id == model.id))
    }
    served_records = _served_records(s, model.id)
    shards: list[dict[str, Any]] = []
    healths: list[ShardHealth] = []
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
        depth = 0 if route is None else route.depth
        records = served_records.get((served, depth), 0) if served is not None else 0
        healths.append(shard_health(depth, n_slices, records))
        shards.append(
            {
                "shard": shard,
                "served_sequence": next((q.position for q in seqs if q.id == served), None),
                "served_depth": depth,
                "health": healths[-1],
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
        "status": model_health(model.status, healths),
        "error": model.error,
        "routing_version": model.routing_version,
        "n_shards": model.n_shards,
        "n_slices": n_slices,
        "budget": model.budget,
        "selection": model.selection,
        "config_hash": model.config_hash,
        "shards": shards,
        "jobs": [job_view(j) for j in open_jobs(s, model)],
        "failed_jobs": [job_view(j) for j in unresolved_failures(s, model)],
    }


def _served_records(s: Session, model_id: int) -> dict[tuple[int, int], int]:
    """(sequence id, served depth) -> records of the served step, for the routed steps."""
    rows = s.execute(
        select(StepRow.sequence_id, StepRow.step, CheckpointRow.n_records)
        .join(CheckpointRow, CheckpointRow.id == StepRow.checkpoint_id)
        .join(
            RoutingRow,
            (RoutingRow.sequence_id == StepRow.sequence_id) & (RoutingRow.depth == StepRow.step),
        )
        .where(RoutingRow.model_id == model_id)
    )
    return {(seq, step): n for seq, step, n in rows}


def unresolved_failures(s: Session, model: ModelRow) -> list[JobRow]:
    """The model's failed jobs that no later job of the same kind and sequence has since
    finished: model incidents still open (the newest failure of each)."""
    newest: dict[tuple[str, int | None], JobRow] = {}
    for job in s.scalars(
        select(JobRow)
        .where(JobRow.model_id == model.id, JobRow.state == JobState.FAILED)
        .order_by(JobRow.id)
    ):
        newest[(job.kind, job.sequence_id)] = job
    open_ = []
    for (kind, sequence_id), job in sorted(newest.items(), key=lambda kv: kv[1].id):
        later = s.scalar(
            select(JobRow.id)
            .where(
                JobRow.model_id == model.id,
                JobRow.kind == kind,
                JobRow.sequence_id.is_(None)
                if sequence_id is None
                else JobRow.sequence_id == sequence_id,
                JobRow.state == JobState.DONE,
                JobRow.id > job.id,
            )
            .limit(1)
        )
        if later is None:
            open_.append(job)
    return open_
