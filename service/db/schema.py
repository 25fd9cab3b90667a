"""Migrations, run programmatically: upgrade to head, and ask whether a database is there.

Asking is cheap: every command checks the schema on start, so the revisions are read without
alembic (whose import and script directory cost a third of a second, most of a model-free
command's time); alembic loads only to migrate. A test checks both ways agree.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import Connection, Engine, inspect, text

import migrations

if TYPE_CHECKING:
    from alembic.config import Config

VERSIONS = Path(migrations.__file__).parent / "versions"
_REVISION = re.compile(r"^revision\b[^=]*=\s*[\"']([^\"']+)[\"']", re.M)
_DOWN_REVISION = re.compile(r"^down_revision\b[^=]*=\s*[\"']([^\"']+)[\"']", re.M)


def alembic_config() -> Config:
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(VERSIONS.parent))
    return config


def head_revision() -> str:
    """The newest revision: the one no migration file names as its ``down_revision``."""
    revisions: set[str] = set()
    parents: set[str] = set()
    for path in VERSIONS.glob("*.py"):
        source = path.read_text(encoding="utf-8")
        found = _REVISION.search(source)
        if found is None:
            continue
        revisions.add(found.group(1))
        parent = _DOWN_REVISION.search(source)
        if parent is not None:
            parents.add(parent.group(1))
    heads = sorted(revisions - parents)
    if len(heads) != 1:
        raise RuntimeError(f"the migrations have {len(heads)} heads, not one: {heads}")
    return heads[0]


def current_revision(engine: Engine) -> str | None:
    """The database's revision (``None``: never migrated)."""
    with engine.connect() as conn:
        if not inspect(conn).has_table("alembic_version"):
            return None
        return conn.execute(text("SELECT version_num FROM alembic_version")).scalar()


def at_head(engine: Engine) -> bool:
    return current_revision(engine) == head_revision()


@contextmanager
def _migrating(engine: Engine) -> Iterator[Connection]:
    """A transaction for migrations. On SQLite, foreign keys are off while it runs (a batch
    migration rebuilds a table by copy, drop and rename, which enforced keys would refuse
    while other rows point at it) and checked before it commits."""
    with engine.connect() as conn:
        sqlite = conn.dialect.name == "sqlite"
        raw = conn.connection.driver_connection if sqlite else None
        if raw is not None:
            raw.execute("PRAGMA foreign_keys=OFF")  # outside any transaction, or it is a no-op
        try:
            with conn.begin():
                yield conn
                if sqlite:
                    broken = conn.exec_driver_sql("PRAGMA foreign_key_check").fetchall()
                    if broken:
                        raise RuntimeError(f"the migration left broken foreign keys: {broken[:5]}")
        finally:
            if raw is not None:
                raw.execute("PRAGMA foreign_keys=ON")


def upgrade(
    engine: Engine,
    revision: str = "head",
    *,
    vault: object | None = None,
    secret: bytes | None = None,
) -> None:
    """``vault`` (``service.erasure.vault.Vault``) seals payloads a migration finds in clear
    (0006) and ``secret`` keys the stored content hashes (0007); without them those
    migrations refuse to run on a database that holds records."""
    from alembic import command

    config = alembic_config()
    with _migrating(engine) as conn:
        config.attributes["connection"] = conn
        config.attributes["vault"] = vault
        config.attributes["secret"] = secret
        command.upgrade(config, revision)


def downgrade(engine: Engine, revision: str) -> None:
    from alembic import command

    config = alembic_config()
    with _migrating(engine) as conn:
        config.attributes["connection"] = conn
        command.downgrade(config, revision)
