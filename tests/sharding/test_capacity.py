"""Deletion capacity: closed forms, simulation, and a naive cross-check."""

from __future__ import annotations

import math
from itertools import pairwise

import numpy as np
import pytest

from sharding import (
    InvalidParameterError,
    LayoutMismatchError,
    ShardingError,
    bms_sequences,
    cut_depth,
    cyclic_sequences,
    harmonic,
    s3t_expected_capacity,
    serve,
    simulate_capacity,
    sisa_expected_capacity,
)


def test_harmonic_numbers() -> None:
    assert harmonic(0) == 0.0
    assert harmonic(1) == 1.0
    assert harmonic(4) == pytest.approx(25 / 12)
    with pytest.raises(InvalidParameterError):
        harmonic(-1)


def test_closed_forms() -> None:
    assert sisa_expected_capacity(5, 6) == pytest.approx(30 * harmonic(5))
    assert sisa_expected_capacity(5, 6) == pytest.approx(68.5)
    assert s3t_expected_capacity(5, 6, 6) == pytest.approx(30 * harmonic(30))
    # Budgets beyond L add no capacity: the first slices already cover every slice.
    assert s3t_expected_capacity(5, 6, 12) == s3t_expected_capacity(5, 6, 6)
    assert s3t_expected_capacity(5, 6, 1) == sisa_expected_capacity(5, 6)


@pytest.mark.parametrize("budget", [1, 2, 3, 6])
def test_s3t_matches_closed_form(budget: int) -> None:
    result = simulate_capacity(method="s3t", n_shards=5, n_slices=6, budget=budget)
    expected = s3t_expected_capacity(5, 6, budget)
    assert result.mean_deletions_to_death == pytest.approx(expected, rel=0.03)
    assert result.stderr < 0.01 * expected
    assert (result.method, result.budget, result.trials) == ("s3t", budget, 20000)


def test_sisa_matches_closed_form() -> None:
    result = simulate_capacity(method="sisa", n_shards=5, n_slices=6)
    assert result.mean_deletions_to_death == pytest.approx(sisa_expected_capacity(5, 6), rel=0.03)
    assert result.budget == 1


@pytest.mark.parametrize(("method", "budget"), [("s3t", 3), ("sisa", 1)])
def test_depth_curve_starts_full_and_never_rises(method: str, budget: int) -> None:
    result = simulate_capacity(
        method=method,  # type: ignore[arg-type]
        n_shards=3,
        n_slices=4,
        budget=budget,
        trials=2000,
    )
    curve = result.depth_curve
    assert curve[0] == 4.0
    assert all(a >= b for a, b in pairwise(curve))
    # By default the curve runs until every trial is dead.
    assert curve[-1] == 0.0
    assert len(curve) - 1 >= result.mean_deletions_to_death


def test_depth_curve_after_one_deletion_is_exact() -> None:
    # One deletion hits one shard; in a Latin square its best sequence keeps L-1.
    result = simulate_capacity(method="s3t", n_shards=5, n_slices=6, budget=6, max_t=1)
    assert result.depth_curve == pytest.approx((6.0, (4 * 6 + 5) / 5))
    sisa = simulate_capacity(method="sisa", n_shards=1, n_slices=4, max_t=1, trials=50_000)
    # SISA keeps (number of clean leading slices) = k with probability 1/4 each.
    assert sisa.depth_curve[1] == pytest.approx(1.5, rel=0.03)


def test_max_t_fixes_the_curve_length() -> None:
    result = simulate_capacity(method="s3t", n_shards=2, n_slices=3, budget=2, max_t=500)
    assert len(result.depth_curve) == 501
    assert result.depth_curve[-1] == 0.0


def test_same_seed_same_result() -> None:
    kwargs = {"method": "s3t", "n_shards": 3, "n_slices": 4, "budget": 2, "trials": 500}
    first = simulate_capacity(seed=7, **kwargs)  # type: ignore[arg-type]
    assert simulate_capacity(seed=7, **kwargs) == first  # type: ignore[arg-type]
    assert simulate_capacity(seed=8, **kwargs) != first  # type: ignore[arg-type]


