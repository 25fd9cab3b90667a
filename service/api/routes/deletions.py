"""``/v1/deletions``: erase, list, read, resolve a review, fetch the signed certificate."""

from __future__ import annotations

import datetime as dt
import re
from typing import Annotated

from fastapi import APIRouter, Header, Query, Response, status

from service.access.scopes import Scope
from service.api.auth import Scoped
from service.api.schemas import DeletionCreate, ResolveRequest
from service.core import Service
from service.lineage.deletion import DeletionInput
from service.lineage.errors import LineageError
from service.states import REQUEST_STATES
from service.views import RequestPage, RequestView

router = APIRouter()
KEY = re.compile(r"^[\x21-\x7e]{1,200}$")


@router.post(
    "/deletions",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=RequestView,
    response_model_exclude_unset=True,
)
def create_deletion(
    svc: Annotated[Service, Scoped(Scope.DELETIONS_CREATE)],
    response: Response,
    body: DeletionCreate,
    idempotency_key: Annotated[str | None, Header()] = None,
) -> RequestView:
    """Erase a subject's or some records' data: effective when this answers (``202``).
    The answer carries the data subject's ``status_token`` (shown once)."""
    if idempotency_key is not None and not KEY.match(idempotency_key):
        raise LineageError("Idempotency-Key must be 1-200 visible ASCII characters")
    req = DeletionInput(
        subject_id=body.subject_id,
        record_ids=None if body.record_ids is None else tuple(body.record_ids),
        dataset=body.dataset,
        reason=body.reason,
    )
    accepted = svc.accept(req, idempotency_key)
    view = accepted.request
    response.headers["Location"] = f"/v1/deletions/{view.id}"
    if accepted.replayed:
        response.headers["Idempotent-Replayed"] = "true"
    if accepted.not_found:
        view = view.model_copy(update={"not_found": list(accepted.not_found)})
    return view.model_copy(update={"status_token": accepted.status_token})


@router.get("/deletions/{public_id}", response_model=RequestView, response_model_exclude_unset=True)
def read_deletion(
    svc: Annotated[Service, Scoped(Scope.DELETIONS_READ, status_token=True)], public_id: str
) -> RequestView:
    """One request; its subject's status token may read it too."""
    return svc.request(public_id)


@router.post(
    "/deletions/{public_id}/resolve", response_model=RequestView, response_model_exclude_unset=True
)
def resolve_deletion(
    svc: Annotated[Service, Scoped(Scope.DELETIONS_RESOLVE)], public_id: str, body: ResolveRequest
) -> RequestView:
    """Decide a request in ``needs_review``: ``accept`` the flagged version, try another
    ``method``, or order the exact ``retrain`` from scratch (409 unless in review)."""
    return svc.resolve(public_id, body.action, body.method, body.params)


@router.get(
    "/deletions/{public_id}/certificate",
    response_class=Response,
    responses={
        200: {
            "content": {"application/json": {"schema": {"type": "object", "title": "Certificate"}}},
            "description": "The signed certificate, byte for byte as issued (canonical JSON); "
            "verify it offline with `unlearn certificate verify FILE --public-key KEY`.",
        },
        404: {"description": "no such request"},
        409: {"description": "the request has not completed yet"},
    },
)
def read_certificate(
    svc: Annotated[Service, Scoped(Scope.DELETIONS_READ, status_token=True)], public_id: str
) -> Response:
    """The signed certificate; its subject's status token may read it too."""
    document = svc.certificate(public_id)
    return Response(document.encode("utf-8"), media_type="application/json")


@router.get("/deletions", response_model=RequestPage, response_model_exclude_unset=True)
def list_deletions(
    svc: Annotated[Service, Scoped(Scope.DELETIONS_READ)],
    state: Annotated[str | None, Query(pattern="^(" + "|".join(REQUEST_STATES) + ")$")] = None,
    received_after: dt.datetime | None = None,
    received_before: dt.datetime | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    cursor: str | None = None,
) -> RequestPage:
    """Newest first; pass ``next_cursor`` back as ``cursor`` for the next page."""
    return svc.requests(
        state=state,
        received_after=received_after,
        received_before=received_before,
        limit=limit,
        cursor=cursor,
    )
