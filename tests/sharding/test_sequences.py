"""Sequence selection: cyclic rotation and BMS."""

from __future__ import annotations

import math
from collections import Counter
from itertools import permutations

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from sharding import (
    InvalidParameterError,
    LayoutMismatchError,
    MissingDeletionProbsError,
    SelectionMethod,
    ShardingError,
    bms_sequences,
    cyclic_sequences,
    select_sequences,
)


def assert_valid(sequences: tuple[tuple[int, ...], ...], n_slices: int, budget: int) -> None:
    assert len(sequences) == budget
    assert len(set(sequences)) == budget, "sequences must be distinct"
    for sequence in sequences:
        assert sorted(sequence) == list(range(n_slices))


def max_use_per_position(sequences: tuple[tuple[int, ...], ...]) -> int:
    """The most sequences that share one slice at one position."""
    return max(max(Counter(column).values()) for column in zip(*sequences, strict=True))


def is_latin_square(sequences: tuple[tuple[int, ...], ...], n_slices: int) -> bool:
    return len(sequences) == n_slices and all(
        sorted(column) == list(range(n_slices)) for column in zip(*sequences, strict=True)
    )


@st.composite
def sizes(draw: st.DrawFn, max_slices: int, max_budget: int) -> tuple[int, int]:
    n_slices = draw(st.integers(1, max_slices))
    budget = draw(st.integers(1, min(math.factorial(n_slices), max_budget)))
    return n_slices, budget


@given(sizes(max_slices=7, max_budget=200))
def test_cyclic_gives_distinct_permutations(size: tuple[int, int]) -> None:
    n_slices, budget = size
    sequences = cyclic_sequences(n_slices, budget)
    assert_valid(sequences, n_slices, budget)
    # Prefixes are kept: the first min(B, L) sequences are the plain rotations.
    for k, sequence in enumerate(sequences[: min(budget, n_slices)]):
        assert sequence == tuple((k + i) % n_slices for i in range(n_slices))
    # First elements stay balanced: each slice first in floor or ceil of B / L sequences.
    firsts = Counter(sequence[0] for sequence in sequences)
    assert max(firsts.values()) <= math.ceil(budget / n_slices)
    if budget >= n_slices:
        assert min(firsts[s] for s in range(n_slices)) >= budget // n_slices


@given(st.integers(1, 9))
def test_cyclic_is_a_latin_square_at_budget_l(n_slices: int) -> None:
    assert is_latin_square(cyclic_sequences(n_slices, n_slices), n_slices)


@pytest.mark.parametrize("n_slices", [1, 2, 3, 4, 5])
def test_every_permutation_is_reachable(n_slices: int) -> None:
    everything = set(permutations(range(n_slices)))
    assert set(cyclic_sequences(n_slices, math.factorial(n_slices))) == everything
    assert set(bms_sequences([1.0] * n_slices, math.factorial(n_slices))) == everything


@pytest.mark.parametrize(("n_slices", "budget"), [(0, 1), (3, 0), (3, 7), (1, 2), (3, True)])
def test_cyclic_rejects_bad_sizes(n_slices: int, budget: int) -> None:
    with pytest.raises(InvalidParameterError):
        cyclic_sequences(n_slices, budget)


probabilities = st.floats(min_value=0.0, max_value=1.0, allow_nan=False)


@settings(deadline=None, max_examples=60)
@given(
    probs=st.lists(probabilities, min_size=1, max_size=5),
    budget_fraction=st.floats(0.0, 1.0),
)
def test_bms_gives_distinct_permutations(probs: list[float], budget_fraction: float) -> None:
    assume(sum(probs) > 0)
    n_slices = len(probs)
    budget = max(1, round(budget_fraction * min(math.factorial(n_slices), 30)))
    sequences = bms_sequences(probs, budget)
    assert_valid(sequences, n_slices, budget)
    assert sequences == bms_sequences(probs, budget), "BMS must be deterministic"
    # Every position spreads the slices: none used more than ceil(B / L) times.
    assert max_use_per_position(sequences) <= math.ceil(budget / n_slices)
    if budget <= n_slices:
        assert len({sequence[0] for sequence in sequences}) == budget


@settings(deadline=None, max_examples=30)
@given(sizes(max_slices=6, max_budget=40))
def test_bms_uniform_spreads_first_elements(size: tuple[int, int]) -> None:
    n_slices, budget = size
    sequences = bms_sequences([1.0] * n_slices, budget)
    assert_valid(sequences, n_slices, budget)
    assert max_use_per_position(sequences) == math.ceil(budget / n_slices)
    if budget == n_slices:
        assert is_latin_square(sequences, n_slices)


