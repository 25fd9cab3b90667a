from __future__ import annotations

import socket
from pathlib import Path

import pytest

from tests.service.conftest import SECRET


@pytest.fixture
def cli_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An embedded home under ``tmp_path`` with no server settings from the environment."""
    monkeypatch.setenv("UNLEARN_HOME", str(tmp_path / "data"))
    monkeypatch.setenv("UNLEARN_SECRET", SECRET)
    monkeypatch.delenv("DATABASE_URL", raising=False)
    monkeypatch.delenv("CELERY_BROKER_URL", raising=False)
    monkeypatch.delenv("UNLEARN_CHECK_RETRAIN", raising=False)
    return tmp_path


def free_port() -> int:
    """A TCP port nothing listens on now (for a command that binds it next)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])
