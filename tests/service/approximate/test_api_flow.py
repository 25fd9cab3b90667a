"""A deletion on an approximate model, end to end through the API: the request says it is
approximate, a new version with evidence replaces the served one (or waits for review), the
certificate carries the evidence, and the quarantined payloads are gone at the end."""

from __future__ import annotations

import json
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import func, select

from service.approximate.store import version_store
from service.core import Service
from service.db.tables import ForgetPayloadRow, RecordRow
from service.erasure import vault
from tests.service.api.conftest import drain
from tests.service.approximate.conftest import CNN


def _model(client: TestClient, svc: Service, **extra: Any) -> int:
    body = {
        "dataset": "digits",
        "family": "cnn-mnist",
        "eval_dataset": "digits-held-out",
        "family_params": CNN,
        **extra,
    }
    r = client.post("/v1/models/approximate", json=body)
    assert r.status_code == 202, r.text
    model_id = int(r.json()["id"])
    drain(svc)
    status = client.get(f"/v1/models/{model_id}").json()
    assert status["status"] == "ready" and status["live_version"] == 1, status
    return model_id


def _image(svc: Service) -> list[float]:
    with svc.db.read() as s:
        sealed = s.scalar(select(RecordRow.payload).where(RecordRow.record_id == "digits-0100"))
        assert sealed is not None
        payload = vault.open_payload(s, sealed)  # stored sealed: read through the vault
    return list(payload["features"])


def _served(client: TestClient, model_id: int, image: list[float]) -> int:
    r = client.post(f"/v1/models/{model_id}/predict", json={"inputs": [image]})
    assert r.status_code == 200, r.text
    return int(r.json()["model_version"])


def _quarantined(svc: Service) -> int:
    with svc.db.read() as s:
        return int(s.scalar(select(func.count()).select_from(ForgetPayloadRow)) or 0)


def test_deletion_publishes_an_unlearned_version_with_evidence(
    images: Service, client: TestClient
) -> None:
    svc = images
    # Margins no result can cross: this run must publish without review.
    model_id = _model(client, svc, method="l1-sparse", auc_margin=0.5, max_test_drop=100)
    image = _image(svc)
    assert _served(client, model_id, image) == 1
    v1 = client.get(f"/v1/models/{model_id}").json()["versions"][0]["sha256"]

    r = client.post("/v1/deletions", json={"subject_id": "subject-1"})
    assert r.status_code == 202, r.text
    req = r.json()
    assert req["state"] == "unlearning" and req["method"] == "approximate"
    assert [u["method"] for u in req["unlearning"]] == ["l1-sparse"]
    assert _quarantined(svc) == 3  # held for the job, though the records are erased
    with svc.db.read() as s:
        erased = s.scalars(select(RecordRow.payload).where(RecordRow.subject_key.is_not(None)))
        assert sum(p is None for p in erased) == 3
    assert _served(client, model_id, image) == 1  # the old version serves until replaced

    drain(svc)
    done = client.get(f"/v1/deletions/{req['id']}").json()
    assert done["state"] == "completed", done
    version = done["unlearning"][0]["version"]
    assert version["version"] == 2 and version["state"] == "live" and not version["exact"]
    ev = version["evidence"]
    for key in ("UA", "RA", "TA", "MIA", "loss_auc", "under_unlearning", "over_unlearning"):
        assert key in ev, key
    assert ev["n_forget"] == 3 and ev["method"] == "l1-sparse" and "TA_before" in ev
    assert ev["auc_band"] == 0.5  # the margin; 1.96 standard errors (3 vs 60) are 0.34
    assert _served(client, model_id, image) == 2
    store = version_store(svc.settings.checkpoints_dir)
    assert not store.exists(v1) and store.exists(version["sha256"])
    assert _quarantined(svc) == 0

    cert = json.loads(client.get(f"/v1/deletions/{req['id']}/certificate").content)
    assert cert["method"] == "approximate"
    (entry,) = cert["models"]
    assert entry["kind"] == "approximate" and entry["exact"] is False
    assert entry["evidence"]["UA"] == repr(ev["UA"]) and entry["version_after"] == 2
    assert entry["flags"] == {"under_unlearning": False, "over_unlearning": False}
    assert entry["forget_payloads_purged"] is True


