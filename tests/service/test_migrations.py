"""The Alembic migrations build exactly the ORM's schema, and run down and up again."""

from __future__ import annotations

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, inspect

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
    assert schema.current_revision(engine) is None
    schema.upgrade(engine)
    assert schema.at_head(engine)
    assert _diff(url) == []
    schema.downgrade(engine, "0007")
    assert schema.current_revision(engine) == _alembic_current(engine) == "0007"
    assert not schema.at_head(engine)
    schema.downgrade(engine, "base")
    assert set(inspect(engine).get_table_names()) <= {"alembic_version"}
    schema.upgrade(engine)
    assert _diff(url) == []
    engine.dispose()


def _alembic_current(engine: Engine) -> str | None:
    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def test_the_cheap_head_is_alembics_head() -> None:
    """``schema.head_revision`` reads the migration files without alembic; alembic's script
    directory must name the same single head."""
    script = ScriptDirectory.from_config(schema.alembic_config())
    assert script.get_heads() == [schema.head_revision()]


@pytest.mark.parametrize(
    "backend", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
)
def test_0009_completed_requests_state_their_outcome(
    backend: str, request: pytest.FixtureRequest, tmp_path: object
) -> None:
    """Requests completed before 0009 with no outcome say ``erased`` (as their certificates
    did); open ones and set outcomes stay; ``not_found`` is unknown (null) for all."""
    from sqlalchemy import text

    url = (
        request.getfixturevalue("pg_url")
        if backend == "postgres"
        else f"sqlite:///{request.getfixturevalue('tmp_path') / 'm.db'}"
    )
    engine = make_engine(url)
    schema.upgrade(engine, "0008")
    rows = {
        "a": ("completed", None),
        "b": ("completed", "already_erased"),
        "c": ("effective", None),
    }
    with engine.begin() as conn:
        for public_id, (state, outcome) in rows.items():
            conn.execute(
                text(
                    "INSERT INTO deletion_requests (public_id, body_sha256, state, outcome, "
                    "n_records, cut, received_at, due_at) VALUES (:p, :h, :s, :o, 0, '[]', "
                    "'2026-01-01 00:00:00+00:00', '2026-02-01 00:00:00+00:00')"
                ),
                {"p": public_id, "h": "0" * 64, "s": state, "o": outcome},
            )
    schema.upgrade(engine)
    with engine.connect() as conn:
        found = conn.execute(
            text("SELECT public_id, outcome, not_found FROM deletion_requests ORDER BY public_id")
        ).all()
    engine.dispose()
    assert [tuple(r) for r in found] == [
        ("a", "erased", None),
        ("b", "already_erased", None),
        ("c", None, None),
    ]
