"""Access control in the application service: authenticate a bearer token, manage API keys,
and the caps on what an API key may register."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING

from service.app.base import Base
from service.views import Actor, KeyView, NewKeyView

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from service.access.principal import Principal
    from service.db.tables import ApiKeyRow


def key_view(row: ApiKeyRow) -> KeyView:
    def iso(at: dt.datetime | None) -> str | None:
        return None if at is None else at.isoformat()

    return KeyView(
        key_id=row.key_id,
        name=row.name,
        role=row.role,
        scopes=list(row.scopes),
        created_at=row.created_at.isoformat(),
        created_by=Actor.model_validate(row.created_by),
        expires_at=iso(row.expires_at),
        last_used_at=iso(row.last_used_at),
        revoked_at=iso(row.revoked_at),
    )


class AccessOps(Base):
    def authenticate(self, token: str) -> Principal:
        """The principal of a bearer token (the key row is read on every call, so a
        revocation holds at once everywhere); records the key's use at most once a minute."""
        from service.access.keys import authenticate_use, touch

        with self.db.read() as s:
            principal, stale = authenticate_use(s, token)
        if stale:
            with self.db.write() as s:
                touch(s, principal.id)
        return principal

    def create_key(
        self,
        name: str,
        *,
        role: str | None = None,
        scopes: Iterable[str] = (),
        expires_at: dt.datetime | None = None,
    ) -> NewKeyView:
        """A new key from a role and/or scopes; its token is in this answer and nowhere
        else. An API key may grant only scopes it holds itself."""
        from service.access.errors import Forbidden
        from service.access.keys import create_key
        from service.access.scopes import resolve_scopes
        from service.lineage.errors import Unprocessable

        try:
            granted = resolve_scopes(role, scopes)
        except ValueError as exc:
            raise Unprocessable(str(exc)) from exc
        beyond = sorted(granted - self.principal.scopes)
        if self.principal.is_key and beyond:
            raise Forbidden(f"a key grants only scopes it holds; this one lacks {beyond}")
        with self.write() as s:
            row, token = create_key(s, name, granted, role=role, expires_at=expires_at)
            return NewKeyView(key=key_view(row), token=token)

    def api_keys(self, *, include_revoked: bool = False) -> list[KeyView]:
        from service.access.keys import list_keys

        with self.db.read() as s:
            return [key_view(r) for r in list_keys(s, include_revoked=include_revoked)]

    def revoke_key(self, key_id: str) -> KeyView:
        from service.access.keys import revoke_key

        with self.write() as s:
            return key_view(revoke_key(s, key_id))

    def key_valid(self, token: str) -> bool:
        """Whether ``token`` is a key that authenticates now (the embedded admin key file)."""
        from service.access.errors import Unauthenticated

        try:
            return self.authenticate(token).is_key
        except Unauthenticated:
            return False

    def embedded_admin_token(self) -> str:
        """The embedded default's admin key: the token kept in ``UNLEARN_HOME/admin.key``
        (mode 0600) while it still authenticates, else a new admin key written there."""
        from service.files import replace_atomic

        path = self.settings.admin_key_file
        if path.exists():
            token = path.read_text().strip()
            if self.key_valid(token):
                return token
        created = self.create_key("embedded admin (unlearn serve)", role="admin")
        replace_atomic(path, (created.token + "\n").encode("ascii"), mode=0o600)
        return created.token

    def _check_params(self, params: Mapping[str, object], what: str = "") -> None:
        """An API key's training parameters within the deployment's caps (the operator's
        CLI is not capped)."""
        if self.principal.is_key:
            self.settings.caps.check_params(params, what)

    def _check_model_count(self, s: Session) -> None:
        """One more model for an API key within ``UNLEARN_MAX_MODELS_PER_KEY`` (the key's row
        is locked, so two registrations at once cannot both pass the last slot)."""
        from service.access.keys import models_of

        if self.principal.is_key:
            self.settings.caps.check_model_count(models_of(s, self.principal, lock=True))
