"""What accepting a deletion does to an approximate model (inside the accepting transaction):
the records' placements are stamped erased at the next routing version and an ``unlearn`` job
runs the model's method; the model keeps serving its live version until the new one is
published (the approximate contract, stated in the request and the certificate)."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.orm import Session

from service.audit import log as audit
from service.db.tables import (
    DeletionRequestRow,
    ForgetPayloadRow,
    ModelRow,
    PlacementRow,
)
from service.erasure import vault
from service.jobs.create import unlearn_job
from service.kind import Erasure
from service.states import KindName, ModelState


def queue_unlearning(
    session: Session,
    model: ModelRow,
    request: DeletionRequestRow,
    method: str | None = None,
    overrides: dict[str, object] | None = None,
) -> int:
    """A new ``unlearn`` job of ``model`` for ``request`` (the model's own method unless one
    is given), linked to the request; returns its id."""
    if method is None:
        method, overrides = model.method, dict(model.config.get("method_params", {}))
    job = unlearn_job(session, model, request, method, dict(overrides or {}))
    audit.append(
        session,
        "unlearning.queued",
        {"model": model.id, "request": request.public_id, "job": job.id, "method": method},
    )
    return job.id


def quarantine(s: Session, erasures: Sequence[Erasure]) -> int:
    """Keep the payloads of the erased records that an approximate model holds, for its
    unlearning job (called before the accepting transaction nulls them), under one new key
    per request; returns how many were kept."""
    pks = sorted({r.id for e in erasures for r in e.records})
    held: set[int] = set()
    for start in range(0, len(pks), 1000):
        held.update(
            s.scalars(
                select(PlacementRow.record_pk)
                .join(ModelRow, ModelRow.id == PlacementRow.model_id)
                .where(
                    ModelRow.kind == KindName.APPROXIMATE,
                    ModelRow.status != ModelState.FAILED,
                    PlacementRow.record_pk.in_(pks[start : start + 1000]),
                )
            )
        )
    n = 0
    for e in erasures:
        kept = [r for r in e.records if r.id in held and r.payload is not None]
        if not kept:
            continue
        # Re-sealed under the request's own key: the records' keys are destroyed when the
        # accepting transaction commits, this one when the request completes or fails.
        key_id = vault.new_keys(s, [vault.quarantine_owner(e.request_id)])[0]
        for r in kept:
            assert r.payload is not None
            sealed = vault.seal(s, key_id, vault.open_payload(s, r.payload))
            s.add(
                ForgetPayloadRow(
                    request_id=e.request_id, record_pk=r.id, label=r.label, payload=sealed
                )
            )
        n += len(kept)
    return n
