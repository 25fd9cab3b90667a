"""A model folder as the backbone, end to end through the REST API: register (an API caller
may name only folders under ``UNLEARN_BACKBONE_DIRS``), train, predict, delete a subject,
retrain; the retrained sequences equal training from scratch by hash and ``verify`` passes,
for an encoder and for decoder-only families."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select

from service.core import Service
from service.db.tables import ModelRow, SequenceRow
from service.lineage.publish import sequence_chain
from service.settings import Settings
from service.usecases.verify import verify
from tests.models.tiny import tiny_folder
from tests.service.api.conftest import drain
from tests.service.api.test_api import MODEL, upload
from tests.service.clients import api_client
from tests.service.lineage.test_flow import from_scratch


@pytest.fixture
def service(settings: Settings) -> Iterator[Service]:
    svc = Service.open(settings)
    svc.upgrade_schema()
    yield svc
    svc.db.dispose()


@pytest.mark.parametrize("model_type", ["distilbert", "gpt2", "llama"])
def test_a_folder_backbone_trains_deletes_and_retrains_exactly(
    tmp_path: Path, service: Service, model_type: str
) -> None:
    folder = tiny_folder(service.settings.backbone_roots[0], model_type)
    client = api_client(service)
    upload(client)
    outside = tiny_folder(tmp_path / "elsewhere", model_type)
    for backbone in (str(outside), "relative/folder", "/etc"):
        r = client.post("/v1/models", json={**MODEL, "backbone": backbone})
        assert r.status_code == 422, r.text
        assert "UNLEARN_BACKBONE_DIRS" in r.json()["detail"]
    r = client.post("/v1/models", json={**MODEL, "backbone": str(folder) + "/"})
    assert r.status_code == 202, r.text
    model_id = int(r.json()["id"])
    drain(service)
    assert client.get(f"/v1/models/{model_id}").json()["status"] == "ready"
    pred = client.post(f"/v1/models/{model_id}/predict", json={"inputs": ["a warm film"]})
    assert pred.status_code == 200, pred.text

    r = client.post("/v1/deletions", json={"subject_id": "subject-1"})
    assert r.status_code == 202, r.text
    cut = r.json()["cut"]
    assert cut
    drain(service)
    request = client.get(f"/v1/deletions/{r.json()['id']}").json()
    assert request["state"] == "completed"
    certificate = client.get(f"/v1/deletions/{request['id']}/certificate").json()
    with service.db.read() as s:
        model = s.get(ModelRow, model_id)
        assert model is not None and model.backbone_sha256 is not None
        assert model.config["backbone"] == str(folder.resolve())
        assert model.backbone_sha256 in str(certificate)
        report = verify(s, service.store, service.settings.caches_dir)
        assert report.ok, report.violations
        seqs = s.scalars(select(SequenceRow).where(SequenceRow.model_id == model_id)).all()
        chains = {q.id: [c.sha256 for c in sequence_chain(s, q, 3)] for q in seqs}
    for c in cut:
        seq = next(q for q in seqs if q.shard == c["shard"] and q.position == c["sequence"])
        assert list(from_scratch(service, model_id, seq.id)) == chains[seq.id]
