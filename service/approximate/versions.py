"""An approximate model's versions: which one is live, publishing another, and their views."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from models.approximate.names import EXACT_METHODS
from service.audit import log as audit
from service.db.base import utcnow
from service.db.tables import DeletionJobRow, JobRow, ModelRow, ModelVersionRow
from service.states import JobKind, VersionState


def live_version(s: Session, model_id: int) -> ModelVersionRow | None:
    return s.scalar(
        select(ModelVersionRow).where(
            ModelVersionRow.model_id == model_id, ModelVersionRow.state == VersionState.LIVE
        )
    )


def exact_ancestor(s: Session, row: ModelVersionRow) -> ModelVersionRow:
    """The newest version in ``row``'s lineage (itself included) trained from scratch."""
    while not row.exact and row.parent_id is not None:
        parent = s.get(ModelVersionRow, row.parent_id)
        assert parent is not None
        row = parent
    return row


def next_version(s: Session, model_id: int) -> int:
    top = s.scalar(
        select(func.max(ModelVersionRow.version)).where(ModelVersionRow.model_id == model_id)
    )
    return 1 if top is None else top + 1


def publish(s: Session, model: ModelRow, row: ModelVersionRow) -> str | None:
    """Make ``row`` the live version (model row locked by the caller): the old one retires
    and the routing version moves, so every server reloads. Returns the retired weights'
    sha256, whose file the caller deletes after the commit (they hold the erased data)."""
    now = utcnow()
    old = live_version(s, model.id)
    if old is not None:
        old.state, old.retired_at = VersionState.RETIRED, now
    row.state, row.published_at = VersionState.LIVE, now
    model.routing_version += 1
    s.flush()
    audit.append(
        s,
        "model.version.published",
        {
            "model": model.id,
            "version": row.version,
            "sha256": row.sha256,
            "method": row.method,
            "exact": row.exact,
            "replaces": None if old is None else old.version,
            "routing_version": model.routing_version,
        },
        at=now,
    )
    if old is None or not unused_weights(s, old.sha256):
        return None
    return old.sha256


def unused_weights(s: Session, sha256: str) -> bool:
    """Whether no live or candidate version uses these weights (a no-op method can make a
    version whose weights equal its parent's)."""
    used = s.scalar(
        select(func.count())
        .select_from(ModelVersionRow)
        .where(
            ModelVersionRow.sha256 == sha256,
            ModelVersionRow.state.in_((VersionState.LIVE, VersionState.CANDIDATE)),
        )
    )
    return not used


def version_view(row: ModelVersionRow) -> dict[str, Any]:
    return {
        "version": row.version,
        "state": row.state,
        "method": row.method,
        "exact": row.exact,
        "sha256": row.sha256,
        "data_version": row.data_version,
        "evidence": row.evidence,
        "created_at": row.created_at.isoformat(),
        "published_at": None if row.published_at is None else row.published_at.isoformat(),
    }


def versions(s: Session, model_id: int) -> list[ModelVersionRow]:
    return list(
        s.scalars(
            select(ModelVersionRow)
            .where(ModelVersionRow.model_id == model_id)
            .order_by(ModelVersionRow.version)
        )
    )


def unlearn_attempts(
    s: Session, request_id: int, model_id: int | None = None
) -> list[dict[str, Any]]:
    """Per ``unlearn`` job of the request (of one model, if given): the method, and the version
    it made with its evidence and flags (``exact`` while it runs says what the method
    promises). The request view and the certificate both show these."""
    query = (
        select(JobRow)
        .join(DeletionJobRow, DeletionJobRow.job_id == JobRow.id)
        .where(DeletionJobRow.request_id == request_id, JobRow.kind == JobKind.UNLEARN)
        .order_by(JobRow.id)
    )
    if model_id is not None:
        query = query.where(JobRow.model_id == model_id)
    return attempts_of(s, list(s.scalars(query)))


def attempts_of(s: Session, jobs: Sequence[JobRow]) -> list[dict[str, Any]]:
    """:func:`unlearn_attempts` of these ``unlearn`` jobs."""
    out = []
    for job in jobs:
        method = str((job.params or {}).get("method"))
        row = s.scalar(select(ModelVersionRow).where(ModelVersionRow.job_id == job.id))
        item: dict[str, Any] = {
            "model": job.model_id,
            "job": job.id,
            "job_state": job.state,
            "method": method,
            "exact": method in EXACT_METHODS,
            "version": None if row is None else version_view(row),
        }
        if row is None and job.evidence:
            item["note"] = job.evidence.get("note")
            item["exact"] = bool(job.evidence.get("exact", item["exact"]))
        out.append(item)
    return out
