"""The approximate kind: trained on all its data at once; a deletion runs the model's
unlearning method and publishes a new version (or asks for review when flagged).

Weights, serving and jobs load torch: those methods import their implementation when
called, so the registry stays light for commands that need no model."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from sqlalchemy.orm import Session

from service.approximate.deletion import quarantine, queue_unlearning
from service.approximate.status import approximate_status
from service.approximate.versions import attempts_of
from service.audit import log as audit
from service.db.tables import DeletionRequestRow, JobRow, ModelRow
from service.kind import DeletionEffect, Erasure, Hit, Loaded, Report, ServeContext, VerifyContext
from service.states import JobKind, KindName, ModelState

if TYPE_CHECKING:
    from service.jobs.attempt import Runner


class ApproximateKind:
    name = KindName.APPROXIMATE

    def before_erasure(self, s: Session, erasures: Sequence[Erasure]) -> None:
        """Quarantine the payloads an approximate model must still unlearn."""
        quarantine(s, erasures)

    def on_deletion(self, s: Session, model: ModelRow, hits: Sequence[Hit]) -> list[DeletionEffect]:
        """One unlearning job per request (each is unlearned, reviewed and certified alone)."""
        return [
            DeletionEffect(jobs={queue_unlearning(s, model, hit.request)}, unlearning=True)
            for hit in hits
        ]

    def status(self, s: Session, model: ModelRow) -> dict[str, Any]:
        return approximate_status(s, model)

    def request_attempts(self, s: Session, jobs: Sequence[JobRow]) -> list[dict[str, Any]]:
        return attempts_of(s, [j for j in jobs if j.kind == JobKind.UNLEARN])

    def verify(self, s: Session, ctx: VerifyContext, model: ModelRow, report: Report) -> None:
        from service.approximate.store import version_store
        from service.approximate.verify import approximate_violations

        report.violations += approximate_violations(s, version_store(ctx.store.root), model)

    def verify_store(self, s: Session, ctx: VerifyContext, report: Report) -> None:
        from service.approximate.verify import quarantine_violations

        report.violations += quarantine_violations(s)

    def certificate_entry(
        self,
        s: Session,
        request: DeletionRequestRow,
        model: ModelRow,
        erased_version: int | None,
    ) -> dict[str, Any]:
        from service.approximate.certify import approximate_entry

        return approximate_entry(s, request, model, erased_version)

    def load(self, model_id: int, ctx: ServeContext) -> Loaded:
        from service.approximate.serving import load_approximate

        return load_approximate(model_id, ctx)

    def runners(self) -> Mapping[str, Runner]:
        from service.approximate.jobs import run_fit, run_unlearn

        return {JobKind.FIT: run_fit, JobKind.UNLEARN: run_unlearn}

    def on_job_failed(self, s: Session, job: JobRow) -> None:
        """A model whose ``fit`` failed for good has nothing to serve, ever: say so."""
        if job.kind != JobKind.FIT:
            return
        model = s.get(ModelRow, job.model_id)
        assert model is not None
        model.status = ModelState.FAILED
        lines = (job.error or "").strip().splitlines()
        model.error = lines[-1] if lines else "fit failed"
        audit.append(s, "model.failed", {"model": model.id, "job": job.id})
