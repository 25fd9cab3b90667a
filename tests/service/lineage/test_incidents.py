"""A retrain that fails for good is a model incident: the request it followed is completed
with its certificate all the same; the model reports the failure and its degraded shards
until an operator's restore brings it back to full depth."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import select

from models.s3t import S3TTrainer
from service.audit.certificates import certificate_document
from service.cli.printers import print_status
from service.core import Service
from service.db.tables import AuditEventRow, JobRow
from service.jobs.runner import LocalWorker
from service.lineage.deletion import DeletionInput
from service.lineage.registry import get_model
from service.usecases.views import model_status
from tests.service.conftest import SMALL
from tests.service.lineage.test_flow import trained


def _status(service: Service, model_id: int) -> dict[str, Any]:
    with service.db.read() as s:
        return model_status(s, get_model(s, model_id))


def test_failed_retrain_is_a_model_incident_not_a_failed_request(
    service: Service, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    model_id = trained(service)
    assert _status(service, model_id)["status"] == "ready"

    def broken(*args: object, **kwargs: object) -> str:
        raise RuntimeError("the GPU fell off the bus")

    monkeypatch.setattr(S3TTrainer, "train_step", broken)
    accepted = service.accept(DeletionInput(subject_id="subject-1"))
    assert accepted.request.cut
    LocalWorker(service.db, service.settings).drain()

    view = service.request(accepted.request.id)
    assert view.state == "completed"
    cuts = {(c.shard, c.sequence) for c in view.cut}
    with service.db.read() as s:
        assert certificate_document(s, accepted.request.id)
        failed = s.scalars(select(JobRow).where(JobRow.state == "failed")).all()
        assert failed and {j.kind for j in failed} == {"retrain"}
        incidents = s.scalars(
            select(AuditEventRow.data).where(AuditEventRow.kind == "model.incident")
        ).all()
        assert sorted(i["job"] for i in incidents) == sorted(j.id for j in failed)
        assert all("GPU fell off" in (i["error"] or "") for i in incidents)
    status = _status(service, model_id)
    assert status["status"] == "degraded"
    assert {j["id"] for j in status["failed_jobs"]} == {j.id for j in failed}
    ready, probe = service.readiness()  # deletions are still accepted: the probe says so
    assert ready and not isinstance(probe, dict)
    assert probe.checks["models"].degraded == [model_id] and probe.degraded == []
    healths = {sh["shard"]: sh["health"] for sh in status["shards"]}
    assert {healths[shard] for shard, _ in cuts} <= {"degraded", "dead"}

    print_status(service.model_statuses(model_id))  # what `unlearn status` prints
    printed = capsys.readouterr().out
    assert f"model {model_id} (degraded)" in printed
    for job in failed:
        assert f"job {job.id} retrain of sequence {job.sequence_id} FAILED" in printed
    assert "GPU fell off the bus" in printed and f"unlearn restore --model {model_id}" in printed

    monkeypatch.undo()
    jobs = service.restore(model_id)
    assert len(jobs) == len(cuts)
    assert service.restore(model_id) == []  # open jobs already rebuild every cut sequence
    LocalWorker(service.db, service.settings).drain()
    status = _status(service, model_id)
    assert status["status"] == "ready" and status["failed_jobs"] == []
    n_slices = SMALL.config.n_slices
    assert all(sh["health"] == "full" and sh["served_depth"] == n_slices for sh in status["shards"])
