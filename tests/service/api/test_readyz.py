"""``/readyz`` is acceptance readiness: the database answers at the schema's head. A broker
that is down degrades the service (jobs wait in the outbox) but leaves it ready."""

from __future__ import annotations

import dataclasses
import socket
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient

from service.api.app import create_app, readiness
from service.core import Service
from service.views import Readiness
from tests.service.conftest import _settings


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])  # closed again when this returns


def test_ready_with_the_broker_down(tmp_path: Path) -> None:
    broker = f"redis://127.0.0.1:{_closed_port()}/0"
    svc = Service.open(dataclasses.replace(_settings(tmp_path), broker_url=broker))
    svc.upgrade_schema()
    with TestClient(create_app(svc, run_worker=False)) as client:
        r = client.get("/readyz")
    svc.db.dispose()
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["status"] == "ready"
    assert body["checks"]["database"]["ok"] and body["checks"]["migrations"]["ok"]
    assert body["checks"]["broker"]["ok"] is False and body["checks"]["broker"]["error"]
    assert "broker" in body["degraded"]


def test_readiness_is_decided_by_the_acceptance_checks_alone() -> None:
    down: dict[str, dict[str, Any]] = {
        "database": {"ok": True},
        "migrations": {"ok": True, "current": "head"},
        "broker": {"ok": False, "error": "OperationalError"},
    }
    ready = readiness(down)  # what a service that fails readiness on the broker returns
    assert isinstance(ready, Readiness) and ready.degraded == ["broker"]
    behind = readiness({**down, "migrations": {"ok": False, "current": None}})
    assert not isinstance(behind, Readiness) and behind.status_code == 503
    assert behind.media_type == "application/problem+json"
    assert b"migrations" in behind.body
