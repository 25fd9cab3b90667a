"""``unlearn serve`` prints its URL only once the port listens, and a port in use is a clear
one-line error with no URL."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import time
import urllib.request
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
    log = (cli_env / "serve.log").open("wb")
    cmd = [sys.executable, "-c", "from service.cli.main import app; app(prog_name='unlearn')"]
    cmd += ["serve", "--no-worker", "--port", "0", "--no-progress"]
    env = os.environ | {"PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=log)
    try:
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
