"""Read-side lineage: what sits in a model's shards and slices (counts per slice, and a page
of the active records' ids), filtered by shard and slice.

A record is active in a model while its placement has no ``erased_version``; an erased
record's placement stays (it is lineage) and counts as erased. A model without placements
(an approximate one) has no slices.
"""

from __future__ import annotations

import base64
import binascii
import re
from dataclasses import dataclass
from typing import Any

from sqlalchemy import case, func, select, tuple_
from sqlalchemy.orm import Session

from service.db.tables import ModelRow, PlacementRow, RecordRow
from service.lineage.errors import NotFound

MAX_INT = 2**63 - 1  # ids are 64-bit signed integers in the database
_CURSOR = re.compile(r"p:([0-9]{1,19}):([0-9]{1,19}):([0-9]{1,19})")


@dataclass(frozen=True)
class Cell:
    """The filter: ``None`` means every shard (slice)."""

    shard: int | None = None
    slice: int | None = None


def placements(
    s: Session, model_id: int, cell: Cell, *, limit: int | None, cursor: str | None = None
) -> dict[str, Any]:
    """The model's slices matching ``cell`` with their active and erased counts, and up to
    ``limit`` (``None``: all) active records ordered by (shard, slice, import order); pass
    ``next_cursor`` back as ``cursor`` for the next page. A filter that names no slice of
    the model is :class:`NotFound`."""
    model = s.get(ModelRow, model_id)
    if model is None:
        raise NotFound(f"no model {model_id}")
    after = None if cursor is None else decode_cursor(cursor)
    slices = _counts(s, model_id, cell)
    if not slices and (cell.shard is not None or cell.slice is not None):
        raise NotFound(f"model {model_id} has no {_describe(cell)}")
    rows = _active(s, model_id, cell, after, None if limit is None else limit + 1)
    more = limit is not None and len(rows) > limit
    page = rows[:limit] if limit is not None else rows
    return {
        "model": model_id,
        "routing_version": model.routing_version,
        "shard": cell.shard,
        "slice": cell.slice,
        "active": sum(c["active"] for c in slices),
        "erased": sum(c["erased"] for c in slices),
        "slices": slices,
        "records": [{"record_id": r, "shard": sh, "slice": sl} for sh, sl, _, r in page],
        "next_cursor": encode_cursor(page[-1][:3]) if more else None,
    }


def _where(model_id: int, cell: Cell) -> list[Any]:
    clauses: list[Any] = [PlacementRow.model_id == model_id]
    if cell.shard is not None:
        clauses.append(PlacementRow.shard == cell.shard)
    if cell.slice is not None:
        clauses.append(PlacementRow.slice == cell.slice)
    return clauses


def _counts(s: Session, model_id: int, cell: Cell) -> list[dict[str, int]]:
    erased = func.sum(case((PlacementRow.erased_version.is_not(None), 1), else_=0))
    rows = s.execute(
        select(PlacementRow.shard, PlacementRow.slice, func.count(), erased)
        .where(*_where(model_id, cell))
        .group_by(PlacementRow.shard, PlacementRow.slice)
        .order_by(PlacementRow.shard, PlacementRow.slice)
    )
    return [
        {"shard": sh, "slice": sl, "active": int(n) - int(e or 0), "erased": int(e or 0)}
        for sh, sl, n, e in rows
    ]


def _active(
    s: Session,
    model_id: int,
    cell: Cell,
    after: tuple[int, int, int] | None,
    limit: int | None,
) -> list[tuple[int, int, int, str]]:
    query = (
        select(PlacementRow.shard, PlacementRow.slice, PlacementRow.record_pk, RecordRow.record_id)
        .join(RecordRow, RecordRow.id == PlacementRow.record_pk)
        .where(*_where(model_id, cell), PlacementRow.erased_version.is_(None))
        .order_by(PlacementRow.shard, PlacementRow.slice, PlacementRow.record_pk)
    )
    if after is not None:
        key = tuple_(PlacementRow.shard, PlacementRow.slice, PlacementRow.record_pk)
        query = query.where(key > tuple_(*after))
    if limit is not None:
        query = query.limit(limit)
    return [(sh, sl, pk, rid) for sh, sl, pk, rid in s.execute(query)]


def _describe(cell: Cell) -> str:
    named = [] if cell.shard is None else [f"shard {cell.shard}"]
    named += [] if cell.slice is None else [f"slice {cell.slice}"]
    return " ".join(named)


def encode_cursor(key: tuple[int, ...]) -> str:
    raw = "p:" + ":".join(map(str, key))
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[int, int, int]:
    """The (shard, slice, record pk) a page ends at; any cursor this list did not give is
    :class:`NotFound` (no page there), never a driver error."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
    except (binascii.Error, ValueError):
        raw = ""
    found = _CURSOR.fullmatch(raw)
    if found is None or any(int(g) > MAX_INT for g in found.groups()):
        raise NotFound("no page at this cursor: pass back a next_cursor this list gave")
    shard, slice_, pk = (int(g) for g in found.groups())
    return shard, slice_, pk
