"""Registering a model: its placements, slices, sequences, empty routing and training job."""

from __future__ import annotations

import hashlib
import hmac
from collections import Counter
from dataclasses import dataclass, field

from sqlalchemy import insert, select
from sqlalchemy.orm import Session

from models.config import TrainConfig
from service.audit import log as audit
from service.db.tables import (
    DatasetRow,
    ModelRow,
    PlacementRow,
    RecordRow,
    RoutingRow,
    SequenceRow,
    SliceRow,
)
from service.jobs.create import train_job
from service.lineage.datasets import get_dataset
from service.lineage.errors import NotFound, Unprocessable
from service.states import ModelState, RecordState
from sharding import Placement, SelectionMethod, select_sequences


@dataclass(frozen=True)
class ModelSpec:
    """What to train: the layout (shards, budget, selection) and the training config."""

    n_shards: int = 2
    budget: int = 2
    selection: str = "cyclic"
    deletion_probs: tuple[float, ...] | None = None
    config: TrainConfig = field(default_factory=TrainConfig)
    eval_dataset: str | None = None  # held-out records scored after (re)training

    def __post_init__(self) -> None:
        if self.n_shards < 1 or self.budget < 1:
            raise Unprocessable("n_shards and budget must be >= 1")
        try:
            SelectionMethod(self.selection)
        except ValueError as exc:
            raise Unprocessable(f"unknown selection {self.selection!r}") from exc


def placement_secret(secret: bytes) -> bytes:
    """The placement key, derived from the deployment secret (distinct from subject keys)."""
    return hmac.new(secret, b"unlearn/placement", hashlib.sha256).digest()


def create_model(session: Session, dataset_name: str, spec: ModelSpec, secret: bytes) -> ModelRow:
    """Place the dataset's active records and register the model with a queued ``train`` job."""
    dataset = get_dataset(session, dataset_name)
    config = spec.config
    from models.backbones import fit_problem  # torch: only when a model is registered

    problem = fit_problem(config.backbone, config.n_classes, dataset.kind, len(dataset.label_names))
    if problem is not None:
        raise Unprocessable(f"{dataset_name}: {problem}")
    records = session.execute(
        select(RecordRow.id, RecordRow.record_id, RecordRow.subject_key).where(
            RecordRow.dataset_id == dataset.id, RecordRow.state == RecordState.ACTIVE
        )
    ).all()
    if not records:
        raise Unprocessable(f"dataset {dataset_name!r} has no active records")
    placement = Placement(placement_secret(secret), spec.n_shards, config.n_slices)
    cells = {pk: placement.place(rid, key) for pk, rid, key in records}
    counts = Counter((c.shard, c.slice) for c in cells.values())
    empty = [
        (s, k) for s in range(spec.n_shards) for k in range(config.n_slices) if counts[(s, k)] == 0
    ]
    if empty:
        raise Unprocessable(
            f"{len(empty)} of {spec.n_shards * config.n_slices} slices would be empty "
            f"(first: shard {empty[0][0]} slice {empty[0][1]}); use fewer shards or slices"
        )
    eval_id = (
        None if spec.eval_dataset is None else held_out_id(session, dataset, spec.eval_dataset)
    )
    probs = None
    if spec.deletion_probs is not None:
        if len(spec.deletion_probs) != config.n_slices:
            raise Unprocessable("deletion_probs needs one probability per slice")
        probs = {s: spec.deletion_probs for s in range(spec.n_shards)}
    try:
        sequences = select_sequences(
            SelectionMethod(spec.selection),
            n_shards=spec.n_shards,
            n_slices=config.n_slices,
            budget=spec.budget,
            deletion_probs=probs,
        )
    except ValueError as exc:
        raise Unprocessable(str(exc)) from exc
    model = ModelRow(
        dataset_id=dataset.id,
        status=ModelState.PENDING,
        n_shards=spec.n_shards,
        budget=spec.budget,
        selection=spec.selection,
        config=config.to_dict(),
        config_hash=config.config_hash(),
        routing_version=0,
        eval_dataset_id=eval_id,
    )
    session.add(model)
    session.flush()
    rows = [
        {"model_id": model.id, "record_pk": pk, "shard": c.shard, "slice": c.slice}
        for pk, c in cells.items()
    ]
    for start in range(0, len(rows), 5000):
        session.execute(insert(PlacementRow), rows[start : start + 5000])
    for (shard, slice_), n in sorted(counts.items()):
        session.add(SliceRow(model_id=model.id, shard=shard, slice=slice_, n_records=n))
    for shard, seqs in sequences.items():
        for position, perm in enumerate(seqs):
            session.add(
                SequenceRow(
                    model_id=model.id,
                    shard=shard,
                    position=position,
                    permutation=list(perm),
                    valid_depth=0,
                )
            )
        session.add(RoutingRow(model_id=model.id, shard=shard, sequence_id=None, depth=0))
    train_job(session, model.id)
    session.flush()
    audit.append(
        session,
        "model.registered",
        {
            "model": model.id,
            "dataset": dataset_name,
            "config_hash": model.config_hash,
            "n_shards": spec.n_shards,
            "n_slices": config.n_slices,
            "budget": spec.budget,
            "selection": spec.selection,
            "n_records": len(cells),
        },
    )
    return model


def held_out_id(session: Session, dataset: DatasetRow, name: str) -> int:
    """The id of held-out dataset ``name``, checked against the training ``dataset``."""
    held_out = get_dataset(session, name)
    if held_out.id == dataset.id:
        raise Unprocessable("the held-out dataset must not be the training dataset")
    if held_out.kind != dataset.kind or held_out.label_names != dataset.label_names:
        raise Unprocessable(
            f"held-out dataset {name!r} must have the training dataset's kind "
            f"and labels ({dataset.kind}, {dataset.label_names})"
        )
    return held_out.id


def place_in_one_cell(session: Session, model_id: int, record_pks: list[int]) -> None:
    """Placements of a model trained on all its records at once (shard 0, slice 0)."""
    rows = [{"model_id": model_id, "record_pk": pk, "shard": 0, "slice": 0} for pk in record_pks]
    for start in range(0, len(rows), 5000):
        session.execute(insert(PlacementRow), rows[start : start + 5000])
    session.add(SliceRow(model_id=model_id, shard=0, slice=0, n_records=len(rows)))


def get_model(session: Session, model_id: int, *, lock: bool = False) -> ModelRow:
    query = select(ModelRow).where(ModelRow.id == model_id)
    if lock:
        query = query.with_for_update()
    row = session.scalar(query)
    if row is None:
        raise NotFound(f"no model {model_id}")
    return row


def model_config(model: ModelRow) -> TrainConfig:
    return TrainConfig.from_dict(dict(model.config))
