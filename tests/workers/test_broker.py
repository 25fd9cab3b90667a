"""The API's sender during a broker outage: it fails fast, and tries again after a pause."""

from __future__ import annotations

import pytest

from service.app import broker
from service.app.broker import BrokerDown, failing_fast


def test_after_a_failed_send_the_next_fail_at_once_until_the_pause_ends(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    now = [100.0]
    monkeypatch.setattr(broker.time, "monotonic", lambda: now[0])
    calls: list[int] = []
    down = [True]

    def send(job_id: int, kind: str) -> None:
        calls.append(job_id)
        if down[0]:
            raise ConnectionError("refused")

    guarded = failing_fast(send, pause_s=5.0)
    with pytest.raises(ConnectionError):
        guarded(1, "retrain")
    with pytest.raises(BrokerDown):
        guarded(2, "retrain")
    assert calls == [1], "not tried while paused"
    now[0] += 5.0
    down[0] = False
    guarded(3, "purge")
    guarded(4, "purge")
    assert calls == [1, 3, 4]
