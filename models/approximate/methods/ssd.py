"""Selective Synaptic Dampening: no training. Weights far more important to the forget set
than to the training data as a whole (diagonal Fisher information, squared gradients) are
shrunk towards zero. The training-data importances are computed once when the model is
trained (:func:`importances`) and stored with it, so a deletion costs one pass over the
forget set."""

from __future__ import annotations

from typing import Any, ClassVar, Literal

import torch
from torch import Tensor, nn

from models.approximate.base import Examples, Family, UnlearningError, per_example_nll
from models.approximate.methods.base import Context, Method


def importances(family: Family, model: nn.Module, data: Examples) -> dict[str, Tensor]:
    """Mean over examples of each weight's squared per-example gradient (the diagonal of the
    empirical Fisher). Per example, not per batch: batch-mean gradients of a trained model
    cancel out across classes and would make every weight look unimportant to the data."""
    total = {n: torch.zeros_like(p) for n, p in model.named_parameters()}
    for batch in data.batches(1):
        model.zero_grad()
        per_example_nll(family.forward(model, batch)).sum().backward()  # type: ignore[no-untyped-call]
        for n, p in model.named_parameters():
            if p.grad is not None:
                total[n] += p.grad.detach() ** 2
    model.zero_grad()
    return {n: t / max(len(data), 1) for n, t in total.items()}


class SSD(Method):
    name = "SSD"
    needs_retain = False
    drive: ClassVar[Literal["forget", "retain", "none"]] = "none"
    defaults: ClassVar[dict[str, Any]] = {"alpha": 10.0, "lam": 1.0}

    def prepare(self, ctx: Context) -> None:
        full = ctx.state.get("train_importances")
        if full is None:
            raise UnlearningError(
                "SSD needs the training data's importances, stored when the model was trained"
            )
        forget = importances(ctx.family, ctx.model, ctx.forget)
        alpha, lam = ctx.params["alpha"], ctx.params["lam"]
        with torch.no_grad():
            for n, p in ctx.model.named_parameters():
                f, d = forget[n], full[n]
                selected = f > alpha * d
                factor = torch.clamp(lam * d / f.clamp(min=1e-12), max=1.0)
                p.mul_(torch.where(selected, factor, torch.ones_like(factor)))
