"""A model trained once for the whole suite, cloned for each test: a PostgreSQL template
database on the shared server plus a copy of its data directory."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from service.core import Service
from service.jobs.runner import LocalWorker
from service.settings import Settings
from tests.faults.cluster import Processes
from tests.service.conftest import PG_ADMIN, SECRET, SMALL, pg_available, synthetic_dataset

TEMPLATE = f"unlearn_faults_template_{os.getpid()}"
N_RECORDS = 120  # the broker test erases 100 of them, one request each


@dataclass(frozen=True)
class Trained:
    home: Path
    database: str


def _admin(sql: str) -> None:
    admin = create_engine(PG_ADMIN, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(sql))
    admin.dispose()


def db_url(name: str) -> str:
    return PG_ADMIN.rsplit("/", 1)[0] + "/" + name


@pytest.fixture(scope="session")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Trained]:
    if not pg_available():
        pytest.skip("PostgreSQL is not reachable")
    _admin(f'DROP DATABASE IF EXISTS "{TEMPLATE}" WITH (FORCE)')
    _admin(f'CREATE DATABASE "{TEMPLATE}"')
    home = tmp_path_factory.mktemp("faults") / "home"
    svc = Service.open(Settings(home=home, database_url=db_url(TEMPLATE), secret_hex=SECRET))
    svc.upgrade_schema()
    svc.import_dataset("synthetic", synthetic_dataset(N_RECORDS))
    svc.create_model("synthetic", SMALL)
    LocalWorker(svc.db, svc.settings).drain()
    svc.db.dispose()
    yield Trained(home, TEMPLATE)
    _admin(f'DROP DATABASE IF EXISTS "{TEMPLATE}" WITH (FORCE)')


@dataclass(frozen=True)
class Clone:
    settings: Settings
    service: Service
    procs: Processes


def clone(trained: Trained, tmp: Path, name: str, *, url: str | None = None) -> Settings:
    """A copy of the trained model: on the shared server from the template, or loaded into
    the server at ``url`` (a test's own) with ``pg_dump``."""
    home = tmp / "home"
    shutil.copytree(trained.home, home)
    if url is None:
        _admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        _admin(f'CREATE DATABASE "{name}" TEMPLATE "{trained.database}"')
        url = db_url(name)
    else:
        plain = db_url(trained.database).replace("+psycopg", "")
        dump = subprocess.run(["pg_dump", "--no-owner", plain], check=True, capture_output=True)
        subprocess.run(
            ["psql", "-q", "-v", "ON_ERROR_STOP=1", url.replace("+psycopg", "")],
            input=dump.stdout,
            check=True,
            capture_output=True,
        )
    return Settings(home=home, database_url=url, secret_hex=SECRET)


@pytest.fixture
def cloned(trained: Trained, tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Clone]:
    name = "unlearn_fault_" + "".join(c for c in request.node.name.lower() if c.isalnum())[:40]
    settings = clone(trained, tmp_path, name)
    service = Service.open(settings)
    env = {"DATABASE_URL": settings.database_url, "UNLEARN_HOME": str(settings.home)}
    procs = Processes(tmp_path, env)
    try:
        yield Clone(settings, service, procs)
    finally:
        procs.kill_all()
        service.db.dispose()
        _admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
