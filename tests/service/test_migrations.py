"""The Alembic migrations build exactly the ORM's schema, and run down and up again."""

from __future__ import annotations

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect

from service.db import schema
from service.db.base import Base
from service.db.engine import make_engine


def _diff(url: str) -> list[object]:
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            ctx = MigrationContext.configure(conn, opts={"compare_type": True})
            return list(compare_metadata(ctx, Base.metadata))
    finally:
        engine.dispose()


@pytest.mark.parametrize(
    "backend", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
)
def test_migrations_match_the_models_and_round_trip(
    backend: str, request: pytest.FixtureRequest, tmp_path: object
) -> None:
    url = (
        request.getfixturevalue("pg_url")
        if backend == "postgres"
        else f"sqlite:///{request.getfixturevalue('tmp_path') / 'm.db'}"
    )
    engine = make_engine(url)
    schema.upgrade(engine)
    assert schema.at_head(engine)
    assert _diff(url) == []
    schema.downgrade(engine, "base")
    assert set(inspect(engine).get_table_names()) <= {"alembic_version"}
    schema.upgrade(engine)
    assert _diff(url) == []
    engine.dispose()
