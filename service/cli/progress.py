"""Rich progress bars behind the ``models.progress.Progress`` seam, and plain lines where
bars cannot draw (stderr is a file or a pipe, a worker's log)."""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from models.progress_lines import INTERVAL_S, LineProgress


class RichProgress:
    """One bar per task; bars stay on screen when done. Writes to stderr."""

    def __init__(self, console: Console | None = None, *, enabled: bool = True) -> None:
        self._progress = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
            console=console or Console(stderr=True),
            disable=not enabled,
        )

    def __enter__(self) -> RichProgress:
        self._progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._progress.stop()

    @contextmanager
    def task(
        self, description: str, total: int, *, unit: str = "items"
    ) -> Iterator[Callable[[int], None]]:
        task_id = self._progress.add_task(description, total=total)

        def advance(n: int) -> None:
            self._progress.advance(task_id, n)

        yield advance
        self._progress.update(task_id, completed=total)


def plain_lines(interval_s: float = INTERVAL_S) -> LineProgress:
    """Progress lines on stderr (looked up at each line, so a redirected stderr is used)."""
    return LineProgress(
        lambda line: print(line, file=sys.stderr, flush=True), interval_s=interval_s
    )


def log_progress_lines() -> None:
    """Show the ``unlearn.progress`` log (a local worker's jobs) on stderr, once."""
    logger = logging.getLogger("unlearn.progress")
    if not logger.handlers:
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("%(asctime)s %(message)s"))
        logger.addHandler(handler)
        logger.setLevel(logging.INFO)
        logger.propagate = False
