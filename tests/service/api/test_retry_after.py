"""A model that serves nothing answers predict 503 with a Retry-After estimated from its
job queue (``service.app.eta``)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

import pytest
from sqlalchemy import select

from service.app.eta import DEFAULT_S, retry_after
from service.core import Service
from service.db.tables import JobRow
from service.lineage.errors import Unavailable
from service.serving import Prediction
from service.states import JobState
from tests.service.clients import api_client
from tests.service.conftest import SMALL, synthetic_dataset

NOW = dt.datetime(2030, 1, 1, tzinfo=dt.UTC)


class Dead:
    """A model server whose every model has no live shard."""

    def predict(self, model_id: int, inputs: Sequence[object]) -> Prediction:
        raise Unavailable(f"every shard of model {model_id} is dead until retraining ends")


def _model(service: Service) -> int:
    """A registered model whose train job is queued (nothing drains it)."""
    from service.db.tables import DatasetRow

    with service.db.read() as s:
        names = set(s.scalars(select(DatasetRow.name)))
    if "synthetic" not in names:
        service.import_dataset("synthetic", synthetic_dataset())
    return service.create_model("synthetic", SMALL)


def _set_job(service: Service, model_id: int, **values: object) -> None:
    with service.db.write() as s:
        for job in s.scalars(select(JobRow).where(JobRow.model_id == model_id)):
            for name, value in values.items():
                setattr(job, name, value)


def _ago(seconds: float) -> dt.datetime:
    return NOW - dt.timedelta(seconds=seconds)


@pytest.mark.parametrize("service", ["sqlite"], indirect=True)
def test_estimates_from_the_queue(service: Service) -> None:
    model = _model(service)
    # Queued, and no job of its kind ever finished: nothing known.
    assert retry_after(service.db, model, now=NOW) == DEFAULT_S
    # Running at a known rate: 25 of 100 steps in the 90 s up to its last heartbeat, 10 s
    # ago, so 270 s for the rest, 260 s from now.
    _set_job(
        service,
        model,
        state=JobState.RUNNING,
        started_at=_ago(100),
        heartbeat_at=_ago(10),
        progress_done=25,
        progress_total=100,
    )
    assert retry_after(service.db, model, now=NOW) == 260
    # Without progress yet: the median of finished jobs of its kind (any model's), less
    # what it has run.
    for seconds in (40, 60, 500):
        done = _model(service)
        _set_job(
            service,
            done,
            state=JobState.DONE,
            started_at=_ago(1000),
            finished_at=_ago(1000 - seconds),
        )
    _set_job(service, model, progress_done=0, progress_total=0, started_at=_ago(15))
    assert retry_after(service.db, model, now=NOW) == 60 - 15
    # Queued behind another model's queued job: both take the median.
    _set_job(service, model, state=JobState.QUEUED, started_at=None, heartbeat_at=None)
    later = _model(service)
    assert retry_after(service.db, later, now=NOW) == 60 + 60
    # Far past its estimate: never below one second.
    _set_job(service, model, state=JobState.RUNNING, started_at=_ago(10_000))
    assert retry_after(service.db, model, now=NOW) == 1


@pytest.mark.parametrize("service", ["sqlite"], indirect=True)
def test_predict_on_a_model_with_no_live_shard_is_503_with_retry_after(
    service: Service,
) -> None:
    model = _model(service)
    service.predictor = Dead()
    with api_client(service) as client:
        r = client.post(f"/v1/models/{model}/predict", json={"inputs": ["a warm film"]})
        assert r.status_code == 503, r.text
        assert r.headers["content-type"] == "application/problem+json"
        assert r.headers["retry-after"] == str(DEFAULT_S) == str(r.json()["retry_after"])
        _set_job(
            service,
            model,
            state=JobState.RUNNING,
            started_at=dt.datetime.now(dt.UTC) - dt.timedelta(seconds=100),
            heartbeat_at=dt.datetime.now(dt.UTC),
            progress_done=50,
            progress_total=100,
        )
        r = client.post(f"/v1/models/{model}/predict", json={"inputs": ["a warm film"]})
    assert r.status_code == 503
    assert 90 <= int(r.headers["retry-after"]) <= 100
