"""Held-out evaluation: scored after training and after each retrain, in the audit chain."""

from __future__ import annotations

import dataclasses

import pytest
from sqlalchemy import select

from models.data import Dataset
from service.core import Service
from service.db.tables import AuditEventRow, ModelRow
from service.jobs.runner import LocalWorker
from service.lineage.deletion import DeletionInput
from service.lineage.errors import NotFound, Unprocessable
from tests.service.conftest import SMALL, synthetic_dataset


def held_out(n: int = 30) -> Dataset:
    data = synthetic_dataset(n=n, n_subjects=2, seed=7)
    records = tuple(dataclasses.replace(r, record_id=f"h-{r.record_id}") for r in data.records)
    return dataclasses.replace(data, name="held-out", records=records)


def evaluations(service: Service) -> list[dict[str, object]]:
    with service.db.read() as s:
        rows = s.scalars(
            select(AuditEventRow.data)
            .where(AuditEventRow.kind == "model.evaluated")
            .order_by(AuditEventRow.seq)
        )
        return [dict(r) for r in rows]


@pytest.mark.parametrize("service", ["sqlite"], indirect=True)
def test_model_is_scored_on_its_held_out_set_after_training_and_retraining(
    service: Service,
) -> None:
    service.import_dataset("synthetic", synthetic_dataset())
    service.import_dataset("held-out", held_out())
    model_id = service.create_model(
        "synthetic", dataclasses.replace(SMALL, eval_dataset="held-out")
    )
    LocalWorker(service.db, service.settings).drain()
    (first,) = evaluations(service)
    with service.db.read() as s:
        model = s.get(ModelRow, model_id)
        assert model is not None
        trained_version = model.routing_version
    assert first["model"] == model_id and first["dataset"] == "held-out"
    assert first["n_total"] == 30 and 0 <= int(first["n_correct"]) <= 30  # type: ignore[call-overload]
    assert first["routing_version"] == trained_version
    # The synthetic task is easy: a trained ensemble beats chance on unseen snippets.
    assert int(first["n_correct"]) > 15  # type: ignore[call-overload]

    # Erasing a held-out subject shrinks the held-out set; a training deletion retrains.
    service.delete(DeletionInput(subject_id="subject-0", dataset="held-out"))
    service.delete(DeletionInput(subject_id="subject-1", dataset="synthetic"))
    LocalWorker(service.db, service.settings).drain()
    later = evaluations(service)[1:]
    assert later and all(e["n_total"] == 27 for e in later)
    assert all(int(e["routing_version"]) > trained_version for e in later)  # type: ignore[call-overload]


def test_held_out_dataset_must_exist_and_match(service: Service) -> None:
    service.import_dataset("synthetic", synthetic_dataset())
    with pytest.raises(NotFound):
        service.create_model("synthetic", dataclasses.replace(SMALL, eval_dataset="nope"))
    with pytest.raises(Unprocessable, match="must not be the training dataset"):
        service.create_model("synthetic", dataclasses.replace(SMALL, eval_dataset="synthetic"))
    other = dataclasses.replace(held_out(), label_names=("a", "b"))
    service.import_dataset("other-labels", other)
    with pytest.raises(Unprocessable, match="kind and labels"):
        service.create_model("synthetic", dataclasses.replace(SMALL, eval_dataset="other-labels"))
