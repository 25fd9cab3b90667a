"""What a training job will do, counted before it starts: the total of its progress counter
(``service.jobs.progress.JobProgress``), in the units the work reports: records cached and
examples times epochs trained (``models.s3t.sequence_units``)."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from models.config import TrainConfig
from models.s3t import sequence_units
from service.db.tables import PlacementRow, RecordRow
from service.lineage.publish import trained_steps
from service.lineage.routing import shard_sequences


@dataclass(frozen=True)
class ShardPlan:
    """One shard a ``train`` job has still to train: its cache and its sequences' units."""

    shard: int
    cache: int
    train: int


def slice_sizes(s: Session, model_id: int, shard: int, n_slices: int) -> list[int]:
    """Active records per slice of a shard (those ``read_shard`` trains on)."""
    rows = s.execute(
        select(PlacementRow.slice, func.count())
        .join(RecordRow, RecordRow.id == PlacementRow.record_pk)
        .where(
            PlacementRow.model_id == model_id,
            PlacementRow.shard == shard,
            PlacementRow.erased_version.is_(None),
            RecordRow.payload.is_not(None),
        )
        .group_by(PlacementRow.slice)
    )
    sizes = [0] * n_slices
    for slice_, n in rows:
        sizes[slice_] = int(n)
    return sizes


def train_plan(s: Session, model_id: int, n_shards: int, config: TrainConfig) -> list[ShardPlan]:
    """The shards not yet published (an earlier attempt may have published some)."""
    plan = []
    for shard in range(n_shards):
        seqs = shard_sequences(s, model_id, shard)
        if all(trained_steps(s, q.id) == config.n_slices for q in seqs):
            continue
        sizes = slice_sizes(s, model_id, shard, config.n_slices)
        units = sum(sequence_units(sizes, q.permutation, epochs=config.epochs) for q in seqs)
        plan.append(ShardPlan(shard, sum(sizes), units))
    return plan
