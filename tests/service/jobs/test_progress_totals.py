"""A job's progress total is fixed when it starts, ``done`` never passes it, and the total is
exactly what the job's work reports (a real train and retrain on the synthetic data), with
plain progress lines in the worker's log."""

from __future__ import annotations

import logging
import re
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import func, select

from service.core import Service
from service.db.engine import Database
from service.db.tables import JobRow, PlacementRow, SequenceRow
from service.jobs import lifecycle
from service.jobs import progress as job_progress
from service.jobs.progress import JobProgress
from service.jobs.runner import next_queued, run_job
from service.lineage.deletion import DeletionInput
from service.settings import Settings
from tests.service.conftest import SECRET, SMALL, synthetic_dataset
from tests.service.jobs.test_recovery import first_slice_record

Beat = tuple[int, int, int]  # job id, done, total


@pytest.fixture
def beats(monkeypatch: pytest.MonkeyPatch) -> list[Beat]:
    """Every heartbeat written (it still reaches the row)."""
    seen: list[Beat] = []
    real = lifecycle.heartbeat

    def spy(db: Database, job_id: int, attempt: int, done: int, total: int) -> None:
        seen.append((job_id, done, total))
        real(db, job_id, attempt, done, total)

    monkeypatch.setattr(job_progress, "heartbeat", spy)
    return seen


@pytest.fixture
def service(tmp_path: Path) -> Iterator[Service]:
    home = tmp_path / "home"
    settings = Settings(
        home=home,
        database_url=f"sqlite:///{home / 'unlearn.db'}",
        secret_hex=SECRET,
        check_retrain=True,  # the retrain's from-scratch check counts in its total too
    )
    svc = Service.open(settings)
    svc.upgrade_schema()
    svc.import_dataset("synthetic", synthetic_dataset(48))
    yield svc
    svc.db.dispose()


def _reported(lines: list[str], job_id: int) -> int:
    """Units the job's tasks reported done, from their last line."""
    done = re.compile(rf"^job {job_id} .*: done, ([\d,]+) \w+ in ")
    return sum(int(m[1].replace(",", "")) for line in lines if (m := done.match(line)))


def _planned_by_hand(service: Service, model_id: int) -> int:
    """Every record cached once, and each sequence's step k trains (1 epoch) the records of
    its first k slices."""
    with service.db.read() as s:
        counts = s.execute(
            select(PlacementRow.shard, PlacementRow.slice, func.count())
            .where(PlacementRow.model_id == model_id)
            .group_by(PlacementRow.shard, PlacementRow.slice)
        )
        size = {(shard, slice_): n for shard, slice_, n in counts}
        perms = [
            (q.shard, q.permutation)
            for q in s.scalars(select(SequenceRow).where(SequenceRow.model_id == model_id))
        ]
    assert len(perms) == SMALL.n_shards * SMALL.budget
    trained = sum(size[shard, x] for shard, p in perms for k in range(len(p)) for x in p[: k + 1])
    return sum(size.values()) + trained


def _run_and_check(
    service: Service, job_id: int, beats: list[Beat], caplog: pytest.LogCaptureFixture
) -> tuple[int, list[str]]:
    caplog.clear()
    start = len(beats)
    assert run_job(service.db, service.settings, job_id) == "done"
    mine = [(d, t) for j, d, t in beats[start:] if j == job_id]
    total = mine[0][1]
    assert total > 0 and mine[0][0] == 0, "the total is on the row before any work"
    assert all(t == total for _, t in mine), "the total never changes"
    dones = [d for d, _ in mine]
    assert dones == sorted(dones) and dones[-1] == total, "done grows, up to the total"
    lines = [r.getMessage() for r in caplog.records if r.name == "unlearn.progress"]
    assert _reported(lines, job_id) == total, "the plan is exactly the work reported"
    with service.db.read() as s:
        row = s.get(JobRow, job_id)
        assert row is not None
        assert (row.progress_done, row.progress_total) == (total, total)
    return total, lines


def test_train_and_retrain_totals_are_fixed_at_start_and_lines_reach_the_log(
    service: Service, beats: list[Beat], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="unlearn.progress")
    model_id = service.create_model("synthetic", SMALL)
    with service.db.read() as s:
        train_job = next_queued(s, model_id=model_id)
    assert train_job is not None
    total, lines = _run_and_check(service, train_job, beats, caplog)
    assert total == _planned_by_hand(service, model_id)
    label = f"job {train_job} train model {model_id}"
    for shard in range(SMALL.n_shards):
        assert f"{label}: caching shard {shard}: started, " in "\n".join(lines)
    assert any(re.match(rf"{label}: shard 1 sequence \(.*\): done, ", x) for x in lines)

    service.delete(DeletionInput(record_ids=(first_slice_record(service),)))
    shutil.rmtree(service.settings.caches_dir)  # rebuilt: its records count as reported
    with service.db.read() as s:
        retrain = s.scalars(
            select(JobRow.id).where(JobRow.kind == "retrain", JobRow.from_step == 1)
        ).first()
    assert retrain is not None
    retrain_total, lines = _run_and_check(service, retrain, beats, caplog)
    assert retrain_total > 0
    assert any(f"job {retrain} retrain model {model_id} shard 0 from step 1" in x for x in lines)


def test_stages_cap_done_and_fill_what_was_not_reported(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    seen: list[tuple[int, int]] = []
    monkeypatch.setattr(
        job_progress, "heartbeat", lambda db, j, a, done, total: seen.append((done, total))
    )
    tracker = JobProgress(None, 1, 1, total=100)  # type: ignore[arg-type]
    with tracker.stage(30), tracker.task("cache", 30) as advance:
        advance(10)
        advance(50)  # more than planned: held at the stage's end
        assert tracker.done == 30
    with tracker.stage(50):
        tracker.add(5)  # e.g. resumed steps
    assert tracker.done == 80, "a stage ends at its planned end"
    with tracker.task("rest", 1000) as advance:
        advance(1000)
    assert tracker.done == 100 and tracker.total == 100, "a task never grows the total"
    assert {t for _, t in seen} == {100}

    first = JobProgress(None, 2, 1)  # type: ignore[arg-type]
    with first.task("unlearn", 7) as advance:
        advance(3)
    with first.task("again", 9) as advance:
        advance(9)
    assert (first.done, first.total) == (7, 7), "without a plan, the first task fixes it"
