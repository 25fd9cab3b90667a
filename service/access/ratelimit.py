"""Rate limits with the ``limits`` library: a budget per principal, and one per client
address for failed authentication.

On the embedded default the counters live in memory (one process); with a broker configured
they live in Redis, so every API process draws on one budget (``UNLEARN_RATE_LIMIT_STORAGE``
overrides both). A moving window: a burst at a window's edge cannot double the budget.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

from limits import RateLimitItem, parse
from limits.storage import Storage, storage_from_string
from limits.strategies import MovingWindowRateLimiter


class RateLimited(Exception):
    """Over budget: retry after ``retry_after`` seconds."""

    def __init__(self, detail: str, retry_after: int) -> None:
        super().__init__(detail)
        self.retry_after = retry_after


def parse_limit(text: str, name: str) -> RateLimitItem:
    """``"600/minute"``, ``"10 per second"``...; a ``ValueError`` names the setting."""
    try:
        return parse(text)
    except ValueError as exc:
        raise ValueError(f"{name} must look like '600/minute', got {text!r}") from exc


@dataclass
class RateLimits:
    storage: Storage
    per_principal: RateLimitItem
    failures_per_address: RateLimitItem

    @classmethod
    def open(cls, uri: str, per_principal: str, failures: str, prefix: str) -> RateLimits:
        options = {"key_prefix": prefix} if uri.startswith(("redis://", "rediss://")) else {}
        storage = storage_from_string(uri, **options)
        if not isinstance(storage, Storage):
            raise ValueError(f"UNLEARN_RATE_LIMIT_STORAGE {uri!r} is an async storage")
        return cls(
            storage,
            parse_limit(per_principal, "UNLEARN_RATE_LIMIT"),
            parse_limit(failures, "UNLEARN_AUTH_FAILURE_LIMIT"),
        )

    @property
    def _limiter(self) -> MovingWindowRateLimiter:
        return MovingWindowRateLimiter(self.storage)

    def charge(self, principal_ref: str) -> None:
        """One call of a principal; raises :class:`RateLimited` past its budget."""
        item = self.per_principal
        if not self._limiter.hit(item, "principal", principal_ref):
            raise RateLimited(
                f"rate limit of {item} per key exceeded", self._retry_after(item, principal_ref)
            )

    def blocked(self, address: str) -> RateLimited | None:
        """Whether ``address`` has used up its failed-authentication budget."""
        item = self.failures_per_address
        if self._limiter.test(item, "auth-failure", address):
            return None
        return RateLimited(
            f"too many failed authentications from this address (limit {item})",
            self._retry_after(item, address, "auth-failure"),
        )

    def failed(self, address: str) -> None:
        self._limiter.hit(self.failures_per_address, "auth-failure", address)

    def _retry_after(self, item: RateLimitItem, ident: str, kind: str = "principal") -> int:
        stats = self._limiter.get_window_stats(item, kind, ident)
        return max(1, math.ceil(stats.reset_time - time.time()))
