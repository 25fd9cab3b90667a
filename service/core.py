"""The service's operations, shared by the REST API and the operator CLI.

Every operation is one DB transaction; files are touched only after it commits (retired
checkpoint files deleted, new jobs dispatched), so a crash leaves rows the reconciler and
``unlearn verify`` can account for.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

from models.checkpoints import LocalCheckpointStore
from models.data import Dataset
from service.approximate.registry import ApproximateSpec, create_approximate_model
from service.approximate.review import Action, resolve
from service.approximate.store import version_store
from service.audit import log as audit
from service.audit.keys import Signer
from service.db import schema
from service.db.engine import Database
from service.jobs.runner import Send, dispatch_pending
from service.lineage.datasets import DatasetSummary, store_dataset, summarize
from service.lineage.deletion import DeletionInput, accept_deletion
from service.lineage.errors import Unavailable
from service.lineage.query import get_request, request_view
from service.lineage.registry import ModelSpec, create_model
from service.settings import Settings

log = logging.getLogger(__name__)


def _nowhere(job_id: int, kind: str) -> None:
    """Dispatch target when no worker listens: jobs wait in the DB for one to start."""


@dataclass
class Service:
    settings: Settings
    db: Database
    store: LocalCheckpointStore
    signer: Signer
    send: Send = field(default=_nowhere)

    @classmethod
    def open(cls, settings: Settings | None = None, *, send: Send | None = None) -> Service:
        """With a broker configured and no ``send`` given, jobs are sent to Celery."""
        settings = Settings.from_env() if settings is None else settings
        if send is None and settings.broker_url is not None:
            from workers.app import make_celery
            from workers.tasks import celery_send

            send = celery_send(make_celery(settings))
        db = Database.from_url(settings.database_url)
        signer = Signer.from_settings(settings.signing_key, settings.key_file, settings.keyring_dir)
        audit.install(db, signer, settings.sign_every)
        return cls(
            settings=settings,
            db=db,
            signer=signer,
            store=LocalCheckpointStore(settings.checkpoints_dir),
            send=_nowhere if send is None else send,
        )

    def upgrade_schema(self) -> None:
        schema.upgrade(self.db.engine)

    def require_schema(self) -> None:
        if not schema.at_head(self.db.engine):
            raise Unavailable("the database schema is not at head: run `unlearn db upgrade`")

    def import_dataset(self, name: str, dataset: Dataset) -> DatasetSummary:
        with self.db.write() as s:
            row = store_dataset(s, dataset, name, self.settings.secret())
            return summarize(s, row)

    def create_model(self, dataset: str, spec: ModelSpec) -> int:
        with self.db.write() as s:
            model_id = create_model(s, dataset, spec, self.settings.secret()).id
        self.dispatch()
        return model_id

    def create_approximate_model(self, dataset: str, spec: ApproximateSpec) -> int:
        with self.db.write() as s:
            model_id = create_approximate_model(s, dataset, spec).id
        self.dispatch()
        return model_id

    def resolve(
        self,
        public_id: str,
        action: Action,
        method: str | None = None,
        overrides: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        """An operator's decision on a request in ``needs_review``; returns its view."""
        with self.db.write() as s:
            req = get_request(s, public_id)
            done = resolve(s, req, action, method, overrides)
            view = request_view(s, req)
        store = version_store(self.settings.checkpoints_dir)
        for sha in done.delete:
            store.delete(sha)
        self.dispatch()
        return view

    def delete(
        self, req: DeletionInput, idempotency_key: str | None = None
    ) -> tuple[dict[str, Any], bool, tuple[str, ...]]:
        """Accept a deletion; returns (request view, replayed?, record ids not found)."""
        with self.db.write() as s:
            accepted = accept_deletion(
                s, req, secret=self.settings.secret(), idempotency_key=idempotency_key
            )
            view = request_view(s, accepted.request)
        for sha in accepted.retired:
            self.store.delete(sha)
        self.dispatch()
        return view, accepted.replayed, accepted.not_found

    def dispatch(self) -> list[int]:
        """Tell workers about new jobs. Runs after a commit: a broker outage is logged, not
        raised (the request is already accepted; the reconciler sends the jobs later)."""
        try:
            return dispatch_pending(self.db, self.send)
        except Exception:
            log.exception("could not dispatch jobs now; the reconciler will retry")
            return []
