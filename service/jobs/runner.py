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

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from models.progress import Progress
from models.progress_lines import LineProgress
from service.db.base import utcnow
from service.db.engine import Database
from service.db.tables import DeletionJobRow, DeletionRequestRow, JobRow
from service.erasure.scrub import scrub
from service.jobs.attempt import Attempt
from service.jobs.hooks import HOOKS
from service.jobs.lifecycle import LEASE, LostJob, claim, fail, release
from service.jobs.queues import ERASURE_QUEUE, GPU_QUEUE, queue_of
from service.jobs.resume import discard_final_steps
from service.kinds import job_runners
from service.settings import Settings
from service.states import JobKind, JobState

log = logging.getLogger(__name__)

Send = Callable[[int, str], None]
progress_log = logging.getLogger("unlearn.progress")


def worker_progress() -> LineProgress:
    """A worker's progress: plain lines at INFO on ``unlearn.progress`` (a Celery worker
    shows them at ``--loglevel INFO``; ``unlearn worker`` and ``serve`` print them)."""
    return LineProgress(progress_log.info)


def run_job(db: Database, settings: Settings, job_id: int, progress: Progress | None = None) -> str:
    """Claim and run one job; returns ``done``, ``skipped``, ``lost``, ``queued`` (will be
    retried) or ``failed``. Without ``progress`` (a worker), progress goes to the
    ``unlearn.progress`` log as plain lines."""
    progress = worker_progress() if progress is None else progress
    attempt = claim(db, job_id, HOOKS, lease=settings.job_lease)
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
        release(db, job_id, attempt)
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
    progress: Progress | None = None,
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
    sent: list[int] = []
    try:
        for job_id, kind in pending:
            send(job_id, kind)
            sent.append(job_id)
    finally:
        # One write for all that went out (also when the broker failed part-way).
        if sent:
            with db.write() as s:
                s.execute(update(JobRow).where(JobRow.id.in_(sent)).values(enqueued_at=utcnow()))
    return sent


def reconcile(
    db: Database,
    send: Send,
    *,
    lease: dt.timedelta = LEASE,
    resend_after: dt.timedelta = LEASE,
    busy_resend_after: dt.timedelta | None = None,
) -> list[int]:
    """Requeue running jobs whose heartbeat stopped ``lease`` ago and queued jobs whose
    message seems lost, then dispatch them again.

    A queued job's message seems lost ``resend_after`` after it was sent, or, while a job of
    its queue is running live (it most likely waits behind that one: a ``-c 1`` GPU worker
    holds one message at a time), ``busy_resend_after`` (default ten times
    ``resend_after``). Resending is harmless (a second message finds the job claimed or
    done), so this only bounds the duplicates a long training piles up."""
    busy_after = 10 * resend_after if busy_resend_after is None else busy_resend_after
    now = utcnow()
    with db.write() as s:
        s.execute(
            update(JobRow)
            .where(JobRow.state == JobState.RUNNING, JobRow.heartbeat_at < now - lease)
            .values(state=JobState.QUEUED, enqueued_at=None)
        )
        live = s.scalars(
            select(JobRow.kind).where(
                JobRow.state == JobState.RUNNING, JobRow.heartbeat_at >= now - lease
            )
        )
        busy = {queue_of(kind) for kind in live}
        waiting = s.execute(
            select(JobRow.id, JobRow.kind, JobRow.enqueued_at).where(
                JobRow.state == JobState.QUEUED, JobRow.enqueued_at < now - resend_after
            )
        )
        lost = [
            job_id
            for job_id, kind, sent in waiting
            if queue_of(kind) not in busy or (sent is not None and sent < now - busy_after)
        ]
        if lost:
            s.execute(update(JobRow).where(JobRow.id.in_(lost)).values(enqueued_at=None))
    return dispatch_pending(db, send)


def reconcile_round(
    db: Database, settings: Settings, send: Send, *, lease: dt.timedelta | None = None
) -> list[int]:
    """One round of every worker's reconciler, on the configured lease
    (``UNLEARN_JOB_LEASE_S``): recorded steps of final jobs are removed
    (``service.jobs.resume``), then lost jobs are requeued and sent. Returns the ids sent."""
    discard_final_steps(db, partial(_delete_checkpoint, settings))
    lease = settings.job_lease if lease is None else lease
    return reconcile(db, send, lease=lease, resend_after=lease)


def _delete_checkpoint(settings: Settings, sha: str) -> None:
    from models.checkpoints import LocalCheckpointStore  # torch: only when there is a file

    LocalCheckpointStore(settings.checkpoints_dir).delete(sha)


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
        """Run the oldest runnable job (of ``queue``'s kinds), if any, after a round of the
        reconciler (a job of a killed process is taken over once its lease runs out)."""
        reconcile_round(self.db, self.settings, self.send)
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
