"""Rate limits over HTTP: a budget per key, a budget of failed authentications per client
address, counters shared by every API process through Redis (and not through memory), and
where the counters live (``Settings.rate_limit_uri``)."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
from fastapi.testclient import TestClient

from service.access import tokens
from service.api.app import create_app
from service.core import Service
from service.settings import Settings
from tests.redis_db import flushed_redis
from tests.service.clients import bearer, new_token

REDIS_DB = 7  # the broker tests use 8..15
ROUTE = "/v1/deletions"  # any route an auditor key may read


def _tuned(service: Service, **changes: Any) -> Service:
    """``service`` with some settings changed (before ``create_app`` reads them)."""
    return dataclasses.replace(service, settings=dataclasses.replace(service.settings, **changes))


def _client(service: Service, address: str = "testclient") -> TestClient:
    return TestClient(create_app(service, run_worker=False), client=(address, 50000))


def _assert_429(r: Any, window_s: int = 60) -> int:
    assert r.status_code == 429, r.text
    assert r.headers["content-type"] == "application/problem+json"
    header = r.headers["retry-after"]
    assert header.isdigit(), header
    retry_after = int(header)
    assert 1 <= retry_after <= window_s
    body = r.json()
    assert body["status"] == 429 and body["retry_after"] == retry_after
    return retry_after


def test_each_key_has_its_own_budget(service: Service) -> None:
    svc = _tuned(service, rate_limit="3/minute")
    one, two = new_token(svc, role="auditor"), new_token(svc, role="auditor")
    with _client(svc) as client:
        for _ in range(3):
            assert client.get(ROUTE, headers=bearer(one)).status_code == 200
        r = client.get(ROUTE, headers=bearer(one))
        _assert_429(r)
        assert "rate limit of 3 per 1 minute per key exceeded" in r.json()["detail"]
        # The budget is the key's, not the route's.
        _assert_429(client.get("/v1/models/1", headers=bearer(one)))
        # Another key still passes, from the same address.
        for _ in range(3):
            assert client.get(ROUTE, headers=bearer(two)).status_code == 200
        _assert_429(client.get(ROUTE, headers=bearer(two)))
        # The probes are never charged.
        assert client.get("/livez").status_code == 200


def test_the_default_budget_is_generous(service: Service) -> None:
    token = new_token(service, role="auditor")
    with _client(service) as client:
        for _ in range(25):
            assert client.get(ROUTE, headers=bearer(token)).status_code == 200


def test_failed_authentications_are_limited_per_address(service: Service) -> None:
    svc = _tuned(service, auth_failure_limit="2/minute")
    good = new_token(svc, role="auditor")
    revoked = new_token(svc, role="auditor")
    svc.revoke_key(revoked.split("_")[1])
    unknown = tokens.new_key().token
    with _client(svc) as client, _client(svc, "10.0.0.2") as elsewhere:
        for bad in (unknown, revoked):
            r = client.get(ROUTE, headers=bearer(bad))
            assert r.status_code == 401, r.text
        r = client.get(ROUTE, headers=bearer(unknown))
        _assert_429(r)
        assert "too many failed authentications" in r.json()["detail"]
        assert unknown not in r.text
        _assert_429(client.get(ROUTE, headers=bearer("not-a-token")))
        # A valid key from the same address is served: only failures are counted.
        assert client.get(ROUTE, headers=bearer(good)).status_code == 200
        # No credentials at all is not a failed authentication.
        assert client.get(ROUTE).status_code == 401
        # Another address has its own budget.
        assert elsewhere.get(ROUTE, headers=bearer(unknown)).status_code == 401


def test_memory_counters_are_per_process(service: Service) -> None:
    """The default (no broker): each API process counts alone, so two processes on one
    database allow a key twice its budget; the Redis test below is what shares it."""
    settings = dataclasses.replace(service.settings, rate_limit="4/minute")
    assert settings.rate_limit_uri == "memory://"
    other = Service.open(settings)
    try:
        one, two = _tuned(service, rate_limit="4/minute"), other
        token = new_token(one, role="auditor")
        with _client(one) as a, _client(two) as b:
            for client in (a, b):
                for _ in range(4):
                    assert client.get(ROUTE, headers=bearer(token)).status_code == 200
            for client in (a, b):
                _assert_429(client.get(ROUTE, headers=bearer(token)))
    finally:
        other.db.dispose()


@pytest.fixture
def redis_storage() -> Iterator[str]:
    """Redis database 7, flushed before and after (skipped without Redis, failed in CI)."""
    with flushed_redis(REDIS_DB) as url:
        yield url


@pytest.mark.postgres
def test_two_processes_share_one_budget_through_redis(
    pg_service: Service, redis_storage: str
) -> None:
    """Needs the shared servers (PostgreSQL and Redis, hence the ``postgres`` marker): two
    API instances on one database and one Redis draw on one budget per key, and on one
    budget of failed authentications per address."""
    settings = dataclasses.replace(
        pg_service.settings,
        rate_limit="4/minute",
        auth_failure_limit="2/minute",
        rate_limit_storage=redis_storage,
    )
    one = dataclasses.replace(pg_service, settings=settings)
    two = Service.open(settings)
    try:
        token = new_token(one, role="auditor")
        with _client(one) as a, _client(two) as b:
            for client in (a, a, b, b):
                assert client.get(ROUTE, headers=bearer(token)).status_code == 200
            _assert_429(a.get(ROUTE, headers=bearer(token)))
            _assert_429(b.get(ROUTE, headers=bearer(token)))
            other = new_token(two, role="auditor")
            assert b.get(ROUTE, headers=bearer(other)).status_code == 200

            unknown = tokens.new_key().token
            assert a.get(ROUTE, headers=bearer(unknown)).status_code == 401
            assert b.get(ROUTE, headers=bearer(unknown)).status_code == 401
            _assert_429(a.get(ROUTE, headers=bearer(unknown)))
        keys = redis.Redis.from_url(redis_storage).keys("*")
        assert keys and all(k.startswith(b"unlearn") for k in keys), keys
    finally:
        two.db.dispose()


def test_rate_limit_uri(tmp_path: Path) -> None:
    base = Settings(home=tmp_path, database_url=f"sqlite:///{tmp_path / 'u.db'}")
    assert base.rate_limit_uri == "memory://"
    broker = "redis://broker:6379/0"
    assert dataclasses.replace(base, broker_url=broker).rate_limit_uri == broker
    tls = "rediss://broker:6380/1"
    assert dataclasses.replace(base, broker_url=tls).rate_limit_uri == tls
    amqp = dataclasses.replace(base, broker_url="amqp://guest@rabbit//")
    assert amqp.rate_limit_uri == "memory://"
    explicit = dataclasses.replace(base, broker_url=broker, rate_limit_storage="redis://rl:6379/3")
    assert explicit.rate_limit_uri == "redis://rl:6379/3"
    pinned = dataclasses.replace(base, broker_url=broker, rate_limit_storage="memory://")
    assert pinned.rate_limit_uri == "memory://"
    env = {"UNLEARN_HOME": str(tmp_path), "CELERY_BROKER_URL": broker}
    assert Settings.from_env(env).rate_limit_uri == broker
    env["UNLEARN_RATE_LIMIT_STORAGE"] = "redis://rl:6379/4"
    assert Settings.from_env(env).rate_limit_uri == "redis://rl:6379/4"


def test_a_malformed_limit_names_its_setting(service: Service) -> None:
    with pytest.raises(ValueError, match="UNLEARN_RATE_LIMIT must look like"):
        create_app(_tuned(service, rate_limit="lots"), run_worker=False)
    with pytest.raises(ValueError, match="UNLEARN_AUTH_FAILURE_LIMIT must look like"):
        create_app(_tuned(service, auth_failure_limit="3 per fortnight"), run_worker=False)
