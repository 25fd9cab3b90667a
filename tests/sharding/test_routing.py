"""Routing: cut depths, served routes and deletion plans.

The key acceptance property: after any series of deletions, no served checkpoint was
trained on a deleted slice, and the served depth is the best any sequence can offer.
"""

from __future__ import annotations

import dataclasses
from itertools import pairwise

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sharding import (
    AddressOutOfRangeError,
    Cut,
    InvalidSequenceError,
    LayoutMismatchError,
    RetrainTask,
    ShardingError,
    ShardRoute,
    SliceAddress,
    cut_depth,
    full_depths,
    plan_deletion,
    plan_routing,
    serve,
)

Layout = dict[int, tuple[tuple[int, ...], ...]]


def clean_prefix(sequence: tuple[int, ...], deleted: set[int]) -> int:
    """Brute force: length of the longest prefix holding no deleted slice."""
    for index, slice_ in enumerate(sequence):
        if slice_ in deleted:
            return index
    return len(sequence)


@st.composite
def layouts(draw: st.DrawFn) -> Layout:
    n_shards = draw(st.integers(1, 3))
    n_slices = draw(st.integers(1, 6))
    budget = draw(st.integers(1, 5))
    sequence = st.permutations(range(n_slices)).map(tuple)
    return {
        shard: tuple(draw(st.lists(sequence, min_size=budget, max_size=budget)))
        for shard in range(n_shards)
    }


def addresses(layout: Layout) -> st.SearchStrategy[SliceAddress]:
    n_slices = len(layout[0][0])
    return st.builds(SliceAddress, st.sampled_from(sorted(layout)), st.integers(0, n_slices - 1))


@st.composite
def deletion_series(draw: st.DrawFn) -> tuple[Layout, list[list[SliceAddress]]]:
    layout = draw(layouts())
    batches = draw(st.lists(st.lists(addresses(layout), max_size=3), min_size=1, max_size=6))
    return layout, batches


@settings(max_examples=300)
@given(deletion_series())
def test_served_prefixes_never_hold_deleted_slices(
    case: tuple[Layout, list[list[SliceAddress]]],
) -> None:
    layout, batches = case
    n_slices = len(layout[0][0])
    depths = full_depths(layout)
    deleted: dict[int, set[int]] = {shard: set() for shard in layout}
    for batch in batches:
        impact = plan_deletion(layout, depths, batch)
        for address in batch:
            deleted[address.shard].add(address.slice)
        for shard, sequences in layout.items():
            gone = deleted[shard]
            clean = [clean_prefix(sequence, gone) for sequence in sequences]
            # With no retraining, each depth is exactly the clean prefix ...
            assert impact.depths[shard] == tuple(clean)
            route = impact.routes[shard]
            # ... the route serves the best one, lowest index on ties ...
            assert route.depth == max(clean)
            if route.sequence is None:
                assert max(clean) == 0
                assert shard in impact.dead_shards
            else:
                assert route.sequence == clean.index(max(clean))
                # ... and the served steps were never trained on a deleted slice.
                assert not set(sequences[route.sequence][: route.depth]) & gone
                assert shard not in impact.dead_shards
            # Depths only go down.
            assert all(
                new <= old for new, old in zip(impact.depths[shard], depths[shard], strict=True)
            )
        expected_cuts = [
            Cut(shard, index, old, new)
            for shard in sorted(layout)
            for index, (old, new) in enumerate(
                zip(depths[shard], impact.depths[shard], strict=True)
            )
            if new < old
        ]
        assert list(impact.cuts) == expected_cuts
        # From a fully trained start, retraining covers exactly what was ever cut.
        assert list(impact.retrain) == [
            RetrainTask(shard, index, depth + 1)
            for shard in sorted(layout)
            for index, depth in enumerate(impact.depths[shard])
            if depth < n_slices
        ]
        depths = impact.depths


@given(deletion_series())
def test_first_plan_retrains_exactly_the_cut_sequences(
    case: tuple[Layout, list[list[SliceAddress]]],
) -> None:
    layout, batches = case
    impact = plan_deletion(layout, full_depths(layout), batches[0])
    assert [(t.shard, t.sequence) for t in impact.retrain] == [
        (c.shard, c.sequence) for c in impact.cuts
    ]
    assert all(
        t.from_step == c.to_depth + 1 for t, c in zip(impact.retrain, impact.cuts, strict=True)
    )
    assert all(c.from_depth == len(layout[c.shard][0]) for c in impact.cuts)


@given(st.data())
def test_plan_deletion_from_partial_depths(data: st.DataObject) -> None:
    layout = data.draw(layouts())
    n_slices = len(layout[0][0])
    depths = {
        shard: tuple(data.draw(st.integers(0, n_slices)) for _ in sequences)
        for shard, sequences in layout.items()
    }
    batch = data.draw(st.lists(addresses(layout), max_size=4))
    impact = plan_deletion(layout, depths, batch)
    for shard, sequences in layout.items():
        gone = {a.slice for a in batch if a.shard == shard}
        for index, sequence in enumerate(sequences):
            expected = min(depths[shard][index], clean_prefix(sequence, gone))
            assert impact.depths[shard][index] == expected
    # Sequences that were already short are still scheduled, from their own depth.
    assert {(t.shard, t.sequence, t.from_step) for t in impact.retrain} == {
        (shard, index, depth + 1)
        for shard, new in impact.depths.items()
        for index, depth in enumerate(new)
        if depth < n_slices
    }
    assert impact.routes == plan_routing(layout, impact.depths)[0]


