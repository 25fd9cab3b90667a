"""Tiny random-initialised models of every family in the architecture table, built here and
saved as Hugging Face folders (nothing is downloaded). Text families get the all-MiniLM-L6-v2
tokenizer files (any family reads a folder's tokenizer the same way)."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import torch

TEXT_TYPES = (
    "bert",
    "roberta",
    "xlm-roberta",
    "electra",
    "distilbert",
    "gpt2",
    "llama",
    "mistral",
    "qwen2",
)
IMAGE_TYPES = ("vit",)
CAUSAL_TYPES = ("gpt2", "llama", "mistral", "qwen2")
MODEL_TYPES = TEXT_TYPES + IMAGE_TYPES
# The family variants whose training tests run with the slow ones (CI runs both): each
# shares its layers' code with a family the default run trains.
VARIANTS = ("roberta", "xlm-roberta", "electra", "mistral", "qwen2")


def by_family(types: tuple[str, ...]) -> list[Any]:
    """``types`` as pytest parameters, the variants marked slow."""
    import pytest

    return [pytest.param(t, marks=pytest.mark.slow) if t in VARIANTS else t for t in types]


IMAGE_SIDE = 8  # 1 channel, 8 x 8 pixels in 4 x 4 patches: 4 patches and a CLS token
TOKENIZER_FILES = (
    "vocab.txt",
    "tokenizer.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
)
VOCAB = 30522  # the MiniLM tokenizer's
LAYERS = 6


def _config(model_type: str) -> Any:
    import transformers as T

    common: dict[str, Any] = {"attn_implementation": "eager"}
    if model_type == "vit":
        return T.ViTConfig(
            image_size=IMAGE_SIDE,
            patch_size=4,
            num_channels=1,
            hidden_size=32,
            num_hidden_layers=LAYERS,
            num_attention_heads=2,
            intermediate_size=64,
            **common,
        )
    text: dict[str, Any] = {"vocab_size": VOCAB, "pad_token_id": 0, **common}
    if model_type in CAUSAL_TYPES:
        # Output embeddings large enough that a few LoRA steps can move the next-token
        # distribution (at the default 0.02 a 32-wide model's logits stay near uniform).
        text["initializer_range"] = 0.5
    if model_type == "distilbert":
        return T.DistilBertConfig(dim=32, n_layers=LAYERS, n_heads=2, hidden_dim=64, **text)
    if model_type == "gpt2":
        return T.GPT2Config(
            n_embd=32,
            n_layer=LAYERS,
            n_head=2,
            n_positions=128,
            bos_token_id=101,
            eos_token_id=102,
            **text,
        )
    if model_type in ("llama", "mistral", "qwen2"):
        cls = {"llama": T.LlamaConfig, "mistral": T.MistralConfig, "qwen2": T.Qwen2Config}
        return cls[model_type](
            hidden_size=32,
            num_hidden_layers=LAYERS,
            num_attention_heads=4,
            num_key_value_heads=2,
            intermediate_size=64,
            max_position_embeddings=128,
            bos_token_id=101,
            eos_token_id=102,
            **text,
        )
    cls = {
        "bert": T.BertConfig,
        "roberta": T.RobertaConfig,
        "xlm-roberta": T.XLMRobertaConfig,
        "electra": T.ElectraConfig,
    }
    extra = {"embedding_size": 16} if model_type == "electra" else {}
    return cls[model_type](
        hidden_size=32,
        num_hidden_layers=LAYERS,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=130,
        **extra,
        **text,
    )


def tiny_folder(root: Path, model_type: str, seed: int = 0) -> Path:
    """A folder holding a tiny ``model_type`` model (seeded random weights) and, for text
    families, a tokenizer."""
    from transformers import AutoModel, AutoModelForCausalLM

    from models.folders import BUILTIN_FOLDERS

    folder = root / f"tiny-{model_type}"
    if folder.exists():
        return folder
    causal = model_type in CAUSAL_TYPES  # saved with its output layer (the LM task's head)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        auto = AutoModelForCausalLM if causal else AutoModel
        model = auto.from_config(_config(model_type))
    model.save_pretrained(folder)
    if model_type in TEXT_TYPES:
        source = BUILTIN_FOLDERS["all-minilm-l6-v2"]()
        for name in TOKENIZER_FILES:
            shutil.copyfile(source / name, folder / name)
    return folder


def image_items(n: int, seed: int = 0) -> list[tuple[str, list[float], int]]:
    """(record_id, pixels, label): a bright or a dark image with noise."""
    gen = torch.Generator().manual_seed(seed)
    items = []
    for i in range(n):
        label = i % 2
        pixels = torch.rand(IMAGE_SIDE * IMAGE_SIDE, generator=gen) * 0.5 + 0.5 * label
        items.append((f"img-{i:04d}", [float(v) for v in pixels], label))
    return items


def tiny_config(folder: Path, **options: Any) -> Any:
    """A small S3T config on the tiny model in ``folder`` (3 slices, rank 4, 1 epoch)."""
    from models.config import TrainConfig

    settings: dict[str, Any] = {
        "n_slices": 3,
        "rank": 4,
        "alpha": 8.0,
        "epochs": 1,
        "batch_size": 8,
        "max_length": 16,
        "lr": 1e-2,
        **options,
    }
    return TrainConfig(backbone=str(folder), **settings)


def assert_retrain_equals_scratch(
    root: Path,
    config: Any,
    trainer: Any,
    cache: Any,
    data: Any,
    inputs: dict[str, object],
    sequences: list[tuple[int, ...]],
    chains: Any,
) -> None:
    """Erase two records of slice 1 from ``cache``; the retrained ``chains`` equal training
    ``sequences`` from scratch (fresh encoder and cache) on what remains, and differ from
    before."""
    from models.adapters import build_encoder
    from models.cache import ActivationCache
    from models.checkpoints import InMemoryCheckpointStore
    from models.s3t import S3TTrainer, retrain_sequence, train_shard

    erased = {e.record_id for e in data.slices[1][:2]}
    assert cache.remove(erased) == 2
    clean = data.without(erased)
    retrained = tuple(
        retrain_sequence(trainer, clean, cache, seq, chain, from_step=seq.index(1) + 1)
        for seq, chain in zip(sequences, chains, strict=True)
    )
    fresh = build_encoder(config)
    rest = [(rid, x) for rid, x in inputs.items() if rid not in erased]
    fresh_cache = ActivationCache.build(root, fresh, rest, max_length=config.max_length)
    scratch = train_shard(
        S3TTrainer(fresh, config, InMemoryCheckpointStore()), clean, fresh_cache, sequences
    )
    assert retrained == scratch
    assert retrained != tuple(chains)
