"""What every family and method shares: batches, model outputs, and the errors they raise.

A family turns a batch into an :class:`Output` (logits with their targets and, for language
models, a token mask), so every loss and metric is written once for classifiers and language
models alike: a classifier's output is one "token" per example.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Literal, Protocol

import torch
from torch import Tensor, nn

from models.errors import ModelsError

Task = Literal["classifier", "lm"]


class UnlearningError(ModelsError, ValueError):
    """A method or family used where it does not fit, or bad inputs."""


@dataclass(frozen=True)
class Batch:
    inputs: Tensor  # classifier: features [B, ...]; lm: token ids [B, T]
    targets: Tensor  # classifier: labels [B]; lm: token ids [B, T] (next-token targets)
    mask: Tensor | None = None  # lm: 1 where a target token counts, [B, T]

    def __len__(self) -> int:
        return int(self.inputs.shape[0])


@dataclass(frozen=True)
class Output:
    """Logits ``[B, T, C]`` and targets ``[B, T]`` (``T = 1`` for classifiers)."""

    logits: Tensor
    targets: Tensor
    mask: Tensor  # [B, T] float, 1 where the target counts


class Family(Protocol):
    """A model family: how to build, train from scratch and run a model."""

    name: str
    task: Task

    def build(self, seed: int) -> nn.Module: ...

    def forward(self, model: nn.Module, batch: Batch) -> Output: ...

    def fit(self, model: nn.Module, data: Examples, *, seed: int) -> nn.Module:
        """The family's own training recipe (also what Retrain runs on the retain set)."""
        ...


@dataclass(frozen=True)
class Examples:
    """A dataset of one family: stacked inputs and targets (and masks for text)."""

    inputs: Tensor
    targets: Tensor
    mask: Tensor | None = None

    def __len__(self) -> int:
        return int(self.inputs.shape[0])

    def take(self, index: Tensor) -> Examples:
        return Examples(
            self.inputs[index],
            self.targets[index],
            None if self.mask is None else self.mask[index],
        )

    def batches(self, size: int, *, generator: torch.Generator | None = None) -> Iterator[Batch]:
        """In order, or shuffled by ``generator``."""
        n = len(self)
        order = torch.randperm(n, generator=generator) if generator is not None else torch.arange(n)
        for start in range(0, n, size):
            idx = order[start : start + size]
            yield Batch(
                self.inputs[idx], self.targets[idx], None if self.mask is None else self.mask[idx]
            )


def per_example_nll(out: Output) -> Tensor:
    """Mean negative log-likelihood of each example's counted targets, ``[B]``."""
    return -per_example_logprob(out) / out.mask.sum(dim=1).clamp(min=1)


def per_example_logprob(out: Output) -> Tensor:
    """Summed log-probability of each example's counted targets, ``[B]``."""
    logp = torch.log_softmax(out.logits.float(), dim=-1)
    picked = logp.gather(-1, out.targets.unsqueeze(-1)).squeeze(-1)
    return (picked * out.mask).sum(dim=1)


def kl_to_reference(reference: Output, current: Output) -> Tensor:
    """Mean over counted positions of KL(reference || current): the retain-side anchor of
    GradDiff and NPO (keep the model's answers on retained data where they were)."""
    ref = torch.log_softmax(reference.logits.float(), dim=-1)
    cur = torch.log_softmax(current.logits.float(), dim=-1)
    kl = (ref.exp() * (ref - cur)).sum(dim=-1)
    return (kl * current.mask).sum() / current.mask.sum().clamp(min=1)


def classifier_output(logits: Tensor, batch: Batch) -> Output:
    """A classifier's ``[B, C]`` logits as one counted "token" per example."""
    return Output(logits.unsqueeze(1), batch.targets.unsqueeze(1), torch.ones(len(batch), 1))


def train_epochs(
    family: Family,
    model: nn.Module,
    data: Examples,
    optimizer: torch.optim.Optimizer,
    *,
    epochs: int,
    batch_size: int,
    seed: int,
) -> nn.Module:
    """The plain supervised loop of a family's ``fit``: mean NLL, seeded shuffled batches."""
    gen = torch.Generator().manual_seed(seed)
    model.train()
    for _ in range(epochs):
        for batch in data.batches(batch_size, generator=gen):
            loss = per_example_nll(family.forward(model, batch)).mean()
            optimizer.zero_grad()
            loss.backward()  # type: ignore[no-untyped-call]
            optimizer.step()
    return model.eval()
