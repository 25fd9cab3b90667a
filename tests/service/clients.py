"""API test clients that carry a bearer token (every route but the probes needs one)."""

from __future__ import annotations

from collections.abc import Iterable

from fastapi.testclient import TestClient

from service.access.principal import cli_principal
from service.api.app import create_app
from service.core import Service


def new_token(
    service: Service, *, role: str | None = "admin", scopes: Iterable[str] = (), name: str = "tests"
) -> str:
    """A fresh API key's token, created as the operator would with `unlearn keys create`."""
    return service.acting_as(cli_principal()).create_key(name, role=role, scopes=scopes).token


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def api_client(service: Service, *, run_worker: bool = False, role: str = "admin") -> TestClient:
    """A client of a new app on ``service`` whose every call carries a ``role`` key (use it
    as a context manager, like ``TestClient``)."""
    app = create_app(service, run_worker=run_worker)
    return TestClient(app, headers=bearer(new_token(service, role=role)))
