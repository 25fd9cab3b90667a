"""CORS is off unless ``UNLEARN_CORS_ORIGINS`` names origins; then only those are allowed."""

from __future__ import annotations

import dataclasses

import pytest
from fastapi.testclient import TestClient

from service.api.app import create_app
from service.core import Service
from tests.service.clients import bearer, new_token

ORIGIN = "https://portal.example.com"
PREFLIGHT = {
    "Origin": ORIGIN,
    "Access-Control-Request-Method": "POST",
    "Access-Control-Request-Headers": "authorization,content-type",
}


@pytest.mark.parametrize("service", ["sqlite"], indirect=True)
def test_no_cors_headers_by_default(service: Service) -> None:
    with TestClient(create_app(service, run_worker=False)) as client:
        r = client.get("/v1/deletions", headers={"Origin": ORIGIN, **bearer(new_token(service))})
        assert r.status_code == 200
        assert "access-control-allow-origin" not in r.headers
        pre = client.options("/v1/deletions", headers=PREFLIGHT)
        assert "access-control-allow-origin" not in pre.headers


@pytest.mark.parametrize("service", ["sqlite"], indirect=True)
def test_configured_origins_only(service: Service) -> None:
    service.settings = dataclasses.replace(service.settings, cors_origins=(ORIGIN,))
    with TestClient(create_app(service, run_worker=False)) as client:
        pre = client.options("/v1/deletions", headers=PREFLIGHT)
        assert pre.status_code == 200 and pre.headers["access-control-allow-origin"] == ORIGIN
        assert "authorization" in pre.headers["access-control-allow-headers"].lower()
        other = client.options(
            "/v1/deletions", headers={**PREFLIGHT, "Origin": "https://evil.example.net"}
        )
        assert other.headers.get("access-control-allow-origin") != "https://evil.example.net"
        # CORS opens nothing: a cross-site call still needs its key.
        r = client.get("/v1/deletions", headers={"Origin": ORIGIN})
        assert r.status_code == 401 and r.headers["access-control-allow-origin"] == ORIGIN
