"""``/v1/keys``: create, list and revoke API keys (scope ``keys:admin``)."""

from __future__ import annotations

import datetime as dt
from typing import Annotated

from fastapi import APIRouter, Query, Response, status

from service.access.scopes import Scope
from service.api.auth import Scoped
from service.api.contract import BODY, problems
from service.api.schemas import KeyCreate
from service.core import Service
from service.views import KeyView, NewKeyView

router = APIRouter()
Admin = Annotated[Service, Scoped(Scope.KEYS_ADMIN)]


@router.post(
    "/keys",
    status_code=status.HTTP_201_CREATED,
    response_model=NewKeyView,
    responses=problems(*BODY),
)
def create_key(svc: Admin, response: Response, body: KeyCreate) -> NewKeyView:
    """A new key from a role and/or scopes (a key grants only scopes it holds itself). The
    token is in this answer only; the service keeps its hash."""
    expires = None
    if body.expires_in_days is not None:
        expires = dt.datetime.now(dt.UTC) + dt.timedelta(days=body.expires_in_days)
    created = svc.create_key(body.name, role=body.role, scopes=body.scopes, expires_at=expires)
    response.headers["Location"] = f"/v1/keys/{created.key.key_id}"
    return created


@router.get("/keys", response_model=list[KeyView], responses=problems(422))
def list_keys(svc: Admin, include_revoked: Annotated[bool, Query()] = False) -> list[KeyView]:
    return svc.api_keys(include_revoked=include_revoked)


@router.delete("/keys/{key_id}", response_model=KeyView, responses=problems(404, 422))
def revoke_key(svc: Admin, key_id: str) -> KeyView:
    """Refused from the next call on, in every API process."""
    return svc.revoke_key(key_id)
