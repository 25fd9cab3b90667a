"""The ``purge`` job: an S3T model's activation caches lose the rows of erased records.

Accepting a deletion queues one per affected model (``service.jobs.create.purge_job``), on
the erasure queue, so it runs within seconds of the commit even while a training holds the
training queue for hours. It reads the model's erased set when it runs, so one job serves
every request linked to it. Jobs that build a cache from a snapshot taken before a later
erasure drop those rows themselves once the cache is built (``service.jobs.training``).
"""

from __future__ import annotations

import time

from sqlalchemy import select

from models.checkpoints import LocalCheckpointStore
from service.audit import log as audit
from service.db.tables import DeletionEventRow, DeletionJobRow, JobRow
from service.jobs.attempt import Attempt
from service.jobs.lifecycle import heartbeat, unreleased
from service.jobs.resume import discard_final_steps
from service.jobs.shards import cache_dir, erased_ids, purge_cache
from service.states import RequestState

POLL_S = 0.5


def run_purge(ctx: Attempt) -> None:
    with ctx.db.read() as s:
        job = s.get(JobRow, ctx.job_id)
        assert job is not None
        model_id = job.model_id
        erased = erased_ids(s, model_id)
    removed = {
        shard: purge_cache(cache_dir(ctx.settings, model_id, shard), ids)
        for shard, ids in sorted(erased.items())
    }
    waited = _wait_for_stale_attempts(ctx, model_id)
    files = _remove_retired_files(ctx)
    # Steps the stopped attempts recorded (kept for a resume that will not come now).
    files += discard_final_steps(ctx.db, LocalCheckpointStore(ctx.settings.checkpoints_dir).delete)
    with ctx.db.write() as s:
        job = ctx.owned(s)
        job.evidence = {
            "cache_rows_removed": sum(removed.values()),
            "by_shard": {str(k): v for k, v in removed.items() if v},
            "checkpoint_files_removed": files,
            "waited_for_jobs": waited,
        }
        audit.append(
            s,
            "cache.purged",
            {"model": model_id, "job": job.id, "n_records": sum(removed.values())},
        )
        ctx.finish(s, job)


def _wait_for_stale_attempts(ctx: Attempt, model_id: int) -> list[int]:
    """Retrains superseded by these erasures read the erased records and may still be
    writing checkpoint files from them: wait until each has stopped (it releases the job
    after removing its files) or its lease has run out (its process is gone), so the
    certificate this job leads to is true of the disk. At most one lease."""
    lease = ctx.settings.job_lease
    deadline = time.monotonic() + lease.total_seconds() + POLL_S
    waited: set[int] = set()
    while True:
        with ctx.db.read() as s:
            stale = unreleased(s, model_id, lease)
        if not stale or time.monotonic() > deadline:
            return sorted(waited | set(stale))
        waited |= set(stale)
        heartbeat(ctx.db, ctx.job_id, ctx.number, 0, 0)
        time.sleep(POLL_S)


def _remove_retired_files(ctx: Attempt) -> int:
    """The checkpoint files the linked requests retired, if a crash after their commit left
    any on disk (the accepting process deletes them right after the commit)."""
    with ctx.db.read() as s:
        details = s.scalars(
            select(DeletionEventRow.detail)
            .join(DeletionJobRow, DeletionJobRow.request_id == DeletionEventRow.request_id)
            .where(
                DeletionJobRow.job_id == ctx.job_id,
                DeletionEventRow.state == RequestState.EFFECTIVE,
            )
        )
        shas = sorted({sha for d in details for sha in (d or {}).get("retired", [])})
    store = LocalCheckpointStore(ctx.settings.checkpoints_dir)
    removed = 0
    for sha in shas:
        if store.exists(sha):
            store.delete(sha)
            removed += 1
    return removed
