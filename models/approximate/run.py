"""Run one unlearning method on a copy of a model: the optimiser and loop every
loss-based method shares, seeded so a run is reproducible."""

from __future__ import annotations

import copy
import itertools
import math
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn

from models.approximate.base import Batch, Examples, Family, UnlearningError
from models.approximate.methods import Context, get_method
from models.progress import NULL_PROGRESS, Progress


@dataclass(frozen=True)
class Result:
    model: nn.Module
    method: str
    exact: bool
    params: dict[str, Any]
    seconds: float
    steps: int


def unlearn(
    family: Family,
    model: nn.Module,
    method: str,
    forget: Examples,
    retain: Examples | None,
    *,
    seed: int,
    train_importances: dict[str, Tensor] | None = None,
    progress: Progress = NULL_PROGRESS,
    **overrides: Any,
) -> Result:
    """Apply ``method`` to a copy of ``model`` (the original is left as it was)."""
    m = get_method(method)
    m.check(family, retain)
    if len(forget) == 0:
        raise UnlearningError("the forget set is empty")
    params = m.params(overrides)
    torch.manual_seed(seed)
    reference = copy.deepcopy(model).eval()
    for p in reference.parameters():
        p.requires_grad_(False)
    ctx = Context(
        family=family,
        model=copy.deepcopy(model),
        reference=reference,
        forget=forget,
        retain=retain,
        params=params,
        generator=torch.Generator().manual_seed(seed),
        state={"seed": seed, "train_importances": train_importances},
    )
    start = time.perf_counter()
    m.prepare(ctx)
    if m.drive != "none":
        _train(m, ctx, progress)
    ctx.model.eval()
    return Result(ctx.model, m.name, m.exact, params, time.perf_counter() - start, ctx.step)


def _train(m: Any, ctx: Context, progress: Progress) -> None:
    size, epochs = int(ctx.params["batch_size"]), int(ctx.params["epochs"])
    driver = ctx.forget if m.drive == "forget" else ctx.retain
    other = ctx.retain if m.drive == "forget" else ctx.forget
    assert driver is not None
    ctx.total_steps = epochs * math.ceil(len(driver) / size)
    optimizer = _optimizer(ctx.model, ctx.params)
    ctx.model.train()
    with progress.task(f"unlearn ({m.name})", ctx.total_steps, unit="steps") as advance:
        for _ in range(epochs):
            paired = _cycle(other, size, ctx.generator)
            for batch in driver.batches(size, generator=ctx.generator):
                partner = next(paired) if paired is not None else None
                forget, retain = (batch, partner) if m.drive == "forget" else (partner, batch)
                loss = m.loss(ctx, forget, retain)
                optimizer.zero_grad()
                loss.backward()
                m.before_step(ctx)
                optimizer.step()
                ctx.step += 1
                advance(1)


def _cycle(data: Examples | None, size: int, gen: torch.Generator) -> Iterator[Batch] | None:
    if data is None or len(data) == 0:
        return None
    return itertools.chain.from_iterable(
        data.batches(size, generator=gen) for _ in itertools.count()
    )


def _optimizer(model: nn.Module, params: dict[str, Any]) -> torch.optim.Optimizer:
    trainable = [p for p in model.parameters() if p.requires_grad]
    if params["optimizer"] == "sgd":
        return torch.optim.SGD(trainable, lr=params["lr"], momentum=0.9)
    if params["optimizer"] == "adam":
        return torch.optim.Adam(trainable, lr=params["lr"])
    raise UnlearningError(f"unknown optimizer {params['optimizer']!r} (sgd or adam)")
