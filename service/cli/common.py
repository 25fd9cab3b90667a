"""Shared pieces of the CLI: console, one-line user errors, progress bars, option types."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from enum import StrEnum
from typing import TYPE_CHECKING, Annotated, Any, NoReturn

import typer
from rich.console import Console
from rich.markup import escape

if TYPE_CHECKING:
    from pydantic import BaseModel

    from service.core import Service

# Output that is not a terminal (a file, a pipe, a test's runner) is never wrapped or
# truncated: lines as long as they are, tables at their natural width.
UNWRAPPED = 1_000_000
out = Console() if sys.stdout.isatty() else Console(width=UNWRAPPED, soft_wrap=True)

EXIT_USER_ERROR = 2
EXIT_VIOLATION = 1

Progress = Annotated[bool, typer.Option(help="show progress bars")]
AsJson = Annotated[bool, typer.Option("--json", help="print JSON")]


class Selection(StrEnum):
    cyclic = "cyclic"
    bms = "bms"


def fail(message: str, code: int = EXIT_USER_ERROR) -> NoReturn:
    """Print ``error: message`` on one line of stderr, never wrapped, and exit ``code``."""
    # A multi-line message (a validation error's) joins into one line. It quotes user input:
    # escaped, so brackets in it print as typed.
    line = " ".join(part.strip() for part in message.splitlines() if part.strip())
    Console(stderr=True, soft_wrap=True).print(
        f"[bold red]error:[/] {escape(line)}", highlight=False
    )
    raise typer.Exit(code)


@contextmanager
def user_errors() -> Iterator[None]:
    """Turn the library's documented errors into one line and exit code 2 (no traceback)."""
    from models.errors import ModelsError
    from service.lineage.errors import LineageError
    from service.settings import SettingsError
    from sharding.errors import ShardingError

    known: tuple[type[Exception], ...] = (
        ModelsError,
        ShardingError,
        LineageError,
        SettingsError,
        FileNotFoundError,
        ValueError,
    )
    try:
        yield
    except known as exc:
        fail(str(exc))


def progress_bars(enabled: bool) -> Any:
    """Rich bars on a terminal, plain lines (``models.progress_lines``) when stderr goes
    to a file or a pipe, nothing when disabled."""
    from service.cli.progress import RichProgress, plain_lines

    if enabled and not sys.stderr.isatty():
        return plain_lines()
    return RichProgress(enabled=enabled)


def floats(text: str | None) -> tuple[float, ...] | None:
    if text is None:
        return None
    try:
        return tuple(float(x) for x in text.split(",") if x.strip())
    except ValueError:
        fail(f"--deletion-priors must be comma-separated numbers, got {text!r}")


def open_service(*, check_schema: bool = True) -> Service:
    """The CLI's composition root: the service from the environment, with the broker's
    sender when one is configured, acting for the operator (``cli_principal``: all scopes,
    events name the OS user). The embedded SQLite database is migrated on the fly;
    PostgreSQL needs an explicit ``unlearn db upgrade`` (``check_schema=False``: the
    ``db`` commands themselves)."""
    from service.access.principal import cli_principal
    from service.app.broker import broker_send
    from service.core import Service
    from service.settings import Settings

    settings = Settings.from_env()
    svc = Service.open(settings, send=broker_send(settings)).acting_as(cli_principal())
    if not check_schema:
        return svc
    if svc.db.dialect == "sqlite" and not svc.schema_at_head():
        svc.upgrade_schema()
    svc.require_schema()
    return svc


def dump(data: Any) -> None:
    print(json.dumps(data, indent=1, default=str))


def dump_views(views: BaseModel | list[Any]) -> None:
    """Views as JSON, with exactly the keys the read side gave (see ``service.views``)."""
    from service.views import plain

    dump([plain(v) for v in views] if isinstance(views, list) else plain(views))
