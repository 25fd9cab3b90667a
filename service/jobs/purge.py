"""The ``purge`` job: an S3T model's activation caches lose the rows of erased records.

Accepting a deletion queues one per affected model (``service.jobs.create.purge_job``), on
the erasure queue, so it runs within seconds of the commit even while a training holds the
training queue for hours. It reads the model's erased set when it runs, so one job serves
every request linked to it. Jobs that build a cache from a snapshot taken before a later
erasure drop those rows themselves once the cache is built (``service.jobs.training``).
"""

from __future__ import annotations

from service.audit import log as audit
from service.db.tables import JobRow
from service.jobs.attempt import Attempt
from service.jobs.shards import cache_dir, erased_ids, purge_cache


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
    with ctx.db.write() as s:
        job = ctx.owned(s)
        job.evidence = {
            "cache_rows_removed": sum(removed.values()),
            "by_shard": {str(k): v for k, v in removed.items() if v},
        }
        audit.append(
            s,
            "cache.purged",
            {"model": model_id, "job": job.id, "n_records": sum(removed.values())},
        )
        ctx.finish(s, job)
