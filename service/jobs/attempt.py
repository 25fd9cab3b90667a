"""One attempt at a job: what a job runner gets instead of a list of arguments."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from sqlalchemy.orm import Session

from models.progress import NULL_PROGRESS, Progress
from service.db.engine import Database
from service.db.tables import JobRow
from service.jobs.lifecycle import Hooks, finish, owned
from service.settings import Settings


@dataclass(frozen=True)
class Attempt:
    """Attempt ``number`` of job ``job_id``; only the attempt that still owns the job (the
    guarded ``owned`` read) may publish."""

    db: Database
    settings: Settings
    job_id: int
    number: int
    hooks: Hooks
    progress: Progress = field(default=NULL_PROGRESS)

    def owned(self, s: Session) -> JobRow:
        """The job row, locked, while this attempt owns it; else ``LostJob``."""
        return owned(s, self.job_id, self.number)

    def finish(self, s: Session, job: JobRow) -> None:
        """Mark the job done in ``s``'s transaction and settle the requests waiting on it."""
        finish(s, job, self.hooks)


Runner = Callable[[Attempt], None]
