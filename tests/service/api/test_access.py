"""Access control over HTTP: the route x principal matrix, built from the app's own route
table, on SQLite and PostgreSQL; status tokens; revocation and expiry across app instances.

Every route but the probes must declare a scope (the OpenAPI document shows it) and have a
case below that it answers with 2xx; a route added without either fails
``test_every_route_declares_a_scope_and_has_a_case``.
"""

from __future__ import annotations

import datetime as dt
import itertools
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient

from service.access.scopes import Scope
from service.api.app import create_app
from service.approximate.registry import ApproximateSpec
from service.core import Service
from service.lineage.deletion import DeletionInput
from tests.service.api.conftest import drain, jsonl
from tests.service.approximate.conftest import CNN, image_dataset
from tests.service.clients import bearer, new_token
from tests.service.conftest import synthetic_dataset

PROBES = {("GET", "/livez"), ("GET", "/readyz")}
# The routes a subject's status token may call, for its own request only.
STATUS_TOKEN_ROUTES = {
    ("GET", "/v1/deletions/{public_id}"),
    ("GET", "/v1/deletions/{public_id}/certificate"),
}
ANY_KEY = "(any key)"


@dataclass
class World:
    """What the cases need: a completed request (with its status token), one waiting in
    review on an approximate model, a spare key to revoke, an image to predict on."""

    svc: Service
    model_id: int
    image: list[float]
    done_id: str
    done_token: str
    review_id: str
    spare_key: str
    serial: Callable[[], int] = field(default_factory=lambda: itertools.count().__next__)


def _world(svc: Service) -> World:
    svc.import_dataset("digits", image_dataset(200, 0, "digits", n_subjects=4))
    svc.import_dataset("digits-held-out", image_dataset(60, 1, "held"))
    svc.import_dataset("loose", synthetic_dataset(24, n_subjects=6))  # in no model
    # A zero band flags every approximate result: the deletion waits in needs_review.
    spec = ApproximateSpec(
        family="cnn-mnist",
        eval_dataset="digits-held-out",
        method="FT",
        family_params=CNN,
        auc_margin=0.0,
        auc_z=0.0,
    )
    model_id = svc.create_approximate_model("digits", spec)
    drain(svc)
    review = svc.accept(DeletionInput(subject_id="subject-0", dataset="digits"))
    drain(svc)
    assert svc.request(review.request.id).state == "needs_review"
    done = svc.accept(DeletionInput(subject_id="subject-0", dataset="loose"))
    assert done.request.state == "completed" and done.status_token is not None
    with svc.db.read() as s:
        from sqlalchemy import select

        from service.db.tables import RecordRow
        from service.erasure import vault

        sealed = s.scalar(select(RecordRow.payload).where(RecordRow.record_id == "digits-0100"))
        assert sealed is not None
        payload = vault.open_payload(s, sealed)
    spare = svc.acting_as(_operator()).create_key("spare", role="app").key.key_id
    return World(
        svc,
        model_id,
        list(payload["features"]),
        done.request.id,
        done.status_token,
        review.request.id,
        spare,
    )


def _operator() -> Any:
    from service.access.principal import cli_principal

    return cli_principal()


