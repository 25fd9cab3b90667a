"""``unlearn verify``: every model checked by its kind, then what no kind owns.

The exactness invariant (no served checkpoint's lineage holds an erased record) is checked
per S3T model (``service.exact.verify``); approximate models by theirs
(``service.approximate.verify``). Erased records must have no payload.
"""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from models.checkpoints import LocalCheckpointStore
from service.db.tables import ModelRow, RecordRow
from service.kind import Report, VerifyContext
from service.kinds import KINDS, kind_of
from service.states import RecordState

__all__ = ["Report", "verify"]


def verify(s: Session, store: LocalCheckpointStore, caches: Path | None = None) -> Report:
    """``caches``: the activation-cache root; erased rows may remain there only while a job
    of their shard (which removes them first) is still pending."""
    report = Report()
    ctx = VerifyContext(store, caches)
    for model in s.scalars(select(ModelRow).order_by(ModelRow.id)):
        report.checked_models += 1
        kind_of(model).verify(s, ctx, model, report)
    erased_with_payload = s.scalars(
        select(RecordRow.record_id).where(
            RecordRow.state == RecordState.ERASED, RecordRow.payload.is_not(None)
        )
    ).all()
    for rid in erased_with_payload:
        report.violations.append(f"erased record {rid} still has its payload")
    for kind in KINDS.values():
        kind.verify_store(s, ctx, report)
    return report
