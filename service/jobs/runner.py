"""Running jobs: one entry point for every worker, the outbox dispatch and the reconciler.

Jobs are rows first; telling a worker about one happens after the commit that created it
(``dispatch_pending``). Whatever is lost on the way (a crashed API before dispatch, a worker
killed mid-job) the reconciler finds from the rows alone and dispatches again; running a job
twice is harmless because only the attempt that owns it may publish.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
import traceback
from collections.abc import Callable
from functools import partial

from sqlalchemy import or_, select, update
from sqlalchemy.orm import Session

from models.progress import NULL_PROGRESS, Progress
from service.db.base import utcnow
from service.db.engine import Database
from service.db.tables import DeletionJobRow, DeletionRequestRow, JobRow
from service.erasure.scrub import scrub
from service.jobs.attempt import Attempt
from service.jobs.hooks import HOOKS
from service.jobs.lifecycle import LEASE, LostJob, claim, fail
from service.jobs.queues import ERASURE_QUEUE, GPU_QUEUE, queue_of
from service.kinds import job_runners
from service.settings import Settings
from service.states import JobKind, JobState

log = logging.getLogger(__name__)

Send = Callable[[int, str], None]


def run_job(
    db: Database, settings: Settings, job_id: int, progress: Progress = NULL_PROGRESS
) -> str:
    """Claim and run one job; returns ``done``, ``skipped``, ``lost``, ``queued`` (will be
    retried) or ``failed``."""
    attempt = claim(db, job_id, HOOKS)
    if attempt is None:
        return "skipped"
    with db.read() as s:
        job = s.get(JobRow, job_id)
        assert job is not None
        kind = job.kind
    try:
        job_runners()[kind](Attempt(db, settings, job_id, attempt, HOOKS, progress))
        outcome: str = JobState.DONE
    except LostJob:
        log.info("job %s attempt %s lost ownership; its work is discarded", job_id, attempt)
        return "lost"
    except Exception:
        log.exception("job %s attempt %s failed", job_id, attempt)
        outcome = fail(db, job_id, attempt, traceback.format_exc(), HOOKS)
    # A request this job closed destroyed its quarantine key: push the old copies out.
    scrub(db)
    return outcome


def next_queued(
    s: Session,
    *,
    model_id: int | None = None,
    request_id: str | None = None,
    queue: str | None = None,
) -> int | None:
    """The oldest queued job (of one model, of the request with this public id, of the job
    kinds of one queue)."""
    query = select(JobRow.id).where(JobRow.state == JobState.QUEUED)
    if queue is not None:
        kinds = [k for k in JobKind if queue_of(k) == queue]
        query = query.where(JobRow.kind.in_(kinds))
    if model_id is not None:
        query = query.where(JobRow.model_id == model_id)
    if request_id is not None:
        query = (
            query.join(DeletionJobRow, DeletionJobRow.job_id == JobRow.id)
            .join(DeletionRequestRow, DeletionRequestRow.id == DeletionJobRow.request_id)
            .where(DeletionRequestRow.public_id == request_id)
        )
    return s.scalar(query.order_by(JobRow.id).limit(1))


def run_next(
    db: Database,
    settings: Settings,
    pick: Callable[[Session], int | None],
    progress: Progress = NULL_PROGRESS,
) -> tuple[int, str] | None:
    """Run, in this process, the job ``pick`` names (``None``: nothing to run); returns the
    job id and its outcome. The one step of every loop that runs queued jobs locally."""
    with db.read() as s:
        job_id = pick(s)
    if job_id is None:
        return None
    return job_id, run_job(db, settings, job_id, progress)


def dispatch_pending(db: Database, send: Send) -> list[int]:
    """Send every queued job the broker has not been told about (the outbox)."""
    with db.read() as s:
        pending = list(
            s.execute(
                select(JobRow.id, JobRow.kind)
                .where(JobRow.state == JobState.QUEUED, JobRow.enqueued_at.is_(None))
                .order_by(JobRow.id)
            )
        )
    sent = []
    for job_id, kind in pending:
        send(job_id, kind)
        with db.write() as s:
            s.execute(update(JobRow).where(JobRow.id == job_id).values(enqueued_at=utcnow()))
        sent.append(job_id)
    return sent


def reconcile(
    db: Database, send: Send, *, lease: dt.timedelta = LEASE, resend_after: dt.timedelta = LEASE
) -> list[int]:
    """Requeue running jobs whose heartbeat stopped and queued jobs whose message seems lost,
    then dispatch them again."""
    now = utcnow()
    with db.write() as s:
        s.execute(
            update(JobRow)
            .where(
                or_(
                    (JobRow.state == JobState.RUNNING) & (JobRow.heartbeat_at < now - lease),
                    (JobRow.state == JobState.QUEUED) & (JobRow.enqueued_at < now - resend_after),
                )
            )
            .values(state=JobState.QUEUED, enqueued_at=None)
        )
    return dispatch_pending(db, send)


class LocalWorker:
    """The embedded default's worker: one thread per job queue, each running its queued jobs
    in id order, so an erasure's cache purge never waits behind a training."""

    def __init__(self, db: Database, settings: Settings, *, poll_s: float = 2.0) -> None:
        self.db, self.settings, self.poll_s = db, settings, poll_s
        self._stop = threading.Event()
        self._wake = {q: threading.Event() for q in (GPU_QUEUE, ERASURE_QUEUE)}
        self._threads = [
            threading.Thread(target=self._loop, args=(q,), name=f"unlearn-{q}", daemon=True)
            for q in self._wake
        ]

    def start(self) -> None:
        for thread in self._threads:
            thread.start()

    def stop(self, timeout: float | None = None) -> None:
        self._stop.set()
        for wake in self._wake.values():
            wake.set()
        for thread in self._threads:
            thread.join(timeout)

    def send(self, job_id: int, kind: str) -> None:
        self._wake[queue_of(kind)].set()

    def run_once(self, queue: str | None = None) -> bool:
        """Run the oldest runnable job (of ``queue``'s kinds), if any."""
        reconcile(self.db, self.send)
        return run_next(self.db, self.settings, partial(next_queued, queue=queue)) is not None

    def drain(self) -> None:
        while self.run_once():
            pass

    def _loop(self, queue: str) -> None:
        wake = self._wake[queue]
        while not self._stop.is_set():
            try:
                if self.run_once(queue):
                    continue
            except Exception:
                log.exception("local worker loop (%s queue) failed; retrying", queue)
            wake.wait(self.poll_s)
            wake.clear()
