"""Shared pieces of the CLI: console, one-line user errors, progress bars, option types."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from enum import StrEnum
from typing import Any, NoReturn

import typer
from rich.console import Console

out = Console(width=None if sys.stdout.isatty() else 120)

EXIT_USER_ERROR = 2


class Selection(StrEnum):
    cyclic = "cyclic"
    bms = "bms"


def fail(message: str, code: int = EXIT_USER_ERROR) -> NoReturn:
    Console(stderr=True).print(f"[bold red]error:[/] {message}", highlight=False)
    raise typer.Exit(code)


@contextmanager
def user_errors() -> Iterator[None]:
    """Turn the library's documented errors into one line and exit code 2 (no traceback)."""
    from models.data.errors import DataError
    from service.lineage.errors import LineageError
    from service.settings import SettingsError
    from sharding.errors import ShardingError

    known: tuple[type[Exception], ...] = (
        DataError,
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
    except RuntimeError as exc:
        if type(exc).__module__.startswith("models."):
            fail(str(exc))
        raise


def progress_bars(enabled: bool) -> Any:
    from service.cli.progress import RichProgress

    return RichProgress(enabled=enabled and sys.stderr.isatty())


def floats(text: str | None) -> tuple[float, ...] | None:
    if text is None:
        return None
    try:
        return tuple(float(x) for x in text.split(",") if x.strip())
    except ValueError:
        fail(f"--deletion-priors must be comma-separated numbers, got {text!r}")
