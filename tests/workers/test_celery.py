"""Real ``celery worker`` processes on PostgreSQL and Redis: the deletion flow end to end, and
a worker killed in the middle of a retrain."""

from __future__ import annotations

import contextlib
import itertools
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select, text

from models.determinism import configure_determinism
from service.core import Service
from service.db.tables import (
    CheckpointRow,
    DeletionRequestRow,
    JobRow,
    ModelRow,
    RoutingRow,
    SequenceRow,
    SequenceStepRow,
)
from service.jobs.runner import LocalWorker
from service.lineage.deletion import DeletionInput
from service.lineage.publish import sequence_chain
from service.settings import Settings
from service.usecases.verify import verify
from tests.redis_db import flushed_redis
from tests.service.conftest import (
    SECRET,
    SMALL,
    pg_url,  # noqa: F401 (a fixture)
    synthetic_dataset,
)
from tests.service.lineage.test_flow import from_scratch
from workers.app import DEFAULT_QUEUE, RECONCILE, make_celery
from workers.tasks import celery_send

pytestmark = pytest.mark.postgres

ROOT = Path(__file__).resolve().parents[2]
TIMEOUT_S = 600.0
WORKER = (
    *(sys.executable, "-m", "celery", "-A", "workers.app", "worker"),
    *("-Q", "gpu,erasure,default", "-c", "1", "--pool", "prefork"),
    *("--without-gossip", "--without-mingle", "--without-heartbeat", "--loglevel", "INFO"),
)
_redis_dbs = itertools.count(8)


@pytest.fixture(scope="module", autouse=True)
def _determinism() -> None:
    configure_determinism()  # from_scratch trains here and must match the workers' bytes


@pytest.fixture
def broker_url() -> Iterator[str]:
    """A Redis database of the test's own (8..15), flushed before and after."""
    db = next(_redis_dbs)
    assert db < 16, "more broker tests than spare Redis databases"
    with flushed_redis(db) as url:
        yield url


@pytest.fixture
def settings(tmp_path: Path, broker_url: str, pg_url: str) -> Settings:  # noqa: F811
    return Settings(
        home=tmp_path / "home", database_url=pg_url, broker_url=broker_url, secret_hex=SECRET
    )


@pytest.fixture
def app(settings: Settings) -> Iterator[Any]:
    app = make_celery(settings)
    yield app
    app.close()


@pytest.fixture
def service(settings: Settings, app: Any) -> Iterator[Service]:
    svc = Service.open(settings, send=celery_send(app))
    svc.upgrade_schema()
    yield svc
    svc.db.dispose()


class Workers:
    """``celery worker`` subprocesses, each in its own process group (the prefork pool's
    children included), configured only through the environment like a deployment."""

    def __init__(self, settings: Settings, logs: Path) -> None:
        self.env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith(("CELERY_", "UNLEARN_")) and k != "DATABASE_URL"
        }
        assert settings.broker_url is not None
        self.env |= {
            "DATABASE_URL": settings.database_url,
            "CELERY_BROKER_URL": settings.broker_url,
            "UNLEARN_HOME": str(settings.home),
            "UNLEARN_SECRET": SECRET,
            "PYTHONPATH": str(ROOT),
        }
        self.logs = logs
        self.procs: list[subprocess.Popen[bytes]] = []

    def start(self) -> subprocess.Popen[bytes]:
        n = len(self.procs)
        with (self.logs / f"worker{n}.log").open("wb") as log:
            proc = subprocess.Popen(
                [*WORKER, "-n", f"w{n}@%h"],
                cwd=ROOT,
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self.procs.append(proc)
        return proc

    def kill(self, proc: subprocess.Popen[bytes]) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(30)

    def check_alive(self, proc: subprocess.Popen[bytes]) -> None:
        if proc.poll() is not None:
            pytest.fail(f"worker exited with {proc.returncode}\n{self.log_tail()}")

    def log_tail(self, n: int = 60) -> str:
        out = []
        for log in sorted(self.logs.glob("worker*.log")):
            lines = log.read_text(errors="replace").splitlines()[-n:]
            out.append(f"--- {log.name}\n" + "\n".join(lines))
        return "\n".join(out)


@pytest.fixture
def workers(settings: Settings, tmp_path: Path) -> Iterator[Workers]:
    pool = Workers(settings, tmp_path)
    try:
        yield pool
    finally:
        for proc in pool.procs:
            pool.kill(proc)


def wait_until(
    what: str,
    done: Callable[[], bool],
    service: Service,
    workers: Workers,
    proc: subprocess.Popen[bytes],
) -> None:
    deadline = time.monotonic() + TIMEOUT_S
    while not done():
        workers.check_alive(proc)
        with service.db.read() as s:
            failed = s.execute(select(JobRow.id, JobRow.error).where(JobRow.state == "failed"))
            for job_id, error in failed:
                pytest.fail(f"job {job_id} failed:\n{error}\n{workers.log_tail()}")
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}\n{workers.log_tail()}")
        time.sleep(0.2)


