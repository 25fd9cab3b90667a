"""``unlearn verify`` for S3T models: the exactness invariant on the DB and checkpoint store.

Every shard's route must point at steps whose checkpoints are live, exist in the store with
the bytes their sha256 names, carry the manifest the DB recorded, and were trained on
exactly the records of their slices that were active at their ``data_version`` with none
of those erased since (recomputed digest). Retired checkpoint files must be gone, and so
must erased rows of activation caches, unless the model's purge job is still open or a job
of the shard (which may be building its cache) is.
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from models.checkpoints import CheckpointError, LocalCheckpointStore, read_manifest
from models.data import records_digest
from service.db.tables import (
    CheckpointRow,
    JobRow,
    ModelRow,
    PlacementRow,
    RecordRow,
    RoutingRow,
    SequenceRow,
)
from service.kind import Report, VerifyContext
from service.lineage.publish import sequence_chain
from service.states import OPEN_JOB_STATES, CheckpointState, JobKind
from sharding import serve


def verify_exact(s: Session, ctx: VerifyContext, model: ModelRow, report: Report) -> None:
    """Routes, served checkpoints and (with ``ctx.caches``) activation caches of one model."""
    _verify_model(s, ctx.store, model, report)
    if ctx.caches is not None:
        _verify_caches(s, ctx.caches, model, report.violations)


def retired_files(s: Session, ctx: VerifyContext, report: Report) -> None:
    """A retired checkpoint was trained on erased data: its file must be gone."""
    for sha in s.scalars(
        select(CheckpointRow.sha256).where(CheckpointRow.state == CheckpointState.RETIRED)
    ):
        if ctx.store.exists(sha):
            report.violations.append(f"retired checkpoint {sha[:12]} still has its file")


def _verify_caches(s: Session, caches: Path, model: ModelRow, bad: list[str]) -> None:
    from models.cache import ActivationCache

    pending = set(
        s.scalars(
            select(SequenceRow.shard)
            .join(JobRow, JobRow.sequence_id == SequenceRow.id)
            .where(JobRow.model_id == model.id, JobRow.state.in_(OPEN_JOB_STATES))
        )
    )
    purging = s.scalar(
        select(JobRow.id).where(
            JobRow.model_id == model.id,
            JobRow.kind == JobKind.PURGE,
            JobRow.state.in_(OPEN_JOB_STATES),
        )
    )
    if purging is not None:
        return  # the purge job takes the erased rows out within seconds
    erased: dict[int, set[str]] = defaultdict(set)
    for shard, rid in s.execute(
        select(PlacementRow.shard, RecordRow.record_id)
        .join(RecordRow, RecordRow.id == PlacementRow.record_pk)
        .where(PlacementRow.model_id == model.id, PlacementRow.erased_version.is_not(None))
    ):
        erased[shard].add(rid)
    for shard in range(model.n_shards):
        root = caches / f"model{model.id}" / f"shard{shard}"
        if shard in pending or not (root / "index.json").exists():
            continue
        left = sorted(rid for rid in erased[shard] if rid in ActivationCache(root))
        if left:
            bad.append(
                f"model {model.id} shard {shard}: activation cache still holds {len(left)} "
                f"erased record(s), e.g. {left[0]}"
            )


def _verify_model(s: Session, store: LocalCheckpointStore, model: ModelRow, report: Report) -> None:
    placements: dict[tuple[int, int], list[tuple[str, int | None]]] = defaultdict(list)
    for shard, slice_, rid, erased_version in s.execute(
        select(
            PlacementRow.shard, PlacementRow.slice, RecordRow.record_id, PlacementRow.erased_version
        )
        .join(RecordRow, RecordRow.id == PlacementRow.record_pk)
        .where(PlacementRow.model_id == model.id)
    ):
        placements[(shard, slice_)].append((rid, erased_version))
    for route in s.scalars(select(RoutingRow).where(RoutingRow.model_id == model.id)):
        where = f"model {model.id} shard {route.shard}"
        seqs = list(
            s.scalars(
                select(SequenceRow)
                .where(SequenceRow.model_id == model.id, SequenceRow.shard == route.shard)
                .order_by(SequenceRow.position)
            )
        )
        best = serve(route.shard, [q.valid_depth for q in seqs])
        if route.depth != best.depth:
            report.violations.append(
                f"{where}: serves depth {route.depth}, best clean is {best.depth}"
            )
        if route.depth == 0:
            continue
        seq = next((q for q in seqs if q.id == route.sequence_id), None)
        if seq is None:
            report.violations.append(f"{where}: routed to a sequence of another shard or model")
            continue
        if route.depth > seq.valid_depth:
            report.violations.append(
                f"{where}: serves depth {route.depth} of sequence {seq.position}, "
                f"valid only to {seq.valid_depth}"
            )
        try:
            chain = sequence_chain(s, seq, route.depth)
        except LookupError as exc:
            report.violations.append(f"{where}: {exc}")
            continue
        for ckpt in chain:
            report.checked_checkpoints += 1
            _verify_checkpoint(store, ckpt, placements, f"{where} step {ckpt.step}", report)


def _verify_checkpoint(
    store: LocalCheckpointStore,
    ckpt: CheckpointRow,
    placements: dict[tuple[int, int], list[tuple[str, int | None]]],
    where: str,
    report: Report,
) -> None:
    bad = report.violations
    if ckpt.state != CheckpointState.LIVE:
        bad.append(f"{where}: serves {ckpt.state} checkpoint {ckpt.sha256[:12]}")
    members = [p for sl in ckpt.slice_ids for p in placements[(ckpt.shard, sl)]]
    erased_since = [rid for rid, v in members if v is not None and v > ckpt.data_version]
    if erased_since:
        bad.append(
            f"{where}: checkpoint {ckpt.sha256[:12]} was trained on {len(erased_since)} "
            f"erased record(s), e.g. {erased_since[0]}"
        )
    trained_on = [rid for rid, v in members if v is None or v > ckpt.data_version]
    if records_digest(trained_on) != ckpt.records_digest:
        bad.append(f"{where}: checkpoint {ckpt.sha256[:12]} record digest does not match lineage")
    try:
        data = store.path(ckpt.sha256).read_bytes()
    except FileNotFoundError:
        bad.append(f"{where}: checkpoint file {ckpt.sha256[:12]} is missing")
        return
    if hashlib.sha256(data).hexdigest() != ckpt.sha256:
        bad.append(f"{where}: checkpoint file {ckpt.sha256[:12]} does not match its sha256")
        return
    try:
        manifest = read_manifest(data)  # the bytes hash to the address: no tensors to load
    except CheckpointError as exc:
        bad.append(f"{where}: {exc}")
        return
    if (
        list(manifest.slice_ids) != list(ckpt.slice_ids)
        or manifest.records_digest != ckpt.records_digest
        or manifest.shard != ckpt.shard
        or manifest.step != ckpt.step
    ):
        bad.append(f"{where}: checkpoint {ckpt.sha256[:12]} manifest disagrees with the DB")
