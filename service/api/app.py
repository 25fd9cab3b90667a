"""The FastAPI application: ``create_app(service)``; ``unlearn serve`` runs it with uvicorn.

With no broker configured (the embedded default) the app also runs the local worker thread,
so one process serves the API and trains; with ``CELERY_BROKER_URL`` set, jobs go to Celery.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from importlib.metadata import version
from typing import Annotated, Any

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import JSONResponse

from service.access.ratelimit import RateLimits
from service.api import problems
from service.api.auth import Scoped
from service.api.contract import PROBLEM, REF, Api
from service.api.report import router as report_router
from service.api.routes import router
from service.core import Service
from service.views import Liveness, Readiness

VERSION = version("unlearn")
log = logging.getLogger(__name__)
# Ready means deletions can be accepted; the other checks (broker, models) are informational.
ACCEPTANCE_CHECKS = ("database", "migrations")


def create_app(service: Service | None = None, *, run_worker: bool = True) -> FastAPI:
    """The API's composition root. Without a ``service``, one from the environment (with the
    broker's sender when one is configured). ``run_worker=False`` leaves jobs queued (tests
    drive the worker themselves)."""
    svc = _from_env() if service is None else service
    if svc.predictor is None:
        from service.serving import ModelServer

        svc.predictor = ModelServer(svc)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        worker = None
        if svc.settings.embedded and run_worker:
            worker = svc.local_worker()
            svc.send = worker.send
            worker.start()
        if svc.schema_at_head():
            svc.dispatch()
        else:
            log.warning("database schema is not at head: run `unlearn db upgrade`")
        try:
            yield
        finally:
            if worker is not None:
                worker.stop(timeout=5)

    settings = svc.settings
    app = Api(
        title="unlearn",
        version=VERSION,
        summary="Exact machine unlearning as a data-deletion service (GDPR Art. 17)",
        lifespan=lifespan,
        # Every route but the probes needs a key, the OpenAPI document too (below); the
        # interactive docs pages could not fetch it, so they are off.
        openapi_url=None,
        docs_url=None,
        redoc_url=None,
    )
    app.state.service = svc
    app.state.rate_limits = RateLimits.open(
        settings.rate_limit_uri, settings.rate_limit, settings.auth_failure_limit, "unlearn"
    )
    problems.install(app)
    app.include_router(router)
    app.include_router(report_router)
    app.add_middleware(problems.BodyLimit, max_bytes=settings.max_body_bytes)
    if settings.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=list(settings.cors_origins),
            allow_methods=["GET", "POST", "DELETE"],
            allow_headers=["Authorization", "Content-Type", "Idempotency-Key"],
            expose_headers=["Location", "Retry-After", "Idempotent-Replayed"],
        )

    @app.get("/openapi.json", include_in_schema=False)
    def openapi(_: Annotated[Service, Scoped(None)]) -> JSONResponse:
        """The OpenAPI document, for any API key (also ``unlearn openapi``, offline)."""
        return JSONResponse(app.openapi())

    @app.get("/livez", response_model=Liveness)
    def livez() -> Liveness:
        return Liveness(status="ok")

    @app.get(
        "/readyz",
        response_model=Readiness,
        response_model_exclude_unset=True,
        responses={
            503: {
                "description": "not ready: the database does not answer or its schema is not "
                "at head; ``checks`` has every check",
                "content": {PROBLEM: {"schema": REF}},
            }
        },
    )
    def readyz() -> Readiness | JSONResponse:
        """200 while deletions can be accepted (the database answers at the schema's head),
        even with the broker down: jobs wait in the outbox. ``degraded`` names the failing
        informational checks."""
        _, view = svc.readiness()
        return readiness(view)

    return app


def api_process() -> FastAPI:
    """The app of one of several API processes (``unlearn serve --processes N``): the
    service from the environment; jobs are run by the supervising process's local worker
    (which polls for them) or by the broker's workers."""
    return create_app(run_worker=False)


def readiness(view: Readiness | dict[str, dict[str, Any]]) -> Readiness | JSONResponse:
    """Decided here from the acceptance checks alone, whatever the service's own verdict."""
    checks = view.model_dump(mode="json")["checks"] if isinstance(view, Readiness) else view
    failing = [name for name in ACCEPTANCE_CHECKS if not checks.get(name, {}).get("ok")]
    if failing:
        return problems.problem(503, f"not ready: {', '.join(failing)}", checks=checks)
    if isinstance(view, Readiness):
        return view
    degraded = sorted(name for name, check in checks.items() if not check.get("ok"))
    return Readiness.model_validate({"status": "ready", "checks": checks, "degraded": degraded})


def _from_env() -> Service:
    from service.app.broker import broker_send
    from service.settings import Settings

    settings = Settings.from_env()
    return Service.open(settings, send=broker_send(settings))
