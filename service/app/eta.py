"""How long until a model that serves nothing can serve again: the ``Retry-After`` of a
predict answered 503. An estimate from the job queue, in whole seconds, never below 1.

- A running job of the model finishes at the rate it has kept so far (``progress_done`` of
  ``progress_total`` between ``started_at`` and ``heartbeat_at``); without progress yet,
  after the median duration of the model's recent jobs of that kind (any model's when the
  model has none), less the time it has run. The model serves again when the first of its
  running jobs ends (one live shard serves).
- With none running, its first queued job waits for the open jobs queued ahead of it (any
  model's: one worker runs them in order), each taking its kind's median (:data:`DEFAULT_S`
  when no job of that kind has finished yet), then runs its own.
- Nothing known (no open job, no finished job to learn from): :data:`DEFAULT_S`.
"""

from __future__ import annotations

import datetime as dt
import statistics
from typing import TYPE_CHECKING

from sqlalchemy import select

from service.db.tables import JobRow
from service.states import OPEN_JOB_STATES, JobKind, JobState

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from service.db.engine import Database

DEFAULT_S = 30
MAX_S = 24 * 3600
RECENT = 20  # finished jobs a median is taken over
MODEL_WORK = (JobKind.TRAIN, JobKind.RETRAIN, JobKind.FIT, JobKind.UNLEARN)


def retry_after(db: Database, model_id: int, *, now: dt.datetime | None = None) -> int:
    """Seconds until model ``model_id`` likely serves again (see the module docstring)."""
    with db.read() as s:
        seconds = estimate(s, model_id, now=now or dt.datetime.now(dt.UTC))
    return DEFAULT_S if seconds is None else max(1, min(MAX_S, round(seconds)))


def estimate(s: Session, model_id: int, *, now: dt.datetime) -> float | None:
    """Seconds, or None when nothing is known."""
    open_jobs = list(
        s.scalars(
            select(JobRow)
            .where(JobRow.state.in_(OPEN_JOB_STATES), JobRow.kind.in_(MODEL_WORK))
            .order_by(JobRow.id)
        )
    )
    mine = [j for j in open_jobs if j.model_id == model_id]
    running = [left(s, j, now) for j in mine if j.state == JobState.RUNNING]
    known = [t for t in running if t is not None]
    if known:
        return min(known)
    queued = [j for j in mine if j.state == JobState.QUEUED]
    if not queued:
        return None
    first = queued[0]
    ahead = [j for j in open_jobs if j.id < first.id or j.state == JobState.RUNNING]
    waits = [left(s, j, now) for j in (*ahead, first)]
    return sum(DEFAULT_S if t is None else t for t in waits)


def left(s: Session, job: JobRow, now: dt.datetime) -> float | None:
    """Seconds ``job`` still needs: its own rate once it has progress, else its kind's
    median less what it has run."""
    ran = 0.0 if job.started_at is None else (now - job.started_at).total_seconds()
    done, total = job.progress_done, job.progress_total
    if job.started_at is not None and 0 < done <= total:
        seen = job.heartbeat_at or now
        rate = done / max((seen - job.started_at).total_seconds(), 1e-3)  # units per second
        return max((total - done) / rate - (now - seen).total_seconds(), 0.0)
    typical = median_duration(s, job.kind, job.model_id)
    return None if typical is None else max(typical - ran, 0.0)


def median_duration(s: Session, kind: str, model_id: int) -> float | None:
    """The median seconds of the model's last :data:`RECENT` finished jobs of ``kind``, or
    of any model's when it has none."""
    for scope in (JobRow.model_id == model_id, JobRow.model_id.is_not(None)):
        rows = s.execute(
            select(JobRow.started_at, JobRow.finished_at)
            .where(
                scope,
                JobRow.kind == kind,
                JobRow.state == JobState.DONE,
                JobRow.started_at.is_not(None),
                JobRow.finished_at.is_not(None),
            )
            .order_by(JobRow.id.desc())
            .limit(RECENT)
        ).all()
        spans = [(end - start).total_seconds() for start, end in rows if start and end]
        if spans:
            return statistics.median(spans)
    return None
