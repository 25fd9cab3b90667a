from __future__ import annotations

import os
import random
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from models.config import TrainConfig
from models.data import Dataset, Record
from models.determinism import configure_determinism
from service.core import Service
from service.lineage.registry import ModelSpec
from service.settings import Settings

POSITIVE = ["great", "moving", "funny", "brilliant", "warm", "sharp"]
NEGATIVE = ["dull", "clumsy", "tedious", "bland", "messy", "flat"]
NOUNS = ["film", "script", "cast", "story", "ending", "score"]
SECRET = "5e" * 32
PG_ADMIN = os.environ.get(
    "UNLEARN_TEST_PG", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)


def synthetic_dataset(n: int = 72, n_subjects: int = 6, seed: int = 0) -> Dataset:
    """Sentiment snippets; the first ``3 * n_subjects`` records belong to subjects
    ``subject-0..`` (three each), the rest have none."""
    rng = random.Random(seed)
    records = []
    for i in range(n):
        label = i % 2
        word = rng.choice(POSITIVE if label else NEGATIVE)
        filler = " ".join(rng.choice(NOUNS) for _ in range(rng.randint(0, 5)))
        subject = f"subject-{i // 3}" if i < 3 * n_subjects else None
        records.append(
            Record(
                record_id=f"rec-{i:04d}",
                subject_id=subject,
                label=label,
                text=f"the {rng.choice(NOUNS)} was {word} {filler}".strip(),
            )
        )
    return Dataset(name="synthetic", records=tuple(records), label_names=("neg", "pos"))


SMALL = ModelSpec(
    n_shards=2,
    budget=2,
    config=TrainConfig(n_slices=3, rank=4, alpha=8.0, epochs=1, batch_size=8, max_length=24),
)


@pytest.fixture(scope="session", autouse=True)
def _determinism() -> None:
    configure_determinism()


def _settings(home: Path, url: str | None = None) -> Settings:
    return Settings(
        home=home, database_url=url or f"sqlite:///{home / 'unlearn.db'}", secret_hex=SECRET
    )


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return _settings(tmp_path)


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def service(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Service]:
    """A migrated service on SQLite, and again on a fresh PostgreSQL database."""
    url = None
    if request.param == "postgres":
        url = request.getfixturevalue("pg_url")
    svc = Service.open(_settings(tmp_path, url))
    svc.upgrade_schema()
    yield svc
    svc.db.dispose()


def pg_available() -> bool:
    try:
        engine = create_engine(PG_ADMIN)
        with engine.connect():
            pass
        engine.dispose()
        return True
    except Exception:
        return False


@pytest.fixture
def pg_url(request: pytest.FixtureRequest) -> Iterator[str]:
    """A fresh PostgreSQL database for one test (dropped afterwards)."""
    if not pg_available():
        if os.environ.get("CI"):
            pytest.fail("PostgreSQL is not reachable in CI")
        pytest.skip("PostgreSQL is not reachable")
    name = "unlearn_test_" + "".join(c for c in request.node.name.lower() if c.isalnum())[:40]
    admin = create_engine(PG_ADMIN, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    url = PG_ADMIN.rsplit("/", 1)[0] + "/" + name
    yield url
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


@pytest.fixture
def pg_service(tmp_path: Path, pg_url: str) -> Iterator[Service]:
    svc = Service.open(_settings(tmp_path, pg_url))
    svc.upgrade_schema()
    yield svc
    svc.db.dispose()
