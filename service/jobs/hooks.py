"""The lifecycle's hooks as the service wires them: a completing request gets its signed
certificate, a job that failed for good is handed to its model's kind."""

from __future__ import annotations

from sqlalchemy.orm import Session

from service.audit import certificates
from service.db.tables import JobRow, ModelRow
from service.jobs.lifecycle import Hooks
from service.kinds import kind_of


def _job_failed(s: Session, job: JobRow) -> None:
    model = s.get(ModelRow, job.model_id)
    if model is not None:
        kind_of(model).on_job_failed(s, job)


HOOKS = Hooks(issue=certificates.issue, job_failed=_job_failed)
