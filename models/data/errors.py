"""The one error type of the data layer.

``DataError`` is a :class:`~models.errors.ModelsError` and also a ``ValueError``, so callers
that only know "bad input" still catch it; the service maps it onto its own error tree by
``code``.  It carries where the problem is (``source``, 1-based physical ``line``, optional
``column``) as attributes, and renders them as a prefix:
``data.csv line 7: duplicate record_id "r3" (first seen on line 4)``.
"""

from __future__ import annotations

import functools
from typing import Any

from models.errors import ModelsError


class DataError(ModelsError, ValueError):
    """Invalid, missing or unreadable data; raised before anything is half-built."""

    code = "data_invalid"

    def __init__(
        self,
        message: str,
        *,
        source: str | None = None,
        line: int | None = None,
        column: str | None = None,
    ) -> None:
        self.message = message
        self.source = source
        self.line = line
        self.column = column
        super().__init__(self._render())

    def _render(self) -> str:
        where = self.source or ""
        if self.line is not None:
            where = f"{where} line {self.line}".lstrip()
        return f"{where}: {self.message}" if where else self.message

    def __reduce__(self) -> tuple[Any, tuple[str]]:
        # Keyword-only attributes would be lost by the default Exception pickling, and
        # errors do cross process boundaries (task results, subprocess workers).
        rebuild = functools.partial(
            type(self), source=self.source, line=self.line, column=self.column
        )
        return rebuild, (self.message,)