@given(
    sequence=st.permutations(range(6)).map(tuple),
    depth=st.integers(0, 6),
    deleted=st.sets(st.integers(0, 5)),
)
def test_cut_depth_is_the_capped_clean_prefix(
    sequence: tuple[int, ...], depth: int, deleted: set[int]
) -> None:
    result = cut_depth(sequence, depth, deleted)
    assert result == min(depth, clean_prefix(sequence, deleted))
    assert not set(sequence[:result]) & deleted
    assert cut_depth(sequence, result, deleted) == result


def test_cut_depth_examples() -> None:
    assert cut_depth((2, 0, 1), 3, {1}) == 2
    assert cut_depth((2, 0, 1), 1, {1}) == 1
    assert cut_depth((2, 0, 1), 3, {2}) == 0
    assert cut_depth((2, 0, 1), 3, frozenset()) == 3
    with pytest.raises(ShardingError):
        cut_depth((0, 1), 3, set())
    with pytest.raises(ShardingError):
        cut_depth((0, 1), -1, set())


@given(st.lists(st.integers(0, 6), min_size=1, max_size=8))
def test_serve_picks_the_deepest_lowest_index(depths: list[int]) -> None:
    route = serve(4, depths)
    assert route.shard == 4
    assert route.depth == max(depths)
    if max(depths) == 0:
        assert route.sequence is None and route.dead
    else:
        assert route.sequence == depths.index(max(depths)) and not route.dead


def test_serve_examples_and_errors() -> None:
    assert serve(0, [2, 3, 3]) == ShardRoute(0, 1, 3)
    assert serve(1, [0, 0]) == ShardRoute(1, None, 0)
    with pytest.raises(LayoutMismatchError):
        serve(0, [])
    with pytest.raises(ShardingError):
        serve(0, [1, -1])
    with pytest.raises(ShardingError):
        ShardRoute(0, None, 2)
    with pytest.raises(ShardingError):
        ShardRoute(0, 1, 0)


def test_a_shard_dies_when_every_first_slice_is_deleted() -> None:
    layout = {0: ((0, 1, 2), (1, 2, 0)), 1: ((0, 1, 2), (1, 2, 0))}
    impact = plan_deletion(layout, full_depths(layout), [SliceAddress(0, 0), SliceAddress(0, 1)])
    assert impact.dead_shards == frozenset({0})
    assert impact.routes[0] == ShardRoute(0, None, 0)
    assert impact.routes[1] == ShardRoute(1, 0, 3)
    assert impact.depths == {0: (0, 0), 1: (3, 3)}
    assert impact.cuts == (Cut(0, 0, 3, 0), Cut(0, 1, 3, 0))
    assert impact.retrain == (RetrainTask(0, 0, 1), RetrainTask(0, 1, 1))
    with pytest.raises(dataclasses.FrozenInstanceError):
        impact.cuts = ()  # type: ignore[misc]


def test_plan_routing_and_full_depths() -> None:
    layout = {0: ((0, 1), (1, 0)), 3: ((1, 0), (0, 1))}
    assert full_depths(layout) == {0: (2, 2), 3: (2, 2)}
    routes, dead = plan_routing(layout, {0: (0, 0), 3: (1, 2)})
    assert routes == {0: ShardRoute(0, None, 0), 3: ShardRoute(3, 1, 2)}
    assert dead == frozenset({0})


def test_a_series_of_plans_is_monotone() -> None:
    layout = {0: ((0, 1, 2, 3), (1, 2, 3, 0), (2, 3, 0, 1), (3, 0, 1, 2))}
    depths = full_depths(layout)
    served = [4]
    for slice_ in (2, 0, 3, 1):
        depths = plan_deletion(layout, depths, [SliceAddress(0, slice_)]).depths
        served.append(plan_routing(layout, depths)[0][0].depth)
    assert served == [4, 3, 1, 1, 0]
    assert all(a >= b for a, b in pairwise(served))


@pytest.mark.parametrize(
    ("layout", "depths", "deleted", "error"),
    [
        ({0: ((0, 1),)}, {1: (2,)}, [], LayoutMismatchError),
        ({0: ((0, 1),)}, {0: (2, 2)}, [], LayoutMismatchError),
        ({0: ((0, 1),)}, {0: (3,)}, [], LayoutMismatchError),
        ({0: ((0, 1),)}, {0: (2,)}, [SliceAddress(1, 0)], AddressOutOfRangeError),
        ({0: ((0, 1),)}, {0: (2,)}, [SliceAddress(0, 2)], AddressOutOfRangeError),
        ({0: ((0, 0),)}, {0: (2,)}, [], InvalidSequenceError),
        ({0: ((0, 1), (0, 1, 2))}, {0: (2, 2)}, [], InvalidSequenceError),
        ({0: ()}, {0: ()}, [], LayoutMismatchError),
    ],
)
def test_plan_deletion_rejects_bad_input(
    layout: Layout, depths: dict[int, tuple[int, ...]], deleted: list[SliceAddress], error: type
) -> None:
    with pytest.raises(error):
        plan_deletion(layout, depths, deleted)
