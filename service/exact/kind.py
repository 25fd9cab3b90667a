"""The exact kind (S3T): a deletion cuts sequences and retrains them; the certificate
proves the served checkpoints' lineage is clean.

Each method imports its implementation when called: the registry is imported by commands
that need no model (``unlearn requests list``), and lineage and checkpoint code loads torch.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from sqlalchemy.orm import Session

from service.db.tables import DeletionRequestRow, JobRow, ModelRow
from service.kind import DeletionEffect, Erasure, Hit, Loaded, Report, ServeContext, VerifyContext
from service.states import JobKind, KindName

if TYPE_CHECKING:
    from service.jobs.attempt import Runner


class ExactKind:
    name = KindName.S3T

    def before_erasure(self, s: Session, erasures: Sequence[Erasure]) -> None:
        """Nothing: an S3T model never needs an erased payload again."""

    def on_deletion(self, s: Session, model: ModelRow, hits: Sequence[Hit]) -> list[DeletionEffect]:
        from service.exact.deletion import cut_model

        return cut_model(s, model, hits)

    def status(self, s: Session, model: ModelRow) -> dict[str, Any]:
        from service.exact.status import exact_status

        return exact_status(s, model)

    def request_attempts(self, s: Session, jobs: Sequence[JobRow]) -> list[dict[str, Any]]:
        return []

    def verify(self, s: Session, ctx: VerifyContext, model: ModelRow, report: Report) -> None:
        from service.exact.verify import verify_exact

        verify_exact(s, ctx, model, report)

    def verify_store(self, s: Session, ctx: VerifyContext, report: Report) -> None:
        from service.exact.verify import retired_files

        retired_files(s, ctx, report)

    def certificate_entry(
        self,
        s: Session,
        request: DeletionRequestRow,
        model: ModelRow,
        erased_version: int | None,
    ) -> dict[str, Any]:
        from service.exact.certify import exact_entry

        return exact_entry(s, request, model, erased_version)

    def load(self, model_id: int, ctx: ServeContext) -> Loaded:
        from service.exact.serving import load_exact

        return load_exact(model_id, ctx)

    def runners(self) -> Mapping[str, Runner]:
        from service.jobs.purge import run_purge
        from service.jobs.training import run_retrain, run_train

        return {JobKind.TRAIN: run_train, JobKind.RETRAIN: run_retrain, JobKind.PURGE: run_purge}

    def on_job_failed(self, s: Session, job: JobRow) -> None:
        """A model incident: its served depth stays where the job found it (requests do not
        wait on model work). Shards a failed train job published may be served, and a
        deletion must still cut them, so the model keeps its status; ``unlearn status`` and
        the model's status list the failed job until a new one for its sequence succeeds."""
        from service.audit import log as audit

        audit.append(
            s,
            "model.incident",
            {
                "model": job.model_id,
                "job": job.id,
                "kind": job.kind,
                "sequence": job.sequence_id,
                "error": next(iter((job.error or "").strip().splitlines()[-1:]), None),
            },
        )
