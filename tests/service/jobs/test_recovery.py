"""Recovery without an operator: retrains resume from their last recorded step (bit for bit
the from-scratch chain), the reconciler runs on the configured lease, sweeps the steps of
final jobs and sends what a broker outage left unsent."""

from __future__ import annotations

import datetime as dt
import shutil
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select, update

from models.s3t import S3TTrainer
from service.core import Service
from service.db.base import utcnow
from service.db.tables import JobRow, PlacementRow, RecordRow, SequenceRow
from service.jobs import training
from service.jobs.reconciler import ReconcileLoop
from service.jobs.resume import recorded
from service.jobs.runner import LocalWorker, reconcile, reconcile_round, run_job
from service.lineage.deletion import DeletionInput
from service.lineage.publish import sequence_chain
from service.settings import Settings
from tests.service.conftest import SECRET, SMALL, synthetic_dataset
from tests.service.lineage.test_flow import from_scratch


class Killed(BaseException):
    """Stands for SIGKILL: no ``except Exception`` sees it."""


def _settings(home: Path) -> Settings:
    return Settings(home=home, database_url=f"sqlite:///{home / 'unlearn.db'}", secret_hex=SECRET)


@pytest.fixture(scope="module")
def trained_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A data directory holding one trained model (trained once for the module)."""
    home = tmp_path_factory.mktemp("trained") / "home"
    svc = Service.open(_settings(home))
    svc.upgrade_schema()
    svc.import_dataset("synthetic", synthetic_dataset())
    svc.create_model("synthetic", SMALL)
    LocalWorker(svc.db, svc.settings).drain()
    svc.db.dispose()
    return home


@pytest.fixture
def service(trained_home: Path, tmp_path: Path) -> Iterator[Service]:
    home = tmp_path / "home"
    shutil.copytree(trained_home, home)
    svc = Service.open(_settings(home))
    yield svc
    svc.db.dispose()


def first_slice_record(service: Service, shard: int = 0) -> str:
    """A record in the first slice of the shard's first sequence: erasing it cuts that
    sequence at step 1, so its retrain runs every step."""
    with service.db.read() as s:
        seq = s.scalars(
            select(SequenceRow).where(SequenceRow.shard == shard).order_by(SequenceRow.position)
        ).first()
        assert seq is not None
        rid = s.scalar(
            select(RecordRow.record_id)
            .join(PlacementRow, PlacementRow.record_pk == RecordRow.id)
            .where(PlacementRow.shard == shard, PlacementRow.slice == seq.permutation[0])
            .order_by(RecordRow.record_id)
            .limit(1)
        )
        assert rid is not None
        return rid


def earliest_retrain(service: Service) -> JobRow:
    with service.db.read() as s:
        job = s.scalars(
            select(JobRow)
            .where(JobRow.kind == "retrain", JobRow.state == "queued")
            .order_by(JobRow.from_step, JobRow.id)
        ).first()
        assert job is not None and job.from_step == 1
        return job


def failing_on_step(
    monkeypatch: pytest.MonkeyPatch, fail_at: int, error: BaseException
) -> list[tuple[int, ...]]:
    """``S3TTrainer.train_step`` raising ``error`` on its ``fail_at``-th call; returns the
    prefixes it trained."""
    trained: list[tuple[int, ...]] = []
    real = S3TTrainer.train_step

    def step(self: S3TTrainer, data: Any, source: Any, prefix: Any, *a: Any, **kw: Any) -> str:
        if len(trained) + 1 == fail_at:
            trained.append(("failed",))
            raise error
        trained.append(tuple(prefix))
        return real(self, data, source, prefix, *a, **kw)

    monkeypatch.setattr(S3TTrainer, "train_step", step)
    return trained


def job(service: Service, job_id: int) -> JobRow:
    with service.db.read() as s:
        row = s.get(JobRow, job_id)
        assert row is not None
        return row


def chain_of(service: Service, seq_id: int) -> list[str]:
    with service.db.read() as s:
        seq = s.get(SequenceRow, seq_id)
        assert seq is not None
        return [c.sha256 for c in sequence_chain(s, seq, len(seq.permutation))]


def files(service: Service) -> set[str]:
    return {p.stem for p in service.settings.checkpoints_dir.rglob("*.safetensors")}


def test_a_failed_retrain_keeps_its_steps_and_the_next_attempt_resumes_bit_for_bit(
    service: Service, monkeypatch: pytest.MonkeyPatch
) -> None:
    service.delete(DeletionInput(record_ids=(first_slice_record(service),)))
    retrain = earliest_retrain(service)
    assert retrain.sequence_id is not None
    first = failing_on_step(monkeypatch, 2, RuntimeError("out of memory"))
    assert run_job(service.db, service.settings, retrain.id) == "queued"
    steps = recorded(job(service, retrain.id).params)
    assert list(steps) == [1] and len(first) == 2
    assert steps[1] in files(service), "a failed attempt keeps what the retry resumes from"

    second = failing_on_step(monkeypatch, 0, RuntimeError("never"))
    assert run_job(service.db, service.settings, retrain.id) == "done"
    done = job(service, retrain.id)
    assert (done.state, done.attempts) == ("done", 2)
    assert (done.params or {})["resumed"] == {"attempt": 2, "steps": [1]}
    assert "steps" not in (done.params or {})
    assert [len(p) for p in second] == [2, 3], "step 1 restored, steps 2 and 3 trained"
    chain = chain_of(service, retrain.sequence_id)
    assert chain[0] == steps[1]
    assert chain == list(from_scratch(service, retrain.model_id, retrain.sequence_id))


def test_a_killed_retrain_is_taken_over_on_the_lease_and_resumed(
    service: Service, monkeypatch: pytest.MonkeyPatch
) -> None:
    service.delete(DeletionInput(record_ids=(first_slice_record(service),)))
    retrain = earliest_retrain(service)
    assert retrain.sequence_id is not None
    # A killed process runs no clean-up: its files stay, its job stays ``running``.
    monkeypatch.setattr(training, "discarding_unused", lambda *a: _nothing())
    failing_on_step(monkeypatch, 3, Killed())
    with pytest.raises(Killed):
        run_job(service.db, service.settings, retrain.id)
    monkeypatch.undo()
    killed = job(service, retrain.id)
    assert killed.state == "running" and sorted(recorded(killed.params)) == [1, 2]

    # Within the lease nobody takes it over; past it (30 s by default) the next round does.
    assert run_job(service.db, service.settings, retrain.id) == "skipped"
    assert service.settings.job_lease == dt.timedelta(seconds=30)
    age(service, retrain.id, seconds=31)
    assert reconcile_round(service.db, service.settings, lambda *_: None) == [retrain.id]
    assert run_job(service.db, service.settings, retrain.id) == "done"
    done = job(service, retrain.id)
    assert (done.params or {})["resumed"] == {"attempt": 2, "steps": [1, 2]}
    chain = chain_of(service, retrain.sequence_id)
    assert chain == list(from_scratch(service, retrain.model_id, retrain.sequence_id))


def test_steps_that_no_longer_match_the_data_are_trained_again(
    service: Service, monkeypatch: pytest.MonkeyPatch
) -> None:
    service.delete(DeletionInput(record_ids=(first_slice_record(service),)))
    retrain = earliest_retrain(service)
    failing_on_step(monkeypatch, 2, RuntimeError("boom"))
    assert run_job(service.db, service.settings, retrain.id) == "queued"
    step1 = recorded(job(service, retrain.id).params)[1]
    # Step 2's sha recorded in place of step 1: its manifest names another prefix.
    with service.db.write() as s:
        s.execute(
            update(JobRow).where(JobRow.id == retrain.id).values(params={"steps": {"1": "0" * 64}})
        )
    trained = failing_on_step(monkeypatch, 0, RuntimeError("never"))
    assert run_job(service.db, service.settings, retrain.id) == "done"
    assert len(trained) == 3 and "resumed" not in (job(service, retrain.id).params or {})
    assert retrain.sequence_id is not None
    assert chain_of(service, retrain.sequence_id)[0] == step1  # the same bytes, retrained


def test_the_sweep_removes_the_recorded_steps_of_a_superseded_job(
    service: Service, monkeypatch: pytest.MonkeyPatch
) -> None:
    service.delete(DeletionInput(record_ids=(first_slice_record(service),)))
    retrain = earliest_retrain(service)
    monkeypatch.setattr(training, "discarding_unused", lambda *a: _nothing())
    failing_on_step(monkeypatch, 2, Killed())
    with pytest.raises(Killed):
        run_job(service.db, service.settings, retrain.id)
    monkeypatch.undo()
    step1 = recorded(job(service, retrain.id).params)[1]
    assert step1 in files(service)
    with service.db.write() as s:  # what a later deletion that cuts this sequence does
        s.execute(update(JobRow).where(JobRow.id == retrain.id).values(state="superseded"))
    reconcile_round(service.db, service.settings, lambda *_: None)
    assert step1 not in files(service)
    assert "steps" not in (job(service, retrain.id).params or {})


def test_a_queued_job_is_resent_after_the_lease_unless_its_queue_is_busy(
    service: Service,
) -> None:
    sent: list[int] = []
    service.delete(DeletionInput(record_ids=(first_slice_record(service),)))
    with service.db.write() as s:  # every job sent 40 s ago
        s.execute(update(JobRow).values(enqueued_at=utcnow() - dt.timedelta(seconds=40)))
    queued = [j.id for j in all_jobs(service) if j.state == "queued"]
    lease = dt.timedelta(seconds=30)
    assert reconcile(service.db, lambda i, _: sent.append(i), lease=lease, resend_after=lease)
    assert sorted(sent) == sorted(queued)

    sent.clear()
    retrain = earliest_retrain(service)
    with service.db.write() as s:  # one retrain trains (live), the others wait behind it
        s.execute(update(JobRow).values(enqueued_at=utcnow() - dt.timedelta(seconds=40)))
        s.execute(
            update(JobRow)
            .where(JobRow.id == retrain.id)
            .values(state="running", heartbeat_at=utcnow(), attempts=1)
        )
    reconcile(service.db, lambda i, _: sent.append(i), lease=lease, resend_after=lease)
    kinds = {j.id: j.kind for j in all_jobs(service)}
    assert sent and {kinds[i] for i in sent} == {"purge"}, "the gpu queue is busy"


def test_jobs_the_broker_refused_wait_for_the_reconciler(service: Service) -> None:
    def down(job_id: int, kind: str) -> None:
        raise ConnectionError("broker down")

    service.send = down
    view, _, _ = service.delete(DeletionInput(record_ids=(first_slice_record(service),)))
    assert view["state"] == "effective"
    pending = [j.id for j in all_jobs(service) if j.state == "queued"]
    assert pending and all(j.enqueued_at is None for j in all_jobs(service) if j.id in pending)

    sent: list[int] = []
    loop = ReconcileLoop(service.db, service.settings, lambda i, _: sent.append(i), every_s=60)
    loop.start()  # a round at once, as a worker starting after the outage runs it
    wait(lambda: sorted(sent) == sorted(pending))
    loop.stop(timeout=10)
    assert all(j.enqueued_at is not None for j in all_jobs(service))


def test_a_failing_round_does_not_stop_the_loop(service: Service) -> None:
    tries: list[int] = []

    def down(job_id: int, kind: str) -> None:
        tries.append(job_id)
        raise ConnectionError("broker down")

    service.send = down
    service.delete(DeletionInput(record_ids=(first_slice_record(service),)))
    assert len(tries) == 1  # the accepting call tried once, and answered
    loop = ReconcileLoop(service.db, service.settings, down, every_s=0.05)
    loop.start()
    wait(lambda: len(tries) >= 4)
    loop.stop(timeout=10)
    assert all(j.enqueued_at is None for j in all_jobs(service) if j.state == "queued")


def all_jobs(service: Service) -> list[JobRow]:
    with service.db.read() as s:
        return list(s.scalars(select(JobRow).order_by(JobRow.id)))


def age(service: Service, job_id: int, *, seconds: float) -> None:
    with service.db.write() as s:
        s.execute(
            update(JobRow)
            .where(JobRow.id == job_id)
            .values(heartbeat_at=utcnow() - dt.timedelta(seconds=seconds))
        )


def wait(done: Callable[[], bool], timeout_s: float = 20.0) -> None:
    deadline = utcnow() + dt.timedelta(seconds=timeout_s)
    while not done():
        assert utcnow() < deadline, "timed out"
        threading.Event().wait(0.05)


class _nothing:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: object) -> None:
        return None
