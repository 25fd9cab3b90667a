"""Issue 13, item 3: an erased record's activation-cache rows go within seconds of the 202,
on the erasure queue, while a training holds the training queue."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from models.cache import ActivationCache
from service.app.broker import celery_send
from service.core import Service
from service.db.tables import JobRow, PlacementRow, RecordRow
from service.jobs import training
from service.jobs.attempt import Attempt
from service.jobs.queues import ERASURE_QUEUE, GPU_QUEUE, queue_of
from service.jobs.runner import LocalWorker
from service.lineage.deletion import DeletionInput
from service.states import JobKind, JobState
from tests.service.api.conftest import drain
from tests.service.conftest import SMALL, synthetic_dataset

DATA = synthetic_dataset(48, 4)
PURGE_WITHIN_S = 10.0


def _cache_files(root: Path) -> bytes:
    return b"".join(p.read_bytes() for p in sorted(root.rglob("*.f32")))


def _jobs(svc: Service) -> dict[str, str]:
    """Job kind -> state, for the jobs after the first model's train job."""
    with svc.db.read() as s:
        return {j.kind: j.state for j in s.scalars(select(JobRow).where(JobRow.id > 1))}


def _blocking(started: threading.Event, release: threading.Event) -> Any:
    def run_train(ctx: Attempt) -> None:
        started.set()
        release.wait(60)

    return run_train


def test_cache_rows_are_zeroed_within_seconds_while_a_training_blocks_its_queue(
    service: Service, monkeypatch: pytest.MonkeyPatch
) -> None:
    svc = service
    svc.import_dataset("synthetic", DATA)
    first = svc.create_model("synthetic", SMALL)
    drain(svc)  # trained for real: its activation caches are on disk
    with svc.db.read() as s:
        shard, rid = s.execute(
            select(PlacementRow.shard, RecordRow.record_id)
            .join(RecordRow, RecordRow.id == PlacementRow.record_pk)
            .where(PlacementRow.model_id == first)
            .order_by(RecordRow.record_id)
            .limit(1)
        ).one()
    root = svc.settings.caches_dir / f"model{first}" / f"shard{shard}"
    cache = ActivationCache(root)
    rows = [cache.rows(g, rid).numpy().tobytes() for g in cache.groups]
    assert all(row in _cache_files(root) for row in rows)

    # From now on every train job holds the training queue until the test lets go.
    started, release = threading.Event(), threading.Event()
    monkeypatch.setattr(training, "run_train", _blocking(started, release))
    worker = LocalWorker(svc.db, svc.settings, poll_s=0.2)
    worker.start()
    try:
        svc.create_model("synthetic", SMALL)
        assert started.wait(30), "the blocking training never started"
        accepted = time.monotonic()
        view, _, _ = svc.delete(DeletionInput(record_ids=(rid,)))
        assert view["state"] == "effective"
        while _jobs(svc)[JobKind.PURGE] != JobState.DONE:
            assert time.monotonic() - accepted < PURGE_WITHIN_S, "no purge within the limit"
            time.sleep(0.1)
        assert rid not in ActivationCache(root)
        blob = _cache_files(root)
        assert blob and not any(row in blob for row in rows)
        jobs = _jobs(svc)
        assert jobs[JobKind.TRAIN] == JobState.RUNNING  # still blocked
        assert jobs[JobKind.RETRAIN] == JobState.QUEUED  # behind it, on its queue
    finally:
        release.set()
        worker.stop(timeout=70)


def test_purge_jobs_go_to_the_erasure_queue_and_training_to_the_gpu_queue() -> None:
    sent: list[tuple[int, str]] = []

    class App:
        def send_task(self, name: str, *, args: list[Any], queue: str) -> None:
            sent.append((args[0], queue))

    send = celery_send(App())  # type: ignore[arg-type]
    for job_id, kind in enumerate(JobKind):
        send(job_id, kind)
    assert dict(sent) == {
        i: ERASURE_QUEUE if kind == JobKind.PURGE else GPU_QUEUE for i, kind in enumerate(JobKind)
    }
    assert queue_of(JobKind.PURGE) == ERASURE_QUEUE


def test_one_queued_purge_job_serves_every_deletion_until_it_runs(service: Service) -> None:
    svc = service
    svc.import_dataset("synthetic", DATA)
    svc.create_model("synthetic", SMALL)
    drain(svc)
    first, _, _ = svc.delete(DeletionInput(subject_id="subject-0"))
    second, _, _ = svc.delete(DeletionInput(subject_id="subject-1"))
    with svc.db.read() as s:
        purges = list(s.scalars(select(JobRow).where(JobRow.kind == JobKind.PURGE)))
    assert len(purges) == 1 and purges[0].state == JobState.QUEUED
    drain(svc)
    for view in (first, second):
        final = svc.request(view["id"])
        assert final.state == "completed", final
        cert = json.loads(svc.certificate(view["id"]))
        (model,) = cert["models"]
        (purge,) = model["activation_cache_purge"]
        assert purge["job"] == purges[0].id and purge["cache_rows_removed"] == 6
    assert svc.verify().ok
