"""``/v1/deletions``: a request keeps the record ids it named that matched nothing, and says
which whenever it is read back."""

from __future__ import annotations

from fastapi.testclient import TestClient

from service.core import Service
from tests.service.conftest import synthetic_dataset

MISSED = ["nope-1", "nope-2"]  # sorted, as the accept answer lists them


def test_ids_not_found_are_read_back(client: TestClient, service: Service) -> None:
    service.import_dataset("synthetic", synthetic_dataset())
    body = {"record_ids": ["rec-0001", "nope-2", "rec-0003", "nope-1"]}
    key = {"Idempotency-Key": "not-found-1"}
    accepted = client.post("/v1/deletions", json=body, headers=key)
    assert accepted.status_code == 202, accepted.text
    request_id = accepted.json()["id"]
    assert accepted.json()["not_found"] == MISSED
    read = client.get(f"/v1/deletions/{request_id}")
    assert read.status_code == 200 and read.json()["not_found"] == MISSED
    (listed,) = client.get("/v1/deletions").json()["items"]
    assert listed["not_found"] == MISSED
    replay = client.post("/v1/deletions", json=body, headers=key)
    assert replay.headers["Idempotent-Replayed"] == "true"
    assert replay.json()["id"] == request_id and replay.json()["not_found"] == MISSED
    # Only what it named and missed: the key is absent when every id (or a subject) matched.
    whole = client.post("/v1/deletions", json={"record_ids": ["rec-0005"]}).json()
    by_subject = client.post("/v1/deletions", json={"subject_id": "subject-3"}).json()
    for created in (whole, by_subject):
        assert "not_found" not in created
        assert "not_found" not in client.get(f"/v1/deletions/{created['id']}").json()
