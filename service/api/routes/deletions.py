"""``/v1/deletions``: erase, list, read, resolve a review, fetch the signed certificate."""

from __future__ import annotations

import base64
import binascii
import re
from typing import Annotated

from fastapi import APIRouter, Header, Query, Response, status
from pydantic import StringConstraints
from pydantic.json_schema import SkipJsonSchema

from service.access.scopes import Scope
from service.api.auth import Scoped
from service.api.contract import BODY, problems
from service.api.schemas import MAX_INT, DeletionCreate, Instant, ResolveRequest
from service.core import Service
from service.lineage.deletion import DeletionInput
from service.lineage.errors import NotFound
from service.states import REQUEST_STATES
from service.views import RequestPage, RequestView

router = APIRouter()
KEY = re.compile(r"^[\x21-\x7e]{1,200}$")
ID = re.compile(r"[0-9]{1,19}")
READ = problems(404, 422, s404="no such request (or another request's status token)")


@router.post(
    "/deletions",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=RequestView,
    response_model_exclude_unset=True,
    responses=problems(
        *BODY,
        404,
        409,
        s404="no record matches (``reason`` no_match: nothing to erase, already complete)",
        s409="a request with this Idempotency-Key is still in flight",
    ),
)
def create_deletion(
    svc: Annotated[Service, Scoped(Scope.DELETIONS_CREATE)],
    response: Response,
    body: DeletionCreate,
    idempotency_key: Annotated[
        Annotated[str, StringConstraints(pattern=KEY.pattern)] | SkipJsonSchema[None],
        Header(description="1-200 visible ASCII characters"),
    ] = None,
) -> RequestView:
    """Erase a subject's or some records' data: effective when this answers (``202``).
    The answer carries the data subject's ``status_token`` (shown once)."""
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
    return view.model_copy(update={"status_token": accepted.status_token})


@router.get(
    "/deletions/{public_id}",
    response_model=RequestView,
    response_model_exclude_unset=True,
    responses=READ,
)
def read_deletion(
    svc: Annotated[Service, Scoped(Scope.DELETIONS_READ, status_token=True)], public_id: str
) -> RequestView:
    """One request; its subject's status token may read it too."""
    return svc.request(public_id)


@router.post(
    "/deletions/{public_id}/resolve",
    response_model=RequestView,
    response_model_exclude_unset=True,
    responses=problems(*BODY, 404, 409, s409="the request is not in needs_review"),
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
        **problems(404, 422, 409, s409="the request has not completed yet"),
    },
)
def read_certificate(
    svc: Annotated[Service, Scoped(Scope.DELETIONS_READ, status_token=True)], public_id: str
) -> Response:
    """The signed certificate; its subject's status token may read it too."""
    document = svc.certificate(public_id)
    return Response(document.encode("utf-8"), media_type="application/json")


@router.get(
    "/deletions",
    response_model=RequestPage,
    response_model_exclude_unset=True,
    responses=problems(404, 422, s404="the cursor is not one this list gave"),
)
def list_deletions(
    svc: Annotated[Service, Scoped(Scope.DELETIONS_READ)],
    state: Annotated[str | None, Query(pattern="^(" + "|".join(REQUEST_STATES) + ")$")] = None,
    received_after: Instant | None = None,
    received_before: Instant | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    cursor: Annotated[str | None, Query(pattern="^[A-Za-z0-9_-]{1,64}$")] = None,
) -> RequestPage:
    """Newest first; pass ``next_cursor`` back as ``cursor`` for the next page."""
    if cursor is not None:
        _check_cursor(cursor)
    return svc.requests(
        state=state,
        received_after=received_after,
        received_before=received_before,
        limit=limit,
        cursor=cursor,
    )


def _check_cursor(cursor: str) -> None:
    """A cursor this service issued names a row id (``d:<id>``, base64url). Any other
    well-formed one names no page (404), so the service's own decoding never fails on it
    and an id past 64 bits never reaches the driver."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
    except (binascii.Error, ValueError):
        raw = ""
    kind, _, value = raw.partition(":")
    if kind != "d" or not ID.fullmatch(value) or int(value) > MAX_INT:
        raise NotFound("no page at this cursor: pass back a next_cursor this list gave")
