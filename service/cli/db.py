"""``unlearn db ...``: the database schema (Alembic migrations)."""

from __future__ import annotations

import typer

from service.cli.common import open_service, out, user_errors

db_app = typer.Typer(help="Database schema (Alembic migrations).", no_args_is_help=True)


@db_app.command("upgrade")
def db_upgrade() -> None:
    """Migrate the database to the newest schema."""
    with user_errors():
        svc = open_service(check_schema=False)
        svc.upgrade_schema()
        current, _ = svc.schema_revisions()
        out.print(f"schema at {current} ({svc.db.dialect})")


@db_app.command("current")
def db_current() -> None:
    """Show the schema revision of the database and the newest one."""
    with user_errors():
        current, head = open_service(check_schema=False).schema_revisions()
        out.print(f"current {current}, head {head}")
