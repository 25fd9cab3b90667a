"""The backbone base class: a transformer whose layers run one by one.

A backbone exposes its transformer layers one by one, so the trainer can start the forward pass
at any layer (activation cache, shared-prefix inference). What differs between model families
(where the layers live, LoRA targets, embeddings, masks, final norm, pooling) comes from its
row of the architecture table (:mod:`models.architectures`). The registry of named backbones,
and the loader of model folders, live in :mod:`models.backbones`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, cast

import torch
from torch import nn

from models.architectures import ARCHITECTURES, Architecture

if TYPE_CHECKING:
    from transformers import PreTrainedConfig

Tokenizer = Callable[..., Mapping[str, torch.Tensor]]
"""A transformers tokenizer, as called here: texts and options in, id and mask tensors out."""

BERT = ARCHITECTURES[0]  # the built-in backbones' family


@dataclass(frozen=True)
class BackboneInput:
    """Model inputs for a batch: token ids (or pixel values / embeddings) plus a 0/1
    attention mask over the positions the layers see."""

    input_ids: torch.Tensor
    attention_mask: torch.Tensor

    def __len__(self) -> int:
        return int(self.input_ids.shape[0])

    def to(self, device: torch.device) -> BackboneInput:
        return BackboneInput(self.input_ids.to(device), self.attention_mask.to(device))


class Backbone:
    """A transformers base model (``AutoModel``) split into embeddings, a list of layers and
    a final norm, as its ``architecture`` row describes."""

    def __init__(
        self,
        *,
        name: str,
        model: nn.Module,
        tokenizer: Tokenizer | None,
        weights_sha256: str,
        architecture: Architecture = BERT,
    ) -> None:
        self.name = name
        self.model = model.eval()
        self.tokenizer = tokenizer
        self.weights_sha256 = weights_sha256
        self.architecture = architecture
        self.device = torch.device("cpu")
        # A causal LM's output layer (frozen), when the backbone came with one.
        self.lm_head: nn.Module | None = None
        for p in self.model.parameters():
            p.requires_grad_(False)

    def to(self, device: torch.device) -> None:
        """Move the weights (and any adapters injected into them); inputs follow in
        :meth:`prepare`."""
        self.model.to(device)
        if self.lm_head is not None:
            self.lm_head.to(device)
        self.device = device

    @property
    def config(self) -> PreTrainedConfig:
        # transformers models carry their config as a plain attribute, which nn.Module's
        # __getattr__ types as a tensor or module.
        return cast("PreTrainedConfig", self.model.config)

    @property
    def reads(self) -> str:
        return self.architecture.reads

    @property
    def pooling(self) -> str:
        return self.architecture.pooling

    @property
    def layers(self) -> nn.ModuleList:
        """The transformer layers, bottom first."""
        layers = self.model.get_submodule(self.architecture.layers)
        if not isinstance(layers, nn.ModuleList):
            raise TypeError(f"backbone {self.name}: {self.architecture.layers} is not a ModuleList")
        return layers

    @property
    def n_layers(self) -> int:
        return len(self.layers)

    @property
    def hidden_size(self) -> int:
        return int(self.config.hidden_size)

    def adapter_targets(self, layer: int, lora_targets: str = "attention") -> list[str]:
        """Module names (relative to ``model``) that get LoRA in ``layer``: its attention
        projections (query and value, or the fused projection), or every linear layer."""
        prefix = f"{self.architecture.layers}.{layer}"
        return [f"{prefix}.{m}" for m in self.architecture.targets(lora_targets)]

    def layer_of(self, module_name: str) -> int | None:
        """The index of the layer a module belongs to, or ``None`` outside the layers."""
        prefix = self.architecture.layers + "."
        if not module_name.startswith(prefix):
            return None
        return int(module_name[len(prefix) :].split(".", 1)[0])

    def prepare(self, items: Sequence[object], max_length: int) -> BackboneInput:
        """Tokenise and pad texts on the right to the longest of them (at most
        ``max_length`` tokens); for an image family, flat pixel vectors to images."""
        if self.reads == "features":
            return self._images(items)
        if items and all(_token_ids(t) for t in items):
            return self._token_batch(items)  # type: ignore[arg-type]
        if not all(isinstance(t, str) for t in items) or self.tokenizer is None:
            raise ValueError(f"backbone {self.name} reads text, not numeric features")
        enc = self.tokenizer(
            list(items), padding=True, truncation=True, max_length=max_length, return_tensors="pt"
        )
        return BackboneInput(enc["input_ids"], enc["attention_mask"]).to(self.device)

    def _token_batch(self, items: Sequence[Sequence[int]]) -> BackboneInput:
        """Token id lists (a language-model record's prompt and completion, tokenised once),
        padded on the right with the tokenizer's pad token."""
        pad = 0
        if self.tokenizer is not None:
            pad = int(getattr(self.tokenizer, "pad_token_id", None) or 0)
        width = max(len(t) for t in items)
        ids = torch.full((len(items), width), pad, dtype=torch.long)
        mask = torch.zeros((len(items), width), dtype=torch.long)
        for b, tokens in enumerate(items):
            ids[b, : len(tokens)] = torch.tensor(list(tokens), dtype=torch.long)
            mask[b, : len(tokens)] = 1
        return BackboneInput(ids, mask).to(self.device)

    def _images(self, items: Sequence[object]) -> BackboneInput:
        channels = int(getattr(self.config, "num_channels", 1))
        side, patch = int(self.config.image_size), int(self.config.patch_size)
        rows = []
        for item in items:
            if isinstance(item, str) or not isinstance(item, Sequence):
                raise ValueError(f"{self.name} takes {channels * side * side} numeric features")
            if len(item) != channels * side * side:
                raise ValueError(f"{self.name} takes {channels * side * side} numeric features")
            rows.append(torch.tensor(item, dtype=torch.float32))
        pixels = torch.stack(rows).view(-1, channels, side, side)
        positions = (side // patch) ** 2 + 1  # the patches and the CLS token
        mask = torch.ones((len(rows), positions), dtype=torch.long)
        return BackboneInput(pixels, mask).to(self.device)

    def embed(self, inputs: BackboneInput) -> torch.Tensor:
        """The hidden state entering the first layer."""
        return self.architecture.embed(self.model, inputs.input_ids)

    def run_layers(
        self, hidden: torch.Tensor, attention_mask: torch.Tensor | None, start: int, end: int
    ) -> torch.Tensor:
        """Apply layers ``start .. end-1`` to ``hidden`` ([batch, tokens, hidden]).

        ``attention_mask`` is the 0/1 padding mask ([batch, tokens], padding on the right);
        ``None`` means no padding. A causal family always gets its causal mask.
        """
        arch = self.architecture
        if arch.mask == "causal":
            return self._run_causal(hidden, attention_mask, start, end)
        mask = None
        if (
            arch.mask == "bidirectional"
            and attention_mask is not None
            and not bool(attention_mask.all())
        ):
            from transformers.masking_utils import create_bidirectional_mask

            mask = create_bidirectional_mask(
                config=self.config, inputs_embeds=hidden, attention_mask=attention_mask
            )
        for layer in self.layers[start:end]:
            hidden = layer(hidden, attention_mask=mask)
        return hidden

    def _run_causal(
        self, hidden: torch.Tensor, attention_mask: torch.Tensor | None, start: int, end: int
    ) -> torch.Tensor:
        from transformers.masking_utils import (
            create_causal_mask,
            create_sliding_window_causal_mask,
        )

        config = self.config
        n = hidden.shape[1]
        positions = torch.arange(n, device=hidden.device).unsqueeze(0)
        if attention_mask is None:
            attention_mask = torch.ones(hidden.shape[:2], dtype=torch.long, device=hidden.device)
        kwargs = {
            "config": config,
            "inputs_embeds": hidden,
            "attention_mask": attention_mask,
            "cache": None,
            "position_ids": positions,
            "allow_is_causal_skip": False,
        }
        full = create_causal_mask(**kwargs)
        kinds = _layer_kinds(config, self.n_layers)
        sliding = None
        if "sliding_attention" in kinds[start:end]:
            sliding = create_sliding_window_causal_mask(**kwargs)
        extra: dict[str, object] = {}
        if self.architecture.rotary is not None:
            rotary = self.model.get_submodule(self.architecture.rotary)
            extra = {"position_embeddings": rotary(hidden, positions), "position_ids": positions}
        for i in range(start, end):
            mask = sliding if kinds[i] == "sliding_attention" else full
            hidden = self.layers[i](hidden, attention_mask=mask, **extra)
        return hidden

    def top(self, hidden: torch.Tensor) -> torch.Tensor:
        """The family's norm after the last layer (none for BERT-style encoders)."""
        if self.architecture.final_norm is None:
            return hidden
        out: torch.Tensor = self.model.get_submodule(self.architecture.final_norm)(hidden)
        return out


def _token_ids(item: object) -> bool:
    return (
        isinstance(item, (list, tuple))
        and len(item) > 0
        and all(isinstance(t, int) and not isinstance(t, bool) for t in item)
    )


def _layer_kinds(config: PreTrainedConfig, n_layers: int) -> list[str]:
    """Per layer, ``full_attention`` or ``sliding_attention`` (Mistral with a window; Qwen2
    and others list ``layer_types``)."""
    kinds = getattr(config, "layer_types", None)
    if kinds:
        return list(kinds)
    if getattr(config, "sliding_window", None):
        return ["sliding_attention"] * n_layers
    return ["full_attention"] * n_layers
