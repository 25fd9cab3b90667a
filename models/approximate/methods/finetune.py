"""Fine-tuning on the retain set: plain (FT) and with a decaying l1 penalty (l1-sparse,
"Model sparsity can simplify machine unlearning"): catastrophic forgetting of the forget set,
helped by sparsity."""

from __future__ import annotations

from typing import Any, ClassVar, Literal

from torch import Tensor

from models.approximate.base import Batch, per_example_nll
from models.approximate.methods.base import Context, Method

_TRAIN = {"lr": 0.01, "epochs": 1, "batch_size": 64, "optimizer": "sgd"}


class FineTune(Method):
    name = "FT"
    drive: ClassVar[Literal["forget", "retain", "none"]] = "retain"
    defaults: ClassVar[dict[str, Any]] = dict(_TRAIN)

    def loss(self, ctx: Context, forget: Batch, retain: Batch | None) -> Tensor:
        assert retain is not None
        return per_example_nll(ctx.forward(retain)).mean()


class L1Sparse(Method):
    name = "l1-sparse"
    drive: ClassVar[Literal["forget", "retain", "none"]] = "retain"
    defaults: ClassVar[dict[str, Any]] = {**_TRAIN, "gamma": 5e-4}

    def loss(self, ctx: Context, forget: Batch, retain: Batch | None) -> Tensor:
        assert retain is not None
        # The penalty decays linearly to zero: sparsify early, recover accuracy late.
        gamma = ctx.params["gamma"] * (1 - ctx.step / max(ctx.total_steps, 1))
        l1 = sum(p.abs().sum() for p in ctx.model.parameters() if p.requires_grad)
        loss: Tensor = per_example_nll(ctx.forward(retain)).mean() + gamma * l1
        return loss
