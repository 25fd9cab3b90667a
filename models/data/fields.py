"""Parsers for single field values of an imported row.

Each takes the raw value (a CSV cell string, or any JSON value) and returns the typed
value or raises ``FieldError``; the importer adds the source and line.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from typing import Any

from models.data.errors import DataError
from models.data.records import check_identifier
from models.errors import ModelsError


class FieldError(ModelsError):
    """A bad value in one row; ``column`` names the field when there is one."""

    def __init__(self, message: str, column: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.column = column


def is_digits(token: str) -> bool:
    return token.isascii() and token.isdigit()


def parse_identifier(value: object, column: str) -> str | None:
    """An id string, or None when absent/empty; JSON integers are accepted as ids."""
    if value is None:
        return None
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, str):
        raise FieldError(f"{column} must be a string, got {type(value).__name__}", column)
    value = value.strip()
    if not value:
        return None
    try:
        return check_identifier(value, column)
    except DataError as exc:
        raise FieldError(exc.message, column) from None


def parse_text(value: object) -> str:
    if not isinstance(value, str):
        raise FieldError(f"text must be a string, got {type(value).__name__}", "text")
    text = value.strip()
    if not text:
        raise FieldError("empty text", "text")
    return text


def parse_features(value: object, *, cell: bool) -> tuple[float, ...]:
    """Features as floats, from a CSV ``cell`` (a JSON array or space-separated numbers)
    or, with ``cell=False``, from a JSON list."""
    items: object = value
    if cell and isinstance(value, str):
        if not value.lstrip().startswith("["):
            return _floats(value.split(), parse=float)
        try:
            items = json.loads(value)
        except (json.JSONDecodeError, RecursionError):
            raise FieldError("features is not a valid JSON array", "features") from None
    if not isinstance(items, list):
        raise FieldError("features must be a list of numbers", "features")
    return _floats(items, parse=_json_number)


def _json_number(item: Any) -> float:
    if type(item) not in _JSON_NUMBER_TYPES:  # bool is an int subclass, but not a number here
        raise TypeError(item)
    return float(item)


_JSON_NUMBER_TYPES = frozenset({int, float})


def _floats(items: list[Any], *, parse: Callable[[Any], float]) -> tuple[float, ...]:
    if not items:
        raise FieldError("empty features", "features")
    # Fast path in C (an MNIST-sized row has 784 values); the checked loop below runs
    # only when it fails, to name the offending value.
    try:
        if parse is float or _JSON_NUMBER_TYPES.issuperset(map(type, items)):
            numbers = tuple(map(float, items))
            if all(map(math.isfinite, numbers)):
                return numbers
    except (ValueError, OverflowError):
        pass
    checked: list[float] = []
    for item in items:
        try:
            number = parse(item)
        except (TypeError, ValueError, OverflowError):
            raise FieldError(f"features value {item!r} is not a number", "features") from None
        if not math.isfinite(number):
            raise FieldError(f"features value {item!r} is not finite", "features")
        checked.append(number)
    return tuple(checked)


def parse_label(value: object) -> int | str:
    if value is None or (isinstance(value, str) and not value.strip()):
        raise FieldError("missing label", "label")
    if isinstance(value, int) and not isinstance(value, bool):
        if value < 0:
            raise FieldError(f"label {value} is negative", "label")
        return value
    if not isinstance(value, str):
        raise FieldError(
            f"label must be an integer or a string, got {type(value).__name__}", "label"
        )
    return value.strip()
