"""``unlearn keys create|list|revoke``: the API keys of the deployment.

The CLI acts as the operator on the machine that holds the database; key creation and
revocation are audit-chain events naming the CLI and the OS user."""

from __future__ import annotations

import datetime as dt
import re
import sys
from typing import Annotated

import typer
from rich.table import Table

from service.access.scopes import ROLES, Scope
from service.cli.common import AsJson, dump_views, fail, open_service, out, user_errors

keys_app = typer.Typer(help="API keys: create (shown once), list, revoke.", no_args_is_help=True)
_SPAN = re.compile(r"^(\d+)([dhm])$")
ROLE_HELP = "; ".join(f"{name}: {', '.join(sorted(scopes))}" for name, scopes in ROLES.items())


def parse_expiry(text: str, now: dt.datetime | None = None) -> dt.datetime:
    """``90d``, ``12h``, ``30m`` from now, or an ISO date/datetime (UTC if no offset)."""
    now = dt.datetime.now(dt.UTC) if now is None else now
    m = _SPAN.match(text.strip())
    if m is not None:
        unit = {"d": "days", "h": "hours", "m": "minutes"}[m.group(2)]
        return now + dt.timedelta(**{unit: int(m.group(1))})
    try:
        at = dt.datetime.fromisoformat(text)
    except ValueError:
        fail(f"--expires must look like 90d, 12h, 30m or an ISO date, got {text!r}")
    return at if at.tzinfo is not None else at.replace(tzinfo=dt.UTC)


@keys_app.command("create")
def keys_create(
    name: Annotated[str, typer.Option(help="who or what holds the key, e.g. 'hr-portal'")],
    role: Annotated[str | None, typer.Option(help=f"a scope bundle: {ROLE_HELP}")] = None,
    scope: Annotated[
        list[str] | None,
        typer.Option(help="a scope (repeat; added to the role's): " + ", ".join(Scope)),
    ] = None,
    expires: Annotated[
        str | None, typer.Option(help="e.g. 90d, 12h or 2027-06-30 (default: never)")
    ] = None,
    as_json: AsJson = False,
) -> None:
    """Create a key and print its token: shown once, only its hash is kept."""
    with user_errors():
        at = None if expires is None else parse_expiry(expires)
        created = open_service().create_key(name, role=role, scopes=scope or (), expires_at=at)
    if as_json:
        dump_views(created)
        return
    key = created.key
    print(f"created key {key.key_id} ({key.name}): {', '.join(key.scopes)}")
    print(f"expires: {key.expires_at or 'never'}")
    print("token (shown once; only its hash is kept):")
    print(created.token)


@keys_app.command("list")
def keys_list(
    include_revoked: Annotated[bool, typer.Option("--all", help="revoked keys too")] = False,
    as_json: AsJson = False,
) -> None:
    """The keys (never their tokens): scopes, expiry, last use."""
    with user_errors():
        views = open_service().api_keys(include_revoked=include_revoked)
    if as_json:
        dump_views(views)
        return
    columns = ("key id", "name", "role", "scopes", "created", "expires", "last used", "revoked")
    rows = [
        (
            v.key_id,
            v.name,
            v.role or "-",
            " ".join(v.scopes),
            v.created_at[:19],
            (v.expires_at or "never")[:19],
            (v.last_used_at or "-")[:19],
            (v.revoked_at or "-")[:19],
        )
        for v in views
    ]
    if not sys.stdout.isatty():
        # Piped: one tab-separated line per key, never wrapped or cut.
        for row in (columns, *rows):
            print("\t".join(row))
        return
    table = Table(title="API keys")
    for col in columns:
        table.add_column(col)
    for row in rows:
        table.add_row(*row)
    out.print(table)


@keys_app.command("revoke")
def keys_revoke(
    key_id: Annotated[
        str, typer.Argument(help="the key id (`keys list`; the part after unlk_ in a token)")
    ],
) -> None:
    """Revoke a key: every API process refuses it from its next call."""
    with user_errors():
        view = open_service().revoke_key(key_id)
    print(f"key {view.key_id} ({view.name}) revoked at {view.revoked_at}")
