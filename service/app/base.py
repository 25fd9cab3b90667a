"""What every part of the application service shares: settings, database, the principal the
calls are made for, and the write transaction that records that principal."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from service.access.principal import Principal
    from service.db.engine import Database
    from service.settings import Settings


class Base:
    """Mixed into :class:`service.app.service.Service`, which holds these attributes."""

    settings: Settings
    db: Database
    principal: Principal

    @contextmanager
    def write(self) -> Iterator[Session]:
        """A write transaction whose audit events name :attr:`principal` as their actor."""
        from service.audit.log import ACTOR

        with self.db.write() as s:
            s.info[ACTOR] = self.principal.actor()
            yield s
