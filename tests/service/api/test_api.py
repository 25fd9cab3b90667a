"""The REST API end to end (SQLite and PostgreSQL), with the worker drained by the test."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from service.api.app import create_app
from service.core import Service
from service.usecases.verify import verify
from tests.service.api.conftest import db_state, drain, jsonl
from tests.service.clients import api_client
from tests.service.conftest import synthetic_dataset

PROBLEM = "application/problem+json"
MODEL = {
    "dataset": "synthetic",
    "shards": 2,
    "slices": 3,
    "budget": 2,
    "rank": 4,
    "alpha": 8.0,
    "epochs": 1,
    "batch_size": 8,
    "max_length": 24,
}
OPENAPI = Path(__file__).resolve().parents[3] / "docs" / "openapi.json"


def upload(client: TestClient) -> None:
    files = {"file": ("synthetic.jsonl", jsonl(synthetic_dataset()), "application/x-ndjson")}
    r = client.post("/v1/datasets", data={"name": "synthetic"}, files=files)
    assert r.status_code == 201, r.text
    assert r.json()["n_records"] == 72


def ready_model(client: TestClient, service: Service) -> int:
    upload(client)
    r = client.post("/v1/models", json=MODEL)
    assert r.status_code == 202, r.text
    model_id = int(r.json()["id"])
    assert r.headers["location"] == f"/v1/models/{model_id}"
    drain(service)
    body = client.get(f"/v1/models/{model_id}").json()
    assert body["status"] == "ready"
    assert [s["served_depth"] for s in body["shards"]] == [3, 3]
    return model_id


def test_import_train_predict_delete_complete(client: TestClient, service: Service) -> None:
    model_id = ready_model(client, service)
    texts = ["the film was brilliant", "the script was dull"]
    before = client.post(f"/v1/models/{model_id}/predict", json={"inputs": texts})
    assert before.status_code == 200, before.text
    pred = before.json()
    assert len(pred["labels"]) == 2 and set(pred["labels"]) <= {"neg", "pos"}
    assert all(abs(sum(p) - 1) < 1e-4 for p in pred["probabilities"])
    # Each probability column is named: the predicted label has the row's largest one.
    assert pred["label_names"] == ["neg", "pos"]
    for label, row in zip(pred["labels"], pred["probabilities"], strict=True):
        assert pred["label_names"][row.index(max(row))] == label

    r = client.post(
        "/v1/deletions", json={"subject_id": "subject-1"}, headers={"Idempotency-Key": "a1"}
    )
    assert r.status_code == 202, r.text
    req = r.json()
    assert req["state"] == "effective" and req["cut"]
    assert req["due_at"] > req["received_at"]

    after = client.post(f"/v1/models/{model_id}/predict", json={"inputs": texts}).json()
    assert after["routing_version"] > pred["routing_version"]
    cut_shards = {c["shard"] for c in req["cut"]}
    assert all(rt["depth"] < 3 for rt in after["routes"] if rt["shard"] in cut_shards)
    with service.db.read() as s:
        assert verify(s, service.store).ok

    drain(service)
    done = client.get(f"/v1/deletions/{req['id']}").json()
    assert done["state"] == "completed"
    assert [e["state"] for e in done["timeline"]][-1] == "completed"
    final = client.post(f"/v1/models/{model_id}/predict", json={"inputs": texts}).json()
    assert all(rt["depth"] == 3 for rt in final["routes"])
    replay = client.post(
        "/v1/deletions", json={"subject_id": "subject-1"}, headers={"Idempotency-Key": "a1"}
    )
    assert replay.status_code == 202 and replay.json()["id"] == req["id"]
    assert replay.headers["idempotent-replayed"] == "true"


def test_bad_input_is_problem_json_and_changes_nothing(
    client: TestClient, service: Service
) -> None:
    model_id = ready_model(client, service)
    client.post(
        "/v1/deletions", json={"record_ids": ["rec-0040"]}, headers={"Idempotency-Key": "k"}
    )
    state = db_state(service)
    cases = [
        (
            "post",
            "/v1/deletions",
            {"content": b"{not json", "headers": {"content-type": "application/json"}},
            400,
        ),
        ("post", "/v1/models/999/predict", {"json": {"inputs": ["x"]}}, 404),
        ("post", "/v1/deletions", {"json": {"record_ids": []}}, 422),
        ("post", "/v1/deletions", {"json": {"subject_id": "s", "record_ids": ["r"]}}, 422),
        ("post", "/v1/deletions", {"json": {"subject_id": "nobody"}}, 404),
        (
            "post",
            "/v1/deletions",
            {"json": {"record_ids": ["rec-0041"]}, "headers": {"Idempotency-Key": "k"}},
            422,
        ),
        (
            "post",
            "/v1/deletions",
            {"json": {"subject_id": "subject-2"}, "headers": {"Idempotency-Key": "bad key"}},
            422,
        ),
        ("post", "/v1/deletions", {"json": {"subject_id": "subject-2", "extra": 1}}, 422),
        (
            "post",
            "/v1/deletions",
            {"content": b"x" * (33 << 20), "headers": {"content-type": "application/json"}},
            413,
        ),
        ("post", f"/v1/models/{model_id}/predict", {"json": {"inputs": []}}, 422),
        ("post", f"/v1/models/{model_id}/predict", {"json": {"inputs": ["  "]}}, 422),
        ("post", "/v1/models", {"json": {**MODEL, "dataset": "missing"}}, 404),
        ("get", "/v1/deletions/not-a-request", {}, 404),
        ("get", "/v1/deletions?cursor=%%%", {}, 422),
        ("get", "/v1/deletions?cursor=bm90LWEtY3Vyc29y", {}, 404),
    ]
    for method, url, kw, expected in cases:
        r = getattr(client, method)(url, **kw)
        assert r.status_code == expected, (url, kw, r.status_code, r.text[:300])
        assert r.headers["content-type"].startswith(PROBLEM), (url, r.headers)
        body = r.json()
        assert body["status"] == expected and "detail" in body and "Traceback" not in r.text
    nobody = client.post("/v1/deletions", json={"subject_id": "nobody"}).json()
    assert nobody["state"] == "completed" and nobody["reason"] == "no_match"
    assert db_state(service) == state


def test_bad_upload_names_the_line_and_stores_nothing(client: TestClient, service: Service) -> None:
    state = db_state(service)
    body = b'{"record_id": "a", "text": "fine", "label": 1}\n'
    body += b'{"record_id": "b", "text": "", "label": 0}\n'
    r = client.post("/v1/datasets", data={"name": "broken"}, files={"file": ("x.jsonl", body)})
    assert r.status_code == 422 and r.json()["line"] == 2
    assert db_state(service) == state


def test_list_deletions_pages_with_a_cursor(client: TestClient, service: Service) -> None:
    ready_model(client, service)
    ids = []
    for i in range(5):
        r = client.post("/v1/deletions", json={"record_ids": [f"rec-00{50 + i}"]})
        assert r.status_code == 202
        ids.append(r.json()["id"])
    seen, cursor = [], None
    while True:
        page = client.get(
            "/v1/deletions", params={"limit": 2, **({"cursor": cursor} if cursor else {})}
        ).json()
        seen += [item["id"] for item in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == ids[::-1]
    effective = client.get("/v1/deletions", params={"state": "effective"}).json()["items"]
    assert {i["id"] for i in effective} == set(ids)


def test_health(client: TestClient) -> None:
    assert client.get("/livez").json() == {"status": "ok"}
    ready = client.get("/readyz")
    assert ready.status_code == 200 and ready.json()["checks"]["migrations"]["ok"]


def test_readyz_fails_before_migrations(tmp_path: Path) -> None:
    from service.settings import Settings

    svc = Service.open(
        Settings(
            home=tmp_path, database_url=f"sqlite:///{tmp_path}/db.sqlite", secret_hex="ab" * 32
        )
    )
    with TestClient(create_app(svc, run_worker=False)) as c:
        r = c.get("/readyz")
    assert r.status_code == 503 and not r.json()["checks"]["migrations"]["ok"]


@pytest.mark.parametrize("service", ["sqlite"], indirect=True)
def test_openapi_document_is_committed(client: TestClient) -> None:
    committed = json.loads(OPENAPI.read_text())
    assert client.get("/openapi.json").json() == committed, (
        "docs/openapi.json is stale: run `unlearn openapi > docs/openapi.json`"
    )


@pytest.mark.postgres
def test_concurrent_duplicate_posts_create_one_request(pg_service: Service) -> None:
    from concurrent.futures import ThreadPoolExecutor

    from sqlalchemy import func, select

    from service.db.tables import DeletionRequestRow

    with api_client(pg_service) as client:
        ready_model(client, pg_service)

        def post(_: int) -> tuple[int, str | None]:
            r = client.post(
                "/v1/deletions",
                json={"subject_id": "subject-4", "reason": "duplicate storm"},
                headers={"Idempotency-Key": "storm-1"},
            )
            return r.status_code, r.json().get("id")

        with ThreadPoolExecutor(12) as pool:
            answers = list(pool.map(post, range(24)))
    assert {code for code, _ in answers} <= {202, 409}
    assert len({rid for code, rid in answers if code == 202}) == 1
    with pg_service.db.read() as s:
        assert s.scalar(select(func.count()).select_from(DeletionRequestRow)) == 1
