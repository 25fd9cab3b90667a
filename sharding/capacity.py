"""Deletion capacity: closed forms and a Monte Carlo simulation.

Model: deletions arrive one at a time and each independently hits one (shard, slice)
cell, the shard uniformly and the slice uniformly or by ``deletion_probs``; nothing is
retrained in between. A sequence's depth is its longest prefix of un-hit slices, a
shard serves its deepest sequence and is dead when every depth is 0.

Simulation: only the first time ``T_c`` each cell is hit matters. Those are drawn
exactly, without simulating single deletions: the order in which cells are first hit
is an exponential race (cell ``c`` at ``Exp(1) / q_c``), and the wait for the ``k``-th
new cell is geometric with success probability equal to the still un-hit mass. Then
served depth after ``t`` deletions is ``#{k : D_k > t}`` with
``D_k = max over sequences of min(T of its first k slices)``, so one histogram of the
``D_k`` gives the whole depth curve.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
from numpy.typing import NDArray

from sharding.errors import InvalidParameterError, LayoutMismatchError
from sharding.sequences import cyclic_sequences
from sharding.validation import as_int, as_permutation, normalise_probs

# Upper bound on the elements of one (trials x shards x sequences x slices) block.
_BLOCK_ELEMENTS = 2_000_000


def harmonic(n: int) -> float:
    """Return the harmonic number ``H_n = 1 + 1/2 + ... + 1/n`` (``H_0 = 0``)."""
    n = as_int("n", n, minimum=0)
    return math.fsum(1.0 / k for k in range(1, n + 1))


def s3t_expected_capacity(n_shards: int, n_slices: int, budget: int) -> float:
    """Expected uniform deletions until every S3T shard is dead: ``m L H_{m min(B, L)}``."""
    m = as_int("n_shards", n_shards, minimum=1)
    n_slices = as_int("n_slices", n_slices, minimum=1)
    budget = as_int("budget", budget, minimum=1)
    return m * n_slices * harmonic(m * min(budget, n_slices))


def sisa_expected_capacity(n_shards: int, n_slices: int) -> float:
    """Expected uniform deletions until every SISA shard is dead: ``m L H_m``."""
    m = as_int("n_shards", n_shards, minimum=1)
    return m * as_int("n_slices", n_slices, minimum=1) * harmonic(m)


@dataclass(frozen=True)
class CapacityResult:
    """Monte Carlo estimate of deletion capacity.

    ``mean_deletions_to_death`` is the mean number of deletions until every shard is
    dead (``inf`` if some shard can never die because its first slices have zero
    deletion probability), ``stderr`` its standard error (NaN for one trial).
    ``depth_curve[t]`` is the mean over trials of the mean served depth over shards
    (dead shards count 0) after ``t`` deletions, ``t = 0 .. max_t``; it starts at
    ``n_slices`` and never increases.
    """

    method: str
    n_shards: int
    n_slices: int
    budget: int
    trials: int
    mean_deletions_to_death: float
    stderr: float
    depth_curve: tuple[float, ...]


def _layout(
    method: str,
    n_shards: int,
    n_slices: int,
    budget: int,
    sequences: Mapping[int, Sequence[Sequence[int]]] | None,
) -> NDArray[np.intp]:
    """Sequences as an int array of shape (shards, budget, slices)."""
    if method == "sisa":
        if budget != 1 or sequences is not None:
            raise InvalidParameterError("sisa uses one fixed sequence: no budget or sequences")
        return np.tile(np.arange(n_slices), (n_shards, 1, 1))
    if sequences is None:
        return np.tile(np.array(cyclic_sequences(n_slices, budget)), (n_shards, 1, 1))
    if set(sequences) != set(range(n_shards)):
        raise LayoutMismatchError(f"sequences must cover shards 0..{n_shards - 1}")
    rows = []
    for shard in range(n_shards):
        if len(sequences[shard]) != budget:
            raise LayoutMismatchError(
                f"shard {shard} has {len(sequences[shard])} sequences, budget is {budget}"
            )
        rows.append(
            [as_permutation(s, n_slices, where=f"shard {shard} sequence") for s in sequences[shard]]
        )
    return np.array(rows, dtype=np.intp)


def _first_hit_times(
    rng: np.random.Generator, cell_probs: NDArray[np.float64], trials: int
) -> NDArray[np.float64]:
    """Draw (trials, cells) first-hit times (1-based deletion index; inf if never hit)."""
    n_cells = len(cell_probs)
    positive = int(np.count_nonzero(cell_probs > 0.0))
    race = np.full((trials, n_cells), np.inf)
    np.divide(rng.exponential(size=(trials, n_cells)), cell_probs, out=race, where=cell_probs > 0.0)
    order = np.argsort(race, axis=1, kind="stable")[:, :positive]
    ordered_probs = cell_probs[order]
    remaining = np.cumsum(ordered_probs[:, ::-1], axis=1)[:, ::-1]
    waits = rng.geometric(np.clip(remaining, 1e-300, 1.0))
    times = np.full((trials, n_cells), np.inf)
    np.put_along_axis(times, order, np.cumsum(waits, axis=1).astype(np.float64), axis=1)
    return times


def simulate_capacity(
    *,
    method: Literal["s3t", "sisa"],
    n_shards: int,
    n_slices: int,
    budget: int = 1,
    trials: int = 20000,
    seed: int = 0,
    max_t: int | None = None,
    deletion_probs: Sequence[float] | None = None,
    sequences: Mapping[int, Sequence[Sequence[int]]] | None = None,
) -> CapacityResult:
    """Estimate deletions-to-death and the served-depth curve by simulation.

    ``s3t`` uses ``sequences`` (every shard ``0..n_shards-1`` with exactly ``budget``
    permutations) or by default ``cyclic_sequences(n_slices, budget)`` in every shard.
    ``sisa`` uses the single sequence ``0..L-1`` and takes neither ``budget`` nor
    ``sequences``. ``deletion_probs`` (length ``n_slices``) weights the slices;
    the default is uniform. ``max_t`` defaults to the last deletion count at which any
    served depth changed in any trial. The same arguments and ``seed`` give the same
    result.
    """
    if method not in ("s3t", "sisa"):
        raise InvalidParameterError(f"method must be 's3t' or 'sisa', got {method!r}")
    n_shards = as_int("n_shards", n_shards, minimum=1)
    n_slices = as_int("n_slices", n_slices, minimum=1)
    budget = as_int("budget", budget, minimum=1)
    trials = as_int("trials", trials, minimum=1)
    layout = _layout(method, n_shards, n_slices, budget, sequences)
    if deletion_probs is None:
        slice_probs = np.full(n_slices, 1.0 / n_slices)
    else:
        if len(deletion_probs) != n_slices:
            raise LayoutMismatchError(f"deletion_probs must have {n_slices} entries")
        slice_probs = np.array(normalise_probs(deletion_probs))
    cell_probs = np.tile(slice_probs / n_shards, n_shards)  # cell = shard * L + slice

    rng = np.random.default_rng(as_int("seed", seed, minimum=0))
    cells = np.arange(n_shards)[:, None, None] * n_slices + layout
    block = max(1, _BLOCK_ELEMENTS // layout.size)
    drops = []  # per block: (trials, shards, L) array of D_k
    for start in range(0, trials, block):
        times = _first_hit_times(rng, cell_probs, min(block, trials - start))
        prefix_min = np.minimum.accumulate(times[:, cells], axis=-1)
        drops.append(prefix_min.max(axis=2))
    drop = np.concatenate(drops)

    death = drop[:, :, 0].max(axis=1)
    if np.isinf(death).any():
        mean, stderr = math.inf, math.inf
    else:
        mean = float(death.mean())
        stderr = float(death.std(ddof=1) / math.sqrt(trials)) if trials > 1 else math.nan
    finite = drop[np.isfinite(drop)]
    if max_t is None:
        max_t = int(finite.max()) if finite.size else 0
    max_t = as_int("max_t", max_t, minimum=0)
    # depth(t) = L - #{D_k <= t} per (trial, shard); D_k >= 1 so the curve starts at L.
    clipped = np.minimum(finite, max_t + 1).astype(np.int64)
    drops_by_t = np.cumsum(np.bincount(clipped, minlength=max_t + 2)[: max_t + 1])
    curve = n_slices - drops_by_t / (trials * n_shards)
    return CapacityResult(
        method=method,
        n_shards=n_shards,
        n_slices=n_slices,
        budget=budget,
        trials=trials,
        mean_deletions_to_death=mean,
        stderr=stderr,
        depth_curve=tuple(float(x) for x in curve),
    )