def model_ready(service: Service, model_id: int) -> Callable[[], bool]:
    def check() -> bool:
        with service.db.read() as s:
            return s.scalar(select(ModelRow.status).where(ModelRow.id == model_id)) == "ready"

    return check


def request_state(service: Service, public_id: str) -> str | None:
    with service.db.read() as s:
        return s.scalar(
            select(DeletionRequestRow.state).where(DeletionRequestRow.public_id == public_id)
        )


def depths(service: Service) -> dict[int, int]:
    with service.db.read() as s:
        return {r.shard: r.depth for r in s.scalars(select(RoutingRow))}


def wait_erased_then_rebuilt(
    service: Service, public_id: str, workers: Workers, proc: subprocess.Popen[bytes]
) -> None:
    """The request completes first (its erasure); the model's retrains finish after."""
    wait_until(
        "the deletion to complete",
        lambda: request_state(service, public_id) == "completed",
        service,
        workers,
        proc,
    )
    wait_until("the retrains to finish", lambda: full_depth(service), service, workers, proc)


def full_depth(service: Service) -> bool:
    """The model's retrains (not the request's erasure) are done: no job is open and every
    shard serves full depth again."""
    with service.db.read() as s:
        open_jobs = s.scalars(select(JobRow.id).where(JobRow.state.in_(("queued", "running"))))
        if list(open_jobs):
            return False
    return set(depths(service).values()) == {3}


def test_worker_trains_then_retrains_a_deletion_to_from_scratch_bytes(
    service: Service, app: Any, workers: Workers
) -> None:
    # What the shards served when each job was handed to the broker: the state a deletion
    # leaves behind, before any worker could have retrained.
    routed: list[dict[int, int]] = []
    purges: list[int] = []
    to_celery = service.send

    def send(job_id: int, kind: str) -> None:
        if kind == "purge":  # the erasure queue's cache purge, besides the retrains
            purges.append(job_id)
        else:
            routed.append(depths(service))
        to_celery(job_id, kind)

    service.send = send
    service.import_dataset("synthetic", synthetic_dataset())
    proc = workers.start()
    model_id = service.create_model("synthetic", SMALL)
    wait_until("the model to train", model_ready(service, model_id), service, workers, proc)
    with service.db.read() as s:
        report = verify(s, service.store)
        assert report.ok, report.violations
    assert set(depths(service).values()) == {3}

    routed.clear()
    view, _, _ = service.delete(DeletionInput(subject_id="subject-1"), "key-1")
    assert view["state"] == "effective" and view["n_records"] == 3
    assert view["cut"], "a trained shard held the subject: something must be cut"
    assert len(routed) == len({c["job"] for c in view["cut"]})
    assert len(purges) == 1
    assert all(routed[0][c["shard"]] < 3 for c in view["cut"])

    wait_erased_then_rebuilt(service, view["id"], workers, proc)
    assert set(depths(service).values()) == {3}
    with service.db.read() as s:
        report = verify(s, service.store)
        assert report.ok, report.violations
        retrains = s.scalars(select(JobRow).where(JobRow.kind == "retrain")).all()
        assert {(j.state, j.attempts) for j in retrains} == {("done", 1)}
        seqs = {q.id: q for q in s.scalars(select(SequenceRow))}
        chains = {
            j.sequence_id: [c.sha256 for c in sequence_chain(s, seqs[j.sequence_id], 3)]
            for j in retrains
            if j.sequence_id is not None
        }
    assert len(chains) == len(view["cut"])
    for seq_id, chain in chains.items():
        assert list(from_scratch(service, model_id, seq_id)) == chain


