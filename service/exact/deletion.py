"""What accepting a deletion does to an S3T model (inside the accepting transaction).

The pure planner (``sharding.plan_deletion``, the code the property tests cover) decides:
given the layout of the affected shards, their sequences' valid depths and the erased
slices, it returns every sequence's new depth, every shard's route and the retrain tasks.
This module persists that plan: tainted checkpoints retired, depths cut, routes published,
one retrain job per task (superseding older open jobs of the sequence), and the ``purge``
job that takes the erased rows out of the shards' activation caches at once.

The request waits only on its erasure (the purge, and a ``train`` job that is reading its
records): the retrains restore the model's served depth and are the model's work, tracked
and reported on the model.
"""

from __future__ import annotations

from collections.abc import Mapping

from sqlalchemy import select
from sqlalchemy.orm import Session

from service.audit import log as audit
from service.db.base import utcnow
from service.db.tables import CheckpointRow, DeletionRequestRow, ModelRow, SequenceRow
from service.jobs.create import link, open_train_job, purge_job, retrain_job, running_retrains
from service.kind import DeletionEffect
from service.lineage.publish import trained_steps
from service.lineage.routing import persist_routes, served_depths, shard_sequences
from service.states import CheckpointState, ModelState
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
    # First, so a worker that runs jobs in id order also takes it before any retrain.
    effect.jobs.add(purge_job(session, model, request))
    sequences: dict[int, list[SequenceRow]] = {}
    for shard, slices in sorted(deleted.items()):
        effect.retired += _retire(session, model.id, shard, slices)
        sequences[shard] = shard_sequences(session, model.id, shard)
    plan = plan_deletion(
        {shard: [tuple(q.permutation) for q in seqs] for shard, seqs in sequences.items()},
        {shard: [q.valid_depth for q in seqs] for shard, seqs in sequences.items()},
        [SliceAddress(shard, sl) for shard, slices in deleted.items() for sl in sorted(slices)],
    )
    # Retrains running on these shards read the erased records: each is replaced by a new
    # job from the same step (it stops at its next heartbeat and removes its files; the purge
    # job waits for that). Retrains the plan asks for supersede them below anyway.
    for running in running_retrains(session, model.id, deleted):
        assert running.sequence_id is not None and running.from_step is not None
        retrain_job(session, model, running.sequence_id, running.from_step)
    for task in plan.retrain:
        seq = sequences[task.shard][task.sequence]
        if not trained_steps(session, seq.id):
            continue  # the train job has not published this shard yet
        before, seq.valid_depth = seq.valid_depth, plan.depths[task.shard][task.sequence]
        job = retrain_job(session, model, seq.id, task.from_step)
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
        train = open_train_job(session, model.id)
        if train is not None:
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
            CheckpointRow.state == CheckpointState.LIVE,
        )
    ):
        if slices.intersection(ckpt.slice_ids):
            ckpt.state, ckpt.retired_at = CheckpointState.RETIRED, utcnow()
            shas.append(ckpt.sha256)
    return shas
