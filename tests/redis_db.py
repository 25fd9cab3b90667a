"""One Redis database of a test's own: reachable (skipped without Redis, failed in CI),
flushed before and after."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
import redis

REDIS = os.environ.get("UNLEARN_TEST_REDIS", "redis://127.0.0.1:6379")


@contextmanager
def flushed_redis(db: int) -> Iterator[str]:
    """The URL of Redis database ``db``, empty while the test runs."""
    client = redis.Redis.from_url(f"{REDIS}/{db}", socket_connect_timeout=2)
    try:
        client.ping()
    except redis.RedisError:
        client.close()
        if os.environ.get("CI"):
            pytest.fail(f"Redis is not reachable at {REDIS} in CI")
        pytest.skip(f"Redis is not reachable at {REDIS}")
    client.flushdb()
    try:
        yield f"{REDIS}/{db}"
    finally:
        client.flushdb()
        client.close()
