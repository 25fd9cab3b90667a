"""What a model serves right now: per shard the sequence, depth and checkpoint chain."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from models.config import TrainConfig
from models.ensemble import Member
from service.db.tables import DatasetRow, ModelRow, RoutingRow, SequenceRow
from service.lineage.errors import NotFound
from service.lineage.publish import sequence_chain
from service.lineage.registry import model_config


@dataclass(frozen=True)
class Route:
    shard: int
    sequence: int | None
    depth: int


@dataclass(frozen=True)
class Served:
    version: int
    status: str
    config: TrainConfig
    members: list[Member]
    routes: list[Route]
    label_names: list[str]
    kind: str


def served(s: Session, model_id: int) -> Served:
    """Read inside one snapshot, so the version and the chains agree. A shard whose served
    step was trained on no record (its prefix's slices all erased) is routed but not a
    member: its head never saw data."""
    model = s.get(ModelRow, model_id)
    if model is None:
        raise NotFound(f"no model {model_id}")
    dataset = s.get(DatasetRow, model.dataset_id)
    assert dataset is not None
    members, routes = [], []
    for r in s.scalars(
        select(RoutingRow).where(RoutingRow.model_id == model_id).order_by(RoutingRow.shard)
    ):
        if r.sequence_id is None or r.depth == 0:
            routes.append(Route(r.shard, None, 0))
            continue
        seq = s.get(SequenceRow, r.sequence_id)
        assert seq is not None
        rows = sequence_chain(s, seq, r.depth)
        routes.append(Route(r.shard, seq.position, r.depth))
        if rows[-1].n_records == 0:
            continue  # every record of the served prefix is erased: an untrained shard
        members.append(Member(r.shard, tuple(c.sha256 for c in rows)))
    return Served(
        model.routing_version,
        model.status,
        model_config(model),
        members,
        routes,
        list(dataset.label_names),
        dataset.kind,
    )
