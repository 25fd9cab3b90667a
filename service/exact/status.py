"""An S3T model's status view: every shard's served sequence and depth, every sequence's
valid depth, the open jobs."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from service.db.tables import ModelRow, RoutingRow, SequenceRow
from service.lineage.query import job_view, open_jobs


def exact_status(s: Session, model: ModelRow) -> dict[str, Any]:
    routes = {
        r.shard: r for r in s.scalars(select(RoutingRow).where(RoutingRow.model_id == model.id))
    }
    shards = []
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
        shards.append(
            {
                "shard": shard,
                "served_sequence": next((q.position for q in seqs if q.id == served), None),
                "served_depth": 0 if route is None else route.depth,
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
        "status": model.status,
        "error": model.error,
        "routing_version": model.routing_version,
        "n_shards": model.n_shards,
        "n_slices": int(model.config["n_slices"]),
        "budget": model.budget,
        "selection": model.selection,
        "config_hash": model.config_hash,
        "shards": shards,
        "jobs": [job_view(j) for j in open_jobs(s, model)],
    }
