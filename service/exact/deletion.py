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

from collections import defaultdict
from collections.abc import Mapping, Sequence

from sqlalchemy import select
from sqlalchemy.orm import Session

from service.audit import log as audit
from service.db.base import utcnow
from service.db.tables import CheckpointRow, ModelRow
from service.jobs.create import (
    link_new,
    open_train_job,
    purge_job,
    retrain_job,
    running_retrains,
)
from service.kind import DeletionEffect, Hit
from service.lineage.publish import published_sequences
from service.lineage.routing import persist_routes, served_depths, shards_sequences
from service.states import CheckpointState, ModelState
from sharding import SliceAddress, plan_deletion


def cut_model(session: Session, model: ModelRow, hits: Sequence[Hit]) -> list[DeletionEffect]:
    """Persist the planner's cuts, routes and retrain tasks for the slices the requests
    accepted together erased; the model row is locked and its routing version already bumped
    by the caller. The plan is made once, for the union of their slices: the group shares
    one purge job, one retrain job per cut sequence and one ``routing.published`` event.

    Each request's effect names the cuts it caused alone too (a slice of it lay in the cut
    sequence's clean prefix), the checkpoints trained on its slices and the jobs it waits on
    (the purge; the train job while the model trains)."""
    effects = [DeletionEffect() for _ in hits]
    # First, so a worker that runs jobs in id order also takes it before any retrain.
    purge = purge_job(session, model, hits[0].request)
    link_new(session, [hit.request.id for hit in hits[1:]], purge)
    for effect in effects:
        effect.jobs.add(purge)
    deleted: dict[int, set[int]] = defaultdict(set)
    for hit in hits:
        for shard, slices in hit.deleted.items():
            deleted[shard] |= slices
    for shard, sha, trained_on in _retire(session, model.id, deleted):
        for hit, effect in zip(hits, effects, strict=True):
            if hit.deleted.get(shard, set()) & trained_on:
                effect.retired.append(sha)
    sequences = shards_sequences(session, model.id, deleted)
    published = published_sequences(session, [q.id for seqs in sequences.values() for q in seqs])
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
        if seq.id not in published:
            continue  # the train job has not published this shard yet
        before, seq.valid_depth = seq.valid_depth, plan.depths[task.shard][task.sequence]
        job = retrain_job(session, model, seq.id, task.from_step)
        cut: dict[str, object] = {
            "model": model.id,
            "shard": task.shard,
            "sequence": seq.position,
            "from_depth": before,
            "to_depth": seq.valid_depth,
            "job": job,
        }
        prefix = set(seq.permutation[:before])
        for hit, effect in zip(hits, effects, strict=True):
            if hit.deleted.get(task.shard, set()) & prefix:
                effect.cuts.append(cut)
    persist_routes(session, model, plan.routes, sequences)
    audit.append(
        session,
        "routing.published",
        {
            "model": model.id,
            "routing_version": model.routing_version,
            "causes": [hit.request.public_id for hit in hits],
            "served": served_depths(session, model.id),
        },
    )
    if model.status in (ModelState.PENDING, ModelState.TRAINING):
        train = open_train_job(session, model.id)
        if train is not None:
            link_new(session, [hit.request.id for hit in hits], train.id)
            for effect in effects:
                effect.jobs.add(train.id)
    return effects


def _retire(
    session: Session, model_id: int, deleted: Mapping[int, set[int]]
) -> list[tuple[int, str, set[int]]]:
    """Every live checkpoint of a shard trained on one of its slices in ``deleted`` is
    tainted now: (shard, file hash, the slices it was trained on) of each."""
    retired = []
    for ckpt in session.scalars(
        select(CheckpointRow).where(
            CheckpointRow.model_id == model_id,
            CheckpointRow.shard.in_(sorted(deleted)),
            CheckpointRow.state == CheckpointState.LIVE,
        )
    ):
        if deleted[ckpt.shard].intersection(ckpt.slice_ids):
            ckpt.state, ckpt.retired_at = CheckpointState.RETIRED, utcnow()
            retired.append((ckpt.shard, ckpt.sha256, set(ckpt.slice_ids)))
    return retired
