"""SIGKILL of the process running a retrain (a Celery worker, the embedded server): the job
is taken over once its lease runs out, resumes after its last recorded step, and publishes
one result, the from-scratch bytes."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from sqlalchemy import select

from service.app.broker import broker_send
from service.db.tables import CheckpointRow, JobRow, SequenceRow, SequenceStepRow
from service.jobs.resume import recorded
from service.lineage.deletion import DeletionInput
from service.lineage.publish import sequence_chain
from tests.faults.cluster import LEASE_S, Tally, jobs_settled, wait_until
from tests.faults.conftest import Clone
from tests.faults.servers import free_port, redis_server
from tests.service.jobs.test_recovery import first_slice_record
from tests.service.lineage.test_flow import from_scratch

pytestmark = [pytest.mark.slow, pytest.mark.postgres]
N_STEPS = 3  # SMALL's slices


@dataclasses.dataclass(frozen=True)
class Frozen:
    """The retrain at the moment its process was killed."""

    job_id: int
    steps: tuple[int, ...]
    heartbeat: float  # epoch seconds


def kill_mid_retrain(clone: Clone, kill: Callable[[], None]) -> Frozen:
    """Wait for a retrain with a recorded step and a step still to train, hold its row
    (its heartbeat and next step record block), then ``kill``."""
    service = clone.service
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline:
        with service.db.write() as s:
            job = s.scalars(
                select(JobRow)
                .where(JobRow.kind == "retrain", JobRow.state == "running")
                .order_by(JobRow.id)
                .limit(1)
                .with_for_update()
            ).first()
            steps = tuple(sorted(recorded(job.params))) if job is not None else ()
            if job is not None and job.heartbeat_at and steps and max(steps) < N_STEPS:
                kill()
                return Frozen(job.id, steps, job.heartbeat_at.timestamp())
        time.sleep(0.05)
    pytest.fail(f"no retrain was caught between two steps\n{clone.procs.log_tail()}")


def check_recovered(clone: Clone, frozen: Frozen, tally: Tally, name: str) -> None:
    service = clone.service
    wait_until("every job to finish", jobs_settled(service), clone.procs, service)
    with service.db.read() as s:
        job = s.get(JobRow, frozen.job_id)
        assert job is not None and job.state == "done", (job and job.state, job and job.error)
        assert job.started_at is not None and job.sequence_id is not None
        assert job.from_step is not None
        takeover_s = job.started_at.timestamp() - frozen.heartbeat
        resumed = tuple((job.params or {}).get("resumed", {}).get("steps", ()))
        attempts, seq_id, model_id, from_step = (
            job.attempts,
            job.sequence_id,
            job.model_id,
            job.from_step,
        )
        seq = s.get(SequenceRow, seq_id)
        assert seq is not None
        chain = [c.sha256 for c in sequence_chain(s, seq, N_STEPS)]
        live = set(s.scalars(select(CheckpointRow.sha256).where(CheckpointRow.state == "live")))
        referenced = set(
            s.scalars(
                select(CheckpointRow.sha256).join(
                    SequenceStepRow, SequenceStepRow.checkpoint_id == CheckpointRow.id
                )
            )
        )
    tally.check(service)
    retrained = N_STEPS - from_step + 1 - len(resumed)
    tally.report(
        name,
        lease_s=LEASE_S,
        takeover_after_heartbeat_s=round(takeover_s, 1),
        after_lease_expiry_s=round(takeover_s - LEASE_S, 1),
        attempts=attempts,
        steps_recorded_at_kill=list(frozen.steps),
        steps_resumed=list(resumed),
        steps_retrained=retrained,
    )
    assert tally.lost == [] and tally.twice == []
    assert attempts == 2
    assert LEASE_S <= takeover_s <= LEASE_S + 30, "taken over within 30 s of the lease's end"
    assert resumed == frozen.steps, "the next attempt resumes from every recorded step"
    assert chain == list(from_scratch(service, model_id, seq_id)), "bit for bit from scratch"
    assert live <= referenced, "one published result: no live checkpoint outside a chain"
    on_disk = {p.stem for p in service.settings.checkpoints_dir.rglob("*.safetensors")}
    assert on_disk == live, "no file of the killed attempt is left behind"


def delete_one(clone: Clone, tally: Tally) -> None:
    rid = first_slice_record(clone.service)
    view, _, _ = clone.service.delete(DeletionInput(record_ids=(rid,)), "kill-1")
    assert view["cut"]
    tally.accepted[view["id"]] = (rid,)


def test_sigkill_of_a_celery_worker_mid_retrain(cloned: Clone, tmp_path: Path) -> None:
    with redis_server(tmp_path) as redis:
        cloned.procs.env["CELERY_BROKER_URL"] = redis.url
        broker = dataclasses.replace(cloned.settings, broker_url=redis.url)
        send = broker_send(broker)
        assert send is not None
        cloned.service.send = send
        tally = Tally()
        delete_one(cloned, tally)
        first = cloned.procs.start("worker")
        frozen = kill_mid_retrain(cloned, lambda: cloned.procs.kill(first))
        cloned.procs.start("worker")  # `unlearn worker` alone: no beat, nobody else
        check_recovered(cloned, frozen, tally, "celery-worker-sigkill")


def test_sigkill_of_the_embedded_server_mid_retrain(cloned: Clone) -> None:
    tally = Tally()
    delete_one(cloned, tally)  # no broker: the server's local worker polls the database
    serve = ("serve", "--port", str(free_port()), "--no-progress")
    first = cloned.procs.start(*serve)
    frozen = kill_mid_retrain(cloned, lambda: cloned.procs.kill(first))
    cloned.procs.start(*serve[:1], "--port", str(free_port()), "--no-progress")
    check_recovered(cloned, frozen, tally, "embedded-server-sigkill")
