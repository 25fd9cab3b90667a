"""The application service: every operation the REST API and the operator CLI share.

Every write is one DB transaction; files are touched only after it commits (retired
checkpoint files deleted, new jobs dispatched), so a crash leaves rows the reconciler and
``unlearn verify`` can account for. Reads return the typed views of :mod:`service.views`.

The service knows no transport: the composition roots (the CLI's ``open_service``, the API's
``create_app``, the worker's ``worker_service``) pass in the ``send`` that tells workers about
new jobs, and the API passes in the model server behind ``predict``.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from service.access.principal import SYSTEM, Principal
from service.app.audit import AuditOps
from service.app.work import Predictor, Work
from service.audit import log as audit
from service.audit.keys import Signer
from service.db.engine import Database
from service.db.group import GroupCommit
from service.erasure import vault
from service.erasure.kek import load_vault
from service.erasure.scrub import Scrubber
from service.lineage.errors import Unavailable
from service.settings import Settings

if TYPE_CHECKING:
    from models.checkpoints import LocalCheckpointStore
    from service.jobs.runner import Send
    from service.usecases.accept_deletion import Submission
    from service.views import Accepted


def _nowhere(job_id: int, kind: str) -> None:
    """Dispatch target when no worker listens: jobs wait in the DB for one to start."""


@dataclass
class Service(Work, AuditOps):
    """``store`` is opened on first use: it loads torch, which the commands that touch no
    model never need.

    ``principal`` is who the calls are made for: every write transaction records it as the
    actor of its audit events (``Base.write``). The API serves each call with
    ``acting_as(caller)``; the CLI opens the service for the operator; workers act as the
    system."""

    settings: Settings
    db: Database
    signer: Signer
    send: Send = field(default=_nowhere)
    predictor: Predictor | None = None
    principal: Principal = SYSTEM
    # Shared by every ``acting_as`` copy: concurrent deletions are accepted in groups.
    intake: GroupCommit[Submission, Accepted] = field(default_factory=GroupCommit, repr=False)
    scrubber: Scrubber = field(init=False, repr=False)
    _store: LocalCheckpointStore | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        self.scrubber = Scrubber(self.db)  # ``acting_as`` copies share the original's

    def acting_as(self, principal: Principal) -> Service:
        """This service, for ``principal``: same settings, database, sender and model
        server (the store, a directory handle, is opened again on first use)."""
        copy = dataclasses.replace(self, principal=principal)
        copy.scrubber = self.scrubber
        return copy

    @property
    def store(self) -> LocalCheckpointStore:
        if self._store is None:
            from models.checkpoints import LocalCheckpointStore

            self._store = LocalCheckpointStore(self.settings.checkpoints_dir)
        return self._store

    @store.setter
    def store(self, store: LocalCheckpointStore) -> None:
        self._store = store

    @classmethod
    def open(cls, settings: Settings | None = None, *, send: Send | None = None) -> Service:
        """Without a ``send``, jobs wait in the DB until a worker or the reconciler finds
        them; a composition root with a broker passes the broker's sender."""
        settings = Settings.from_env() if settings is None else settings
        # Owner-only: the data directory holds the database, caches and keys.
        settings.home.mkdir(parents=True, exist_ok=True, mode=0o700)
        db = Database.from_url(settings.database_url)
        signer = Signer.from_settings(settings.signing_key, settings.key_file, settings.keyring_dir)
        audit.install(db, signer, settings.sign_every)
        vault.install(db, load_vault(settings))
        return cls(
            settings=settings,
            db=db,
            signer=signer,
            send=_nowhere if send is None else send,
        )

    def upgrade_schema(self) -> None:
        from service.db import schema
        from service.erasure.scrub import scrub

        schema.upgrade(
            self.db.engine, vault=load_vault(self.settings), secret=self.settings.secret()
        )
        # Payloads sealed by a migration leave their plaintext in old pages: push them out.
        scrub(self.db, ("data_keys", "records", "forget_payloads"))

    def schema_at_head(self) -> bool:
        from service.db import schema

        return schema.at_head(self.db.engine)

    def require_schema(self) -> None:
        if not self.schema_at_head():
            raise Unavailable("the database schema is not at head: run `unlearn db upgrade`")

    def schema_revisions(self) -> tuple[str | None, str]:
        """(the database's revision, the newest one)."""
        from service.db import schema

        return schema.current_revision(self.db.engine), schema.head_revision()
