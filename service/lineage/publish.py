"""Publishing trained checkpoints into the lineage DB (the caller holds the model row lock)."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from models.checkpoints import CheckpointManifest
from service.db.base import utcnow
from service.db.tables import CheckpointRow, ModelRow, SequenceRow, SequenceStepRow
from service.lineage.routing import erased_slices_since
from service.states import CheckpointState
from sharding import cut_depth


class StaleCheckpoint(RuntimeError):
    """A freshly trained checkpoint equals a retired one: it was trained on erased data."""


def publish_chain(
    session: Session,
    model: ModelRow,
    seq: SequenceRow,
    chain: Sequence[tuple[str, CheckpointManifest]],
    *,
    from_step: int,
    data_version: int,
) -> int:
    """Record steps ``from_step..L`` of ``seq`` (``chain`` holds all L steps) and return the
    sequence's new valid depth: records erased after ``data_version`` (while the job trained)
    cut it again, and the checkpoints they taint are retired at once."""
    n = len(seq.permutation)
    if len(chain) != n:
        raise ValueError(f"sequence {seq.id} needs {n} checkpoints, got {len(chain)}")
    erased = erased_slices_since(session, model.id, seq.shard, data_version)
    for step in range(from_step, n + 1):
        sha, manifest = chain[step - 1]
        if list(manifest.slice_ids) != seq.permutation[:step] or manifest.shard != seq.shard:
            raise ValueError(f"checkpoint {sha} is not step {step} of sequence {seq.id}")
        row = session.scalar(
            select(CheckpointRow).where(
                CheckpointRow.model_id == model.id, CheckpointRow.sha256 == sha
            )
        )
        if row is None:
            row = CheckpointRow(
                model_id=model.id,
                sha256=sha,
                shard=seq.shard,
                step=step,
                slice_ids=list(manifest.slice_ids),
                records_digest=manifest.records_digest,
                n_records=manifest.n_records,
                data_version=data_version,
                parent_sha256=manifest.parent,
                state=CheckpointState.LIVE,
            )
            session.add(row)
            session.flush()
        elif row.state == CheckpointState.RETIRED:
            raise StaleCheckpoint(f"checkpoint {sha} was retired: trained on erased data")
        if erased.intersection(row.slice_ids) and row.state == CheckpointState.LIVE:
            row.state, row.retired_at = CheckpointState.RETIRED, utcnow()
        link = session.get(SequenceStepRow, (seq.id, step))
        if link is None:
            session.add(SequenceStepRow(sequence_id=seq.id, step=step, checkpoint_id=row.id))
        else:
            link.checkpoint_id = row.id
    seq.valid_depth = cut_depth(seq.permutation, n, erased)
    session.flush()
    return seq.valid_depth


def trained_steps(session: Session, sequence_id: int) -> int:
    """How many steps of a sequence have a published checkpoint."""
    n = session.scalar(select(func.count()).where(SequenceStepRow.sequence_id == sequence_id))
    return int(n or 0)


def published_sequences(session: Session, sequence_ids: Sequence[int]) -> set[int]:
    """Those of the sequences with at least one published step (:func:`trained_steps`)."""
    if not sequence_ids:
        return set()
    return set(
        session.scalars(
            select(SequenceStepRow.sequence_id)
            .where(SequenceStepRow.sequence_id.in_(sorted(sequence_ids)))
            .distinct()
        )
    )


def sequence_chain(session: Session, seq: SequenceRow, depth: int) -> list[CheckpointRow]:
    """Checkpoints of steps ``1..depth`` of a sequence, in step order."""
    rows = session.execute(
        select(SequenceStepRow.step, CheckpointRow)
        .join(CheckpointRow, CheckpointRow.id == SequenceStepRow.checkpoint_id)
        .where(SequenceStepRow.sequence_id == seq.id, SequenceStepRow.step <= depth)
        .order_by(SequenceStepRow.step)
    ).all()
    if [s for s, _ in rows] != list(range(1, depth + 1)):
        raise LookupError(f"sequence {seq.id} lacks checkpoints for steps 1..{depth}")
    return [c for _, c in rows]
