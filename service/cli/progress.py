"""Rich progress bars behind the ``models.progress.Progress`` seam."""

from __future__ import annotations

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
    def task(self, description: str, total: int) -> Iterator[Callable[[int], None]]:
        task_id = self._progress.add_task(description, total=total)

        def advance(n: int) -> None:
            self._progress.advance(task_id, n)

        yield advance
        self._progress.update(task_id, completed=total)