Case = Callable[[World], dict[str, Any]]
# (method, path template) -> the request that route answers with 2xx.
CASES: dict[tuple[str, str], Case] = {
    ("POST", "/v1/datasets"): lambda w: {
        "url": "/v1/datasets",
        "data": {"name": f"upload-{w.serial()}"},
        "files": {"file": ("u.jsonl", jsonl(synthetic_dataset(12)), "application/x-ndjson")},
    },
    ("GET", "/v1/datasets/{name}"): lambda w: {"url": "/v1/datasets/digits"},
    ("POST", "/v1/models"): lambda w: {
        "url": "/v1/models",
        "json": {"dataset": "loose", "shards": 1, "slices": 2, "budget": 1, "epochs": 1},
    },
    ("POST", "/v1/models/approximate"): lambda w: {
        "url": "/v1/models/approximate",
        "json": {
            "dataset": "digits",
            "family": "cnn-mnist",
            "eval_dataset": "digits-held-out",
            "family_params": CNN,
        },
    },
    ("GET", "/v1/models/{model_id}"): lambda w: {"url": f"/v1/models/{w.model_id}"},
    ("GET", "/v1/models/{model_id}/placements"): lambda w: {
        "url": f"/v1/models/{w.model_id}/placements"
    },
    ("POST", "/v1/models/{model_id}/predict"): lambda w: {
        "url": f"/v1/models/{w.model_id}/predict",
        "json": {"inputs": [w.image]},
    },
    ("POST", "/v1/deletions"): lambda w: {
        "url": "/v1/deletions",
        "json": {"subject_id": f"subject-{1 + w.serial() % 5}", "dataset": "loose"},
    },
    ("GET", "/v1/deletions"): lambda w: {"url": "/v1/deletions"},
    ("GET", "/v1/deletions/{public_id}"): lambda w: {"url": f"/v1/deletions/{w.review_id}"},
    ("POST", "/v1/deletions/{public_id}/resolve"): lambda w: {
        "url": f"/v1/deletions/{w.review_id}/resolve",
        "json": {"action": "accept"},
    },
    ("GET", "/v1/deletions/{public_id}/certificate"): lambda w: {
        "url": f"/v1/deletions/{w.done_id}/certificate"
    },
    ("POST", "/v1/keys"): lambda w: {
        "url": "/v1/keys",
        "json": {"name": f"made-{w.serial()}", "scopes": ["keys:admin"]},
    },
    ("GET", "/v1/keys"): lambda w: {"url": "/v1/keys"},
    ("DELETE", "/v1/keys/{key_id}"): lambda w: {"url": f"/v1/keys/{w.spare_key}"},
    ("GET", "/v1/audit/report"): lambda w: {"url": "/v1/audit/report"},
    ("GET", "/openapi.json"): lambda w: {"url": "/openapi.json"},
}


def route_scopes(app: FastAPI) -> dict[tuple[str, str], str | None]:
    """Every route of the app with the scope it declares (``ANY_KEY`` for a key of any
    scope, ``None`` for none): the OpenAPI operations' security, plus the app's own routes
    left out of the document."""
    out: dict[tuple[str, str], str | None] = {}
    for path, ops in app.openapi()["paths"].items():
        for method, op in ops.items():
            security = op.get("security")
            scopes = [s for req in security or [] for s in req.get("bearer", [])]
            out[(method.upper(), path)] = (scopes[0] if scopes else ANY_KEY) if security else None
    for route in app.routes:
        if isinstance(route, APIRoute) and not route.include_in_schema:
            calls = {d.call.__name__ for d in route.dependant.dependencies}
            scoped = bool(calls & {"_authorize", "_authorize_or_status_token"})
            for method in route.methods:
                out[(method, route.path)] = ANY_KEY if scoped else None
    return out


def _call(client: TestClient, method: str, token: str | None, request: dict[str, Any]) -> Any:
    headers = {} if token is None else bearer(token)
    url = request.pop("url")
    return client.request(method, url, headers=headers, **request)


def _problem(r: Any, status: int) -> None:
    assert r.status_code == status, r.text
    assert r.headers["content-type"] == "application/problem+json"
    assert r.json()["status"] == status


def test_every_route_declares_a_scope_and_has_a_case(service: Service) -> None:
    table = route_scopes(create_app(service, run_worker=False))
    unscoped = sorted(r for r, scope in table.items() if scope is None and r not in PROBES)
    assert not unscoped, f"routes without a declared scope: {unscoped}"
    assert set(table) - PROBES == set(CASES), "add a case for every new route"
    assert all(table[p] is None for p in PROBES), "the probes stay open"


