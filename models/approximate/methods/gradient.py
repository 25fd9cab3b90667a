"""Losses that push the forget set away: GradDiff (ascent on forget, descent on retain, a KL
anchor to the original model on retain) and NPO (negative preference optimisation: the forget
set's likelihood relative to the original model, bounded by a log-sigmoid, so it cannot
diverge the way plain ascent does). Both work on whole-sequence log-likelihoods, as the NPO
paper defines them; for a classifier a sequence is its one label."""

from __future__ import annotations

from typing import Any, ClassVar

import torch.nn.functional as F
from torch import Tensor

from models.approximate.base import Batch, kl_to_reference, per_example_logprob
from models.approximate.methods.base import Context, Method

_TRAIN = {"lr": 1e-3, "epochs": 1, "batch_size": 32, "optimizer": "adam"}


def _retain_terms(ctx: Context, retain: Batch | None) -> Tensor:
    """Descent on the retain set's sequence likelihood, on the same scale as the forget term
    (as NPO+RT and GradDiff are defined: on whole sequences, not per token), plus the KL
    anchor to the original model."""
    assert retain is not None
    out = ctx.forward(retain)
    loss: Tensor = -ctx.params["retain_weight"] * per_example_logprob(out).mean()
    if ctx.params["kl_weight"]:
        loss = loss + ctx.params["kl_weight"] * kl_to_reference(ctx.reference_forward(retain), out)
    return loss


class GradDiff(Method):
    name = "GradDiff"
    defaults: ClassVar[dict[str, Any]] = {**_TRAIN, "retain_weight": 1.0, "kl_weight": 1.0}

    def loss(self, ctx: Context, forget: Batch, retain: Batch | None) -> Tensor:
        # Ascent on the forget set's sequence log-likelihood: the same quantity NPO bounds.
        return per_example_logprob(ctx.forward(forget)).mean() + _retain_terms(ctx, retain)


class NPO(Method):
    name = "NPO"
    defaults: ClassVar[dict[str, Any]] = {
        **_TRAIN,
        "beta": 0.1,
        "retain_weight": 1.0,
        "kl_weight": 1.0,
    }

    def loss(self, ctx: Context, forget: Batch, retain: Batch | None) -> Tensor:
        beta = ctx.params["beta"]
        current = per_example_logprob(ctx.forward(forget))
        reference = per_example_logprob(ctx.reference_forward(forget))
        # -(2/beta) log sigmoid(-beta * log(pi/pi_ref)) == (2/beta) softplus(beta * log ratio)
        npo: Tensor = (2.0 / beta) * F.softplus(beta * (current - reference)).mean()
        return npo + _retain_terms(ctx, retain)
