"""The backbone base class: a BERT-style encoder whose layers run one by one.

A backbone exposes its transformer layers one by one, so the trainer can start the forward pass
at any layer (activation cache, shared-prefix inference). The registry of named backbones and
their loaders lives in :mod:`models.backbones`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, cast

import torch
from torch import nn

if TYPE_CHECKING:
    from transformers import PreTrainedConfig

Tokenizer = Callable[..., Mapping[str, torch.Tensor]]
"""A transformers tokenizer, as called here: texts and options in, id and mask tensors out."""


@dataclass(frozen=True)
class BackboneInput:
    """Model inputs for a batch: token ids (or embeddings) plus a 0/1 attention mask."""

    input_ids: torch.Tensor
    attention_mask: torch.Tensor

    def __len__(self) -> int:
        return int(self.input_ids.shape[0])

    def to(self, device: torch.device) -> BackboneInput:
        return BackboneInput(self.input_ids.to(device), self.attention_mask.to(device))


class Backbone:
    """A BERT-style encoder split into embeddings and a list of layers.

    ``model`` is a transformers model with ``embeddings``, ``encoder.layer`` and ``config``.
    """

    def __init__(
        self,
        *,
        name: str,
        model: nn.Module,
        tokenizer: Tokenizer | None,
        weights_sha256: str,
    ) -> None:
        self.name = name
        self.model = model.eval()
        self.tokenizer = tokenizer
        self.weights_sha256 = weights_sha256
        self.device = torch.device("cpu")
        for p in self.model.parameters():
            p.requires_grad_(False)

    def to(self, device: torch.device) -> None:
        """Move the weights (and any adapters injected into them); inputs follow in
        :meth:`prepare`."""
        self.model.to(device)
        self.device = device

    @property
    def config(self) -> PreTrainedConfig:
        # transformers models carry their config as a plain attribute, which nn.Module's
        # __getattr__ types as a tensor or module.
        return cast("PreTrainedConfig", self.model.config)

    @property
    def embeddings(self) -> nn.Module:
        return self.model.get_submodule("embeddings")

    @property
    def layers(self) -> nn.ModuleList:
        """The transformer layers, bottom first."""
        layers = self.model.get_submodule("encoder.layer")
        if not isinstance(layers, nn.ModuleList):
            raise TypeError(f"backbone {self.name}: encoder.layer is not a ModuleList")
        return layers

    @property
    def n_layers(self) -> int:
        return len(self.layers)

    @property
    def hidden_size(self) -> int:
        return int(self.config.hidden_size)

    def adapter_targets(self, layer: int) -> list[str]:
        """Module names (relative to ``model``) that get LoRA in ``layer``: query and value."""
        return [f"encoder.layer.{layer}.attention.self.{m}" for m in ("query", "value")]

    def prepare(self, items: Sequence[object], max_length: int) -> BackboneInput:
        """Tokenise and pad texts to the longest of them (at most ``max_length`` tokens)."""
        if not all(isinstance(t, str) for t in items) or self.tokenizer is None:
            raise ValueError(f"backbone {self.name} reads text, not numeric features")
        enc = self.tokenizer(
            list(items), padding=True, truncation=True, max_length=max_length, return_tensors="pt"
        )
        return BackboneInput(enc["input_ids"], enc["attention_mask"]).to(self.device)

    def embed(self, inputs: BackboneInput) -> torch.Tensor:
        token_type_ids = torch.zeros_like(inputs.input_ids)
        out: torch.Tensor = self.embeddings(
            input_ids=inputs.input_ids, token_type_ids=token_type_ids
        )
        return out

    def run_layers(
        self, hidden: torch.Tensor, attention_mask: torch.Tensor | None, start: int, end: int
    ) -> torch.Tensor:
        """Apply layers ``start .. end-1`` to ``hidden`` ([batch, tokens, hidden]).

        ``attention_mask`` is the 0/1 padding mask ([batch, tokens]); ``None`` means no padding.
        """
        mask = None
        if attention_mask is not None and not bool(attention_mask.all()):
            from transformers.masking_utils import create_bidirectional_mask

            mask = create_bidirectional_mask(
                config=self.config, inputs_embeds=hidden, attention_mask=attention_mask
            )
        for layer in self.layers[start:end]:
            hidden = layer(hidden, attention_mask=mask)
        return hidden
