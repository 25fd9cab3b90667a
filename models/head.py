"""Classification head: mean pooling over real tokens, then one linear layer."""

from __future__ import annotations

import torch
from torch import nn

HeadState = dict[str, torch.Tensor]


def mean_pool(hidden: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
    """Mean of ``hidden`` ([batch, tokens, dim]) over positions where the mask is 1."""
    mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
    return (hidden * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1.0)


class ClassificationHead(nn.Module):
    def __init__(self, hidden_size: int, n_classes: int) -> None:
        super().__init__()
        self.linear = nn.Linear(hidden_size, n_classes)

    def forward(self, hidden: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        out: torch.Tensor = self.linear(mean_pool(hidden, attention_mask))
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
