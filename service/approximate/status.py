"""An approximate model's status view: family, method, its versions and which one is live."""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from service.approximate.versions import version_view, versions
from service.db.tables import ModelRow
from service.lineage.query import job_view, open_jobs
from service.states import VersionState


def approximate_status(s: Session, model: ModelRow) -> dict[str, Any]:
    rows = versions(s, model.id)
    live = next((v.version for v in rows if v.state == VersionState.LIVE), None)
    return {
        "id": model.id,
        "kind": model.kind,
        "status": model.status,
        "error": model.error,
        "routing_version": model.routing_version,
        "family": model.family,
        "method": model.method,
        "config": dict(model.config),
        "config_hash": model.config_hash,
        "live_version": live,
        "versions": [version_view(v) for v in rows],
        "jobs": [job_view(j) for j in open_jobs(s, model)],
    }
