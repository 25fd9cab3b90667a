"""Nothing blocks the API: while a 20 MiB CSV upload is parsed, sealed and stored, the event
loop keeps answering (measured against ``unlearn serve`` in its own process)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
from fastapi.testclient import TestClient

from service.core import Service
from service.settings import Settings
from tests.service.clients import bearer, new_token
from tests.service.conftest import SECRET

MIB = 1024 * 1024
LIVEZ_BUDGET_S = 0.1


def _csv(n_bytes: int) -> bytes:
    words = "the cast was warm and the ending was bland but the score was sharp "
    rows = ["record_id,subject_id,label,text"]
    size, i = 0, 0
    while size < n_bytes:
        text = f"{words * 28}{i}"
        row = f"r-{i:07d},subject-{i // 3},{'pos' if i % 2 else 'neg'},{text}"
        rows.append(row)
        size += len(row) + 1
        i += 1
    return ("\n".join(rows) + "\n").encode()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_a_20_mib_upload_does_not_delay_livez(tmp_path: Path) -> None:
    env = {
        **os.environ,
        "UNLEARN_HOME": str(tmp_path),
        "UNLEARN_SECRET": SECRET,
        "UNLEARN_MAX_BODY_BYTES": str(40 * MIB),
        "UNLEARN_MAX_UPLOAD_BYTES": str(40 * MIB),
    }
    for name in ("DATABASE_URL", "CELERY_BROKER_URL"):
        env.pop(name, None)
    svc = Service.open(Settings.from_env(env))
    svc.upgrade_schema()
    auth = bearer(new_token(svc))
    svc.db.dispose()
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    unlearn = Path(sys.executable).parent / "unlearn"
    with (tmp_path / "server.log").open("wb") as log:
        proc = subprocess.Popen(
            [str(unlearn), "serve", "--port", str(port), "--no-worker", "--no-progress"],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        try:
            _wait_ready(base, proc)
            delays, answer = _probe_during_upload(base, auth, _csv(20 * MIB))
        finally:
            proc.terminate()
            proc.wait(30)
    assert answer.status_code == 201, answer.text
    worst = max(delays)
    print(f"/livez during a 20 MiB upload: {len(delays)} probes, worst {worst * 1000:.1f} ms")
    assert worst < LIVEZ_BUDGET_S, f"/livez took {worst * 1000:.0f} ms during the upload"
    assert len(delays) >= 10, "the upload finished too fast to measure anything"


def _wait_ready(base: str, proc: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        assert proc.poll() is None, "the server exited"
        try:
            if httpx.get(f"{base}/livez", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise AssertionError("the server did not start")


def _probe_during_upload(
    base: str, auth: dict[str, str], body: bytes
) -> tuple[list[float], httpx.Response]:
    """/livez latencies, one probe every 50 ms, while ``body`` uploads and imports."""
    answers: list[httpx.Response] = []

    def upload() -> None:
        with httpx.Client(base_url=base, headers=auth, timeout=600) as client:
            files = {"file": ("big.csv", body, "text/csv")}
            answers.append(client.post("/v1/datasets", data={"name": "big"}, files=files))

    uploader = threading.Thread(target=upload)
    delays = []
    with httpx.Client(base_url=base, timeout=30) as probe:
        probe.get("/livez")  # the connection is open before the upload starts
        uploader.start()
        while uploader.is_alive():
            t = time.perf_counter()
            assert probe.get("/livez").status_code == 200
            delays.append(time.perf_counter() - t)
            time.sleep(0.05)
    uploader.join()
    return delays, answers[0]


def test_a_large_upload_imported_in_a_child_process_reports_errors_and_leaves_no_file(
    client: TestClient, service: Service
) -> None:
    body = _csv(2 * MIB)
    n_lines = body.count(b"\n")
    broken = body + b"r-broken,subject-x\n"
    r = client.post(
        "/v1/datasets", data={"name": "big"}, files={"file": ("big.csv", broken, "text/csv")}
    )
    assert r.status_code == 422, r.text
    assert f"big.csv line {n_lines + 1}" in r.json()["detail"]
    r = client.post(
        "/v1/datasets", data={"name": "big"}, files={"file": ("big.csv", body, "text/csv")}
    )
    assert r.status_code == 201 and r.json()["n_records"] == n_lines - 1
    assert list((service.settings.home / "uploads").iterdir()) == []
