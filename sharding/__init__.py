"""Pure sharding logic for S3T: placement, sequence choice, routing and capacity.

Imports nothing else from this project and no torch or database code; numpy and
scipy only, and those only when a function that needs them runs: the names below load their
module on first use (PEP 562), so ``from sharding import subject_key`` costs milliseconds
(the CLI's model-free commands stay fast).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from sharding.bms import bms_sequences
    from sharding.capacity import (
        CapacityResult,
        harmonic,
        s3t_expected_capacity,
        simulate_capacity,
        sisa_expected_capacity,
    )
    from sharding.errors import (
        AddressOutOfRangeError,
        InvalidParameterError,
        InvalidSequenceError,
        LayoutMismatchError,
        MissingDeletionProbsError,
        ShardingError,
    )
    from sharding.placement import BalanceReport, Placement, SliceAddress, balance, subject_key
    from sharding.routing import (
        Cut,
        DeletionImpact,
        RetrainTask,
        ShardRoute,
        cut_depth,
        full_depths,
        plan_deletion,
        plan_routing,
        serve,
    )
    from sharding.sequences import SelectionMethod, cyclic_sequences, select_sequences

_WHERE: dict[str, str] = {
    "AddressOutOfRangeError": "sharding.errors",
    "BalanceReport": "sharding.placement",
    "CapacityResult": "sharding.capacity",
    "Cut": "sharding.routing",
    "DeletionImpact": "sharding.routing",
    "InvalidParameterError": "sharding.errors",
    "InvalidSequenceError": "sharding.errors",
    "LayoutMismatchError": "sharding.errors",
    "MissingDeletionProbsError": "sharding.errors",
    "Placement": "sharding.placement",
    "RetrainTask": "sharding.routing",
    "SelectionMethod": "sharding.sequences",
    "ShardRoute": "sharding.routing",
    "ShardingError": "sharding.errors",
    "SliceAddress": "sharding.placement",
    "balance": "sharding.placement",
    "bms_sequences": "sharding.bms",
    "cut_depth": "sharding.routing",
    "cyclic_sequences": "sharding.sequences",
    "full_depths": "sharding.routing",
    "harmonic": "sharding.capacity",
    "plan_deletion": "sharding.routing",
    "plan_routing": "sharding.routing",
    "s3t_expected_capacity": "sharding.capacity",
    "select_sequences": "sharding.sequences",
    "serve": "sharding.routing",
    "simulate_capacity": "sharding.capacity",
    "sisa_expected_capacity": "sharding.capacity",
    "subject_key": "sharding.placement",
}


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module 'sharding' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


__all__ = [
    "AddressOutOfRangeError",
    "BalanceReport",
    "CapacityResult",
    "Cut",
    "DeletionImpact",
    "InvalidParameterError",
    "InvalidSequenceError",
    "LayoutMismatchError",
    "MissingDeletionProbsError",
    "Placement",
    "RetrainTask",
    "SelectionMethod",
    "ShardRoute",
    "ShardingError",
    "SliceAddress",
    "balance",
    "bms_sequences",
    "cut_depth",
    "cyclic_sequences",
    "full_depths",
    "harmonic",
    "plan_deletion",
    "plan_routing",
    "s3t_expected_capacity",
    "select_sequences",
    "serve",
    "simulate_capacity",
    "sisa_expected_capacity",
    "subject_key",
]
