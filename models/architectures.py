"""The architecture table: what the S3T trainer needs to know of each supported model family.

A Hugging Face model folder names its family in ``config.json`` (``model_type``). Each row
says where the family's transformer layers live, which modules of a layer get LoRA (the
attention projections by default, or every linear layer), how inputs become the hidden state
entering the first layer, which attention mask the layers take, which norm follows the last
layer and how the head pools tokens. Everything else (layer groups, the activation cache,
checkpoints, serving) is the same for every family.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    import torch
    from torch import nn

Mask = Literal["bidirectional", "causal", "none"]
Pooling = Literal["mean", "last"]
Reads = Literal["text", "features"]
Embed = Callable[["nn.Module", "torch.Tensor"], "torch.Tensor"]
LORA_TARGETS = ("attention", "all-linear")


def _bert_embed(model: nn.Module, input_ids: torch.Tensor) -> torch.Tensor:
    """BERT, RoBERTa, XLM-R, ELECTRA: word + position (+ token type 0) embeddings, and
    ELECTRA's projection to the hidden size when its embeddings are smaller."""
    import torch

    out: torch.Tensor = model.get_submodule("embeddings")(
        input_ids=input_ids, token_type_ids=torch.zeros_like(input_ids)
    )
    if hasattr(model, "embeddings_project"):
        out = model.get_submodule("embeddings_project")(out)
    return out


def _distilbert_embed(model: nn.Module, input_ids: torch.Tensor) -> torch.Tensor:
    out: torch.Tensor = model.get_submodule("embeddings")(input_ids)
    return out


def _vit_embed(model: nn.Module, pixel_values: torch.Tensor) -> torch.Tensor:
    out: torch.Tensor = model.get_submodule("embeddings")(pixel_values)
    return out


def _gpt2_embed(model: nn.Module, input_ids: torch.Tensor) -> torch.Tensor:
    import torch

    positions = torch.arange(input_ids.shape[1], device=input_ids.device).unsqueeze(0)
    out: torch.Tensor = model.get_submodule("wte")(input_ids) + model.get_submodule("wpe")(
        positions
    )
    return out


def _llama_embed(model: nn.Module, input_ids: torch.Tensor) -> torch.Tensor:
    out: torch.Tensor = model.get_submodule("embed_tokens")(input_ids)
    return out


@dataclass(frozen=True)
class Architecture:
    """One supported family. Module paths are relative to the transformers base model
    (``AutoModel``); LoRA targets are relative to one layer."""

    family: str
    model_types: tuple[str, ...]
    layers: str
    attention: tuple[str, ...]
    linear: tuple[str, ...]
    embed: Embed
    mask: Mask
    final_norm: str | None
    pooling: Pooling
    reads: Reads = "text"
    rotary: str | None = None  # the module giving (cos, sin) per position (Llama family)
    fan_in_fan_out: bool = False  # GPT-2's Conv1D projections store their weight transposed

    def targets(self, lora_targets: str) -> tuple[str, ...]:
        """The modules of a layer that get LoRA: ``"attention"`` or ``"all-linear"``."""
        if lora_targets == "attention":
            return self.attention
        if lora_targets == "all-linear":
            return self.linear
        raise ValueError(f"lora_targets must be one of {', '.join(LORA_TARGETS)}")


_BERT_LINEAR = (
    "attention.self.query",
    "attention.self.key",
    "attention.self.value",
    "attention.output.dense",
    "intermediate.dense",
    "output.dense",
)
_LLAMA_LINEAR = (
    "self_attn.q_proj",
    "self_attn.k_proj",
    "self_attn.v_proj",
    "self_attn.o_proj",
    "mlp.gate_proj",
    "mlp.up_proj",
    "mlp.down_proj",
)

ARCHITECTURES: tuple[Architecture, ...] = (
    Architecture(
        family="bert-style encoder",
        model_types=("bert", "roberta", "xlm-roberta", "electra"),
        layers="encoder.layer",
        attention=("attention.self.query", "attention.self.value"),
        linear=_BERT_LINEAR,
        embed=_bert_embed,
        mask="bidirectional",
        final_norm=None,
        pooling="mean",
    ),
    Architecture(
        family="distilbert",
        model_types=("distilbert",),
        layers="transformer.layer",
        attention=("attention.q_lin", "attention.v_lin"),
        linear=(
            "attention.q_lin",
            "attention.k_lin",
            "attention.v_lin",
            "attention.out_lin",
            "ffn.lin1",
            "ffn.lin2",
        ),
        embed=_distilbert_embed,
        mask="bidirectional",
        final_norm=None,
        pooling="mean",
    ),
    Architecture(
        family="vit",
        model_types=("vit",),
        layers="layers",
        attention=("attention.q_proj", "attention.v_proj"),
        linear=(
            "attention.q_proj",
            "attention.k_proj",
            "attention.v_proj",
            "attention.o_proj",
            "mlp.fc1",
            "mlp.fc2",
        ),
        embed=_vit_embed,
        mask="none",
        final_norm="layernorm",
        pooling="mean",
        reads="features",
    ),
    Architecture(
        family="gpt-2",
        model_types=("gpt2",),
        layers="h",
        attention=("attn.c_attn",),  # one fused query/key/value projection
        linear=("attn.c_attn", "attn.c_proj", "mlp.c_fc", "mlp.c_proj"),
        embed=_gpt2_embed,
        mask="causal",
        final_norm="ln_f",
        pooling="last",
        fan_in_fan_out=True,
    ),
    Architecture(
        family="llama",
        model_types=("llama", "mistral", "qwen2"),
        layers="layers",
        attention=("self_attn.q_proj", "self_attn.v_proj"),
        linear=_LLAMA_LINEAR,
        embed=_llama_embed,
        mask="causal",
        final_norm="norm",
        pooling="last",
        rotary="rotary_emb",
    ),
)


class UnsupportedArchitecture(ValueError):
    """A model folder whose ``model_type`` no row of the table covers."""


def supported_model_types() -> tuple[str, ...]:
    return tuple(t for a in ARCHITECTURES for t in a.model_types)


def architecture_of(model_type: str) -> Architecture:
    """The table's row for a config's ``model_type``, or a clear error listing them all."""
    for arch in ARCHITECTURES:
        if model_type in arch.model_types:
            return arch
    listing = "; ".join(f"{a.family}: {', '.join(a.model_types)}" for a in ARCHITECTURES)
    raise UnsupportedArchitecture(
        f"model_type {model_type!r} is not supported; supported model types ({listing})"
    )
