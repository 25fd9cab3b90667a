"""Caps on what one API key may register (``UNLEARN_MAX_*``): model layout and training
parameters, approximate family and method parameters, upload size, models per key; the
operator's CLI is not capped. Models are only queued here: nothing trains."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from service.access.caps import Caps
from service.access.principal import cli_principal
from service.api.app import create_app
from service.core import Service
from service.db.tables import DatasetRow, ModelRow, RecordRow
from service.lineage.errors import NotFound, Unprocessable
from tests.service.api.conftest import jsonl
from tests.service.approximate.conftest import CNN, image_dataset
from tests.service.clients import bearer, new_token
from tests.service.conftest import SMALL, synthetic_dataset

TINY = {
    "dataset": "synthetic",
    "shards": 2,
    "slices": 2,
    "budget": 2,
    "rank": 4,
    "epochs": 1,
    "batch_size": 8,
    "max_length": 24,
}
# Caps that TINY just fits: one more of anything is over.
TIGHT = Caps(shards=2, slices=2, budget=2, epochs=1, rank=4, tokens=24, size=8)
OVER = [
    ("shards", TIGHT.shards, "UNLEARN_MAX_SHARDS"),
    ("slices", TIGHT.slices, "UNLEARN_MAX_SLICES"),
    ("budget", TIGHT.budget, "UNLEARN_MAX_BUDGET"),
    ("epochs", TIGHT.epochs, "UNLEARN_MAX_EPOCHS"),
    ("rank", TIGHT.rank, "UNLEARN_MAX_RANK"),
    ("max_length", TIGHT.tokens, "UNLEARN_MAX_TOKENS"),
    ("batch_size", TIGHT.size, "UNLEARN_MAX_SIZE"),
]
APPROXIMATE = {
    "dataset": "digits",
    "family": "cnn-mnist",
    "eval_dataset": "digits-held-out",
    "family_params": CNN,
}


def _capped(service: Service, caps: Caps) -> Service:
    return dataclasses.replace(service, settings=dataclasses.replace(service.settings, caps=caps))


@pytest.fixture
def synthetic(service: Service) -> Service:
    service.import_dataset("synthetic", synthetic_dataset())
    return service


def _client(service: Service) -> TestClient:
    return TestClient(create_app(service, run_worker=False))


def _models(service: Service) -> list[str | None]:
    with service.db.read() as s:
        return list(s.scalars(select(ModelRow.created_by).order_by(ModelRow.id)))


def _refused(r: Any, status: int, *words: str) -> str:
    assert r.status_code == status, r.text
    assert r.headers["content-type"] == "application/problem+json"
    detail: str = r.json()["detail"]
    for word in words:
        assert word in detail, detail
    return detail


def test_model_parameters_over_a_cap_are_refused(synthetic: Service) -> None:
    svc = _capped(synthetic, TIGHT)
    key = bearer(new_token(svc, role="operator"))
    with _client(svc) as client:
        for field, cap, setting in OVER:
            r = client.post("/v1/models", json={**TINY, field: cap + 1}, headers=key)
            _refused(r, 422, f"{field}={cap + 1} exceeds", f"cap of {cap} ({setting})")
        assert _models(svc) == []
        r = client.post("/v1/models", json=TINY, headers=key)  # at every cap: fine
        assert r.status_code == 202, r.text
    assert len(_models(svc)) == 1


def test_the_default_caps(synthetic: Service) -> None:
    caps = synthetic.settings.caps
    assert caps == Caps()
    key = bearer(new_token(synthetic, role="operator"))
    with _client(synthetic) as client:
        r = client.post("/v1/models", json={**TINY, "shards": caps.shards + 1}, headers=key)
        _refused(r, 422, f"cap of {caps.shards} (UNLEARN_MAX_SHARDS)")
        r = client.post("/v1/models", json={**TINY, "epochs": caps.epochs + 1}, headers=key)
        _refused(r, 422, f"cap of {caps.epochs} (UNLEARN_MAX_EPOCHS)")
    assert _models(synthetic) == []


@pytest.fixture
def images(service: Service) -> Iterator[Service]:
    service.import_dataset("digits", image_dataset(40, 0, "digits", n_subjects=2))
    service.import_dataset("digits-held-out", image_dataset(20, 1, "held"))
    yield service


def test_approximate_parameters_over_a_cap_are_refused(images: Service) -> None:
    svc = _capped(images, Caps(epochs=CNN["epochs"], size=64))
    key = bearer(new_token(svc, role="operator"))
    over = [
        ({"family_params": {**CNN, "epochs": CNN["epochs"] + 1}}, "family_params.epochs="),
        ({"family_params": {**CNN, "width": 65}}, "family_params.width=65"),
        ({"method": "FT", "method_params": {"epochs": 9}}, "method_params.epochs=9"),
    ]
    with _client(svc) as client:
        for change, words in over:
            r = client.post("/v1/models/approximate", json={**APPROXIMATE, **change}, headers=key)
            setting = "UNLEARN_MAX_SIZE" if "width" in words else "UNLEARN_MAX_EPOCHS"
            _refused(r, 422, words, setting)
        assert _models(svc) == []
        r = client.post("/v1/models/approximate", json=APPROXIMATE, headers=key)
        assert r.status_code == 202, r.text
    assert len(_models(svc)) == 1


@pytest.mark.parametrize("epochs", [1e6, "1000000"], ids=["float", "string"])
def test_a_non_int_method_parameter_is_capped_too(images: Service, epochs: object) -> None:
    svc = _capped(images, Caps(epochs=20))
    key = bearer(new_token(svc, role="operator"))
    body = {**APPROXIMATE, "method": "FT", "method_params": {"epochs": epochs}}
    with _client(svc) as client:
        r = client.post("/v1/models/approximate", json=body, headers=key)
    _refused(r, 422, "UNLEARN_MAX_EPOCHS")


def test_resolve_overrides_are_capped_before_anything_is_read(service: Service) -> None:
    """A key's ``resolve`` with method overrides past a cap is refused before the request
    is even looked up; the operator's CLI is not capped (it then finds no request)."""
    svc = _capped(service, Caps(epochs=20))
    token = new_token(svc, role="operator")
    as_key = svc.acting_as(svc.authenticate(token))
    missing = "00000000-0000-0000-0000-000000000000"
    with pytest.raises(Unprocessable, match=r"params.epochs=1000000 .*UNLEARN_MAX_EPOCHS"):
        as_key.resolve(missing, "method", "FT", {"epochs": 1_000_000})
    with pytest.raises(NotFound):
        svc.acting_as(cli_principal()).resolve(missing, "method", "FT", {"epochs": 1_000_000})


