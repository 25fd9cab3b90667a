"""SalUn: only the weights most salient to the forget loss move; the forget set is relabelled
at random (a wrong class each time) while the retain set keeps its labels. Classifiers only:
a random label has no analogue for free text."""

from __future__ import annotations

from typing import Any, ClassVar

import torch
from torch import Tensor

from models.approximate.base import Batch, Output, Task, per_example_nll
from models.approximate.methods.base import Context, Method


class SalUn(Method):
    name = "SalUn"
    tasks: ClassVar[frozenset[Task]] = frozenset({"classifier"})
    defaults: ClassVar[dict[str, Any]] = {
        "lr": 1e-3,
        "epochs": 1,
        "batch_size": 32,
        "optimizer": "sgd",
        "sparsity": 0.5,  # share of weights frozen (the least salient)
    }

    def prepare(self, ctx: Context) -> None:
        # Only weights the method may move compete for saliency (LoRA models freeze the rest).
        grads = {n: torch.zeros_like(p) for n, p in ctx.model.named_parameters() if p.requires_grad}
        for batch in ctx.forget.batches(256):
            ctx.model.zero_grad()
            per_example_nll(ctx.forward(batch)).sum().backward()  # type: ignore[no-untyped-call]
            for n, p in ctx.model.named_parameters():
                if n in grads and p.grad is not None:
                    grads[n] += p.grad
        ctx.model.zero_grad()
        magnitudes = torch.cat([g.abs().flatten() for g in grads.values()])
        k = int(len(magnitudes) * ctx.params["sparsity"])
        threshold = magnitudes.kthvalue(max(k, 1)).values if k > 0 else magnitudes.min() - 1
        ctx.state["mask"] = {n: (g.abs() > threshold).float() for n, g in grads.items()}

    def loss(self, ctx: Context, forget: Batch, retain: Batch | None) -> Tensor:
        out = ctx.forward(forget)
        n_classes = out.logits.shape[-1]
        shift = torch.randint(1, n_classes, out.targets.shape, generator=ctx.generator)
        relabelled = Output(out.logits, (out.targets + shift) % n_classes, out.mask)
        loss = per_example_nll(relabelled).mean()
        if retain is not None:
            loss = loss + per_example_nll(ctx.forward(retain)).mean()
        return loss

    def before_step(self, ctx: Context) -> None:
        for n, p in ctx.model.named_parameters():
            if p.grad is not None and n in ctx.state["mask"]:
                p.grad.mul_(ctx.state["mask"][n])
