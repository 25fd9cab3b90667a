"""Bipartite-matching selection (BMS) of sequences for a known deletion prior.

The B sequences are built one position at a time. At position ``n`` (1-based) an
assignment problem gives every sequence its next slice, maximising the total weight

    weight(i, j) = n * (1 - P(prefix_i + [j])) ** horizon

where ``P`` sums the normalised deletion probabilities of a set of slices: a long
prefix that is unlikely to be hit is worth most. Constraints, in priority order:

1. hard: a slice appears at most once in a sequence;
2. hard: the sequences stay distinct: sequences sharing a prefix of length ``n-1``
   send at most ``(L-n)!`` of their number to each next slice (the number of
   permutations that can still extend it), which is always satisfiable once
   ``budget <= L!``;
3. soft but ahead of the weight: at one position every slice is used by at most
   ``ceil(B/L)`` sequences (the slice "columns" are replicated ``ceil(B/L)`` times),
   and at least as often as needed to keep that cap reachable at later positions;
   a use outside those bounds costs more than all the weight at stake, so the spread
   only gives way where it conflicts with constraint 2;
4. the weight above.

Each position is solved exactly with :func:`scipy.optimize.linear_sum_assignment`.
Constraint 2 nests inside constraint 3 (a prefix group's share of a slice is a part of
that slice's use), which an assignment problem expresses with one gadget node per
(prefix group, slice, copy): a sequence takes the gadget's column, and the gadget's
own row then takes one of the slice's replicated columns ("slots"), or its own column
if unused.
The result is deterministic: the same inputs give the same sequences.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from numpy.typing import NDArray
from scipy.optimize import linear_sum_assignment  # type: ignore[import-untyped]

from sharding.errors import InvalidParameterError
from sharding.validation import as_int, normalise_probs


def bms_sequences(
    deletion_probs: Sequence[float], budget: int, horizon: int = 100
) -> tuple[tuple[int, ...], ...]:
    """Return ``budget`` distinct sequences of ``range(len(deletion_probs))`` by BMS.

    ``deletion_probs[j]`` is the relative chance that a deletion hits slice ``j``
    (``>= 0``, not all zero; normalised here). ``horizon`` (``>= 1``) is the number of
    deletions the weight looks ahead. With ``budget <= L`` the first elements are all
    distinct and the lowest-probability slices come first, as far as double precision
    separates their weights: ``(1 - p) ** horizon`` values that differ by less than
    about 1e-15 of the largest weight tie, and ties go to the solver's fixed order.

    Raises :class:`~sharding.errors.InvalidParameterError` for bad probabilities,
    ``budget`` outside ``1 .. L!`` or ``horizon < 1``.
    """
    probs = np.asarray(normalise_probs(deletion_probs), dtype=np.float64)
    n_slices = len(probs)
    budget = as_int("budget", budget, minimum=1)
    horizon = as_int("horizon", horizon, minimum=1)
    if budget > math.factorial(n_slices):
        raise InvalidParameterError(
            f"budget {budget} exceeds the {math.factorial(n_slices)} permutations "
            f"of {n_slices} slices"
        )
    prefixes: list[list[int]] = [[] for _ in range(budget)]
    for position in range(n_slices):
        for row, slice_ in enumerate(_match_position(prefixes, probs, position, horizon)):
            prefixes[row].append(slice_)
    return tuple(tuple(prefix) for prefix in prefixes)


def _weights(
    prefixes: list[list[int]], probs: NDArray[np.float64], position: int, horizon: int
) -> NDArray[np.float64]:
    """Weights (rows: sequences, columns: slices) scaled to max 1; NaN where forbidden."""
    mass = np.array([probs[prefix].sum() for prefix in prefixes], dtype=np.float64)
    survive = np.clip(1.0 - mass[:, None] - probs[None, :], 0.0, 1.0)
    weights = (position + 1) * survive**horizon
    for row, prefix in enumerate(prefixes):
        weights[row, prefix] = np.nan
    top = np.nanmax(weights)
    if top > 0.0:
        weights /= top
    return weights


def _slot_costs(prefixes: list[list[int]], n_slices: int, position: int) -> list[list[float]]:
    """Cost of the k-th use of each slice at this position (non-decreasing in k).

    A slice that ``lacking`` sequences still miss must be placed ``lacking`` times in
    the ``left`` positions from here on, at most ``cap`` times each; so it must be
    used at least ``lacking - cap * (left - 1)`` times now. Those uses are free, the
    others cost one unit, and each use beyond ``cap`` one unit more than the previous.
    Keeping every slice inside those bounds keeps the cap satisfiable to the end (a
    bipartite multigraph of maximum degree ``left`` is ``left``-edge-colourable), as
    long as the distinctness limit does not interfere.
    """
    n_rows = len(prefixes)
    cap = math.ceil(n_rows / n_slices)
    left = n_slices - position
    # The total weight is at most n_rows (each weight <= 1), so one unit outweighs it.
    unit = float(n_rows + 1)
    costs = []
    for slice_ in range(n_slices):
        lacking = sum(slice_ not in prefix for prefix in prefixes)
        must = max(0, lacking - cap * (left - 1))
        costs.append([0.0 if k < must else unit * max(1, k - cap + 2) for k in range(lacking)])
    return costs


def _match_position(
    prefixes: list[list[int]], probs: NDArray[np.float64], position: int, horizon: int
) -> list[int]:
    """Solve one position's assignment; return the chosen slice of every sequence."""
    n_rows = len(prefixes)
    n_slices = len(probs)
    weights = _weights(prefixes, probs, position, horizon)

    groups: dict[tuple[int, ...], list[int]] = {}
    for row, prefix in enumerate(prefixes):
        groups.setdefault(tuple(prefix), []).append(row)
    per_child = math.factorial(n_slices - position - 1)
    # One gadget per (prefix group, free slice, copy): at most min(per_child, group
    # size) members of a group may take one slice.
    gadgets: list[tuple[list[int], int]] = []
    for shared_prefix, rows in groups.items():
        for slice_ in range(n_slices):
            if slice_ not in shared_prefix:
                gadgets.extend([(rows, slice_)] * min(per_child, len(rows)))

    slot_costs = _slot_costs(prefixes, n_slices, position)
    slot_start = np.cumsum([len(gadgets), *(len(c) for c in slot_costs)]).tolist()
    # Rows: sequences, then one per gadget. Columns: one per gadget, then the slots.
    # A gadget's row takes its own column (unused gadget) or a slot of its slice, and
    # it must take a slot when a sequence took its column. All costs are >= 0 apart
    # from the weights, so a gadget never gains by taking a slot while unused.
    cost = np.full((n_rows + len(gadgets), slot_start[-1]), np.inf)
    for node, (rows, slice_) in enumerate(gadgets):
        cost[rows, node] = -weights[rows, slice_]
        cost[n_rows + node, node] = 0.0
        cost[n_rows + node, slot_start[slice_] : slot_start[slice_ + 1]] = slot_costs[slice_]
    row_index, col_index = linear_sum_assignment(cost)
    chosen = dict(zip(row_index.tolist(), col_index.tolist(), strict=True))
    return [gadgets[chosen[row]][1] for row in range(n_rows)]
