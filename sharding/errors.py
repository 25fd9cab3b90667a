"""Errors raised by :mod:`sharding`.

Every error is a :class:`ValueError`, because each one means the caller passed
input that does not describe a valid layout. The tree::

    ValueError
    └── ShardingError                  base of everything raised here
        ├── InvalidParameterError      a size, budget, secret, id or probability is out of range
        ├── InvalidSequenceError       a sequence is not a permutation of its shard's slices
        ├── LayoutMismatchError        sequences and depths describe different shapes
        ├── AddressOutOfRangeError     a SliceAddress names a shard or slice that does not exist
        └── MissingDeletionProbsError  BMS was asked for a shard without deletion probabilities
"""

from __future__ import annotations


class ShardingError(ValueError):
    """Base class: the input does not describe a valid sharding layout."""


class InvalidParameterError(ShardingError):
    """A scalar or vector parameter is outside its documented range."""


class InvalidSequenceError(ShardingError):
    """A sequence is not a permutation of ``range(n_slices)`` or sequences repeat."""


class LayoutMismatchError(ShardingError):
    """Two structures (sequences, depths, probabilities) disagree on shards or sizes."""


class AddressOutOfRangeError(ShardingError):
    """A :class:`~sharding.placement.SliceAddress` lies outside the layout."""


class MissingDeletionProbsError(ShardingError):
    """BMS needs per-slice deletion probabilities for every shard; one shard has none."""

    def __init__(self, shard: int) -> None:
        super().__init__(f"BMS needs deletion probabilities for shard {shard}, got none")
        self.shard = shard
