"""Deletions that hit a sequence before its rebuild starts share one retrain job."""

from __future__ import annotations

from sqlalchemy import select

from service.core import Service
from service.db.tables import JobRow, SequenceRow
from service.jobs.create import retrain_job
from service.lineage.registry import get_model
from service.states import JobKind, JobState
from tests.service.lineage.test_flow import trained


def _open(service: Service, seq_id: int) -> list[tuple[int, int | None, str]]:
    with service.db.read() as s:
        return [
            (j.id, j.from_step, j.state)
            for j in s.scalars(
                select(JobRow)
                .where(JobRow.sequence_id == seq_id, JobRow.kind == JobKind.RETRAIN)
                .order_by(JobRow.id)
            )
        ]


def test_an_untouched_queued_retrain_is_kept_a_started_or_later_one_is_replaced(
    service: Service,
) -> None:
    model_id = trained(service)
    with service.db.read() as s:
        seq_id = s.scalars(select(SequenceRow.id).where(SequenceRow.model_id == model_id)).first()
    assert seq_id is not None

    def retrain(from_step: int) -> int:
        with service.db.write() as s:
            model = get_model(s, model_id, lock=True)
            model.routing_version += 1  # every deletion bumps it
            return retrain_job(s, model, seq_id, from_step)

    first = retrain(2)
    assert retrain(3) == first  # it rebuilds from step 2: steps 3.. are covered
    assert retrain(2) == first
    deeper = retrain(1)  # a deeper cut needs a job from step 1
    assert deeper != first
    jobs = {j: (step, state) for j, step, state in _open(service, seq_id)}
    assert jobs[first] == (2, JobState.SUPERSEDED) and jobs[deeper] == (1, JobState.QUEUED)

    with service.db.write() as s:
        job = s.get(JobRow, deeper)
        assert job is not None
        job.attempts = 1  # an attempt started (and died): its recorded work read old records
    again = retrain(1)
    assert again != deeper
    states = {j: state for j, _, state in _open(service, seq_id)}
    assert states[deeper] == JobState.SUPERSEDED and states[again] == JobState.QUEUED
    with service.db.write() as s:
        job = s.get(JobRow, again)
        assert job is not None
        job.params = {"steps": {"1": "ab" * 32}}
    assert retrain(1) != again  # recorded steps: replaced too