def test_route_by_principal_matrix(service: Service) -> None:
    world = _world(service)
    app = create_app(service, run_worker=False)
    table = route_scopes(app)
    all_scopes = {str(s) for s in Scope}
    with TestClient(app) as client:
        for probe in PROBES:
            assert client.get(probe[1]).status_code in (200, 503)
        for (method, path), scope in sorted(table.items()):
            if (method, path) in PROBES:
                continue
            what = f"{method} {path}"
            case = CASES[(method, path)]
            r = _call(client, method, None, case(world))
            _problem(r, 401)
            assert r.headers["www-authenticate"].startswith("Bearer"), what
            if scope != ANY_KEY:
                wrong = new_token(service, role=None, scopes=sorted(all_scopes - {scope}))
                _problem(_call(client, method, wrong, case(world)), 403)
            if (method, path) not in STATUS_TOKEN_ROUTES:
                _problem(_call(client, method, world.done_token, case(world)), 403)
            if scope == ANY_KEY:
                right = new_token(service, role="app")
            else:
                right = new_token(service, role=None, scopes=[str(scope)])
            r = _call(client, method, right, case(world))
            assert 200 <= r.status_code < 300, f"{what}: {r.status_code} {r.text[:300]}"

        # The status token reads its own request and certificate, and nothing else exists.
        own = client.get(f"/v1/deletions/{world.done_id}", headers=bearer(world.done_token))
        assert own.status_code == 200 and own.json()["state"] == "completed"
        cert = client.get(
            f"/v1/deletions/{world.done_id}/certificate", headers=bearer(world.done_token)
        )
        assert cert.status_code == 200 and cert.json()["request"] == world.done_id
        for url in (
            f"/v1/deletions/{world.review_id}",
            f"/v1/deletions/{world.review_id}/certificate",
            "/v1/deletions/00000000-0000-0000-0000-000000000000",
        ):
            r = client.get(url, headers=bearer(world.done_token))
            _problem(r, 404)
            missing = client.get(
                "/v1/deletions/00000000-0000-0000-0000-000000000000",
                headers=bearer(new_token(service, role="auditor")),
            )
            assert r.json()["detail"].split("'")[0] == missing.json()["detail"].split("'")[0]


def test_bad_tokens_are_told_apart_but_never_echoed(service: Service) -> None:
    token = new_token(service, role="auditor")
    key_id = token.split("_")[1]
    with TestClient(create_app(service, run_worker=False)) as client:
        cases = {
            "Bearer": None,
            "Basic dXNlcjpwYXNz": None,
            "Bearer not-a-token": "not an unlearn API key",
            f"Bearer {token[:-3]}xyz": "not an unlearn API key",  # the check characters
            f"Bearer {token[:20]}{'a' * (len(token) - 27)}{token[-7:]}": None,
        }
        for header, detail in cases.items():
            r = client.get("/v1/deletions", headers={"Authorization": header})
            _problem(r, 401)
            assert token not in r.text and (detail is None or detail in r.json()["detail"])
        service.revoke_key(key_id)
        r = client.get("/v1/deletions", headers=bearer(token))
        _problem(r, 401)
        assert "revoked" in r.json()["detail"] and token not in r.text
        assert 'error="invalid_token"' in r.headers["www-authenticate"]


@pytest.mark.postgres
def test_revoked_and_expired_keys_are_refused_by_a_second_instance(
    pg_service: Service, tmp_path: Any
) -> None:
    """Two API processes on one PostgreSQL database: a revocation or an expiry seen through
    one holds in the other at once (no cache)."""
    from service.db.tables import ApiKeyRow

    other = Service.open(pg_service.settings)
    try:
        one = TestClient(create_app(pg_service, run_worker=False))
        two = TestClient(create_app(other, run_worker=False))
        revoked, expiring = new_token(pg_service, role="auditor"), new_token(pg_service)
        for client in (one, two):
            assert client.get("/v1/deletions", headers=bearer(revoked)).status_code == 200
            assert client.get("/v1/keys", headers=bearer(expiring)).status_code == 200
        admin = new_token(pg_service)
        r = one.delete(f"/v1/keys/{revoked.split('_')[1]}", headers=bearer(admin))
        assert r.status_code == 200 and r.json()["revoked_at"] is not None
        r = two.get("/v1/deletions", headers=bearer(revoked))
        _problem(r, 401)
        assert "revoked" in r.json()["detail"]
        with pg_service.db.write() as s:
            from sqlalchemy import update

            past = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1)
            s.execute(
                update(ApiKeyRow)
                .where(ApiKeyRow.key_id == expiring.split("_")[1])
                .values(expires_at=past)
            )
        for client in (one, two):
            r = client.get("/v1/keys", headers=bearer(expiring))
            _problem(r, 401)
            assert "expired" in r.json()["detail"]
    finally:
        other.db.dispose()
