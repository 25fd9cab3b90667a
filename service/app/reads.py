"""The read side of the application service: requests, model status, datasets, a record's
lineage, the exactness check, the erasure scan and the readiness probe, as typed views.

Each lineage read function is called from one place here, so when one moves only one import
line changes.
"""

from __future__ import annotations

import base64
import datetime as dt
import logging
from typing import TYPE_CHECKING, Any

from service.app.base import Base
from service.views import (
    MODEL_STATUS,
    ApproximateStatus,
    DatasetSummary,
    DemoTargets,
    ErasureScanView,
    LineageView,
    PlacementPage,
    Readiness,
    RequestPage,
    RequestView,
    S3TStatus,
    VerifyReport,
)

if TYPE_CHECKING:
    from collections.abc import Sequence
    from pathlib import Path

    from sqlalchemy.orm import Session

    from models.checkpoints import LocalCheckpointStore
    from service.db.engine import Database
    from service.db.tables import DatasetRow, DeletionRequestRow, ModelRow
    from service.settings import Settings

log = logging.getLogger(__name__)


class Reads(Base):
    """Mixed into :class:`service.app.service.Service`, which holds these attributes."""

    store: LocalCheckpointStore

    # The one call of each lineage view builder.
    def _request_view(self, s: Session, row: DeletionRequestRow) -> RequestView:
        from service.usecases.views import request_view

        return RequestView.model_validate(request_view(s, row))

    def _status(self, s: Session, row: ModelRow) -> S3TStatus | ApproximateStatus:
        from service.usecases.views import model_status

        return MODEL_STATUS.validate_python(model_status(s, row))

    def _summary(self, s: Session, row: DatasetRow) -> DatasetSummary:
        from service.lineage.datasets import summarize

        return DatasetSummary.model_validate(summarize(s, row).__dict__)

    def _get_request(self, s: Session, public_id: str) -> DeletionRequestRow:
        from service.lineage.query import get_request

        return get_request(s, public_id)

    def request(self, public_id: str) -> RequestView:
        with self.db.read() as s:
            return self._request_view(s, self._get_request(s, public_id))

    def requests(
        self,
        *,
        state: str | None = None,
        received_after: dt.datetime | None = None,
        received_before: dt.datetime | None = None,
        limit: int = 50,
        cursor: str | None = None,
    ) -> RequestPage:
        """Newest first; a naive bound is read as UTC; pass ``next_cursor`` back as
        ``cursor`` for the next page."""
        from service.app.queries import request_rows

        with self.db.read() as s:
            rows = request_rows(
                s,
                state=state,
                received_after=None if received_after is None else _aware(received_after),
                received_before=None if received_before is None else _aware(received_before),
                before_id=None if cursor is None else _decode_cursor(cursor),
                limit=limit + 1,
            )
            items = [self._request_view(s, r) for r in rows[:limit]]
        more = len(rows) > limit
        return RequestPage(
            items=items, next_cursor=_encode_cursor(rows[limit - 1].id) if more else None
        )

    def model_status(self, model_id: int) -> S3TStatus | ApproximateStatus:
        return self.model_statuses(model_id)[0]

    def model_statuses(self, model_id: int | None = None) -> list[S3TStatus | ApproximateStatus]:
        """One model's status, or every model's when ``model_id`` is None."""
        from service.app.queries import all_models
        from service.lineage.registry import get_model

        with self.db.read() as s:
            rows = [get_model(s, model_id)] if model_id is not None else all_models(s)
            return [self._status(s, row) for row in rows]

    def dataset(self, name: str) -> DatasetSummary:
        from service.lineage.datasets import get_dataset

        with self.db.read() as s:
            return self._summary(s, get_dataset(s, name))

    def lineage(self, record_id: str, dataset: str | None = None) -> list[LineageView]:
        """Where a record sits in every model (one entry per dataset holding that id)."""
        from service.lineage.query import record_lineage

        with self.db.read() as s:
            return [LineageView.model_validate(r) for r in record_lineage(s, record_id, dataset)]

    def placements(
        self,
        model_id: int,
        *,
        shard: int | None = None,
        slice_: int | None = None,
        limit: int | None = None,
        cursor: str | None = None,
    ) -> PlacementPage:
        """Counts per slice and a page of the active records' ids (``limit`` None: all) of
        a model's shards and slices; pass ``next_cursor`` back as ``cursor``."""
        from service.lineage.placements import Cell, placements

        with self.db.read() as s:
            found = placements(s, model_id, Cell(shard, slice_), limit=limit, cursor=cursor)
        return PlacementPage.model_validate(found)

    def verify(self) -> VerifyReport:
        """The exactness invariant on the live DB and checkpoint store, and approximate
        models' versions and quarantine, read in one snapshot."""
        from service.usecases.verify import verify

        with self.db.snapshot() as s:
            report = verify(s, self.store, self.settings.caches_dir)
        return VerifyReport.model_validate(report.__dict__ | {"ok": report.ok})

    def verify_erasure(self, extra: Sequence[Path] = ()) -> ErasureScanView:
        """Search every file and database page the service keeps (and ``extra`` paths) for
        the text of erased records and the wrapped bytes of destroyed data keys."""
        from service.usecases.erasure_scan import scan_erasure

        scan = scan_erasure(self.db, self.settings, extra)
        return ErasureScanView.model_validate(scan.__dict__ | {"ok": scan.ok})

    def readiness(self) -> tuple[bool, Readiness | dict[str, dict[str, Any]]]:
        """(ready?, the view when ready, else the checks for the problem answer). Ready
        means deletions can be accepted: the database answers at the schema's head. The
        broker and model health are reported beside it (``degraded`` names the failing
        ones): jobs wait in the outbox for the broker, and erasure never waits for a model."""
        checks = _readiness(self.db, self.settings)
        if all(checks.get(name, {}).get("ok") for name in ACCEPTANCE_CHECKS):
            degraded = sorted(name for name, c in checks.items() if not c["ok"])
            return True, Readiness.model_validate(
                {"status": "ready", "checks": checks, "degraded": degraded}
            )
        return False, checks

    def demo_targets(self) -> DemoTargets:
        """The newest model and the first active record of its dataset."""
        from service.app.queries import first_active_record, newest_model

        with self.db.read() as s:
            model = newest_model(s)
            record = None if model is None else first_active_record(s, model.dataset_id)
            return DemoTargets(model_id=None if model is None else model.id, record_id=record)


