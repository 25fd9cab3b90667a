"""The model and request views, read through each model's kind."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from service.db.tables import DeletionEventRow, DeletionJobRow, DeletionRequestRow, JobRow, ModelRow
from service.kinds import KINDS, kind_of
from service.lineage.query import job_view
from service.states import VersionState
from service.usecases.labels import label_counts


def model_status(s: Session, model: ModelRow) -> dict[str, Any]:
    """The model's status view, as its kind draws it, with its training records per label."""
    return {**kind_of(model).status(s, model), "labels": label_counts(s, model)}


def request_view(s: Session, req: DeletionRequestRow) -> dict[str, Any]:
    return request_views(s, [req])[0]


def request_views(s: Session, reqs: Sequence[DeletionRequestRow]) -> list[dict[str, Any]]:
    """:func:`request_view` of each, their events and jobs read in two queries."""
    ids = [r.id for r in reqs]
    events: dict[int, list[DeletionEventRow]] = defaultdict(list)
    jobs: dict[int, list[JobRow]] = defaultdict(list)
    for start in range(0, len(ids), 500):
        chunk = ids[start : start + 500]
        for e in s.scalars(
            select(DeletionEventRow)
            .where(DeletionEventRow.request_id.in_(chunk))
            .order_by(DeletionEventRow.id)
        ):
            events[e.request_id].append(e)
        for request_id, job in s.execute(
            select(DeletionJobRow.request_id, JobRow)
            .join(JobRow, DeletionJobRow.job_id == JobRow.id)
            .where(DeletionJobRow.request_id.in_(chunk))
            .order_by(JobRow.id)
        ):
            jobs[request_id].append(job)
    return [_view(s, r, events[r.id], jobs[r.id]) for r in reqs]


def _view(
    s: Session, req: DeletionRequestRow, events: list[DeletionEventRow], jobs: list[JobRow]
) -> dict[str, Any]:
    unlearning = [a for kind in KINDS.values() for a in kind.request_attempts(s, jobs)]
    view = {
        "id": req.public_id,
        "state": req.state,
        "method": _method(unlearning),
        "outcome": req.outcome,
        "reason": req.reason,
        "dataset": req.dataset,
        "record_ids": req.record_ids,
        "subject": req.subject_key is not None,
        "requested_by": req.requested_by,
        "n_records": req.n_records,
        "cut": list(req.cut),
        "received_at": req.received_at.isoformat(),
        "effective_at": None if req.effective_at is None else req.effective_at.isoformat(),
        "completed_at": None if req.completed_at is None else req.completed_at.isoformat(),
        "due_at": req.due_at.isoformat(),
        "timeline": [{"state": e.state, "at": e.at.isoformat()} for e in events],
        "jobs": [job_view(j) for j in jobs],
        "unlearning": unlearning,
    }
    if req.not_found:
        view["not_found"] = list(req.not_found)
    return view


def _method(unlearning: list[dict[str, Any]]) -> str:
    """``approximate`` when a version that is (or was) served, or one still being made, comes
    from an approximate method; rejected versions do not count."""
    counted = [u for u in unlearning if (u["version"] or {}).get("state") != VersionState.REJECTED]
    return "approximate" if any(not u["exact"] for u in counted) else "exact"
