"""Pure sharding logic for S3T: placement, sequence choice, routing and capacity.

Imports nothing else from this project and no torch or database code; numpy and
scipy only.
"""

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
from sharding.sequences import (
    SelectionMethod,
    bms_sequences,
    cyclic_sequences,
    select_sequences,
)

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
