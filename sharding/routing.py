"""Depths, served routes and deletion plans.

A shard holds B sequences of its L slices. The *depth* of a sequence is the number of
leading steps whose checkpoints may be served: the longest prefix holding no deleted
slice, never more than what has been trained. Invariants kept by every function here:

* depths only go down on deletion (retraining, which raises them, happens elsewhere);
* a served route's first ``depth`` slices hold no deleted slice;
* a shard is dead (route sequence ``None``, depth 0) exactly when all its depths are 0.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence, Set
from dataclasses import dataclass

from sharding.errors import (
    AddressOutOfRangeError,
    InvalidParameterError,
    InvalidSequenceError,
    LayoutMismatchError,
)
from sharding.placement import SliceAddress
from sharding.validation import as_int, as_permutation

Layout = Mapping[int, Sequence[Sequence[int]]]


def cut_depth(sequence: Sequence[int], current_depth: int, deleted_slices: Set[int]) -> int:
    """Return ``min(current_depth, index of the first deleted slice in sequence)``.

    That is the longest prefix without a deleted slice, capped by the current depth,
    so the result never exceeds ``current_depth``.
    """
    current_depth = as_int("current_depth", current_depth, minimum=0)
    if current_depth > len(sequence):
        raise InvalidParameterError(
            f"depth {current_depth} exceeds the sequence length {len(sequence)}"
        )
    for index, slice_ in enumerate(sequence[:current_depth]):
        if slice_ in deleted_slices:
            return index
    return current_depth


@dataclass(frozen=True)
class ShardRoute:
    """What a shard serves: ``sequence`` index and ``depth`` (steps 1..depth).

    A dead shard has ``sequence is None`` and ``depth == 0``, and only a dead shard does.
    """

    shard: int
    sequence: int | None
    depth: int

    def __post_init__(self) -> None:
        as_int("shard", self.shard, minimum=0)
        as_int("depth", self.depth, minimum=0)
        if self.sequence is not None:
            as_int("sequence", self.sequence, minimum=0)
        if (self.sequence is None) != (self.depth == 0):
            raise InvalidParameterError("a route has sequence None exactly when depth is 0")

    @property
    def dead(self) -> bool:
        """True when the shard has no servable checkpoint."""
        return self.sequence is None


def serve(shard: int, depths: Sequence[int]) -> ShardRoute:
    """Route ``shard`` to its deepest sequence; ties go to the lowest sequence index."""
    if not depths:
        raise LayoutMismatchError(f"shard {shard} has no sequences")
    values = [as_int(f"shard {shard} depth", d, minimum=0) for d in depths]
    best = max(values)
    if best == 0:
        return ShardRoute(shard=shard, sequence=None, depth=0)
    return ShardRoute(shard=shard, sequence=values.index(best), depth=best)


@dataclass(frozen=True)
class Cut:
    """Sequence ``sequence`` of ``shard`` dropped from ``from_depth`` to ``to_depth``."""

    shard: int
    sequence: int
    from_depth: int
    to_depth: int


@dataclass(frozen=True)
class RetrainTask:
    """Re-run steps ``from_step .. L`` (1-based); restore checkpoints ``1 .. from_step-1``."""

    shard: int
    sequence: int
    from_step: int


@dataclass(frozen=True)
class DeletionImpact:
    """The outcome of :func:`plan_deletion`.

    ``depths`` holds the new depths of every shard; ``routes`` every shard's route;
    ``dead_shards`` the shards whose route is dead; ``cuts`` only the sequences whose
    depth dropped, and ``retrain`` every sequence below full depth; both sorted by
    (shard, sequence).
    """

    depths: dict[int, tuple[int, ...]]
    routes: dict[int, ShardRoute]
    dead_shards: frozenset[int]
    cuts: tuple[Cut, ...]
    retrain: tuple[RetrainTask, ...]


def _checked_layout(sequences: Layout) -> dict[int, tuple[tuple[int, ...], ...]]:
    """Return the layout as tuples; every shard's sequences permute one range(L)."""
    layout: dict[int, tuple[tuple[int, ...], ...]] = {}
    for shard, shard_sequences in sequences.items():
        as_int("shard", shard, minimum=0)
        if not shard_sequences:
            raise LayoutMismatchError(f"shard {shard} has no sequences")
        n_slices = len(shard_sequences[0])
        if n_slices == 0:
            raise InvalidSequenceError(f"shard {shard} has an empty sequence")
        layout[shard] = tuple(
            as_permutation(seq, n_slices, where=f"shard {shard} sequence {index}")
            for index, seq in enumerate(shard_sequences)
        )
    return layout


