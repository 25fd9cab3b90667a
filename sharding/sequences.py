"""Choosing the B training sequences (slice permutations) of each shard.

A sequence is a ``tuple[int, ...]`` permuting ``range(n_slices)``. Every function here
returns ``budget`` distinct sequences, so ``budget`` may not exceed ``n_slices!``.
"""

from __future__ import annotations

import enum
import math
from collections.abc import Mapping, Sequence

from sharding.errors import (
    InvalidParameterError,
    LayoutMismatchError,
    MissingDeletionProbsError,
)
from sharding.validation import as_int

__all__ = ["SelectionMethod", "cyclic_sequences", "select_sequences"]


class SelectionMethod(enum.StrEnum):
    """How sequences are chosen: cyclic rotation (uniform prior) or BMS (known probs)."""

    CYCLIC = "cyclic"
    BMS = "bms"


def _rotate(items: tuple[int, ...], by: int) -> tuple[int, ...]:
    return items[by:] + items[:by]


def cyclic_sequences(n_slices: int, budget: int) -> tuple[tuple[int, ...], ...]:
    """Return ``budget`` distinct sequences by cyclic rotation.

    For ``budget <= n_slices``: rotation ``k`` is ``(k, k+1, ..., k-1) mod L``, so each
    slice is first in at most one sequence and ``budget == n_slices`` is a Latin square
    (every slice exactly once at every position).

    For ``budget > n_slices`` the set grows level by level, keeping prefixes: at level
    ``p = 1, 2, ...`` every sequence that existed when the level began spawns copies
    whose suffix after position ``p`` is rotated by ``1 .. L-p-1``. Within a level the
    rotation amount is the outer loop, so a partial level spreads the new sequences
    over all parents (first elements stay within one of each other in count). After
    level ``p`` all ``L!/(L-p-1)!`` sequences have distinct ``(p+1)``-prefixes, so the
    sequences stay distinct up to all ``L!`` permutations.

    Raises :class:`~sharding.errors.InvalidParameterError` unless
    ``1 <= budget <= n_slices!``.
    """
    n_slices = as_int("n_slices", n_slices, minimum=1)
    budget = as_int("budget", budget, minimum=1)
    if budget > math.factorial(n_slices):
        raise InvalidParameterError(
            f"budget {budget} exceeds the {math.factorial(n_slices)} permutations "
            f"of {n_slices} slices"
        )
    base = tuple(range(n_slices))
    sequences = [_rotate(base, k) for k in range(min(budget, n_slices))]
    level = 1
    while len(sequences) < budget:
        parents = list(sequences)
        for by in range(1, n_slices - level):
            for parent in parents:
                sequences.append(parent[:level] + _rotate(parent[level:], by))
                if len(sequences) == budget:
                    return tuple(sequences)
        level += 1
    return tuple(sequences)


def select_sequences(
    method: SelectionMethod,
    *,
    n_shards: int,
    n_slices: int,
    budget: int,
    deletion_probs: Mapping[int, Sequence[float]] | None = None,
) -> dict[int, tuple[tuple[int, ...], ...]]:
    """Return ``budget`` sequences for every shard ``0 .. n_shards-1``.

    ``CYCLIC`` gives every shard the same rotations and takes no probabilities (passing
    some raises, to catch a caller that meant BMS). ``BMS`` needs ``deletion_probs[shard]`` (length
    ``n_slices``) for every shard and raises
    :class:`~sharding.errors.MissingDeletionProbsError` naming the first shard without.
    """
    try:
        method = SelectionMethod(method)
    except ValueError:
        raise InvalidParameterError(f"unknown selection method {method!r}") from None
    n_shards = as_int("n_shards", n_shards, minimum=1)
    n_slices = as_int("n_slices", n_slices, minimum=1)
    budget = as_int("budget", budget, minimum=1)
    if method is SelectionMethod.CYCLIC:
        if deletion_probs is not None:
            raise InvalidParameterError("cyclic selection takes no deletion_probs")
        sequences = cyclic_sequences(n_slices, budget)
        return {shard: sequences for shard in range(n_shards)}
    from sharding.bms import bms_sequences  # numpy and scipy: only for BMS

    probs = deletion_probs or {}
    extra = sorted(set(probs) - set(range(n_shards)))
    if extra:
        raise LayoutMismatchError(f"deletion_probs names shards {extra} outside 0..{n_shards - 1}")
    result: dict[int, tuple[tuple[int, ...], ...]] = {}
    for shard in range(n_shards):
        if shard not in probs:
            raise MissingDeletionProbsError(shard)
        if len(probs[shard]) != n_slices:
            raise LayoutMismatchError(
                f"deletion_probs for shard {shard} has {len(probs[shard])} entries, "
                f"expected {n_slices}"
            )
        result[shard] = bms_sequences(probs[shard], budget)
    return result
