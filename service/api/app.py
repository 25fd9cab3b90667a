"""The FastAPI application: ``create_app(service)``; ``unlearn serve`` runs it with uvicorn.

With no broker configured (the embedded default) the app also runs the local worker thread,
so one process serves the API and trains; with ``CELERY_BROKER_URL`` set, jobs go to Celery.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from sqlalchemy import text

from service.api import problems
from service.api.report import router as report_router
from service.api.routes import router
from service.core import Service
from service.db import schema
from service.jobs.runner import LocalWorker
from service.serving import ModelServer

VERSION = "0.1.0"
log = logging.getLogger(__name__)


def create_app(service: Service | None = None, *, run_worker: bool = True) -> FastAPI:
    """``run_worker=False`` leaves jobs queued (tests drive the worker themselves)."""
    svc = Service.open() if service is None else service

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        worker = None
        if svc.settings.embedded and run_worker:
            worker = LocalWorker(svc.db, svc.settings)
            svc.send = worker.send
            worker.start()
        if schema.at_head(svc.db.engine):
            svc.dispatch()
        else:
            log.warning("database schema is not at head: run `unlearn db upgrade`")
        try:
            yield
        finally:
            if worker is not None:
                worker.stop(timeout=5)

    app = FastAPI(
        title="unlearn",
        version=VERSION,
        summary="Exact machine unlearning as a data-deletion service (GDPR Art. 17)",
        lifespan=lifespan,
    )
    app.state.service = svc
    app.state.server = ModelServer(svc)
    problems.install(app)
    app.include_router(router)
    app.include_router(report_router)
    app.add_middleware(problems.BodyLimit, max_bytes=svc.settings.max_body_bytes)

    @app.get("/livez")
    def livez() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/readyz", response_model=None)
    def readyz(request: Request) -> dict[str, Any] | JSONResponse:
        checks = _readiness(svc)
        if all(c["ok"] for c in checks.values()):
            return {"status": "ready", "checks": checks}
        return problems.problem(503, "not ready", checks=checks)

    return app


def _readiness(svc: Service) -> dict[str, dict[str, Any]]:
    checks: dict[str, dict[str, Any]] = {}
    try:
        with svc.db.engine.connect() as conn:
            conn.execute(text("SELECT 1"))
        checks["database"] = {"ok": True}
    except Exception as exc:
        checks["database"] = {"ok": False, "error": type(exc).__name__}
        return checks
    current = schema.current_revision(svc.db.engine)
    checks["migrations"] = {"ok": current == schema.head_revision(), "current": current}
    if svc.settings.broker_url is not None:
        try:
            from kombu.connection import Connection

            with Connection(svc.settings.broker_url, connect_timeout=2) as conn:  # type: ignore[no-untyped-call]
                conn.ensure_connection(max_retries=1)
            checks["broker"] = {"ok": True}
        except Exception as exc:
            checks["broker"] = {"ok": False, "error": type(exc).__name__}
    return checks
