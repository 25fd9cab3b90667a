"""A job's life in the DB: claim (with a lease), heartbeat, finish, fail, and settling the
deletion requests that wait on it. Every transition is a guarded UPDATE, so a job run twice
(redelivery after a crash) publishes once.

This module knows no model kind and no certificate format: what happens when a request
completes (its certificate) and when a job fails for good (a kind's incident) comes in as
:class:`Hooks`, built above the kinds (``service.jobs.hooks``).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from service.audit import log as audit
from service.db.base import utcnow
from service.db.engine import Database
from service.db.tables import (
    DeletionEventRow,
    DeletionJobRow,
    DeletionRequestRow,
    ForgetPayloadRow,
    JobRow,
)
from service.erasure import vault
from service.states import (
    CLOSED_REQUEST_STATES,
    FINAL_JOB_STATES,
    MODEL_WORK_JOB_KINDS,
    JobKind,
    JobState,
    RequestOutcome,
    RequestState,
)

LEASE = dt.timedelta(seconds=120)
MAX_ATTEMPTS = 3
FINAL = FINAL_JOB_STATES


@dataclass(frozen=True)
class Hooks:
    """``issue``: write the certificate of a request completing in this transaction;
    ``job_failed``: the model kind's reaction to a job that failed for good."""

    issue: Callable[[Session, DeletionRequestRow, audit.EventRef], object]
    job_failed: Callable[[Session, JobRow], None]


class LostJob(RuntimeError):
    """The job was superseded, finished elsewhere or re-claimed after our lease ran out."""


def claim(db: Database, job_id: int, hooks: Hooks, *, lease: dt.timedelta = LEASE) -> int | None:
    """Take the job if it is queued, or running with an expired lease; returns the attempt
    number that owns it, or ``None`` when there is nothing to do."""
    now = utcnow()
    with db.write() as s:
        job = s.scalar(select(JobRow).where(JobRow.id == job_id).with_for_update())
        if job is None or job.state in FINAL:
            return None
        if job.state == JobState.RUNNING and job.heartbeat_at and job.heartbeat_at > now - lease:
            return None
        if job.attempts >= MAX_ATTEMPTS:
            # Earlier attempts died without reporting (e.g. the worker was killed each time).
            job.state, job.finished_at = JobState.FAILED, now
            job.error = job.error or f"gave up after {job.attempts} attempts without a result"
            s.flush()
            hooks.job_failed(s, job)
            settle(s, [job.id], hooks)
            return None
        job.state, job.started_at, job.heartbeat_at = JobState.RUNNING, now, now
        job.attempts += 1
        job.error = None
        audit.append(
            s, "job.started", {"job": job.id, "kind": job.kind, "attempt": job.attempts}, at=now
        )
        return job.attempts


def owned(s: Session, job_id: int, attempt: int) -> JobRow:
    """The job row, locked, if ``attempt`` still owns it; else ``LostJob``."""
    job = s.scalar(select(JobRow).where(JobRow.id == job_id).with_for_update())
    if job is None or job.state != JobState.RUNNING or job.attempts != attempt:
        raise LostJob(f"job {job_id} attempt {attempt} no longer owns the job")
    return job


def heartbeat(db: Database, job_id: int, attempt: int, done: int, total: int) -> None:
    with db.write() as s:
        job = owned(s, job_id, attempt)
        job.heartbeat_at = utcnow()
        job.progress_done, job.progress_total = done, total


def release(db: Database, job_id: int, attempt: int) -> None:
    """Note that ``attempt``, which lost the job, has stopped and removed its files: a purge
    waiting for the attempts that read erased records need not wait out their lease."""
    with db.write() as s:
        job = s.scalar(select(JobRow).where(JobRow.id == job_id).with_for_update())
        if job is not None and job.attempts == attempt and job.state in FINAL:
            job.params = {**(job.params or {}), "released": attempt}


def unreleased(s: Session, model_id: int, lease: dt.timedelta) -> list[int]:
    """The model's superseded retrain jobs whose last attempt may still be running (a
    heartbeat within ``lease``, no release): each read records erased since it started."""
    now = utcnow()
    rows = s.scalars(
        select(JobRow).where(
            JobRow.model_id == model_id,
            JobRow.kind.in_(MODEL_WORK_JOB_KINDS),
            JobRow.state == JobState.SUPERSEDED,
            JobRow.heartbeat_at > now - lease,
        )
    )
    return [j.id for j in rows if (j.params or {}).get("released") != j.attempts]