ACCEPTANCE_CHECKS = ("database", "migrations")


def _readiness(db: Database, settings: Settings) -> dict[str, dict[str, Any]]:
    from sqlalchemy import text

    from service.db import schema

    checks: dict[str, dict[str, Any]] = {}
    try:
        with db.engine.connect() as conn:
            conn.execute(text("SELECT 1"))
        checks["database"] = {"ok": True}
    except Exception as exc:
        checks["database"] = {"ok": False, "error": type(exc).__name__}
        return checks
    current = schema.current_revision(db.engine)
    checks["migrations"] = {"ok": current == schema.head_revision(), "current": current}
    if settings.broker_url is not None:
        try:
            from kombu.connection import Connection

            with Connection(settings.broker_url, connect_timeout=2) as conn:  # type: ignore[no-untyped-call]
                conn.ensure_connection(max_retries=1)
            checks["broker"] = {"ok": True}
        except Exception as exc:
            checks["broker"] = {"ok": False, "error": type(exc).__name__}
    if checks["migrations"]["ok"]:
        try:
            checks["models"] = _model_health(db)
        except Exception as exc:  # a probe answers; the log says why
            log.exception("model health check failed")
            checks["models"] = {"ok": False, "error": type(exc).__name__}
    return checks


def _model_health(db: Database) -> dict[str, Any]:
    """Model health, reported beside (never instead of) the acceptance checks: a model that
    cannot serve does not stop deletions being accepted."""
    from service.app.queries import all_models
    from service.kinds import kind_of
    from service.states import ModelState

    with db.read() as s:
        statuses = [kind_of(m).status(s, m) for m in all_models(s)]
    degraded = [v["id"] for v in statuses if v["status"] == ModelState.DEGRADED]
    unavailable = [v["id"] for v in statuses if v["status"] == ModelState.UNAVAILABLE]
    return {"ok": not unavailable, "degraded": degraded, "unavailable": unavailable}


def _aware(at: dt.datetime) -> dt.datetime:
    return at if at.tzinfo is not None else at.replace(tzinfo=dt.UTC)


def _encode_cursor(row_id: int) -> str:
    return base64.urlsafe_b64encode(f"d:{row_id}".encode()).decode().rstrip("=")


def _decode_cursor(cursor: str) -> int:
    from service.lineage.errors import LineageError

    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        kind, _, value = raw.partition(":")
        if kind != "d":
            raise ValueError(kind)
        return int(value)
    except (ValueError, UnicodeDecodeError) as exc:
        raise LineageError("cursor is not valid") from exc
