"""``unlearn serve`` prints its URL only once the port listens, a port in use is a clear
one-line error with no URL, and ``--processes N`` runs N API processes on the port."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from typer.testing import CliRunner

from service.cli.main import app

runner = CliRunner()
ROOT = Path(__file__).resolve().parents[3]
URL_LINE = re.compile(r"^unlearn API on http://127\.0\.0\.1:(\d+) ")


def test_a_port_in_use_is_an_error_and_no_url(cli_env: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = runner.invoke(app, ["serve", "--no-worker", "--port", str(port), "--no-progress"])
    assert result.exit_code == 2, result.output
    assert "unlearn API on" not in result.output and "http://" not in result.output
    error = f"error: cannot serve on 127.0.0.1:{port}: Address already in use"
    assert error in result.output.splitlines(), result.output
    assert not (cli_env / "data").exists(), "it fails before opening the service"


def test_the_url_is_printed_once_the_port_accepts_connections(cli_env: Path) -> None:
    with _serving(cli_env) as proc:
        assert proc.stdout is not None
        first = proc.stdout.readline().decode()
        found = URL_LINE.match(first)
        assert found, f"first line {first!r}; log: {(cli_env / 'serve.log').read_text()}"
        port = int(found.group(1))
        assert port != 0, "--port 0 prints the port it was given"
        # The moment the line is read the port must already take a connection ...
        socket.create_connection(("127.0.0.1", port), timeout=5).close()
        # ... and the API answers on it once its start-up is done.
        assert _livez(port, deadline=time.monotonic() + 60) == 200


@contextmanager
def _serving(cli_env: Path, *options: str) -> Iterator[subprocess.Popen[bytes]]:
    """``unlearn serve --no-worker --port 0`` with ``options``, its stdout piped, stopped
    at the end."""
    log = (cli_env / "serve.log").open("wb")
    cmd = [sys.executable, "-c", "from service.cli.main import app; app(prog_name='unlearn')"]
    cmd += ["serve", "--no-worker", "--port", "0", "--no-progress", *options]
    env = os.environ | {"PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=log)
    try:
        yield proc
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        assert proc.stdout is not None
        proc.stdout.close()
        log.close()


def _livez(port: int, deadline: float) -> int:
    while True:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/livez", timeout=5) as r:
                return int(r.status)
        except OSError:  # refused, reset or timed out (URLError is one): still starting
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


def test_several_api_processes_share_the_port_and_one_that_dies_is_replaced(
    cli_env: Path,
) -> None:
    """``--processes 2``: two API processes answer on the one port, each with the key the
    supervisor printed; after one is killed the other still answers and a new one starts."""
    with _serving(cli_env, "--processes", "2") as proc:
        assert proc.stdout is not None
        found = URL_LINE.match(proc.stdout.readline().decode())
        assert found, (cli_env / "serve.log").read_text()
        port = int(found.group(1))
        proc.stdout.readline()  # "admin API key (kept in ...):"
        token = proc.stdout.readline().decode().strip()
        assert token.startswith("unlk_")
        deadline = time.monotonic() + 90
        first = _api_processes(proc.pid, 2, deadline)
        assert _livez(port, deadline) == 200
        assert all(_list(port, token) == 200 for _ in range(10))
        os.kill(first[0], 9)
        assert all(_list(port, token) == 200 for _ in range(10)), "the other one answers"
        replaced = _api_processes(proc.pid, 2, deadline, without=first[0])
        assert first[0] not in replaced and first[1] in replaced


def _api_processes(parent: int, n: int, deadline: float, without: int | None = None) -> list[int]:
    """The supervisor's ``n`` API processes (uvicorn spawns them), once there are ``n``."""
    while True:
        children = Path(f"/proc/{parent}/task/{parent}/children").read_text().split()
        pids = [int(p) for p in children if int(p) != without and _spawned(int(p))]
        if len(pids) == n:
            return sorted(pids)
        assert time.monotonic() < deadline, f"API processes: {pids}"
        time.sleep(0.2)


def _spawned(pid: int) -> bool:
    try:
        return b"spawn_main" in Path(f"/proc/{pid}/cmdline").read_bytes()
    except FileNotFoundError:
        return False  # gone meanwhile


def _list(port: int, token: str) -> int:
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/v1/deletions", headers={"Authorization": f"Bearer {token}"}
    )
    with urllib.request.urlopen(request, timeout=10) as r:
        return int(r.status)
