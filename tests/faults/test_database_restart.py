"""PostgreSQL (a cluster of the test's own) restarted in the middle of a burst of
deletions: clients retry with their Idempotency-Key, the embedded worker (``unlearn worker``
without a broker) rides it out, and every request is applied exactly once."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from service.core import Service
from tests.faults.cluster import Processes, Tally, jobs_settled, wait_until
from tests.faults.conftest import Trained, clone
from tests.faults.servers import postgres_server
from tests.service.clients import api_client

pytestmark = [pytest.mark.slow, pytest.mark.postgres]
N_DELETIONS, RESTART_AT = 40, 10


def test_postgres_restart_during_a_deletion_burst(trained: Trained, tmp_path: Path) -> None:
    with postgres_server() as pg:
        settings = clone(trained, tmp_path, "unused", url=pg.url)
        service = Service.open(settings)
        procs = Processes(
            tmp_path, {"DATABASE_URL": settings.database_url, "UNLEARN_HOME": str(settings.home)}
        )
        try:
            procs.start("worker")
            tally, retries = Tally(), 0
            restart = threading.Thread(target=pg.restart)
            with api_client(service) as client:
                for i in range(N_DELETIONS):
                    if i == RESTART_AT:
                        restart.start()
                    rid = f"rec-{i:04d}"
                    while True:  # a client retrying with the same key until it gets a 202
                        try:
                            r = client.post(
                                "/v1/deletions",
                                json={"record_ids": [rid]},
                                headers={"Idempotency-Key": rid},
                            )
                            if r.status_code == 202:
                                break
                        except Exception:  # the app raised: the database went away mid-call
                            pass
                        retries += 1
                        time.sleep(0.2)
                    tally.accepted[r.json()["id"]] = (rid,)
            restart.join(60)
            wait_until("every job to finish", jobs_settled(service), procs, service)
            tally.check(service).report(
                "postgres-restart", deletions=N_DELETIONS, client_retries=retries
            )
        finally:
            procs.kill_all()
            service.db.dispose()
    assert tally.lost == [] and tally.twice == []
    assert retries > 0, "the restart hit the burst"
