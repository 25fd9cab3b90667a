"""What accepting a deletion does to an S3T model (inside the accepting transaction).

The pure planner (``sharding.plan_deletion``, the code the property tests cover) decides:
given the layout of the affected shards, their sequences' valid depths and the erased
slices, it returns every sequence's new depth, every shard's route and the retrain tasks.
This module persists that plan: tainted checkpoints retired, depths cut, routes published,
one retrain job per task (superseding older pending jobs of the sequence, whose requests
move to the new one).
"""

from __future__ import annotations

from collections.abc import Mapping

from sqlalchemy import and_, select
from sqlalchemy.orm import Session

from service.audit import log as audit
from service.db.base import utcnow
from service.db.tables import (
    CheckpointRow,
    DeletionJobRow,
    DeletionRequestRow,
    JobRow,
    ModelRow,
    PlacementRow,
    RecordRow,
    SequenceRow,
)
from service.kind import DeletionEffect
from service.lineage.publish import trained_steps
from service.lineage.routing import persist_routes, served_depths, shard_sequences
from service.states import CLOSED_REQUEST_STATES, JobKind, JobState, ModelState
from sharding import SliceAddress, plan_deletion


def cut_model(
    session: Session,
    model: ModelRow,
    request: DeletionRequestRow,
    deleted: Mapping[int, set[int]],
) -> DeletionEffect:
    """Persist the planner's cuts, routes and retrain tasks for the slices in ``deleted``
    (shard -> slices that lost records); the model row is locked and its routing version
    already bumped by the caller."""
    effect = DeletionEffect()
    sequences: dict[int, list[SequenceRow]] = {}
    for shard, slices in sorted(deleted.items()):
        effect.retired += _retire(session, model.id, shard, slices)
        sequences[shard] = shard_sequences(session, model.id, shard)
    plan = plan_deletion(
        {shard: [tuple(q.permutation) for q in seqs] for shard, seqs in sequences.items()},
        {shard: [q.valid_depth for q in seqs] for shard, seqs in sequences.items()},
        [SliceAddress(shard, sl) for shard, slices in deleted.items() for sl in sorted(slices)],
    )
    for task in plan.retrain:
        seq = sequences[task.shard][task.sequence]
        if not trained_steps(session, seq.id):
            continue  # the train job has not published this shard yet
        before, seq.valid_depth = seq.valid_depth, plan.depths[task.shard][task.sequence]
        job = retrain_job(session, model, seq.id, task.from_step, request)
        effect.jobs.add(job)
        effect.cuts.append(
            {
                "model": model.id,
                "shard": task.shard,
                "sequence": seq.position,
                "from_depth": before,
                "to_depth": seq.valid_depth,
                "job": job,
            }
        )
    persist_routes(session, model, plan.routes, sequences)
    audit.append(
        session,
        "routing.published",
        {
            "model": model.id,
            "routing_version": model.routing_version,
            "cause": request.public_id,
            "served": served_depths(session, model.id),
        },
    )
    if model.status in (ModelState.PENDING, ModelState.TRAINING):
        train = session.scalar(select(JobRow).where(JobRow.key == f"train:{model.id}"))
        if train is not None and train.state in (JobState.QUEUED, JobState.RUNNING):
            link(session, request.id, train.id)
            effect.jobs.add(train.id)
    return effect


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


def link(session: Session, request_id: int, job_id: int) -> None:
    """The request waits on the job (idempotent)."""
    if session.get(DeletionJobRow, (request_id, job_id)) is None:
        session.add(DeletionJobRow(request_id=request_id, job_id=job_id))


def retrain_job(
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
            kind=JobKind.RETRAIN,
            key=key,
            model_id=model.id,
            sequence_id=sequence_id,
            from_step=from_step,
            state=JobState.QUEUED,
        )
        session.add(job)
        session.flush()
    older = list(
        session.scalars(
            select(JobRow).where(
                JobRow.sequence_id == sequence_id,
                JobRow.kind == JobKind.RETRAIN,
                JobRow.state.in_((JobState.QUEUED, JobState.RUNNING)),
                JobRow.id != job.id,
            )
        )
    )
    for old in older:
        old.state, old.superseded_by, old.finished_at = JobState.SUPERSEDED, job.id, utcnow()
        for row in session.scalars(select(DeletionJobRow).where(DeletionJobRow.job_id == old.id)):
            link(session, row.request_id, job.id)
    if request is not None:
        link(session, request.id, job.id)
    session.flush()
    return job.id


def ensure_retrain(
    session: Session, model: ModelRow, sequence_id: int, from_step: int, shard: int
) -> int:
    """A retrain job for a sequence found unclean at publish time, linked to the requests
    that erased its records (used when deletions arrive while a job trains)."""
    job_id = retrain_job(session, model, sequence_id, from_step, None)
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
        if state not in CLOSED_REQUEST_STATES:
            link(session, rid, job_id)
    return job_id
