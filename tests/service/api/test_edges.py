"""Edge input gets a 4xx problem, never a 500: integers past 64 bits, dates at the ends of
the calendar, a chunked body over the limit, a method a path does not take."""

from __future__ import annotations

import base64
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from service.api.app import create_app
from service.core import Service
from tests.service.clients import bearer, new_token

PROBLEM = "application/problem+json"
BIG = "9223372036854775808"  # 2**63


@pytest.fixture
def client(service: Service) -> Iterator[TestClient]:
    app = create_app(service, run_worker=False)
    headers = bearer(new_token(service))
    with TestClient(app, headers=headers, raise_server_exceptions=False) as c:
        yield c


def _cursor(raw: str) -> str:
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


@pytest.mark.parametrize(
    ("method", "url", "expected"),
    [
        ("get", f"/v1/models/{BIG}", 422),
        ("get", "/v1/models/" + "9" * 30, 422),
        ("get", "/v1/models/0", 422),
        ("get", "/v1/models/-1", 404),  # not a model id at all: no route
        ("post", f"/v1/models/{BIG}/predict", 422),
        ("get", "/v1/deletions?cursor=" + "9" * 30, 404),
        ("get", "/v1/deletions?cursor=" + _cursor("d:" + "9" * 30), 404),
        ("get", "/v1/deletions?cursor=" + _cursor(f"d:{BIG}"), 404),
        ("get", "/v1/deletions?cursor=%25%25", 422),
        ("get", "/v1/deletions?received_after=99999-01-01T00:00:00Z", 422),
        ("get", "/v1/deletions?received_after=1700000000", 422),
        ("get", "/v1/deletions?received_after=0001-01-01T00:00:00Z", 200),
        ("get", "/v1/deletions?received_after=0001-01-01T00:00:00%2B05:00", 200),
        ("get", "/v1/deletions?received_before=9999-12-31T23:59:59-05:00", 200),
        ("get", "/v1/audit/report?from=0001-01-01T00:00:00%2B05:00", 200),
        ("get", "/v1/audit/report?to=9999-12-31T23:59:59-05:00", 200),
        ("get", "/v1/audit/report?from=0001-01-01&to=9999-12-31", 200),
        ("get", "/v1/audit/report?from=99999-01-01", 400),
        ("get", "/v1/audit/report?from=0000-01-01", 400),
    ],
)
def test_edge_parameters_are_problems_or_answers(
    client: TestClient, method: str, url: str, expected: int
) -> None:
    r = getattr(client, method)(url, **({"json": {"inputs": ["x"]}} if method == "post" else {}))
    assert r.status_code == expected, r.text
    if expected >= 400:
        assert r.headers["content-type"] == PROBLEM
        assert r.json()["status"] == expected


@pytest.mark.parametrize(
    "body",
    [
        {"name": "k", "role": "app", "expires_in_days": 3651},
        {"name": "k", "role": "nobody"},
        {"name": "k", "scopes": ["no:such"]},
        {"name": "k"},
    ],
)
def test_key_bodies_the_schema_refuses_are_422(client: TestClient, body: dict[str, object]) -> None:
    r = client.post("/v1/keys", json=body)
    assert r.status_code == 422, r.text


def test_a_huge_seed_is_422(client: TestClient) -> None:
    r = client.post("/v1/models", json={"dataset": "d", "seed": 2**64})
    assert r.status_code == 422 and r.json()["errors"][0]["loc"] == ["body", "seed"]


@pytest.mark.parametrize("service", ["sqlite"], indirect=True)
def test_a_chunked_body_over_the_limit_is_413(client: TestClient, service: Service) -> None:
    limit = service.settings.max_body_bytes

    def chunks() -> Iterator[bytes]:
        yield b'{"subject_id": "'
        for _ in range(limit // (1 << 20) + 1):
            yield b"a" * (1 << 20)
        yield b'"}'

    r = client.post("/v1/deletions", content=chunks(), headers={"content-type": "application/json"})
    assert "content-length" not in {k.lower() for k in r.request.headers}
    assert r.status_code == 413, r.text
    assert r.headers["content-type"] == PROBLEM and str(limit) in r.json()["detail"]
    files = {"file": ("big.csv", b"x" * (limit + 1), "text/csv")}
    r = client.post("/v1/datasets", data={"name": "big"}, files=files)
    assert r.status_code == 413


@pytest.mark.parametrize(
    ("method", "url", "allow"),
    [
        ("put", "/v1/keys", "GET, POST"),
        ("get", "/v1/models/approximate", "POST"),
        ("delete", "/v1/deletions", "GET, POST"),
        ("trace", "/livez", "GET"),
        ("post", "/readyz", "GET"),
    ],
)
def test_405_names_every_method_of_the_path(
    client: TestClient, method: str, url: str, allow: str
) -> None:
    r = client.request(method.upper(), url)
    assert r.status_code == 405 and r.headers["allow"] == allow
    assert r.headers["content-type"] == PROBLEM
