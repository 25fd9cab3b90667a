"""Restoring an S3T model's served depth on an operator's order: after a model incident
(a retrain that failed for good), every cut sequence without an open job gets a new retrain
job from its clean prefix. Requests never wait on these jobs (they are the model's work)."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from service.audit import log as audit
from service.db.tables import JobRow, ModelRow, SequenceRow
from service.jobs.create import retrain_job
from service.states import OPEN_JOB_STATES, JobKind


def restore_jobs(session: Session, model: ModelRow) -> list[int]:
    """New retrain jobs for the (locked) model's sequences below full depth that no open job
    rebuilds; returns their ids (empty when nothing is missing)."""
    if "n_slices" not in model.config:  # no sequences: nothing to restore
        return []
    n_slices = int(model.config["n_slices"])
    latest: dict[int | None, tuple[int, str]] = {}
    for job_id, seq_id, state in session.execute(
        select(JobRow.id, JobRow.sequence_id, JobRow.state)
        .where(JobRow.model_id == model.id, JobRow.kind == JobKind.RETRAIN)
        .order_by(JobRow.id)
    ):
        latest[seq_id] = (job_id, state)
    jobs = []
    for seq in list(
        session.scalars(
            select(SequenceRow)
            .where(SequenceRow.model_id == model.id, SequenceRow.valid_depth < n_slices)
            .order_by(SequenceRow.shard, SequenceRow.position)
        )
    ):
        last = latest.get(seq.id)
        if last is not None and last[1] in OPEN_JOB_STATES:
            continue
        again = "" if last is None else f":after{last[0]}"
        jobs.append(retrain_job(session, model, seq.id, seq.valid_depth + 1, again=again))
    if jobs:
        audit.append(session, "model.restore", {"model": model.id, "jobs": jobs})
    return jobs
