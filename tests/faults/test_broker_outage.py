"""The broker away while deletions arrive: the API answers 202 at its usual speed, the jobs
wait in the outbox (``enqueued_at`` null), and ``unlearn worker`` alone (its reconciler)
sends and runs them once Redis is back. And a crash between a commit and its enqueue."""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path

import pytest
from sqlalchemy import select

from service.app.broker import broker_send
from service.core import Service
from service.db.tables import JobRow
from service.lineage.deletion import DeletionInput
from tests.faults.cluster import Tally, jobs_settled, wait_until
from tests.faults.conftest import Clone
from tests.faults.servers import redis_server
from tests.service.clients import api_client

pytestmark = [pytest.mark.slow, pytest.mark.postgres]
N_DELETIONS = 100
DOWN_AT, UP_AT = 10, 90


def all_jobs(service: Service) -> list[JobRow]:
    with service.db.read() as s:
        return list(s.scalars(select(JobRow).order_by(JobRow.id)))


def test_redis_stopped_during_100_deletions(cloned: Clone, tmp_path: Path) -> None:
    with redis_server(tmp_path) as redis:
        cloned.procs.env["CELERY_BROKER_URL"] = redis.url
        # The API as deployed with a broker (its sender fails fast while Redis is away);
        # rate-limit counters kept in memory: in Redis they go down with it (see report).
        settings = dataclasses.replace(
            cloned.settings, broker_url=redis.url, rate_limit_storage="memory://"
        )
        api = Service.open(settings, send=broker_send(settings))
        worker = cloned.procs.start("worker")
        cloned.procs.wait_for_log(worker, "[queues]")
        time.sleep(3)  # connected and consuming when Redis goes away
        tally, slowest_down = Tally(), 0.0
        with api_client(api) as client:
            for i in range(N_DELETIONS):
                if i == DOWN_AT:
                    redis.stop()
                if i == UP_AT:
                    redis.start()
                rid = f"rec-{i:04d}"
                began = time.monotonic()
                r = client.post(
                    "/v1/deletions", json={"record_ids": [rid]}, headers={"Idempotency-Key": rid}
                )
                if DOWN_AT <= i < UP_AT:
                    slowest_down = max(slowest_down, time.monotonic() - began)
                assert r.status_code == 202, r.text
                tally.accepted[r.json()["id"]] = (rid,)
        api.db.dispose()
        service = cloned.service
        unsent_at_restart = sum(1 for j in all_jobs(service) if j.enqueued_at is None)
        wait_until("every job to finish", jobs_settled(service), cloned.procs, service)
        jobs = all_jobs(service)
        tally.check(service).report(
            "redis-outage",
            deletions=N_DELETIONS,
            redis_down_for=UP_AT - DOWN_AT,
            slowest_202_while_down_s=round(slowest_down, 2),
            jobs=len(jobs),
            job_states={
                st: sum(1 for j in jobs if j.state == st) for st in {j.state for j in jobs}
            },
            unsent_when_redis_came_back=unsent_at_restart,
        )
    assert tally.lost == [] and tally.twice == []
    assert not [j.id for j in jobs if j.state == "failed"]
    assert all(j.enqueued_at is not None for j in jobs if j.state == "done")
    assert slowest_down < 2.0, "a broker outage does not slow the API down"


def test_a_crash_between_commit_and_enqueue(cloned: Clone, tmp_path: Path) -> None:
    with redis_server(tmp_path) as redis:
        cloned.procs.env["CELERY_BROKER_URL"] = redis.url
        service = cloned.service
        # The process dies right after the commit: the dispatch that follows never runs.
        service.dispatch = lambda: []  # type: ignore[method-assign]
        tally = Tally()
        for i in range(3):
            rid = f"rec-{i:04d}"
            view, _, _ = service.delete(DeletionInput(record_ids=(rid,)), f"crash-{i}")
            tally.accepted[view["id"]] = (rid,)
        pending = [j.id for j in all_jobs(service) if j.enqueued_at is None]
        assert pending, "accepted work waits in the outbox"
        cloned.procs.start("worker")
        wait_until("every job to finish", jobs_settled(service), cloned.procs, service)
        jobs = all_jobs(service)
        tally.check(service).report("commit-without-enqueue", outbox=len(pending))
    assert tally.lost == [] and tally.twice == []
    assert {j.state for j in jobs if j.id in pending} <= {"done", "superseded"}
    assert all(j.enqueued_at is not None for j in jobs if j.state == "done")
