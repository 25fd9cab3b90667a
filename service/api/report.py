"""``GET /v1/audit/report``: the audit report as JSON or one self-contained HTML page."""

from __future__ import annotations

import datetime as dt
from typing import Annotated

from fastapi import APIRouter, Query
from fastapi.responses import HTMLResponse, JSONResponse
from pydantic import WithJsonSchema

from service.access.scopes import Scope
from service.api.auth import RESPONSES, Scoped
from service.api.contract import problems
from service.api.schemas import utc
from service.core import Service
from service.lineage.errors import LineageError

router = APIRouter(prefix="/v1", responses=RESPONSES)
# Parsed here, so a malformed bound is a 400 naming it; the document says what parses.
ISO = WithJsonSchema(
    {"anyOf": [{"type": "string", "format": "date"}, {"type": "string", "format": "date-time"}]}
)


def _bound(text: str | None, name: str) -> dt.datetime | None:
    """An ISO date (midnight UTC) or datetime (UTC when it names no offset)."""
    if text is None:
        return None
    try:
        at = dt.datetime.fromisoformat(text)
    except ValueError as exc:
        raise LineageError(f"{name} must be an ISO 8601 date or datetime, got {text!r}") from exc
    return utc(at)


@router.get(
    "/audit/report",
    response_model=None,
    responses={
        200: {
            "description": "The report: JSON numbers, or an HTML page with inline SVG plots",
            "content": {
                "application/json": {"schema": {"type": "object", "title": "AuditReport"}},
                "text/html": {"schema": {"type": "string"}},
            },
        },
        **problems(
            400,
            422,
            s400="``from`` or ``to`` is not an ISO date or datetime, or the window is empty",
        ),
    },
)
def audit_report(
    svc: Annotated[Service, Scoped(Scope.AUDIT_READ)],
    start: Annotated[
        str | None,
        ISO,
        Query(alias="from", description="requests received at or after (ISO date/datetime)"),
    ] = None,
    end: Annotated[
        str | None,
        ISO,
        Query(alias="to", description="requests received before (ISO date/datetime)"),
    ] = None,
    format: Annotated[str, Query(pattern="^(html|json)$")] = "json",
) -> JSONResponse | HTMLResponse:
    """Deletion requests by state, time to effective and completed, deadline compliance,
    served depth per shard, held-out accuracy (overall and per label per routing version),
    and an Art. 30 style summary."""
    lo, hi = _bound(start, "from"), _bound(end, "to")
    if lo is not None and hi is not None and hi <= lo:
        raise LineageError("the report window is empty: 'to' must be after 'from'")
    report = svc.audit_report(start=lo, end=hi)
    if format == "html":
        from service.audit.report import render_html

        return HTMLResponse(render_html(report))
    return JSONResponse(report)
