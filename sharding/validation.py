"""Input checks shared by the sharding modules.

Each helper returns the value in canonical form (plain ``int``, tuple) or raises a
:class:`~sharding.errors.ShardingError` subclass whose message names the parameter.
"""

from __future__ import annotations

import math
import operator
from collections.abc import Sequence
from typing import SupportsIndex

from sharding.errors import InvalidParameterError, InvalidSequenceError


def as_int(name: str, value: object, *, minimum: int) -> int:
    """Return ``value`` as a plain ``int`` that is ``>= minimum``.

    Accepts anything with ``__index__`` (so numpy integers pass) but rejects ``bool``,
    which is almost always a bug at these call sites.
    """
    if type(value) is int:  # fast path; the protocol check below is slow
        number = value
    elif isinstance(value, bool) or not isinstance(value, SupportsIndex):
        raise InvalidParameterError(f"{name} must be an int, got {type(value).__name__}")
    else:
        number = operator.index(value)
    if number < minimum:
        raise InvalidParameterError(f"{name} must be >= {minimum}, got {number}")
    return number


def as_permutation(sequence: Sequence[int], n_slices: int, *, where: str) -> tuple[int, ...]:
    """Return ``sequence`` as a tuple after checking it permutes ``range(n_slices)``."""
    try:
        items = tuple(as_int(f"{where} element", s, minimum=0) for s in sequence)
    except InvalidParameterError as exc:
        raise InvalidSequenceError(str(exc)) from None
    if len(items) != n_slices or set(items) != set(range(n_slices)):
        raise InvalidSequenceError(
            f"{where} must be a permutation of range({n_slices}), got {items!r}"
        )
    return items


def normalise_probs(probs: Sequence[float], *, name: str = "deletion_probs") -> tuple[float, ...]:
    """Return ``probs`` scaled to sum to 1.

    Invariants of the result: same length as the input (>= 1), every entry finite and
    ``>= 0``, and the entries sum to 1 up to rounding.
    """
    values = tuple(float(p) for p in probs)
    if not values:
        raise InvalidParameterError(f"{name} must not be empty")
    if any(not math.isfinite(p) or p < 0.0 for p in values):
        raise InvalidParameterError(f"{name} must be finite and >= 0, got {values!r}")
    total = math.fsum(values)
    if total <= 0.0:
        raise InvalidParameterError(f"{name} must not be all zero")
    return tuple(p / total for p in values)
