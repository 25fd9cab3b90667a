"""Classification head: pooling over real tokens (their mean, or for a causal model the last
one, which has seen them all), then one linear layer."""

from __future__ import annotations

import torch
from torch import nn

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
