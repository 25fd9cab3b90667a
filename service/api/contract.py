"""The error side of the OpenAPI contract. Every operation declares, from the one table
below, the ``application/problem+json`` answers its handlers in :mod:`service.api.problems`
can give; :class:`Api` adds the ``Problem`` schema they all point at.

What raises which status: ``LineageError`` 400 (a malformed cursor or Idempotency-Key),
``Unauthenticated`` 401, ``Forbidden`` 403, ``NotFound`` 404, ``Conflict`` 409, the body
limit 413, request validation, ``Unprocessable`` and ``DataError`` 422, ``RateLimited``
429, ``Unavailable`` 503 (see ``service/lineage/errors.py``).
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from pydantic import BaseModel, ConfigDict, Field

PROBLEM = "application/problem+json"
REF = {"$ref": "#/components/schemas/Problem"}
SECONDS = {"schema": {"type": "integer", "minimum": 1}, "description": "seconds to wait"}

WHY: dict[int, str] = {
    400: "the body is not valid JSON, or a parameter is malformed",
    401: "no, a malformed, unknown, expired or revoked token (with WWW-Authenticate)",
    403: "the key lacks this route's scope, or is past one of its caps",
    404: "no such resource",
    409: "the resource is not in a state that allows this",
    413: "the request body exceeds this deployment's limit (UNLEARN_MAX_BODY_BYTES)",
    422: "the request does not validate (``errors`` names each field), or cannot be processed",
    429: "over the key's rate limit, or too many failed authentications from this address "
    "(with Retry-After)",
    503: "temporarily unavailable (with Retry-After)",
}
HEADERS: dict[int, dict[str, Any]] = {
    401: {"WWW-Authenticate": {"schema": {"type": "string"}, "required": True}},
    429: {"Retry-After": {**SECONDS, "required": True}},
    503: {"Retry-After": {**SECONDS, "required": True}},
}

# Every authenticated route; a route with a body adds BODY.
AUTH = (401, 403, 429)
BODY = (400, 413, 422)


class Problem(BaseModel):
    """RFC 9457 problem details; a handler may add members (``errors``, ``retry_after``)."""

    model_config = ConfigDict(extra="allow")

    type: str = Field("about:blank", description="always about:blank: ``status`` says it")
    title: str = Field(description="the status's phrase")
    status: int = Field(description="the HTTP status")
    detail: str = Field(description="what went wrong, for a person")


def problems(*statuses: int, **why: str) -> dict[int | str, dict[str, Any]]:
    """The ``responses`` of an operation for ``statuses``; ``why`` (keyed ``s404`` ...)
    words a status for this route."""
    out: dict[int | str, dict[str, Any]] = {}
    for status in statuses:
        response: dict[str, Any] = {
            "description": why.get(f"s{status}", WHY[status]),
            "content": {PROBLEM: {"schema": REF}},
        }
        if status in HEADERS:
            response["headers"] = HEADERS[status]
        out[status] = response
    return out


class Api(FastAPI):
    """FastAPI whose document carries the ``Problem`` schema every error answer refers to."""

    def openapi(self) -> dict[str, Any]:
        if self.openapi_schema is None:
            document = super().openapi()
            schemas = document.setdefault("components", {}).setdefault("schemas", {})
            schemas["Problem"] = Problem.model_json_schema()
        return super().openapi()
