"""Resuming a retrain from its last finished step.

Each step an attempt finishes is recorded on its job row as soon as its checkpoint file is
written (``params["steps"]``: step number -> sha256, under the job's ownership check). The
next attempt of the same job restores the recorded steps whose manifests still match what
it would train now (same prefix of the same shard, same config and backbone, same parent,
and the records digest of the current snapshot's records in that prefix) instead of
training them again. A step's checkpoint is a pure function of exactly those
(``models.s3t``), so the resumed chain is the one an uninterrupted attempt trains, bit for
bit (``UNLEARN_CHECK_RETRAIN`` proves it against training from scratch).

The recorded files are kept while the job may run again (a failed or killed attempt leaves
them for the next) and removed once the job is final, by whoever sees that first: the
attempt's own clean-up, or :func:`discard_final_steps` (the reconciler's sweep: a killed
process never cleans up). A superseded job's steps read records erased since, so they must
not outlive it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Collection, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from sqlalchemy import String, cast, select
from sqlalchemy.orm import Session

from models.data.records import records_digest
from service.db.engine import Database
from service.db.tables import CheckpointRow, JobRow
from service.jobs.lifecycle import owned
from service.states import FINAL_JOB_STATES, CheckpointState, JobKind

if TYPE_CHECKING:  # torch: the reconciler's sweep below runs without it
    from models.checkpoints import (
        CheckpointManifest,
        CheckpointStore,
        LocalCheckpointStore,
        Tensors,
    )
    from models.training import Example

log = logging.getLogger(__name__)
STEPS = "steps"
RESUMED = "resumed"


def recorded(params: Mapping[str, Any] | None) -> dict[int, str]:
    """The steps a job's attempts recorded: step number -> checkpoint sha256."""
    steps = (params or {}).get(STEPS) or {}
    return {int(k): str(v) for k, v in steps.items()}


def without_steps(params: Mapping[str, Any] | None) -> dict[str, Any]:
    return {k: v for k, v in (params or {}).items() if k != STEPS}


def record_step(
    db: Database, job_id: int, attempt: int, manifest: CheckpointManifest, sha: str
) -> None:
    """Note that ``attempt`` finished step ``manifest.step`` as checkpoint ``sha`` (its file
    is written); ``LostJob`` if the attempt no longer owns the job."""
    with db.write() as s:
        job = owned(s, job_id, attempt)
        steps = {str(k): v for k, v in recorded(job.params).items()}
        steps[str(manifest.step)] = sha
        job.params = {**(job.params or {}), STEPS: steps}


def note_resumed(db: Database, job_id: int, attempt: int, steps: Sequence[int]) -> None:
    """Say on the job row which steps ``attempt`` restored instead of training."""
    with db.write() as s:
        job = owned(s, job_id, attempt)
        job.params = {**(job.params or {}), RESUMED: {"attempt": attempt, "steps": list(steps)}}


def resumable(
    store: CheckpointStore,
    steps: Mapping[int, str],
    base: Sequence[str],
    *,
    sequence: Sequence[int],
    examples: Callable[[tuple[int, ...]], list[Example]],
    shard: int,
    config_hash: str,
    backbone_sha256: str,
) -> tuple[str, ...]:
    """``base`` (the published steps ``1..len(base)``) extended by the recorded steps that
    follow it without a gap and still match what training them now would take."""
    from models.checkpoints import CheckpointError

    chain = list(base)
    seq = tuple(sequence)
    for k in range(len(chain) + 1, len(seq) + 1):
        sha = steps.get(k)
        if sha is None or not store.exists(sha):
            break
        try:
            manifest = store.get(sha)[1]
        except CheckpointError:
            log.warning("recorded step %s (%s) is unreadable; training it again", k, sha)
            break
        prefix = seq[:k]
        expected = (
            "s3t-step",
            config_hash,
            backbone_sha256,
            shard,
            k,
            prefix,
            records_digest(e.record_id for e in examples(prefix)),
            chain[-1] if chain else None,
        )
        found = (
            manifest.kind,
            manifest.config_hash,
            manifest.backbone_sha256,
            manifest.shard,
            manifest.step,
            manifest.slice_ids,
            manifest.records_digest,
            manifest.parent,
        )
        if found != expected:
            break
        chain.append(sha)
    return tuple(chain)


class RecordingStore:
    """A checkpoint store that remembers what this job wrote (or adopted from an earlier
    attempt), so the files of a job that lost its claim (or checkpoints tainted on arrival)
    can be removed; ``on_put`` hears of each file once it is written."""

    def __init__(
        self,
        inner: LocalCheckpointStore,
        on_put: Callable[[CheckpointManifest, str], None] | None = None,
    ) -> None:
        self.inner, self.on_put = inner, on_put
        self.written: set[str] = set()

    def put(self, tensors: Tensors, manifest: CheckpointManifest) -> str:
        sha = self.inner.put(tensors, manifest)
        self.written.add(sha)
        if self.on_put is not None:
            self.on_put(manifest, sha)
        return sha

    def get(self, sha256: str) -> tuple[Tensors, CheckpointManifest]:
        return self.inner.get(sha256)

    def exists(self, sha256: str) -> bool:
        return self.inner.exists(sha256)

    def delete(self, sha256: str) -> None:
        self.inner.delete(sha256)


def kept(s: Session, shas: Collection[str]) -> set[str]:
    """The checkpoints among ``shas`` that must stay on disk: published by a live
    checkpoint row, or recorded by a retrain job that may still run (its next attempt
    resumes from them)."""
    wanted = list(shas)
    live = set(
        s.scalars(
            select(CheckpointRow.sha256).where(
                CheckpointRow.sha256.in_(wanted), CheckpointRow.state == CheckpointState.LIVE
            )
        )
    )
    open_jobs = s.scalars(
        select(JobRow.params).where(
            JobRow.kind == JobKind.RETRAIN, JobRow.state.not_in(FINAL_JOB_STATES)
        )
    )
    pending = {sha for params in open_jobs for sha in recorded(params).values()}
    return live | (pending & set(wanted))


def discard_final_steps(db: Database, delete: Callable[[str], None]) -> int:
    """Remove the recorded step files of final retrain jobs that nothing keeps, and forget
    them on the rows; returns how many files were deleted."""
    with db.read() as s:
        rows = list(
            s.execute(
                select(JobRow.id, JobRow.params).where(
                    JobRow.kind == JobKind.RETRAIN,
                    JobRow.state.in_(FINAL_JOB_STATES),
                    cast(JobRow.params, String).like(f'%"{STEPS}"%'),
                )
            )
        )
        steps = {job_id: recorded(params) for job_id, params in rows}
        shas = {sha for recorded_ in steps.values() for sha in recorded_.values()}
        keep = kept(s, shas) if shas else set()
    gone = 0
    for sha in sorted(shas - keep):
        delete(sha)
        gone += 1
    if steps:
        with db.write() as s:
            for job_id in steps:
                job = s.get(JobRow, job_id)
                if job is not None:
                    job.params = without_steps(job.params)
        log.info("discarded %s recorded step file(s) of %s final job(s)", gone, len(steps))
    return gone
