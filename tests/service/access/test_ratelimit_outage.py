"""A rate-limit storage outage (Redis down) must not fail API calls: limits keep holding,
counted in the process's memory until the storage answers again."""

from __future__ import annotations

import pytest

from service.access.ratelimit import RateLimited, RateLimits


def test_limits_hold_in_memory_while_the_storage_is_down(caplog: pytest.LogCaptureFixture) -> None:
    limits = RateLimits.open("redis://127.0.0.1:9/0", "2/minute", "1/minute", "unlearn-test")
    limits.charge("key:a")
    limits.charge("key:a")
    with pytest.raises(RateLimited) as over:
        limits.charge("key:a")
    assert over.value.retry_after >= 1
    assert limits.blocked("10.0.0.1") is None
    limits.failed("10.0.0.1")
    assert isinstance(limits.blocked("10.0.0.1"), RateLimited)
    assert sum("counting in memory" in r.getMessage() for r in caplog.records) == 1
