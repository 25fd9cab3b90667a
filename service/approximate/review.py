"""An operator's answer to a request in ``needs_review``: accept the flagged version, try
another method, or order the exact retrain (``unlearn requests resolve``)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from sqlalchemy import select
from sqlalchemy.orm import Session

from service.approximate.deletion import queue_unlearning
from service.approximate.registry import check_method
from service.approximate.versions import live_version, publish, unused_weights
from service.audit import log as audit
from service.db.base import utcnow
from service.db.tables import DeletionJobRow, DeletionRequestRow, JobRow, ModelRow, ModelVersionRow
from service.jobs.lifecycle import Hooks, settle, transition
from service.lineage.errors import Conflict, Unprocessable
from service.lineage.registry import get_model
from service.states import RequestState, VersionState

Action = Literal["accept", "method", "retrain"]


@dataclass(frozen=True)
class Resolved:
    jobs: list[int] = field(default_factory=list)
    delete: list[str] = field(default_factory=list)  # weight files to delete after the commit


def resolve(
    s: Session,
    req: DeletionRequestRow,
    action: Action,
    method: str | None = None,
    overrides: dict[str, Any] | None = None,
    *,
    hooks: Hooks,
) -> Resolved:
    """Apply the operator's ``action`` in ``s``'s transaction (``hooks``: the lifecycle's,
    for requests an accepted version completes)."""
    if req.state != RequestState.NEEDS_REVIEW:
        raise Conflict(f"request {req.public_id} is {req.state}, not needs_review")
    if (action == "method") != (method is not None):
        raise Unprocessable("name a method with action 'method', and only then")
    candidates = _candidates(s, req)
    if not candidates:
        raise Conflict(f"request {req.public_id} has no flagged version waiting for review")
    now = utcnow()
    jobs: list[int] = []
    delete: list[str] = []
    for row in candidates:
        model = get_model(s, row.model_id, lock=True)
        if action == "accept":
            live = live_version(s, model.id)
            if live is None or live.id != row.parent_id:
                raise Conflict(
                    f"model {model.id} published another version since version {row.version} "
                    "was made; order another method or the exact retrain instead"
                )
            row.evidence = {**(row.evidence or {}), "accepted_by_operator": True}
            retired = publish(s, model, row)
            delete += [] if retired is None else [retired]
            continue
        row.state = VersionState.REJECTED
        delete.append(row.sha256)
        name = "Retrain"
        if method is not None:
            name = check_method(_family(model), method, overrides or {})
            if name == "SSD" and model.method != "SSD":
                raise Unprocessable(
                    "SSD needs the training data's importances, stored only for models "
                    f"registered with method SSD (model {model.id} uses {model.method})"
                )
        jobs.append(queue_unlearning(s, model, req, name, overrides or {}))
    detail = {"action": action, "method": method if action == "method" else None}
    audit.append(s, "request.reviewed", {"request": req.public_id, **detail}, at=now)
    transition(s, req, RequestState.UNLEARNING, now, detail)
    s.flush()
    if action == "accept":
        linked = list(
            s.scalars(select(DeletionJobRow.job_id).where(DeletionJobRow.request_id == req.id))
        )
        settle(s, linked, hooks)
    return Resolved(jobs, [sha for sha in delete if unused_weights(s, sha)])


def _family(model: ModelRow) -> str:
    assert model.family is not None
    return model.family


def _candidates(s: Session, req: DeletionRequestRow) -> list[ModelVersionRow]:
    return list(
        s.scalars(
            select(ModelVersionRow)
            .join(JobRow, JobRow.id == ModelVersionRow.job_id)
            .join(DeletionJobRow, DeletionJobRow.job_id == JobRow.id)
            .where(
                DeletionJobRow.request_id == req.id, ModelVersionRow.state == VersionState.CANDIDATE
            )
            .order_by(ModelVersionRow.model_id)
        )
    )