def test_an_upload_over_the_cap_stores_nothing(service: Service) -> None:
    fits = jsonl(synthetic_dataset(12))
    big = jsonl(synthetic_dataset(13))
    svc = _capped(service, Caps(upload_bytes=len(fits)))
    key = bearer(new_token(svc, role="operator"))

    def upload(name: str, data: bytes) -> Any:
        files = {"file": (f"{name}.jsonl", data, "application/x-ndjson")}
        return client.post("/v1/datasets", data={"name": name}, files=files, headers=key)

    with _client(svc) as client:
        r = upload("big", big)
        _refused(r, 422, f"{len(big)} bytes", f"at most {len(fits)}", "UNLEARN_MAX_UPLOAD_BYTES")
        assert client.get("/v1/datasets/big", headers=key).status_code == 404
        with svc.db.read() as s:
            assert s.scalar(select(func.count()).select_from(DatasetRow)) == 0
            assert s.scalar(select(func.count()).select_from(RecordRow)) == 0
        r = upload("fits", fits)
        assert r.status_code == 201, r.text
        assert r.json()["n_records"] == 12
    # The operator at the shell is not capped.
    svc.acting_as(cli_principal()).check_upload(len(big) * 1000)
    with pytest.raises(Unprocessable, match="UNLEARN_MAX_UPLOAD_BYTES"):
        svc.acting_as(svc.authenticate(key["Authorization"].split()[1])).check_upload(len(big))


def test_models_per_key(synthetic: Service, images: Service) -> None:
    svc = _capped(synthetic, Caps(models_per_key=2))
    first, second = new_token(svc, role="operator"), new_token(svc, role="operator")
    with _client(svc) as client:
        for _ in range(2):
            r = client.post("/v1/models", json=TINY, headers=bearer(first))
            assert r.status_code == 202, r.text
        r = client.post("/v1/models", json=TINY, headers=bearer(first))
        _refused(r, 403, "registered 2 models", "UNLEARN_MAX_MODELS_PER_KEY=2")
        # Approximate models count towards the same cap.
        r = client.post("/v1/models/approximate", json=APPROXIMATE, headers=bearer(first))
        _refused(r, 403, "UNLEARN_MAX_MODELS_PER_KEY=2")
        # Another key has its own count.
        r = client.post("/v1/models/approximate", json=APPROXIMATE, headers=bearer(second))
        assert r.status_code == 202, r.text
    first_ref = f"key:{first.split('_')[1]}"
    second_ref = f"key:{second.split('_')[1]}"
    assert _models(svc) == [first_ref, first_ref, second_ref]


def test_the_operator_cli_is_not_capped(synthetic: Service) -> None:
    svc = _capped(synthetic, Caps(shards=1, slices=1, budget=1, epochs=1, models_per_key=1))
    operator = svc.acting_as(cli_principal())
    over = dataclasses.replace(SMALL, n_shards=2, budget=2)  # 3 slices, over every cap
    ids = [operator.create_model("synthetic", over) for _ in range(3)]
    assert len(set(ids)) == 3
    assert _models(svc) == [cli_principal().ref] * 3
    # The same spec from an API key is refused.
    key = svc.authenticate(new_token(svc, role="operator"))
    with pytest.raises(Unprocessable, match="UNLEARN_MAX_SHARDS"):
        svc.acting_as(key).create_model("synthetic", over)
    assert len(_models(svc)) == 3
