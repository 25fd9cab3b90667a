"""A method is a loss over forget / retain batches plus its hyperparameters (as in
open-unlearning's registry); the runner owns the optimiser and the loop.

Each method declares what it fits: the tasks (classifier, lm), whether it needs the retain
set, and which set drives an epoch. ``check`` refuses a misfit with a clear error instead of
running something meaningless.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal

import torch
from torch import Tensor, nn

from models.approximate.base import Batch, Examples, Family, Output, Task, UnlearningError

_REGISTRY: dict[str, type[Method]] = {}


@dataclass
class Context:
    family: Family
    model: nn.Module
    reference: nn.Module  # the model before unlearning, frozen
    forget: Examples
    retain: Examples | None
    params: dict[str, Any]
    generator: torch.Generator
    step: int = 0
    total_steps: int = 1
    state: dict[str, Any] = field(default_factory=dict)

    def forward(self, batch: Batch) -> Output:
        return self.family.forward(self.model, batch)

    def reference_forward(self, batch: Batch) -> Output:
        with torch.no_grad():
            return self.family.forward(self.reference, batch)


class Method:
    name: ClassVar[str]
    tasks: ClassVar[frozenset[Task]] = frozenset({"classifier", "lm"})
    needs_retain: ClassVar[bool] = True
    drive: ClassVar[Literal["forget", "retain", "none"]] = "forget"
    exact: ClassVar[bool] = False
    defaults: ClassVar[dict[str, Any]] = {}

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "name" in cls.__dict__:
            _REGISTRY[cls.name] = cls

    def check(self, family: Family, retain: Examples | None) -> None:
        if family.task not in self.tasks:
            raise UnlearningError(
                f"{self.name} does not apply to {family.name} ({family.task}); it works on "
                f"{' and '.join(sorted(self.tasks))} models"
            )
        if self.needs_retain and (retain is None or len(retain) == 0):
            raise UnlearningError(f"{self.name} needs the retain set (it was not given)")

    def params(self, overrides: dict[str, Any]) -> dict[str, Any]:
        unknown = set(overrides) - set(self.defaults)
        if unknown:
            raise UnlearningError(
                f"{self.name} has no parameter(s) {sorted(unknown)}; "
                f"it takes {sorted(self.defaults)}"
            )
        return {**self.defaults, **overrides}

    def prepare(self, ctx: Context) -> None:
        """Before the first step (masks, importances)."""

    def loss(self, ctx: Context, forget: Batch, retain: Batch | None) -> Tensor:
        raise NotImplementedError(f"{self.name} does not train with a loss")

    def before_step(self, ctx: Context) -> None:
        """After ``backward``, before the optimiser step (e.g. mask gradients)."""


def get_method(name: str) -> Method:
    try:
        return _REGISTRY[name]()
    except KeyError:
        raise UnlearningError(
            f"unknown unlearning method {name!r}; known: {', '.join(method_names())}"
        ) from None


def method_names() -> list[str]:
    return sorted(_REGISTRY)
