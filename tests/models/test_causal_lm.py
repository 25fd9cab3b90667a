"""Causal language modelling as an S3T task, on tiny random decoder-only models of each
family: the loss covers completion tokens only, training lowers it, a checkpoint holds its
group's adapters alone, and isolation, determinism and retrain equivalence hold as for
classification."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
import torch
from torch.nn import functional as F

from models.adapters import build_encoder
from models.backbones import load_backbone
from models.causal_lm import lm_example, lm_tokens
from models.checkpoints import InMemoryCheckpointStore
from models.config import TrainConfig
from models.head import LMHead
from models.s3t import S3TTrainer, ShardData, make_head, train_shard
from models.training import Example
from tests.models.tiny import (
    CAUSAL_TYPES,
    assert_retrain_equals_scratch,
    by_family,
    tiny_config,
    tiny_folder,
)

SEQUENCES = [(0, 1, 2), (1, 2, 0)]
REVIEWS = ["warm and funny", "dull and flat", "a sharp script", "a clumsy ending", "brilliant"]


@pytest.fixture(scope="module")
def folders(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("tiny-lms")


def _config(folders: Path, model_type: str) -> TrainConfig:
    folder = tiny_folder(folders, model_type)
    config: TrainConfig = tiny_config(folder, task="lm", epochs=2, batch_size=4, max_length=24)
    return config


def _records(config: TrainConfig, n: int = 18) -> tuple[list[Example], dict[str, tuple[int, ...]]]:
    tokenizer = load_backbone(config.backbone).tokenizer
    examples = [
        lm_example(f"rec-{i:03d}", tokenizer, "write a review:", REVIEWS[i % 5], config.max_length)
        for i in range(n)
    ]
    return examples, {e.record_id: e.tokens for e in examples}


def _shard(examples: list[Example], n_slices: int) -> ShardData:
    return ShardData(0, tuple(tuple(examples[s::n_slices]) for s in range(n_slices)))


def _cache(root: Path, encoder, tokens: dict[str, tuple[int, ...]], max_length: int):
    from models.cache import ActivationCache

    return ActivationCache.build(root, encoder, list(tokens.items()), max_length=max_length)


@pytest.mark.parametrize("model_type", by_family(CAUSAL_TYPES))
def test_lm_training_is_isolated_deterministic_and_retrains_exactly(
    folders: Path, tmp_path: Path, model_type: str
) -> None:
    config = _config(folders, model_type)
    examples, tokens = _records(config)
    data = _shard(examples, config.n_slices)
    runs = []
    for i in range(2):
        encoder = build_encoder(config)
        cache = _cache(tmp_path / f"c{i}", encoder, tokens, config.max_length)
        store = InMemoryCheckpointStore()
        trainer = S3TTrainer(encoder, config, store)
        runs.append(train_shard(trainer, data, cache, SEQUENCES))
    assert runs[0] == runs[1]
    for chain in runs[1]:
        for k, sha in enumerate(chain, start=1):
            tensors, _ = store.get(sha)
            assert {n.split(".")[0] for n in tensors} == {f"group{k}"}, "adapters alone"
    assert_retrain_equals_scratch(
        tmp_path / "fresh", config, trainer, cache, data, dict(tokens), SEQUENCES, runs[1]
    )


@pytest.mark.parametrize("model_type", ["gpt2", "llama"])
def test_the_loss_covers_completion_tokens_only_and_training_lowers_it(
    folders: Path, tmp_path: Path, model_type: str
) -> None:
    config = dataclasses.replace(_config(folders, model_type), epochs=30, lr=5e-2)
    examples, tokens = _records(config, n=8)
    encoder = build_encoder(config)
    head = make_head(encoder, config)
    assert isinstance(head, LMHead) and head.trainable() == []
    ids = torch.tensor([examples[0].tokens])
    mask = torch.ones_like(ids)
    backbone = encoder.backbone
    with torch.no_grad():
        out = encoder.forward_from(
            backbone.embed(backbone.prepare([examples[0].tokens], 24)), mask, 0
        )
        n, p = len(examples[0].tokens), examples[0].n_prompt
        logits = head(out, mask)[0]
        expected = F.cross_entropy(logits[p - 1 : n - 1], ids[0, p:n])
        assert torch.allclose(head.loss(out, mask, [examples[0]]), expected)
        only_last = dataclasses.replace(examples[0], n_prompt=n - 1)
        last = F.cross_entropy(logits[n - 2 : n - 1], ids[0, n - 1 : n])
        assert torch.allclose(head.loss(out, mask, [only_last]), last)
    cache = _cache(tmp_path / "c", encoder, tokens, config.max_length)
    trainer = S3TTrainer(encoder, config, InMemoryCheckpointStore())
    before = _mean_loss(encoder, head, examples, config)
    trainer.train_step(_shard(examples, 1), cache, (0,), [])
    after = _mean_loss(encoder, head, examples, config)
    assert after < 0.6 * before, (before, after)


@torch.no_grad()
def _mean_loss(encoder, head, examples: list[Example], config: TrainConfig) -> float:
    backbone = encoder.backbone
    encoder.set_active_groups(1)
    inputs = backbone.prepare([e.tokens for e in examples], config.max_length)
    out = encoder.forward_from(backbone.embed(inputs), inputs.attention_mask, 0)
    return float(head.loss(out, inputs.attention_mask, examples))


def test_records_tokenise_to_prompt_then_completion_and_end(folders: Path) -> None:
    tokenizer = load_backbone(str(tiny_folder(folders, "llama"))).tokenizer
    tokenizer.eos_token = "[SEP]"  # the tiny folders' (BERT) tokenizer names no end token
    ids, n_prompt = lm_tokens(tokenizer, "write a review:", "warm", 24)
    assert ids[-1] == tokenizer.eos_token_id and 0 < n_prompt < len(ids)
    cut, n_cut = lm_tokens(tokenizer, "write a review:", "warm " * 40, 10)
    assert len(cut) == 10 and n_cut == n_prompt
    plain, none = lm_tokens(tokenizer, "", "just text", 24)
    assert none == 0 and plain[-1] == tokenizer.eos_token_id


def test_a_backbone_without_an_output_layer_refuses_the_lm_task(folders: Path) -> None:
    config = dataclasses.replace(
        _config(folders, "llama"), backbone=str(tiny_folder(folders, "bert"))
    )
    with pytest.raises(ValueError, match="no language-model output layer"):
        make_head(build_encoder(config), config)