def test_a_killed_worker_retrain_is_taken_over_and_published_once(
    service: Service, app: Any, workers: Workers
) -> None:
    to_celery = service.send
    service.send = lambda job_id, kind: None  # trained here: the workers only see retrains
    service.import_dataset("synthetic", synthetic_dataset())
    model_id = service.create_model("synthetic", SMALL)
    LocalWorker(service.db, service.settings).drain()
    steps_before = sequence_steps(service)
    service.send = to_celery
    view, _, _ = service.delete(DeletionInput(subject_id="subject-1"))
    assert view["cut"]

    # Hold the model row: a retrain claims its job and trains, then blocks where it publishes
    # (under the model lock), which is where a crash loses the most work.
    with service.db.engine.connect() as lock:
        lock.execute(
            text("SELECT id FROM models WHERE id = :id FOR NO KEY UPDATE"), {"id": model_id}
        )
        first = workers.start()
        wait_until(
            "a retrain to block on publishing",
            lambda: publish_blocked(service),
            service,
            workers,
            first,
        )
        workers.kill(first)
        lock.rollback()
    with service.db.read() as s:
        running = s.scalars(select(JobRow).where(JobRow.state == "running")).all()
        assert [(j.kind, j.attempts) for j in running] == [("retrain", 1)]
        killed = running[0].id

    time.sleep(1.5)  # past the 1 s lease the reconciler is given below
    second = workers.start()
    app.send_task(RECONCILE, kwargs={"lease_s": 1.0}, queue=DEFAULT_QUEUE)
    wait_erased_then_rebuilt(service, view["id"], workers, second)
    with service.db.read() as s:
        job = s.get(JobRow, killed)
        assert job is not None and (job.state, job.attempts) == ("done", 2)
        report = verify(s, service.store)
        assert report.ok, report.violations
        referenced = set(
            s.scalars(
                select(CheckpointRow.sha256).join(
                    SequenceStepRow, SequenceStepRow.checkpoint_id == CheckpointRow.id
                )
            )
        )
        live = set(s.scalars(select(CheckpointRow.sha256).where(CheckpointRow.state == "live")))
    assert sequence_steps(service) == steps_before
    assert live == referenced, "a checkpoint was published that no sequence step uses"
    files = {p.name for p in service.settings.checkpoints_dir.rglob("*") if p.is_file()}
    assert files == {f"{sha}.safetensors" for sha in live}


def sequence_steps(service: Service) -> dict[int, list[int]]:
    with service.db.read() as s:
        steps: dict[int, list[int]] = {}
        for seq_id, step in s.execute(
            select(SequenceStepRow.sequence_id, SequenceStepRow.step).order_by(
                SequenceStepRow.sequence_id, SequenceStepRow.step
            )
        ):
            steps.setdefault(seq_id, []).append(step)
        return steps


def publish_blocked(service: Service) -> bool:
    """A retrain is running and some session of this database waits on a row lock."""
    with service.db.read() as s:
        if not s.scalars(select(JobRow.id).where(JobRow.state == "running")).first():
            return False
        waiting = s.scalar(
            text(
                "SELECT count(*) FROM pg_stat_activity"
                " WHERE datname = current_database() AND wait_event_type = 'Lock'"
            )
        )
        return bool(waiting)


def test_http_flow_with_a_celery_worker(
    service: Service, workers: Workers, settings: Settings
) -> None:
    """import, train, predict, delete over HTTP; the immediate prediction is depth-reduced."""
    from sqlalchemy import create_engine

    from tests.service.api.conftest import jsonl
    from tests.service.api.test_api import MODEL
    from tests.service.clients import api_client

    proc = workers.start()
    with api_client(service, run_worker=True) as client:
        files = {"file": ("s.jsonl", jsonl(synthetic_dataset()), "application/x-ndjson")}
        assert client.post("/v1/datasets", data={"name": "synthetic"}, files=files).is_success
        model_id = client.post("/v1/models", json=MODEL).json()["id"]
        wait_until("the model to train", model_ready(service, model_id), service, workers, proc)
        texts = {"inputs": ["the cast was warm", "the ending was bland"]}
        before = client.post(f"/v1/models/{model_id}/predict", json=texts).json()
        assert [r["depth"] for r in before["routes"]] == [3, 3]

        blocker = create_engine(settings.database_url)
        with blocker.connect() as conn:
            r = client.post("/v1/deletions", json={"subject_id": "subject-2"})
            assert r.status_code == 202 and r.json()["state"] == "effective"
            # Hold the model row so the worker cannot publish yet; predictions do not lock.
            conn.execute(text(f"SELECT id FROM models WHERE id = {model_id} FOR UPDATE"))
            now = client.post(f"/v1/models/{model_id}/predict", json=texts).json()
            cut = {c["shard"] for c in r.json()["cut"]}
            assert now["routing_version"] > before["routing_version"]
            assert all(rt["depth"] < 3 for rt in now["routes"] if rt["shard"] in cut)
            with service.db.read() as s:
                assert verify(s, service.store).ok
            conn.rollback()
        blocker.dispose()
        wait_erased_then_rebuilt(service, r.json()["id"], workers, proc)
        after = client.post(f"/v1/models/{model_id}/predict", json=texts).json()
        assert [rt["depth"] for rt in after["routes"]] == [3, 3]
    with service.db.read() as s:
        retrains = s.scalars(select(JobRow).where(JobRow.kind == "retrain")).all()
        seqs = {q.id: q for q in s.scalars(select(SequenceRow))}
        chains = {
            j.sequence_id: [c.sha256 for c in sequence_chain(s, seqs[j.sequence_id], 3)]
            for j in retrains
            if j.sequence_id is not None
        }
    assert chains
    for seq_id, chain in chains.items():
        assert list(from_scratch(service, model_id, seq_id)) == chain
