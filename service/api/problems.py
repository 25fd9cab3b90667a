"""Errors as ``application/problem+json`` (RFC 9457), never a stack trace."""

from __future__ import annotations

import logging
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.routing import Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from models.data import DataError
from service.access.errors import Unauthenticated
from service.access.ratelimit import RateLimited
from service.api.contract import PROBLEM
from service.lineage.deletion import NoMatch
from service.lineage.errors import LineageError, Unavailable
from service.states import RequestState

log = logging.getLogger(__name__)
METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")


def problem(status: int, detail: str, **extra: Any) -> JSONResponse:
    body = {
        "type": "about:blank",
        "title": HTTPStatus(status).phrase,
        "status": status,
        "detail": detail,
        **extra,
    }
    return JSONResponse(body, status_code=status, media_type=PROBLEM)


def install(app: FastAPI) -> None:
    @app.exception_handler(Unauthenticated)
    async def _unauthenticated(request: Request, exc: Unauthenticated) -> JSONResponse:
        response = problem(401, str(exc))
        challenge = 'Bearer realm="unlearn"'
        if exc.error is not None:
            challenge += f', error="{exc.error}"'
        response.headers["WWW-Authenticate"] = challenge
        return response

    @app.exception_handler(RateLimited)
    async def _rate_limited(request: Request, exc: RateLimited) -> JSONResponse:
        response = problem(429, str(exc), retry_after=exc.retry_after)
        response.headers["Retry-After"] = str(exc.retry_after)
        return response

    @app.exception_handler(NoMatch)
    async def _no_match(request: Request, exc: NoMatch) -> JSONResponse:
        return problem(
            404, str(exc), state=RequestState.COMPLETED, reason="no_match", not_found=exc.not_found
        )

    @app.exception_handler(Unavailable)
    async def _unavailable(request: Request, exc: Unavailable) -> JSONResponse:
        # The estimate reads the job queue: off the event loop.
        seconds = await run_in_threadpool(_retry_after, request)
        response = problem(503, str(exc), retry_after=seconds)
        response.headers["Retry-After"] = str(seconds)
        return response

    @app.exception_handler(LineageError)
    async def _lineage(request: Request, exc: LineageError) -> JSONResponse:
        return problem(exc.status, str(exc))

    @app.exception_handler(DataError)
    async def _data(request: Request, exc: DataError) -> JSONResponse:
        return problem(422, str(exc), line=exc.line, column=exc.column, code=exc.code)

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [
            {"loc": list(e.get("loc", ())), "msg": e.get("msg", ""), "type": e.get("type", "")}
            for e in exc.errors()
        ]
        if any(e["type"] == "json_invalid" for e in errors):
            return problem(400, "the request body is not valid JSON", errors=errors)
        return problem(422, "the request is not valid", errors=errors)

    @app.exception_handler(HTTPException)
    async def _http(request: Request, exc: HTTPException) -> JSONResponse:
        response = problem(exc.status_code, str(exc.detail))
        response.headers.update(exc.headers or {})
        if exc.status_code == 405:
            response.headers["Allow"] = _allowed(request)
        return response

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        return problem(500, "internal error; it has been logged")


def _allowed(request: Request) -> str:
    """Every method some route of this path takes (Starlette names only the first matching
    route's, and GET and POST of one path are two routes)."""
    return ", ".join(
        method
        for method in METHODS
        if any(
            route.matches({**request.scope, "method": method})[0] == Match.FULL
            for route in request.app.router.routes
        )
    )


def _retry_after(request: Request) -> int:
    """Seconds until a model in the path can serve again (its queue's estimate), else the
    default wait."""
    from service.app.eta import DEFAULT_S, retry_after

    model_id = request.path_params.get("model_id")
    if not isinstance(model_id, int):
        return DEFAULT_S
    try:
        return retry_after(request.app.state.service.db, model_id)
    except Exception:  # an estimate never turns a 503 into a 500; the log says why
        log.exception("cannot estimate Retry-After for model %s", model_id)
        return DEFAULT_S


class BodyLimit:
    """Refuse bodies above ``max_bytes`` with 413, whether or not Content-Length is sent."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app, self.max_bytes = app, max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers") or [])
        declared = headers.get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
            await _send_413(send, self.max_bytes)
            return
        seen = 0

        async def limited() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_bytes:
                    raise _TooLarge(self.max_bytes)
            return message

        try:
            await self.app(scope, limited, send)
        except _TooLarge:
            await _send_413(send, self.max_bytes)


class _TooLarge(HTTPException):
    """Raised from ``receive``; an HTTPException, so FastAPI's body parsing re-raises it
    (anything else there becomes its generic 400) and the handler above answers 413."""

    def __init__(self, max_bytes: int) -> None:
        super().__init__(413, _too_large(max_bytes))


def _too_large(max_bytes: int) -> str:
    return f"the request body exceeds {max_bytes} bytes"


async def _send_413(send: Send, max_bytes: int) -> None:
    response = problem(413, _too_large(max_bytes))
    await send(
        {
            "type": "http.response.start",
            "status": 413,
            "headers": [
                (b"content-type", PROBLEM.encode()),
                (b"content-length", str(len(response.body)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": response.body})
