from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from models.data import Dataset
from service.core import Service
from service.db.base import Base
from service.jobs.runner import LocalWorker
from tests.service.clients import api_client


def jsonl(dataset: Dataset) -> bytes:
    lines = []
    for r in dataset.records:
        row = {"record_id": r.record_id, "label": dataset.label_names[r.label], "text": r.text}
        if r.subject_id is not None:
            row["subject_id"] = r.subject_id
        lines.append(json.dumps(row))
    return ("\n".join(lines) + "\n").encode()


@pytest.fixture
def client(service: Service) -> Iterator[TestClient]:
    with api_client(service) as c:
        yield c


def drain(service: Service) -> None:
    LocalWorker(service.db, service.settings).drain()


def db_state(service: Service) -> dict[str, object]:
    """Row counts of every table plus every model's routing version."""
    from service.db.tables import ModelRow

    with service.db.read() as s:
        counts: dict[str, object] = {
            t.name: s.scalar(select(func.count()).select_from(t))
            for t in Base.metadata.sorted_tables
        }
        counts["versions"] = list(s.scalars(select(ModelRow.routing_version)))
        return counts
