"""Rate limits with the ``limits`` library: a budget per principal, and one per client
address for failed authentication.

On the embedded default the counters live in memory (one process); with a broker configured
they live in Redis, so every API process draws on one budget (``UNLEARN_RATE_LIMIT_STORAGE``
overrides both). A moving window: a burst at a window's edge cannot double the budget.

A storage outage (Redis down) must not take the API down with it: erasure requests are
still accepted. While the shared storage fails, each process counts in its own memory (the
budget is then per process) and logs the outage once.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TypeVar

from limits import RateLimitItem, parse
from limits.storage import MemoryStorage, Storage, storage_from_string
from limits.strategies import MovingWindowRateLimiter

log = logging.getLogger(__name__)
T = TypeVar("T")


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
    fallback: Storage = field(default_factory=MemoryStorage)
    _failing: bool = False

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

    def _use(self, call: Callable[[MovingWindowRateLimiter], T]) -> T:
        """``call`` on the shared storage, or on this process's memory while it fails."""
        try:
            answer = call(MovingWindowRateLimiter(self.storage))
        except Exception as exc:
            if not self._failing:
                log.warning("rate-limit storage failing (%s); counting in memory", exc)
            self._failing = True
            return call(MovingWindowRateLimiter(self.fallback))
        if self._failing:
            log.warning("rate-limit storage answers again")
            self._failing = False
        return answer

    def charge(self, principal_ref: str) -> None:
        """One call of a principal; raises :class:`RateLimited` past its budget."""
        item = self.per_principal
        if not self._use(lambda lim: lim.hit(item, "principal", principal_ref)):
            raise RateLimited(
                f"rate limit of {item} per key exceeded", self._retry_after(item, principal_ref)
            )

    def blocked(self, address: str) -> RateLimited | None:
        """Whether ``address`` has used up its failed-authentication budget."""
        item = self.failures_per_address
        if self._use(lambda lim: lim.test(item, "auth-failure", address)):
            return None
        return RateLimited(
            f"too many failed authentications from this address (limit {item})",
            self._retry_after(item, address, "auth-failure"),
        )

    def failed(self, address: str) -> None:
        self._use(lambda lim: lim.hit(self.failures_per_address, "auth-failure", address))

    def _retry_after(self, item: RateLimitItem, ident: str, kind: str = "principal") -> int:
        stats = self._use(lambda lim: lim.get_window_stats(item, kind, ident))
        return max(1, math.ceil(stats.reset_time - time.time()))
