"""Routing rows from sequences' valid depths; which slices lost records since a version."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

from sqlalchemy import select
from sqlalchemy.orm import Session

from service.db.tables import ModelRow, PlacementRow, RoutingRow, SequenceRow
from sharding import ShardRoute, serve


def shard_sequences(session: Session, model_id: int, shard: int) -> list[SequenceRow]:
    return list(
        session.scalars(
            select(SequenceRow)
            .where(SequenceRow.model_id == model_id, SequenceRow.shard == shard)
            .order_by(SequenceRow.position)
        )
    )


def shards_sequences(
    session: Session, model_id: int, shards: Iterable[int]
) -> dict[int, list[SequenceRow]]:
    """:func:`shard_sequences` of each shard, in one query."""
    out: dict[int, list[SequenceRow]] = {shard: [] for shard in sorted(set(shards))}
    for q in session.scalars(
        select(SequenceRow)
        .where(SequenceRow.model_id == model_id, SequenceRow.shard.in_(list(out)))
        .order_by(SequenceRow.shard, SequenceRow.position)
    ):
        out[q.shard].append(q)
    return out


def refresh_routing(session: Session, model: ModelRow, shards: Iterable[int]) -> None:
    """Point every given shard at its deepest clean sequence (``sharding.serve``)."""
    sequences = {shard: shard_sequences(session, model.id, shard) for shard in set(shards)}
    routes = {
        shard: serve(shard, [q.valid_depth for q in seqs]) for shard, seqs in sequences.items()
    }
    persist_routes(session, model, routes, sequences)


def persist_routes(
    session: Session,
    model: ModelRow,
    routes: Mapping[int, ShardRoute],
    sequences: Mapping[int, Sequence[SequenceRow]],
) -> None:
    """Write planned routes (``sequences[shard][route.sequence]`` is the served row)."""
    for shard, route in sorted(routes.items()):
        row = session.get(RoutingRow, (model.id, shard))
        assert row is not None, f"model {model.id} has no routing row for shard {shard}"
        seqs = sequences[shard]
        row.sequence_id = None if route.sequence is None else seqs[route.sequence].id
        row.depth = route.depth


def served_depths(session: Session, model_id: int) -> list[dict[str, int]]:
    """Every shard's served depth (0: dead), for the audit trail."""
    rows = session.execute(
        select(RoutingRow.shard, RoutingRow.depth)
        .where(RoutingRow.model_id == model_id)
        .order_by(RoutingRow.shard)
    )
    return [{"shard": shard, "depth": depth} for shard, depth in rows]


def erased_slices_since(session: Session, model_id: int, shard: int, version: int) -> set[int]:
    """Slices of a shard holding a record erased after routing version ``version``."""
    rows = session.scalars(
        select(PlacementRow.slice)
        .where(
            PlacementRow.model_id == model_id,
            PlacementRow.shard == shard,
            PlacementRow.erased_version > version,
        )
        .distinct()
    )
    return set(rows)