def test_flagged_result_waits_for_review_then_retrain_or_accept(
    images: Service, client: TestClient
) -> None:
    svc = images
    # A zero band flags any attack AUC off 0.5: every approximate result goes to review.
    model_id = _model(client, svc, method="FT", auc_margin=0.0, auc_z=0.0)
    image = _image(svc)
    first = client.post("/v1/deletions", json={"subject_id": "subject-0"}).json()
    drain(svc)
    review = client.get(f"/v1/deletions/{first['id']}").json()
    assert review["state"] == "needs_review", json.dumps(review["unlearning"])
    candidate = review["unlearning"][0]["version"]
    assert candidate["state"] == "candidate"
    ev = candidate["evidence"]
    assert ev["under_unlearning"] or ev["over_unlearning"]
    assert _served(client, model_id, image) == 1  # a flagged version is not served
    assert client.get(f"/v1/deletions/{first['id']}/certificate").status_code == 409
    assert _quarantined(svc) == 3

    bad = [
        ({"action": "method"}, 422),
        ({"action": "accept", "method": "FT"}, 422),
        ({"action": "method", "method": "no-such-method"}, 422),
        ({"action": "method", "method": "NPO", "params": {"nope": 1}}, 422),
        ({"action": "method", "method": "SSD"}, 422),  # no importances stored at training
    ]
    for body, code in bad:
        assert client.post(f"/v1/deletions/{first['id']}/resolve", json=body).status_code == code

    r = client.post(f"/v1/deletions/{first['id']}/resolve", json={"action": "retrain"})
    assert r.status_code == 200 and r.json()["state"] == "unlearning", r.text
    drain(svc)
    done = client.get(f"/v1/deletions/{first['id']}").json()
    assert done["state"] == "completed" and done["method"] == "exact", done
    retrained = done["unlearning"][-1]["version"]
    assert retrained["exact"] and retrained["method"] == "Retrain" and retrained["state"] == "live"
    assert done["unlearning"][0]["version"]["state"] == "rejected"
    assert _served(client, model_id, image) == retrained["version"] == 3
    cert = json.loads(client.get(f"/v1/deletions/{first['id']}/certificate").content)
    assert cert["method"] == "exact" and cert["models"][0]["exact"] is True
    again = client.post(f"/v1/deletions/{first['id']}/resolve", json={"action": "accept"})
    assert again.status_code == 409

    second = client.post("/v1/deletions", json={"subject_id": "subject-2"}).json()
    drain(svc)
    assert client.get(f"/v1/deletions/{second['id']}").json()["state"] == "needs_review"
    r = client.post(f"/v1/deletions/{second['id']}/resolve", json={"action": "accept"})
    assert r.status_code == 200, r.text
    done = r.json()
    assert done["state"] == "completed" and done["method"] == "approximate"
    assert _served(client, model_id, image) == 4
    cert = json.loads(client.get(f"/v1/deletions/{second['id']}/certificate").content)
    entry = cert["models"][0]
    assert entry["accepted_by_operator"] is True and entry["method"] == "FT"
    assert entry["flags"]["under_unlearning"] or entry["flags"]["over_unlearning"]
    assert _quarantined(svc) == 0


def test_misfits_are_refused_clearly(images: Service, client: TestClient) -> None:
    base = {"dataset": "digits", "eval_dataset": "digits-held-out"}
    cases = [
        ({"family": "minilm-lora-all"}, "reads text"),
        ({"family": "cnn-mnist", "method": "SalUn", "family_params": {"depth": 3}}, "depth"),
        ({"family": "cnn-mnist", "method": "sgd-magic"}, "unknown unlearning method"),
        ({"family": "cnn-mnist", "method_params": {"nope": 1}}, "nope"),
        ({"family": "cnn-mnist", "eval_dataset": "digits"}, "must not be the training"),
    ]
    for extra, needle in cases:
        r = client.post("/v1/models/approximate", json={**base, **extra})
        assert r.status_code == 422 and needle in r.text, (extra, r.text)
    missing = client.post("/v1/deletions/nope/resolve", json={"action": "accept"})
    assert missing.status_code == 404


def test_restore_on_an_approximate_model_queues_nothing(
    images: Service, client: TestClient
) -> None:
    model_id = _model(client, images)
    assert images.restore(model_id) == []  # no sequences: nothing below full depth