def naive_simulation(
    sequences: dict[int, tuple[tuple[int, ...], ...]],
    probs: list[float],
    trials: int,
    seed: int,
) -> tuple[list[int], np.ndarray]:
    """Deletions applied one at a time with cut_depth and serve.

    Returns the deletions to death of each trial and the mean served depth (over
    shards and trials) after t = 0..9 deletions.
    """
    rng = np.random.default_rng(seed)
    n_shards, n_slices = len(sequences), len(probs)
    p = np.array(probs) / sum(probs)
    # Every cell has probability >= 0.05 here, so 400 draws kill all shards except
    # with probability about 1e-8 per trial.
    all_shards = rng.integers(n_shards, size=(trials, 400)).tolist()
    all_slices = rng.choice(n_slices, size=(trials, 400), p=p).tolist()
    deaths = []
    served = np.zeros(10)
    for shards, slices in zip(all_shards, all_slices, strict=True):
        depths = {shard: [len(seq) for seq in seqs] for shard, seqs in sequences.items()}
        served[0] += n_slices
        for count, (shard, slice_) in enumerate(zip(shards, slices, strict=True), start=1):
            depths[shard] = [
                cut_depth(seq, depth, {slice_})
                for seq, depth in zip(sequences[shard], depths[shard], strict=True)
            ]
            routes = [serve(s, d) for s, d in depths.items()]
            if count < 10:
                served[count] += sum(route.depth for route in routes) / n_shards
            if all(route.dead for route in routes):
                deaths.append(count)
                break
    assert len(deaths) == trials
    return deaths, served / trials


def test_simulation_agrees_with_step_by_step_deletions() -> None:
    probs = [0.5, 0.1, 0.15, 0.25]
    sequences = {0: bms_sequences(probs, 2), 1: cyclic_sequences(4, 2)}
    fast = simulate_capacity(
        method="s3t",
        n_shards=2,
        n_slices=4,
        budget=2,
        trials=20000,
        deletion_probs=probs,
        sequences=sequences,
    )
    deaths, served = naive_simulation(sequences, probs, trials=2000, seed=3)
    naive_mean = float(np.mean(deaths))
    naive_stderr = float(np.std(deaths, ddof=1)) / math.sqrt(len(deaths))
    tolerance = 4 * math.hypot(naive_stderr, fast.stderr)
    assert abs(fast.mean_deletions_to_death - naive_mean) < tolerance
    # Served depth is in [0, 4]; 2000 trials pin its mean to about +-0.05 (4 sigma).
    assert np.abs(np.array(fast.depth_curve[:10]) - served).max() < 0.1


def test_unkillable_shard_gives_infinite_capacity() -> None:
    # Slice 0 is never deleted and leads the only sequence: the shard never dies.
    result = simulate_capacity(
        method="sisa", n_shards=2, n_slices=3, trials=200, deletion_probs=[0.0, 1.0, 1.0]
    )
    assert math.isinf(result.mean_deletions_to_death)
    assert result.depth_curve[-1] == 1.0  # slice 0 survives, slice 1 is hit eventually
    kept = simulate_capacity(
        method="s3t", n_shards=1, n_slices=3, trials=200, deletion_probs=[0.0, 0.0, 1.0]
    )
    assert math.isinf(kept.mean_deletions_to_death)
    assert kept.depth_curve[-1] == 2.0


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"method": "sisa", "budget": 2}, InvalidParameterError),
        ({"method": "amnesiac"}, InvalidParameterError),
        ({"method": "s3t", "budget": 0}, InvalidParameterError),
        ({"method": "s3t", "seed": -1}, InvalidParameterError),
        ({"method": "s3t", "max_t": -1}, InvalidParameterError),
        ({"method": "s3t", "deletion_probs": [1.0]}, LayoutMismatchError),
        ({"method": "s3t", "deletion_probs": [0.0, 0.0, 0.0]}, InvalidParameterError),
        ({"method": "s3t", "sequences": {0: [(0, 1, 2)]}}, LayoutMismatchError),
        ({"method": "s3t", "sequences": {0: [], 1: []}}, LayoutMismatchError),
        ({"method": "s3t", "sequences": {0: [(0, 1, 1)], 1: [(0, 1, 2)]}}, ShardingError),
    ],
)
def test_simulate_rejects_bad_input(kwargs: dict[str, object], error: type) -> None:
    with pytest.raises(error):
        simulate_capacity(n_shards=2, n_slices=3, trials=10, **kwargs)  # type: ignore[arg-type]
