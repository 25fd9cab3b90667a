"""``GET /v1/models/{id}/placements``: the operator's view of what sits in shards and slices."""

from __future__ import annotations

from fastapi.testclient import TestClient

from service.core import Service
from tests.service.api.conftest import jsonl
from tests.service.clients import bearer, new_token
from tests.service.conftest import synthetic_dataset

PROBLEM = "application/problem+json"


def upload_synthetic(client: TestClient) -> int:
    """The synthetic dataset and a 2 x 3 model on it, registered (placed), not trained."""
    files = {"file": ("s.jsonl", jsonl(synthetic_dataset()), "application/x-ndjson")}
    assert client.post("/v1/datasets", data={"name": "s"}, files=files).status_code == 201
    r = client.post("/v1/models", json={"dataset": "s", "shards": 2, "slices": 3})
    assert r.status_code == 202, r.text
    return int(r.json()["id"])


def test_lists_counts_and_pages_of_ids_like_the_service(
    client: TestClient, service: Service
) -> None:
    model_id = upload_synthetic(client)
    url = f"/v1/models/{model_id}/placements"
    whole = client.get(url, params={"limit": 10000})
    assert whole.status_code == 200, whole.text
    assert whole.json() == service.placements(model_id).model_dump()
    seen, cursor = [], None
    while True:
        params: dict[str, str | int] = {"limit": 25, **({"cursor": cursor} if cursor else {})}
        page = client.get(url, params=params).json()
        seen += page["records"]
        if (cursor := page["next_cursor"]) is None:
            break
    assert seen == whole.json()["records"] and len(seen) == 72
    one = client.get(url, params={"shard": 0, "slice": 1}).json()
    assert [(c["shard"], c["slice"]) for c in one["slices"]] == [(0, 1)]
    assert (one["shard"], one["slice"]) == (0, 1)
    assert {(r["shard"], r["slice"]) for r in one["records"]} == {(0, 1)}


def test_unknown_model_shard_or_cursor_is_a_problem(client: TestClient) -> None:
    model_id = upload_synthetic(client)
    for url, params in (
        ("/v1/models/9/placements", {}),
        (f"/v1/models/{model_id}/placements", {"shard": 5}),
        (f"/v1/models/{model_id}/placements", {"cursor": "ZDoxMg"}),
    ):
        r = client.get(url, params=params)
        assert r.status_code == 404 and r.headers["content-type"] == PROBLEM, r.text
    r = client.get(f"/v1/models/{model_id}/placements", params={"limit": 0})
    assert r.status_code == 422 and r.headers["content-type"] == PROBLEM


def test_only_a_key_with_placements_read_lists_record_ids(
    client: TestClient, service: Service
) -> None:
    model_id = upload_synthetic(client)
    url = f"/v1/models/{model_id}/placements"
    for role, status in (("app", 403), ("auditor", 403), ("operator", 200)):
        r = client.get(url, headers=bearer(new_token(service, role=role)))
        assert r.status_code == status, (role, r.text)