def finish(s: Session, job: JobRow, hooks: Hooks) -> None:
    """Mark the (owned) job done and complete the requests that waited only on it."""
    job.state, job.finished_at = JobState.DONE, utcnow()
    job.progress_done = job.progress_total
    s.flush()
    data: dict[str, Any] = {
        "job": job.id,
        "kind": job.kind,
        "model": job.model_id,
        "attempt": job.attempts,
    }
    if job.evidence and job.kind == JobKind.RETRAIN:
        data["evidence"] = job.evidence  # the from-scratch check: what certificates point to
    audit.append(s, "job.finished", data)
    settle(s, [job.id], hooks)


def fail(db: Database, job_id: int, attempt: int, error: str, hooks: Hooks) -> str:
    """Record a failure: back to ``queued`` for another attempt, or ``failed`` for good."""
    with db.write() as s:
        try:
            job = owned(s, job_id, attempt)
        except LostJob:
            return "lost"
        job.error = error[-4000:]
        audit.append(
            s,
            "job.failed",
            {
                "job": job.id,
                "kind": job.kind,
                "attempt": attempt,
                "final": job.attempts >= MAX_ATTEMPTS,
            },
        )
        if job.attempts >= MAX_ATTEMPTS:
            job.state, job.finished_at = JobState.FAILED, utcnow()
            s.flush()
            hooks.job_failed(s, job)
            settle(s, [job.id], hooks)
        else:
            job.state, job.enqueued_at = JobState.QUEUED, None
        return job.state


def settle(s: Session, job_ids: Iterable[int], hooks: Hooks) -> None:
    """Requests linked to these jobs become ``completed`` when every erasure job they wait on
    (a purge, an approximate model's unlearning) is done or superseded and every model-work
    job they wait on (a training that was reading their records) has stopped, whatever its
    outcome; ``failed`` only when an erasure job failed for good. A request in
    ``needs_review`` waits for an operator (``service.approximate.review``)."""
    now = utcnow()
    request_ids = set(
        s.scalars(select(DeletionJobRow.request_id).where(DeletionJobRow.job_id.in_(list(job_ids))))
    )
    for rid in sorted(request_ids):
        req = s.get(DeletionRequestRow, rid)
        assert req is not None
        if req.state in (*CLOSED_REQUEST_STATES, RequestState.NEEDS_REVIEW):
            continue
        linked = list(
            s.execute(
                select(JobRow.kind, JobRow.state)
                .join(DeletionJobRow, DeletionJobRow.job_id == JobRow.id)
                .where(DeletionJobRow.request_id == rid)
            )
        )
        erasure = [state for kind, state in linked if kind not in MODEL_WORK_JOB_KINDS]
        if JobState.FAILED in erasure:
            transition(s, req, RequestState.FAILED, now, hooks=hooks)
        elif all(state in FINAL for _, state in linked) and all(
            state in (JobState.DONE, JobState.SUPERSEDED) for state in erasure
        ):
            req.completed_at = now
            transition(s, req, RequestState.COMPLETED, now, hooks=hooks)


def transition(
    s: Session,
    req: DeletionRequestRow,
    state: str,
    now: dt.datetime,
    detail: dict[str, Any] | None = None,
    *,
    hooks: Hooks | None = None,
) -> None:
    """Move the request to ``state``: timeline row, audit event, and on completion or
    failure the purge of its quarantined payloads (then, on completion, its certificate:
    ``hooks`` is required for that)."""
    req.state = state
    s.add(DeletionEventRow(request_id=req.id, state=state, at=now, detail=detail))
    if state in CLOSED_REQUEST_STATES:
        purged = s.execute(delete(ForgetPayloadRow).where(ForgetPayloadRow.request_id == req.id))
        vault.destroy_owner(s, vault.quarantine_owner(req.id), req.id)
        if purged.rowcount:  # type: ignore[attr-defined]
            audit.append(
                s,
                "forget_payloads.purged",
                {"request": req.public_id, "n_records": purged.rowcount},  # type: ignore[attr-defined]
                at=now,
            )
    data: dict[str, Any] = {"request": req.public_id}
    if state == RequestState.COMPLETED:
        # Accepting sets the outcome of a request that completes at once; any later
        # completion erased and cut (or unlearned): the view and certificate state the same.
        req.outcome = req.outcome or RequestOutcome.ERASED
        data["outcome"] = req.outcome
    if detail:
        data.update(detail)
    ref = audit.append(s, f"request.{state}", data, at=now)
    if state == RequestState.COMPLETED:
        if hooks is None:
            raise ValueError(f"request {req.public_id} cannot complete without its hooks")
        s.flush()
        hooks.issue(s, req, ref)
