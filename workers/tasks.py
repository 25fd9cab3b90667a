# mypy: disable-error-code="import-untyped"
"""Thin Celery tasks over :mod:`service.jobs.runner`; the DB rows hold all the state.

Models run on CUDA when the worker has a GPU and on the CPU otherwise (decided in models/).
"""

from __future__ import annotations

import datetime as dt
from functools import cache
from typing import Any

from celery import Celery, shared_task

from service.core import Service
from service.jobs.lifecycle import LEASE
from service.jobs.runner import Send, dispatch_pending, reconcile, run_job
from service.settings import Settings
from workers.app import GPU_QUEUE, RECONCILE, RUN_JOB


def celery_send(app: Celery) -> Send:
    """The ``send`` of the outbox (``Service(send=...)``): enqueue ``run_job`` on the GPU queue."""

    def send(job_id: int, kind: str) -> None:
        app.send_task(RUN_JOB, args=[job_id], queue=GPU_QUEUE)

    return send


@cache
def worker_service() -> Service:
    """One service (DB engine and pool) per worker process, opened after the fork."""
    from models.determinism import configure_determinism

    # The solo and thread pools send no worker_process_init; this call is idempotent.
    configure_determinism()
    return Service.open(Settings.from_env())


def _run_job(task: Any, job_id: int) -> str:
    svc = worker_service()
    outcome = run_job(svc.db, svc.settings, job_id)
    # Follow-up retrains created at publish, or this job requeued after a failure, go out now
    # rather than at the reconciler's next round.
    dispatch_pending(svc.db, celery_send(task.app))
    return outcome


def _reconcile(task: Any, lease_s: float | None = None) -> list[int]:
    svc = worker_service()
    lease = LEASE if lease_s is None else dt.timedelta(seconds=lease_s)
    return reconcile(svc.db, celery_send(task.app), lease=lease)


run_job_task = shared_task(name=RUN_JOB, bind=True)(_run_job)
reconcile_task = shared_task(name=RECONCILE, bind=True)(_reconcile)
