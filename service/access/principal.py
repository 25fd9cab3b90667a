"""Who makes a call: an API key, a subject's status token, the operator CLI or the system.

Every audit event and every deletion request records the caller's ``actor()``: the key id
and name, never the token or its hash."""

from __future__ import annotations

import getpass
from dataclasses import dataclass
from enum import StrEnum

from service.access.scopes import Scope


class PrincipalType(StrEnum):
    KEY = "key"
    STATUS_TOKEN = "status_token"
    CLI = "cli"
    SYSTEM = "system"


@dataclass(frozen=True)
class Principal:
    type: PrincipalType
    id: str  # key id, request id (status token), OS user (CLI), component (system)
    name: str
    scopes: frozenset[Scope] = frozenset()

    def may(self, scope: Scope) -> bool:
        return scope in self.scopes

    @property
    def is_key(self) -> bool:
        return self.type == PrincipalType.KEY

    @property
    def request(self) -> str | None:
        """The one deletion request a status token may read."""
        return self.id if self.type == PrincipalType.STATUS_TOKEN else None

    @property
    def ref(self) -> str:
        """A short stable reference, e.g. ``key:abc`` (idempotency scope, model owner)."""
        return f"{self.type}:{self.id}"

    def actor(self) -> dict[str, str]:
        return {"type": str(self.type), "id": self.id, "name": self.name}


SYSTEM = Principal(PrincipalType.SYSTEM, "worker", "background jobs")


def cli_principal() -> Principal:
    """The operator at the shell: all scopes, recorded with the OS user."""
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = "unknown"
    return Principal(PrincipalType.CLI, user, f"unlearn CLI ({user})", frozenset(Scope))


def status_principal(public_id: str) -> Principal:
    return Principal(PrincipalType.STATUS_TOKEN, public_id, "subject status token")
