"""``unlearn verify`` for approximate models: one live version whose weights file is intact,
no file left of a replaced or rejected version (they hold erased data), and quarantined
payloads only for requests still open."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from models.checkpoints import CheckpointError
from service.approximate.store import VersionStore
from service.approximate.versions import unused_weights, versions
from service.db.tables import DeletionRequestRow, ForgetPayloadRow, ModelRow
from service.states import CLOSED_REQUEST_STATES, ModelState, VersionState


def approximate_violations(s: Session, store: VersionStore, model: ModelRow) -> list[str]:
    where = f"model {model.id}"
    rows = versions(s, model.id)
    live = [v for v in rows if v.state == VersionState.LIVE]
    out = []
    if len(live) > 1:
        out.append(f"{where}: {len(live)} live versions ({[v.version for v in live]})")
    if model.status == ModelState.READY and not live:
        out.append(f"{where}: ready but no live version")
    for v in live:
        try:
            store.read(v.sha256)
        except CheckpointError as exc:
            out.append(f"{where} version {v.version}: {exc}")
    for v in rows:
        gone = v.state in (VersionState.RETIRED, VersionState.REJECTED)
        if gone and store.exists(v.sha256) and unused_weights(s, v.sha256):
            out.append(f"{where}: {v.state} version {v.version} still has its weights file")
    return out


def quarantine_violations(s: Session) -> list[str]:
    closed = s.execute(
        select(DeletionRequestRow.public_id, DeletionRequestRow.state)
        .join(ForgetPayloadRow, ForgetPayloadRow.request_id == DeletionRequestRow.id)
        .where(DeletionRequestRow.state.in_(CLOSED_REQUEST_STATES))
        .distinct()
    ).all()
    return [
        f"request {rid} is {state} but its forget payloads are still held" for rid, state in closed
    ]
