"""The data directory and the embedded database are readable by their owner only."""

from __future__ import annotations

import stat
from pathlib import Path

from service.core import Service
from service.settings import Settings
from tests.service.conftest import SECRET, synthetic_dataset


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_home_and_sqlite_files_are_owner_only(tmp_path: Path) -> None:
    home = tmp_path / "home"
    svc = Service.open(
        Settings(home=home, database_url=f"sqlite:///{home / 'unlearn.db'}", secret_hex=SECRET)
    )
    try:
        svc.upgrade_schema()
        svc.import_dataset("synthetic", synthetic_dataset(12))
        assert _mode(home) == 0o700
        db = home / "unlearn.db"
        written = [p for p in (db, home / "unlearn.db-wal", home / "unlearn.db-shm") if p.exists()]
        assert db in written and len(written) == 3, written  # WAL mode: all three exist
        assert {p.name: _mode(p) for p in written} == {p.name: 0o600 for p in written}
    finally:
        svc.db.dispose()


def test_a_database_left_world_readable_is_tightened(tmp_path: Path) -> None:
    home = tmp_path / "old"
    home.mkdir()
    for name in ("unlearn.db", "unlearn.db-wal"):
        (home / name).touch()
        (home / name).chmod(0o644)
    svc = Service.open(
        Settings(home=home, database_url=f"sqlite:///{home / 'unlearn.db'}", secret_hex=SECRET)
    )
    try:
        assert _mode(home / "unlearn.db") == 0o600
        assert _mode(home / "unlearn.db-wal") == 0o600
    finally:
        svc.db.dispose()
