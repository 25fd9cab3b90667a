"""``POST /v1/models`` builds the model's ``TrainConfig`` as ``unlearn train`` does: every
field from the body or ``DEFAULT_TRAIN``, the backbone by the dataset's kind unless named,
one class per label."""

from __future__ import annotations

import dataclasses

from fastapi.testclient import TestClient
from sqlalchemy import select

from models.config import DEFAULT_TRAIN, TrainConfig
from service.core import Service
from service.db.tables import ModelRow
from tests.service.api.conftest import jsonl
from tests.service.approximate.conftest import image_dataset
from tests.service.conftest import synthetic_dataset


def _config(service: Service, model_id: int) -> TrainConfig:
    with service.db.read() as s:
        stored = s.scalar(select(ModelRow.config).where(ModelRow.id == model_id))
        assert stored is not None
        return TrainConfig.from_dict(stored)


def test_body_fields_and_defaults_reach_the_config(client: TestClient, service: Service) -> None:
    files = {"file": ("s.jsonl", jsonl(synthetic_dataset()), "application/x-ndjson")}
    assert client.post("/v1/datasets", data={"name": "s"}, files=files).status_code == 201
    body = {"dataset": "s", "slices": 3, "weight_decay": 0.01, "alpha": 4.0, "lr": 0.005}
    r = client.post("/v1/models", json=body)
    assert r.status_code == 202, r.text
    expected = dataclasses.replace(
        DEFAULT_TRAIN, n_slices=3, weight_decay=0.01, alpha=4.0, lr=0.005
    )
    assert _config(service, r.json()["id"]) == expected
    for backbone, says in (("nope", "unknown backbone"), ("patch-transformer-28", "does not read")):
        bad = client.post("/v1/models", json={"dataset": "s", "backbone": backbone})
        assert bad.status_code == 422 and says in bad.json()["detail"], bad.text


def test_a_feature_dataset_gets_its_kinds_backbone_and_a_class_per_label(
    client: TestClient, service: Service
) -> None:
    service.import_dataset("digits", image_dataset(60, 0, "digits"))
    r = client.post("/v1/models", json={"dataset": "digits", "shards": 1, "slices": 2})
    assert r.status_code == 202, r.text
    config = _config(service, r.json()["id"])
    assert (config.backbone, config.n_classes) == ("patch-transformer-28", 10)