@settings(deadline=None, max_examples=40)
@given(
    others=st.lists(st.floats(0.0, 1.0), min_size=1, max_size=5),
    hot=st.integers(0, 5),
    data=st.data(),
)
def test_bms_never_puts_a_likely_slice_first(
    others: list[float], hot: int, data: st.DataObject
) -> None:
    total = sum(others)
    shares = [0.1 * o / total for o in others] if total > 0 else [0.1 / len(others)] * len(others)
    hot = min(hot, len(others))
    probs = [*shares[:hot], 0.9, *shares[hot:]]
    budget = data.draw(st.integers(1, len(probs) - 1))
    sequences = bms_sequences(probs, budget)
    assert all(sequence[0] != hot for sequence in sequences)


@settings(deadline=None, max_examples=40)
@given(order=st.permutations(range(5)), budget=st.integers(1, 5))
def test_bms_puts_the_least_likely_slices_first(order: list[int], budget: int) -> None:
    # Distinct probabilities 1..5 (scaled); the B least likely slices lead.
    probs = [float(rank + 1) for rank in order]
    sequences = bms_sequences(probs, budget, horizon=10)
    least_likely = {order.index(rank) for rank in range(budget)}
    assert {sequence[0] for sequence in sequences} == least_likely


@pytest.mark.parametrize(
    ("probs", "budget", "horizon"),
    [
        ([], 1, 100),
        ([0.0, 0.0], 1, 100),
        ([-0.1, 1.1], 1, 100),
        ([float("nan")], 1, 100),
        ([1.0, 1.0], 3, 100),
        ([1.0, 1.0], 0, 100),
        ([1.0, 1.0], 1, 0),
    ],
)
def test_bms_rejects_bad_input(probs: list[float], budget: int, horizon: int) -> None:
    with pytest.raises(InvalidParameterError):
        bms_sequences(probs, budget, horizon)


def test_select_cyclic_gives_every_shard_the_rotations() -> None:
    chosen = select_sequences(SelectionMethod.CYCLIC, n_shards=3, n_slices=4, budget=2)
    assert chosen == {shard: cyclic_sequences(4, 2) for shard in range(3)}


def test_select_bms_uses_each_shards_probs() -> None:
    probs = {0: [0.9, 0.05, 0.05], 1: [0.05, 0.05, 0.9]}
    chosen = select_sequences("bms", n_shards=2, n_slices=3, budget=2, deletion_probs=probs)  # type: ignore[arg-type]
    assert chosen == {shard: bms_sequences(p, 2) for shard, p in probs.items()}
    assert all(sequence[0] != 0 for sequence in chosen[0])
    assert all(sequence[0] != 2 for sequence in chosen[1])


def test_select_bms_names_the_shard_without_probs() -> None:
    with pytest.raises(MissingDeletionProbsError, match="shard 1") as caught:
        select_sequences(
            SelectionMethod.BMS, n_shards=3, n_slices=2, budget=1, deletion_probs={0: [1, 1]}
        )
    assert caught.value.shard == 1
    with pytest.raises(MissingDeletionProbsError, match="shard 0"):
        select_sequences(SelectionMethod.BMS, n_shards=1, n_slices=2, budget=1)


def test_select_rejects_mismatched_input() -> None:
    with pytest.raises(LayoutMismatchError):
        select_sequences(
            SelectionMethod.BMS, n_shards=1, n_slices=3, budget=1, deletion_probs={0: [1, 1]}
        )
    with pytest.raises(LayoutMismatchError):
        select_sequences(
            SelectionMethod.BMS,
            n_shards=1,
            n_slices=2,
            budget=1,
            deletion_probs={0: [1, 1], 5: [1, 1]},
        )
    with pytest.raises(ShardingError):
        select_sequences(
            SelectionMethod.CYCLIC, n_shards=1, n_slices=2, budget=1, deletion_probs={0: [1, 1]}
        )
    with pytest.raises(ShardingError):
        select_sequences("random", n_shards=1, n_slices=2, budget=1)  # type: ignore[arg-type]


def test_selection_method_values_are_stable() -> None:
    assert [m.value for m in SelectionMethod] == ["cyclic", "bms"]
    assert SelectionMethod("bms") is SelectionMethod.BMS
