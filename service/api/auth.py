"""Who may call what. Every route but the probes takes its service through :func:`Scoped`,
which names the route's scope once: the dependency authenticates the bearer token, charges
the caller's rate limit, checks the scope and hands the route the service acting for the
caller (so every event the call writes names it). The OpenAPI document shows the bearer
scheme and each operation's scope from the same declaration.

- no or malformed credentials, unknown, expired or revoked key: 401 with ``WWW-Authenticate``;
- a key without the route's scope: 403;
- a subject's status token: only ``GET`` of its own request and certificate; another
  request's id answers 404, exactly as a request that does not exist;
- past a key's budget, or a client address's budget of failed authentications: 429 with
  ``Retry-After``.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Depends, Request, Security
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer, SecurityScopes

from service.access.errors import Forbidden, Unauthenticated
from service.access.principal import Principal
from service.access.ratelimit import RateLimits
from service.access.scopes import Scope
from service.api.contract import AUTH, problems
from service.core import Service
from service.lineage.errors import NotFound

bearer = HTTPBearer(
    scheme_name="bearer",
    bearerFormat="unlk_... API key, or a subject's unls_... status token",
    description="An API key (`unlearn keys create`), or the status token a deletion's 202 "
    "returns, which reads only that request and its certificate.",
    auto_error=False,
)
RESPONSES = problems(*AUTH)  # every authenticated route's
Credentials = Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]


def _service(request: Request) -> Service:
    svc: Service = request.app.state.service
    return svc


def _caller(request: Request, credentials: HTTPAuthorizationCredentials | None) -> Principal:
    if credentials is None:
        raise Unauthenticated(
            "this route needs a bearer token: send 'Authorization: Bearer <API key>'",
            error=None,
        )
    limits: RateLimits = request.app.state.rate_limits
    address = request.client.host if request.client is not None else "unknown"
    try:
        principal = _service(request).authenticate(credentials.credentials)
    except Unauthenticated:
        blocked = limits.blocked(address)
        if blocked is not None:
            raise blocked from None
        limits.failed(address)
        raise
    limits.charge(principal.ref)
    return principal


def _scoped(principal: Principal, scopes: SecurityScopes) -> None:
    if principal.request is not None:
        raise Forbidden("a status token reads only its own deletion request and certificate")
    for name in scopes.scopes:
        if not principal.may(Scope(name)):
            raise Forbidden(f"this key lacks the scope {name!r} that this route needs")


def _authorize(request: Request, scopes: SecurityScopes, credentials: Credentials) -> Service:
    principal = _caller(request, credentials)
    _scoped(principal, scopes)
    return _service(request).acting_as(principal)


def _authorize_or_status_token(
    request: Request, scopes: SecurityScopes, credentials: Credentials
) -> Service:
    principal = _caller(request, credentials)
    if principal.request is not None:
        public_id = request.path_params.get("public_id")
        if public_id != principal.request:
            raise NotFound(f"no deletion request {public_id!r}")
    else:
        _scoped(principal, scopes)
    return _service(request).acting_as(principal)


def Scoped(scope: Scope | None, *, status_token: bool = False) -> Any:
    """The route's one access declaration: ``scope`` (``None``: any API key), and whether
    the subject's status token of the request in the path may call it too."""
    return Security(
        _authorize_or_status_token if status_token else _authorize,
        scopes=[] if scope is None else [str(scope)],
    )
