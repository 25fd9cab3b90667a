"""Heads on top of the adapted layers. Classification: pooling over real tokens (their mean,
or for a causal model the last one, which has seen them all), then one linear layer, trained
with the groups. Language modelling (:class:`LMHead`): the model's own output layer, frozen,
so a checkpoint holds its group's adapters alone; the loss covers completion tokens only."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import torch
from torch import nn
from torch.nn import functional as F

if TYPE_CHECKING:
    from models.examples import Example

HeadState = dict[str, torch.Tensor]


def mean_pool(hidden: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
    """Mean of ``hidden`` ([batch, tokens, dim]) over positions where the mask is 1."""
    mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
    return (hidden * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1.0)


def last_pool(hidden: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
    """``hidden`` at each row's last real token (padding on the right)."""
    last = attention_mask.sum(dim=1).clamp(min=1) - 1
    return hidden[torch.arange(hidden.shape[0], device=hidden.device), last]


def pool(hidden: torch.Tensor, attention_mask: torch.Tensor, pooling: str) -> torch.Tensor:
    if pooling == "mean":
        return mean_pool(hidden, attention_mask)
    if pooling == "last":
        return last_pool(hidden, attention_mask)
    raise ValueError(f"unknown pooling {pooling!r}")


class ClassificationHead(nn.Module):
    def __init__(self, hidden_size: int, n_classes: int, pooling: str = "mean") -> None:
        super().__init__()
        self.linear = nn.Linear(hidden_size, n_classes)
        self.pooling = pooling

    def forward(self, hidden: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        out: torch.Tensor = self.linear(pool(hidden, attention_mask, self.pooling))
        return out

    def trainable(self) -> list[nn.Parameter]:
        return list(self.parameters())

    def loss(
        self, hidden: torch.Tensor, attention_mask: torch.Tensor, examples: Sequence[Example]
    ) -> torch.Tensor:
        """Cross-entropy of the examples' labels."""
        labels = torch.tensor([e.label for e in examples], dtype=torch.long, device=hidden.device)
        return F.cross_entropy(self(hidden, attention_mask), labels)

    def reset(self, generator: torch.Generator) -> None:
        """Seeded init (same bounds as ``nn.Linear``'s default)."""
        bound = 1.0 / self.linear.in_features**0.5
        with torch.no_grad():
            for param in (self.linear.weight, self.linear.bias):
                values = torch.empty(param.shape, dtype=param.dtype)  # CPU draw: any device
                param.copy_(values.uniform_(-bound, bound, generator=generator))

    def state(self) -> HeadState:
        return {f"head.{k}": v.detach().cpu().clone() for k, v in self.linear.state_dict().items()}

    def load(self, state: HeadState) -> None:
        inner = {k.removeprefix("head."): v for k, v in state.items() if k.startswith("head.")}
        self.linear.load_state_dict(inner)


class LMHead(nn.Module):
    """A causal LM's output layer (``lm_head``), frozen: nothing to reset, save or load."""

    def __init__(self, output: nn.Module) -> None:
        super().__init__()
        self.output = output
        for p in self.output.parameters():
            p.requires_grad_(False)

    def trainable(self) -> list[nn.Parameter]:
        return []

    def forward(self, hidden: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """Next-token logits at every position, [batch, tokens, vocabulary]."""
        out: torch.Tensor = self.output(hidden)
        return out

    def loss(
        self, hidden: torch.Tensor, attention_mask: torch.Tensor, examples: Sequence[Example]
    ) -> torch.Tensor:
        """Mean cross-entropy of the completion tokens: position ``j`` predicts token ``j+1``
        where ``j+1`` is past the example's prompt and not padding."""
        width = hidden.shape[1]
        targets = torch.zeros((len(examples), width), dtype=torch.long)
        keep = torch.zeros((len(examples), width), dtype=torch.bool)
        for b, e in enumerate(examples):
            n = len(e.tokens)
            targets[b, :n] = torch.tensor(e.tokens, dtype=torch.long)
            keep[b, max(e.n_prompt, 1) : n] = True
        targets, keep = targets.to(hidden.device), keep.to(hidden.device)
        logits = self(hidden[:, :-1], attention_mask[:, :-1])
        chosen = keep[:, 1:]
        if not bool(chosen.any()):  # prompts cut at max_length: nothing to learn here
            zero: torch.Tensor = logits.sum() * 0.0
            return zero
        return F.cross_entropy(logits[chosen], targets[:, 1:][chosen])

    def reset(self, generator: torch.Generator) -> None:
        """Nothing to draw: the output layer is the model's own."""

    def state(self) -> HeadState:
        return {}

    def load(self, state: HeadState) -> None:
        """Nothing to load: checkpoints hold the groups' adapters alone."""
