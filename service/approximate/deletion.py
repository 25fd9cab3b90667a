"""What accepting a deletion does to an approximate model (inside the accepting transaction):
the records' placements are stamped erased at the next routing version and an ``unlearn`` job
runs the model's method; the model keeps serving its live version until the new one is
published (the approximate contract, stated in the request and the certificate)."""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from service.audit import log as audit
from service.db.tables import (
    DeletionJobRow,
    DeletionRequestRow,
    ForgetPayloadRow,
    JobRow,
    ModelRow,
    PlacementRow,
    RecordRow,
)


def queue_unlearning(
    session: Session,
    model: ModelRow,
    request: DeletionRequestRow,
    method: str | None = None,
    overrides: dict[str, object] | None = None,
) -> int:
    """A new ``unlearn`` job of ``model`` for ``request`` (the model's own method unless one
    is given), linked to the request; returns its id."""
    n = (
        session.scalar(
            select(func.count())
            .select_from(JobRow)
            .join(DeletionJobRow, DeletionJobRow.job_id == JobRow.id)
            .where(
                DeletionJobRow.request_id == request.id,
                JobRow.model_id == model.id,
                JobRow.kind == "unlearn",
            )
        )
        or 0
    )
    if method is None:
        method, overrides = model.method, dict(model.config.get("method_params", {}))
    job = JobRow(
        kind="unlearn",
        key=f"unlearn:{model.id}:{request.id}:{n + 1}",
        model_id=model.id,
        state="queued",
        params={"method": method, "overrides": dict(overrides or {})},
    )
    session.add(job)
    session.flush()
    session.add(DeletionJobRow(request_id=request.id, job_id=job.id))
    audit.append(
        session,
        "unlearning.queued",
        {"model": model.id, "request": request.public_id, "job": job.id, "method": method},
    )
    return job.id


def quarantine(s: Session, request_id: int, records: list[RecordRow]) -> int:
    """Keep the payloads of ``records`` that an approximate model holds, for its unlearning
    job (called before the accepting transaction nulls them); returns how many were kept."""
    if not records:
        return 0
    held = set(
        s.scalars(
            select(PlacementRow.record_pk)
            .join(ModelRow, ModelRow.id == PlacementRow.model_id)
            .where(
                ModelRow.kind == "approximate",
                ModelRow.status != "failed",
                PlacementRow.record_pk.in_([r.id for r in records]),
            )
        )
    )
    for r in records:
        if r.id in held and r.payload is not None:
            s.add(
                ForgetPayloadRow(
                    request_id=request_id, record_pk=r.id, label=r.label, payload=r.payload
                )
            )
    return len(held)
