"""A minimal progress seam: library code reports, entry points decide how to show it."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from typing import Protocol

Advance = Callable[[int], None]


class Progress(Protocol):
    def task(
        self, description: str, total: int, *, unit: str = "items"
    ) -> AbstractContextManager[Advance]:
        """A context whose value is called with the number of finished units (``unit``:
        what one is, in the plural: ``examples``, ``records``)."""
        ...


class NullProgress:
    @contextmanager
    def task(self, description: str, total: int, *, unit: str = "items") -> Iterator[Advance]:
        yield lambda n: None


NULL_PROGRESS = NullProgress()
