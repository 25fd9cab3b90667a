# mypy: disable-error-code="import-untyped"
"""Thin Celery tasks over :mod:`service.jobs.runner`; the DB rows hold all the state.

Models run on CUDA when the worker has a GPU and on the CPU otherwise (decided in models/).
"""

from __future__ import annotations

import datetime as dt
from functools import cache
from typing import Any

from celery import shared_task

from service.app.broker import celery_send
from service.core import Service
from service.jobs.progress import DB_UNREACHABLE
from service.settings import Settings
from workers.app import RECONCILE, RUN_JOB

__all__ = ["celery_send", "reconcile_task", "run_job_task", "worker_service"]


@cache
def worker_service() -> Service:
    """One service (DB engine and pool) per worker process, opened after the fork."""
    from models.determinism import configure_determinism
    from workers.app import app  # the app this worker runs, built from the environment

    # The solo and thread pools send no worker_process_init; this call is idempotent.
    configure_determinism()
    return Service.open(Settings.from_env(), send=celery_send(app))


def _run_job(task: Any, job_id: int) -> str:
    svc = worker_service()
    outcome = svc.run_job(job_id)
    # Follow-up retrains created at publish, or this job requeued after a failure, go out now
    # rather than at the reconciler's next round (which sends them if the broker is down).
    svc.dispatch()
    return outcome


def _reconcile(task: Any, lease_s: float | None = None) -> list[int]:
    svc = worker_service()
    lease = None if lease_s is None else dt.timedelta(seconds=lease_s)
    return svc.reconcile(celery_send(task.app), lease=lease)


# The database unreachable before the job was claimed (or after it failed, before that was
# recorded): try again shortly; past the retries the reconciler resends the job.
run_job_task = shared_task(
    name=RUN_JOB,
    bind=True,
    acks_late=True,
    autoretry_for=DB_UNREACHABLE,
    retry_backoff=2,
    retry_backoff_max=60,
    max_retries=8,
)(_run_job)
reconcile_task = shared_task(name=RECONCILE, bind=True)(_reconcile)
