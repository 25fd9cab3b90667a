# mypy: disable-error-code="import-untyped"
"""Telling workers about a job over the broker, by task name (the front ends never import
``workers``; ``workers.app`` builds the consuming Celery app from the same names and queues).

A message only says "look at job N": the lineage DB holds the state.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from service.jobs.queues import DEFAULT_QUEUE, ERASURE_QUEUE, GPU_QUEUE, QUEUES, queue_of

if TYPE_CHECKING:
    from celery import Celery
    from kombu.entity import Queue

    from service.jobs.runner import Send
    from service.settings import Settings

__all__ = [
    "DEFAULT_QUEUE",
    "ERASURE_QUEUE",
    "GPU_QUEUE",
    "RECONCILE",
    "RUN_JOB",
    "BrokerDown",
    "broker_send",
    "celery_send",
    "failing_fast",
    "queues",
]

RUN_JOB = "unlearn.run_job"
RECONCILE = "unlearn.reconcile"
# After a failed send, how long the API's sender skips the broker (``failing_fast``).
BROKER_PAUSE_S = 5.0


def queues() -> tuple[Queue, ...]:
    """Each queue bound under its own name: two queues that share the default routing key
    would both receive every message published with it."""
    from kombu.entity import Queue

    return tuple(Queue(name, routing_key=name) for name in QUEUES)  # type: ignore[no-untyped-call]


def celery_send(app: Celery) -> Send:
    """The ``send`` of the outbox (``Service(send=...)``): enqueue ``run_job`` on the queue of
    the job's kind (``service.jobs.queues``)."""

    def send(job_id: int, kind: str) -> None:
        app.send_task(RUN_JOB, args=[job_id], queue=queue_of(kind))

    return send


class BrokerDown(ConnectionError):
    """The broker refused the last send moments ago; this one was not tried."""


def failing_fast(send: Send, *, pause_s: float = BROKER_PAUSE_S) -> Send:
    """``send``, but for ``pause_s`` after a failed send every call fails at once with
    :class:`BrokerDown` instead of waiting out the broker's connection retries (most of a
    second each): during an outage the API answers at its normal speed, and the jobs it
    could not send wait for the reconciler (their ``enqueued_at`` stays null)."""
    failed_at: list[float] = []

    def guarded(job_id: int, kind: str) -> None:
        if failed_at and time.monotonic() - failed_at[-1] < pause_s:
            raise BrokerDown(f"the broker failed {time.monotonic() - failed_at[-1]:.1f} s ago")
        try:
            send(job_id, kind)
        except Exception:
            failed_at[:] = [time.monotonic()]
            raise
        failed_at.clear()

    return guarded


def broker_send(settings: Settings) -> Send | None:
    """The sender a composition root passes to ``Service.open``: a producer on the configured
    broker (failing fast while it is down), or None on the embedded default (no broker: the
    local worker polls the DB)."""
    if settings.broker_url is None:
        return None
    from celery import Celery

    app = Celery("unlearn", broker=settings.broker_url, set_as_current=False)
    app.conf.update(
        task_serializer="json",
        accept_content=["json"],
        broker_connection_retry_on_startup=True,
        task_queues=queues(),
        task_default_queue=DEFAULT_QUEUE,
    )
    return failing_fast(celery_send(app))
