"""Top-down layer groups (S3T): group 1 is the top of the backbone.

With ``n_layers`` transformer layers and ``L`` groups, each group has ``floor(n_layers / L)``
consecutive layers; leftover bottom layers never get an adapter.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class GroupLayout:
    n_layers: int
    n_groups: int

    def __post_init__(self) -> None:
        if self.n_groups < 1 or self.n_layers < self.n_groups:
            raise ValueError(
                f"cannot split {self.n_layers} layers into {self.n_groups} groups "
                "(need at least one layer per group)"
            )

    @property
    def group_size(self) -> int:
        return self.n_layers // self.n_groups

    def layers(self, group: int) -> range:
        """Layer indices (0 = bottom) of 1-based ``group`` (1 = top)."""
        self._check(group)
        top = self.n_layers - (group - 1) * self.group_size
        return range(top - self.group_size, top)

    def boundary(self, group: int) -> int:
        """Index of the lowest layer of ``group``: the hidden state entering it is what the
        activation cache stores for training that group."""
        return self.layers(group).start

    @property
    def adapted_layers(self) -> range:
        return range(self.boundary(self.n_groups), self.n_layers)

    def group_of(self, layer: int) -> int | None:
        if layer < self.boundary(self.n_groups):
            return None
        return (self.n_layers - 1 - layer) // self.group_size + 1

    def _check(self, group: int) -> None:
        if not 1 <= group <= self.n_groups:
            raise ValueError(f"group {group} out of range 1..{self.n_groups}")
