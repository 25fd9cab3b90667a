"""Progress of a job, written to its row as a heartbeat (at most every few seconds)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager

from models.progress import NULL_PROGRESS, Advance, Progress
from service.db.engine import Database
from service.jobs.lifecycle import heartbeat

INTERVAL_S = 5.0


class JobProgress:
    """Forwards to ``inner`` and beats the job's heartbeat; raises ``LostJob`` from the
    training loop as soon as the job is superseded, so stale work stops early."""

    def __init__(
        self, db: Database, job_id: int, attempt: int, inner: Progress = NULL_PROGRESS
    ) -> None:
        self.db, self.job_id, self.attempt, self.inner = db, job_id, attempt, inner
        self.done, self.total = 0, 0
        self._last = 0.0

    def beat(self, force: bool = False) -> None:
        now = time.monotonic()
        if force or now - self._last >= INTERVAL_S:
            self._last = now
            heartbeat(self.db, self.job_id, self.attempt, self.done, self.total)

    @contextmanager
    def task(self, description: str, total: int) -> Iterator[Advance]:
        self.total += total
        with self.inner.task(description, total) as inner_advance:

            def advance(n: int) -> None:
                self.done += n
                inner_advance(n)
                self.beat()

            yield advance
        self.beat(force=True)
