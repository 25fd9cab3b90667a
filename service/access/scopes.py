"""The scopes a key can hold and the named roles that bundle them (pure, no I/O)."""

from __future__ import annotations

from collections.abc import Iterable
from enum import StrEnum


class Scope(StrEnum):
    DELETIONS_CREATE = "deletions:create"
    DELETIONS_READ = "deletions:read"
    DELETIONS_RESOLVE = "deletions:resolve"
    MODELS_READ = "models:read"
    MODELS_WRITE = "models:write"
    PLACEMENTS_READ = "placements:read"
    PREDICT = "predict"
    DATASETS_READ = "datasets:read"
    DATASETS_WRITE = "datasets:write"
    AUDIT_READ = "audit:read"
    KEYS_ADMIN = "keys:admin"


SCOPE_HELP: dict[Scope, str] = {
    Scope.DELETIONS_CREATE: (
        "erase a subject's or some records' data (and learn whether any matched)"
    ),
    Scope.DELETIONS_READ: "list and read every deletion request and its certificate",
    Scope.DELETIONS_RESOLVE: "decide a request waiting in needs_review",
    Scope.MODELS_READ: "read a model's status",
    Scope.MODELS_WRITE: "register models and queue their training (capped by settings)",
    Scope.PLACEMENTS_READ: "list which records (by id) sit in a model's shards and slices",
    Scope.PREDICT: "ask a model for predictions",
    Scope.DATASETS_READ: "read a dataset's summary",
    Scope.DATASETS_WRITE: "import datasets",
    Scope.AUDIT_READ: "download the audit report",
    Scope.KEYS_ADMIN: "create, list and revoke API keys",
}

ROLES: dict[str, frozenset[Scope]] = {
    # A privacy portal files requests for data subjects and follows them up.
    "privacy-portal": frozenset({Scope.DELETIONS_CREATE, Scope.DELETIONS_READ}),
    # An application that serves predictions.
    "app": frozenset({Scope.PREDICT, Scope.MODELS_READ}),
    # An auditor or DPO: reads requests, certificates, model status and the report.
    "auditor": frozenset({Scope.AUDIT_READ, Scope.DELETIONS_READ, Scope.MODELS_READ}),
    # Runs the service day to day: everything but erasing and key administration.
    "operator": frozenset(
        {
            Scope.DELETIONS_READ,
            Scope.DELETIONS_RESOLVE,
            Scope.MODELS_READ,
            Scope.MODELS_WRITE,
            Scope.PLACEMENTS_READ,
            Scope.PREDICT,
            Scope.DATASETS_READ,
            Scope.DATASETS_WRITE,
            Scope.AUDIT_READ,
        }
    ),
    "admin": frozenset(Scope),
}


class ScopeError(ValueError):
    pass


def resolve_scopes(role: str | None, scopes: Iterable[str]) -> frozenset[Scope]:
    """The scopes of a key made from a ``role`` and/or explicit ``scopes`` (at least one)."""
    out: set[Scope] = set()
    if role is not None:
        if role not in ROLES:
            raise ScopeError(f"unknown role {role!r}; roles: {', '.join(ROLES)}")
        out |= ROLES[role]
    for name in scopes:
        try:
            out.add(Scope(name))
        except ValueError:
            raise ScopeError(
                f"unknown scope {name!r}; scopes: {', '.join(s.value for s in Scope)}"
            ) from None
    if not out:
        raise ScopeError("give a role or at least one scope")
    return frozenset(out)
