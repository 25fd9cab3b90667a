"""Alembic environment: runs against the connection that ``service.db.schema`` hands in,
or against ``sqlalchemy.url`` / ``DATABASE_URL`` when run through the ``alembic`` command."""

from __future__ import annotations

from alembic import context
from sqlalchemy import Connection

from service.db import tables  # noqa: F401  (registers every table on Base.metadata)
from service.db.base import Base
from service.db.engine import make_engine
from service.settings import Settings

config = context.config


def _run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=Base.metadata,
        render_as_batch=connection.dialect.name == "sqlite",
    )
    with context.begin_transaction():
        context.run_migrations()


connection = config.attributes.get("connection")
if connection is not None:
    _run(connection)
else:
    url = config.get_main_option("sqlalchemy.url") or Settings.from_env().database_url
    engine = make_engine(url)
    with engine.connect() as conn:
        _run(conn)
    engine.dispose()
