"""The PostgreSQL scrub's ``lock_timeout`` must not outlive it on the pooled connection: a
later deletion on that connection would fail after 2 s of waiting (a 500 under load)."""

from __future__ import annotations

from contextlib import ExitStack

import pytest

from service.core import Service
from service.erasure.scrub import scrub


@pytest.mark.postgres
def test_scrub_leaves_no_lock_timeout_on_pooled_connections(pg_service: Service) -> None:
    engine = pg_service.db.engine
    assert scrub(pg_service.db)
    pooled = engine.pool.checkedin()  # type: ignore[attr-defined]
    assert pooled >= 1
    with ExitStack() as stack:
        conns = [stack.enter_context(engine.connect()) for _ in range(pooled)]
        timeouts = {c.exec_driver_sql("SHOW lock_timeout").scalar() for c in conns}
    assert timeouts == {"0"}
