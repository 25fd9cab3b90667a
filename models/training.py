"""The one optimisation loop every trainer (S3T step, SISA step, full-data LoRA) shares."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

import torch

from models.adapters import AdaptedEncoder
from models.config import TrainConfig
from models.examples import Example
from models.head import ClassificationHead, LMHead
from models.progress import Advance

__all__ = ["Example", "RowSource", "epoch_batches", "fit"]


class RowSource(Protocol):
    def length(self, record_id: str) -> int:
        """Number of cached tokens of a record."""
        ...

    def batch(self, group: int, record_ids: Sequence[str]) -> tuple[torch.Tensor, torch.Tensor]:
        """Padded hidden states entering ``group`` and their 0/1 mask."""
        ...


def fit(
    *,
    encoder: AdaptedEncoder,
    head: ClassificationHead | LMHead,
    source: RowSource,
    input_group: int,
    examples: Sequence[Example],
    trainable_groups: tuple[int, ...],
    config: TrainConfig,
    generator: torch.Generator,
    advance: Advance | None = None,
) -> float:
    """Train the LoRA weights of ``trainable_groups`` and the head; returns the last epoch's
    mean loss.

    The forward pass starts at the lowest layer of ``input_group`` from cached rows; whatever
    groups are active above it take part, but only ``trainable_groups`` and the head change.
    Examples are taken in record-id order and shuffled per epoch by ``generator``; see
    :func:`epoch_batches` for how batches are formed.
    """
    if not examples:
        raise ValueError("no examples to train on")
    ordered = sorted(examples, key=lambda e: e.record_id)
    ids = [e.record_id for e in ordered]
    device = encoder.device
    head.to(device)
    encoder.set_trainable_groups(trainable_groups)
    head.train()
    params = [p for g in trainable_groups for p in encoder.group_parameters(g).values()]
    params += head.trainable()
    for p in head.trainable():
        p.requires_grad_(True)
    optimizer = torch.optim.AdamW(params, lr=config.lr, weight_decay=config.weight_decay)
    start = encoder.layout.boundary(input_group)
    epoch_loss = 0.0
    lengths = [source.length(rid) for rid in ids]
    for _ in range(config.epochs):
        total, count = 0.0, 0
        for idx in epoch_batches(lengths, config.batch_size, generator):
            hidden, mask = source.batch(input_group, [ids[j] for j in idx])
            hidden, mask = hidden.to(device), mask.to(device)
            out = encoder.forward_from(hidden, mask, start)
            loss = head.loss(out, mask, [ordered[j] for j in idx])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()  # type: ignore[no-untyped-call]
            optimizer.step()
            total += float(loss.detach()) * len(idx)
            count += len(idx)
            if advance is not None:
                advance(len(idx))
        epoch_loss = total / count
    encoder.set_trainable_groups(())
    head.eval()
    for p in head.trainable():
        p.requires_grad_(False)
    return epoch_loss


BUCKET_BATCHES = 8


def epoch_batches(
    lengths: Sequence[int], batch_size: int, generator: torch.Generator
) -> list[list[int]]:
    """One epoch's batches of example indices.

    A seeded shuffle, then within windows of ``BUCKET_BATCHES`` batches the examples are
    sorted by length (stable) so a batch pads little, then the batch order is shuffled again.
    Depends only on ``lengths`` and the generator state: deterministic.
    """
    order = torch.randperm(len(lengths), generator=generator).tolist()
    window = batch_size * BUCKET_BATCHES
    batches: list[list[int]] = []
    for w in range(0, len(order), window):
        chunk = sorted(order[w : w + window], key=lambda i: lengths[i])
        batches.extend(chunk[b : b + batch_size] for b in range(0, len(chunk), batch_size))
    perm = torch.randperm(len(batches), generator=generator).tolist()
    return [batches[i] for i in perm]