def _checked_depths(
    layout: Mapping[int, tuple[tuple[int, ...], ...]], depths: Mapping[int, Sequence[int]]
) -> dict[int, tuple[int, ...]]:
    if set(depths) != set(layout):
        raise LayoutMismatchError(
            f"depths cover shards {sorted(depths)}, sequences cover {sorted(layout)}"
        )
    checked: dict[int, tuple[int, ...]] = {}
    for shard, shard_sequences in layout.items():
        shard_depths = depths[shard]
        if len(shard_depths) != len(shard_sequences):
            raise LayoutMismatchError(
                f"shard {shard} has {len(shard_sequences)} sequences but {len(shard_depths)} depths"
            )
        n_slices = len(shard_sequences[0])
        values = tuple(as_int(f"shard {shard} depth", d, minimum=0) for d in shard_depths)
        if any(d > n_slices for d in values):
            raise LayoutMismatchError(f"shard {shard} has a depth above {n_slices}: {values}")
        checked[shard] = values
    return checked


def full_depths(sequences: Layout) -> dict[int, tuple[int, ...]]:
    """Every sequence of every shard at full depth ``L`` (fully trained, nothing deleted)."""
    layout = _checked_layout(sequences)
    return {shard: tuple(len(seq) for seq in seqs) for shard, seqs in layout.items()}


def plan_routing(
    sequences: Layout, depths: Mapping[int, Sequence[int]]
) -> tuple[dict[int, ShardRoute], frozenset[int]]:
    """Return every shard's route and the set of dead shards for the given depths."""
    checked = _checked_depths(_checked_layout(sequences), depths)
    routes = {shard: serve(shard, shard_depths) for shard, shard_depths in checked.items()}
    return routes, frozenset(shard for shard, route in routes.items() if route.dead)


def plan_deletion(
    sequences: Layout,
    depths: Mapping[int, Sequence[int]],
    deleted: Iterable[SliceAddress],
) -> DeletionImpact:
    """Cut every sequence holding a deleted slice and re-route all shards.

    The new depth of each sequence is :func:`cut_depth` of the old one; shards without
    a deleted slice keep theirs. ``retrain`` holds a task for every sequence left below
    full depth (including ones already below full depth before this deletion), with
    ``from_step = depth + 1``.

    Raises :class:`~sharding.errors.LayoutMismatchError` when ``depths`` and
    ``sequences`` disagree in shape and :class:`~sharding.errors.AddressOutOfRangeError`
    for an address outside the layout.
    """
    layout = _checked_layout(sequences)
    old = _checked_depths(layout, depths)
    hit: dict[int, set[int]] = {}
    for address in deleted:
        shard_sequences = layout.get(address.shard)
        if shard_sequences is None or address.slice >= len(shard_sequences[0]):
            raise AddressOutOfRangeError(f"{address!r} is outside the layout")
        hit.setdefault(address.shard, set()).add(address.slice)

    new: dict[int, tuple[int, ...]] = {}
    cuts: list[Cut] = []
    retrain: list[RetrainTask] = []
    for shard in sorted(layout):
        slices = hit.get(shard, set())
        new[shard] = tuple(
            cut_depth(seq, depth, slices)
            for seq, depth in zip(layout[shard], old[shard], strict=True)
        )
        n_slices = len(layout[shard][0])
        for index, (before, after) in enumerate(zip(old[shard], new[shard], strict=True)):
            if after < before:
                cuts.append(Cut(shard=shard, sequence=index, from_depth=before, to_depth=after))
            if after < n_slices:
                retrain.append(RetrainTask(shard=shard, sequence=index, from_step=after + 1))
    routes = {shard: serve(shard, shard_depths) for shard, shard_depths in new.items()}
    return DeletionImpact(
        depths=new,
        routes=routes,
        dead_shards=frozenset(shard for shard, route in routes.items() if route.dead),
        cuts=tuple(cuts),
        retrain=tuple(retrain),
    )
