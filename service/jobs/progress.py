"""Progress of a job, written to its row as a heartbeat (at most every ``INTERVAL_S``, from
the training loop's per-batch advance), well within the lease (``UNLEARN_JOB_LEASE_S``)
after which the reconciler takes a silent job for dead."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy.exc import InterfaceError, OperationalError

from models.progress import NULL_PROGRESS, Advance, Progress
from service.db.engine import Database
from service.jobs.lifecycle import heartbeat

log = logging.getLogger(__name__)
INTERVAL_S = 5.0
# The database is unreachable (restarting, failing over): a beat is skipped, not the job. If
# it stays away past the lease another attempt takes over, and this one's publish (an owned
# read) fails with ``LostJob``.
DB_UNREACHABLE = (OperationalError, InterfaceError)


class JobProgress:
    """Forwards to ``inner`` and beats the job's heartbeat; raises ``LostJob`` from the
    training loop as soon as the job is superseded, so stale work stops early.

    The job's total is fixed when the job starts: ``total`` (what the job plans to do, see
    ``service.jobs.totals``), or, when ``None``, the total of the first task it sees (a job
    of one task). A later task never grows it, and ``done`` never passes it: within a
    :meth:`stage` it stops at the stage's planned end, and a stage ends at that end even when
    less was reported inside (a reused cache, resumed steps, records erased since the plan).
    """

    def __init__(
        self,
        db: Database,
        job_id: int,
        attempt: int,
        inner: Progress = NULL_PROGRESS,
        *,
        total: int | None = None,
        label: str = "",
    ) -> None:
        self.db, self.job_id, self.attempt, self.inner = db, job_id, attempt, inner
        self.label = label
        self.done = 0
        self.total = 0 if total is None else total
        self._fixed = total is not None
        self._ceiling: int | None = None
        self._last = 0.0

    def beat(self, force: bool = False) -> None:
        now = time.monotonic()
        if force or now - self._last >= INTERVAL_S:
            self._last = now
            try:
                heartbeat(self.db, self.job_id, self.attempt, self.done, self.total)
            except DB_UNREACHABLE:
                log.warning("job %s: heartbeat skipped, database unreachable", self.job_id)

    def add(self, n: int) -> None:
        """Count ``n`` more units done, up to the current stage's end and the total."""
        limit = self.total if self._ceiling is None else min(self._ceiling, self.total)
        self.done = max(self.done, min(self.done + n, limit))

    @contextmanager
    def stage(self, units: int) -> Iterator[None]:
        """Work planned as ``units`` of the total: counted done in full when it ends."""
        end = min(self.done + units, self.total)
        outer, self._ceiling = self._ceiling, end
        self.beat(force=True)
        try:
            yield
        finally:
            self._ceiling = outer
        self.done = max(self.done, end)
        self.beat(force=True)

    @contextmanager
    def task(self, description: str, total: int, *, unit: str = "items") -> Iterator[Advance]:
        if not self._fixed:
            self.total, self._fixed = total, True
        shown = f"{self.label}: {description}" if self.label else description
        with self.inner.task(shown, total, unit=unit) as inner_advance:

            def advance(n: int) -> None:
                self.add(n)
                inner_advance(n)
                self.beat()

            yield advance
        self.beat(force=True)


@contextmanager
def beating(tracker: JobProgress, every_s: float = 2 * INTERVAL_S) -> Iterator[None]:
    """Keep the heartbeat going through work that reports no progress (a family's own
    training loop), so the reconciler does not take a live job for a dead one."""
    stop = threading.Event()

    def loop() -> None:
        while not stop.wait(every_s):
            try:
                tracker.beat(force=True)
            except Exception:
                log.warning("job %s: heartbeat failed; stopping it", tracker.job_id, exc_info=True)
                return

    thread = threading.Thread(target=loop, name=f"heartbeat-{tracker.job_id}", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()
