from __future__ import annotations

import dataclasses
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from service.core import Service
from service.jobs.runner import LocalWorker
from service.lineage.deletion import DeletionInput
from tests.service.conftest import SMALL, _settings, synthetic_dataset


def flow(service: Service) -> None:
    """Import, train, delete subject-1 and retrain (every retrain checked from scratch)."""
    checked = dataclasses.replace(service.settings, check_retrain=True)
    service.import_dataset("synthetic", synthetic_dataset())
    service.create_model("synthetic", SMALL)
    LocalWorker(service.db, checked).drain()
    service.delete(DeletionInput(subject_id="subject-1"))
    LocalWorker(service.db, checked).drain()


@pytest.fixture(scope="session")
def flowed_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One embedded deployment after ``flow``, trained once per test session."""
    home = tmp_path_factory.mktemp("flowed")
    svc = Service.open(_settings(home))
    svc.upgrade_schema()
    flow(svc)
    svc.db.dispose()
    return home


@pytest.fixture
def flowed(flowed_home: Path, tmp_path: Path) -> Iterator[Service]:
    """A private copy of that deployment (database, keys, checkpoints) to tamper with."""
    home = tmp_path / "home"
    shutil.copytree(flowed_home, home)
    svc = Service.open(_settings(home))
    yield svc
    svc.db.dispose()
