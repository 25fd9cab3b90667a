"""Access errors; the API answers them as problem+json (401 with ``WWW-Authenticate``, 403)."""

from __future__ import annotations

from service.lineage.errors import LineageError


class Unauthenticated(LineageError):
    """No credentials, or a token that is malformed, unknown, expired or revoked. The detail
    says which, never echoing the token."""

    status = 401
    title = "Unauthorized"

    def __init__(self, detail: str, *, error: str | None = "invalid_token") -> None:
        super().__init__(detail)
        self.error = error  # RFC 6750 error code; None when no credentials were sent


class Forbidden(LineageError):
    status = 403
    title = "Forbidden"
