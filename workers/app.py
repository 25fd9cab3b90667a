# mypy: disable-error-code="import-untyped"
"""The Celery app: ``celery -A workers.app worker -Q gpu`` (training jobs), ``-Q erasure``
(the jobs that finish an erasure: never behind a training) and, optionally, ``... beat``.

Every worker runs the reconciler in its main process (:class:`ReconcilerStep`), so a
deployment of workers alone recovers: no ``celery beat`` is needed (it still may run, on the
``default`` queue; rounds are idempotent).

The lineage DB is the source of truth: a message only says "look at job N". Redelivered or
duplicate messages are harmless because a worker must claim the job row (with a lease)
before it trains, so the broker settings below favour at-least-once delivery.
"""

from __future__ import annotations

import os
from functools import cache
from typing import Any

from celery import Celery, bootsteps
from celery.signals import worker_process_init

from service.app.broker import DEFAULT_QUEUE, ERASURE_QUEUE, GPU_QUEUE, RECONCILE, RUN_JOB, queues
from service.settings import Settings

__all__ = [
    "DEFAULT_QUEUE",
    "ERASURE_QUEUE",
    "GPU_QUEUE",
    "RECONCILE",
    "RUN_JOB",
    "ReconcilerStep",
    "make_celery",
]

# Redis re-delivers a message that stays unacknowledged this long (acks are late: after the
# task). It must exceed the longest job, or a second worker picks the job up while the first
# still trains; that copy would only find the claim taken and skip, but wastes a GPU slot.
VISIBILITY_TIMEOUT_S = 4 * 60 * 60
# How often beat runs the reconciler (each worker's own runs every third of the lease,
# ``service.jobs.reconciler``): the delay before a lost message or a dead worker's job is
# dispatched again, on top of the lease (``UNLEARN_JOB_LEASE_S``).
RECONCILE_EVERY_S = 30.0


class ReconcilerStep(bootsteps.StartStopStep):  # type: ignore[misc]
    """The reconciler's thread in the worker's main process, beside the pool: it runs while
    the only pool process trains for hours, and survives broker and database outages."""

    label = "unlearn reconciler"
    requires = ("celery.worker.components:Pool",)

    def __init__(self, parent: Any, **kwargs: Any) -> None:
        super().__init__(parent, **kwargs)
        self.loop: Any = None

    def start(self, parent: Any) -> None:
        from service.app.broker import celery_send
        from service.db.engine import Database
        from service.jobs.reconciler import ReconcileLoop

        settings = Settings.from_env()  # as the tasks' ``worker_service`` reads it
        db = Database.from_url(settings.database_url)
        # Pool processes forked later (a replacement for a killed one) get a copy of this
        # engine: they must never use, or close, the parent's connections.
        os.register_at_fork(after_in_child=lambda: db.engine.dispose(close=False))
        self.loop = ReconcileLoop(db, settings, celery_send(parent.app))
        self.loop.start()

    def stop(self, parent: Any) -> None:
        if self.loop is not None:
            self.loop.stop(timeout=10)
            self.loop.db.dispose()
            self.loop = None


def make_celery(settings: Settings) -> Celery:
    if settings.broker_url is None:
        raise ValueError("CELERY_BROKER_URL is not set: the embedded worker needs no Celery")
    app = Celery(
        "unlearn",
        broker=settings.broker_url,
        backend=settings.result_backend,
        include=["workers.tasks"],
    )
    app.conf.update(
        task_serializer="json",
        result_serializer="json",
        accept_content=["json"],
        task_ignore_result=settings.result_backend is None,
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        # Keep training through a broker blip: the job row, not the message, says who owns it.
        worker_cancel_long_running_tasks_on_connection_loss=False,
        broker_connection_retry_on_startup=True,
        # A broker outage, however long, is waited out: the worker must recover on its own.
        broker_connection_max_retries=None,
        broker_transport_options={"visibility_timeout": VISIBILITY_TIMEOUT_S},
        task_queues=queues(),
        task_default_queue=DEFAULT_QUEUE,
        task_routes={RUN_JOB: {"queue": GPU_QUEUE}, RECONCILE: {"queue": DEFAULT_QUEUE}},
        beat_schedule={
            "reconcile-jobs": {
                "task": RECONCILE,
                "schedule": RECONCILE_EVERY_S,
                # A reconcile nobody ran in time is superseded by the next one.
                "options": {"queue": DEFAULT_QUEUE, "expires": RECONCILE_EVERY_S},
            }
        },
    )
    app.steps["worker"].add(ReconcilerStep)
    return app


def configure_worker_process(**_: object) -> None:
    from models.determinism import configure_determinism

    configure_determinism()


worker_process_init.connect(configure_worker_process, weak=False, dispatch_uid=__name__)


@cache
def _app_from_env() -> Celery:
    return make_celery(Settings.from_env())


def __getattr__(name: str) -> Celery:
    """``app``, built on first use so that importing this module reads no environment."""
    if name == "app":
        return _app_from_env()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
