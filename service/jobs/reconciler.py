"""The reconciler as a loop of its own: a daemon thread that runs a round
(``service.jobs.runner.reconcile_round``) at once and then every ``every_s`` seconds.

Every Celery worker runs one in its main process (``workers.app``), beside its pool, so
``unlearn worker`` alone recovers: a job whose worker was killed is taken over once its
lease runs out, and jobs the API could not send (broker down) or sent into a broker that
lost them go out when the broker is back, even while the worker's only pool process trains.
Rounds are idempotent, so many workers (and ``celery beat``) may run them side by side.
"""

from __future__ import annotations

import logging
import threading

from service.db.engine import Database
from service.jobs.runner import Send, reconcile_round
from service.settings import Settings

log = logging.getLogger(__name__)


def reconcile_every_s(settings: Settings) -> float:
    """A third of the lease: a dead attempt is taken over within ``lease + lease / 3`` of
    its last heartbeat."""
    return max(1.0, settings.job_lease_s / 3)


class ReconcileLoop:
    def __init__(
        self, db: Database, settings: Settings, send: Send, *, every_s: float | None = None
    ) -> None:
        self.db, self.settings, self.send = db, settings, send
        self.every_s = reconcile_every_s(settings) if every_s is None else every_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="unlearn-reconciler", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout: float | None = None) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout)

    def run_round(self) -> list[int]:
        sent = reconcile_round(self.db, self.settings, self.send)
        if sent:
            log.info("reconciler sent job(s) %s", sent)
        return sent

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                self.run_round()
            except Exception as exc:  # a broker or database outage: try again next round
                log.warning("reconciler round failed (%s); retrying in %.0f s", exc, self.every_s)
            self._stop.wait(self.every_s)
