from __future__ import annotations

from pathlib import Path

import pytest
import torch

from models.backbones import (
    backbone_names,
    backbone_reads,
    default_backbone,
    load_backbone,
    register_backbone,
)


def test_registry_names_and_errors() -> None:
    assert {"all-minilm-l6-v2", "patch-transformer-28"} <= set(backbone_names())
    assert backbone_reads("all-minilm-l6-v2") == "text"
    assert default_backbone("features") == "patch-transformer-28"
    with pytest.raises(ValueError, match="already registered"):
        register_backbone("all-minilm-l6-v2", lambda: load_backbone("all-minilm-l6-v2"))
    with pytest.raises(ValueError, match="unknown backbone"):
        load_backbone("gpt-17")
    with pytest.raises(ValueError, match="reads must be"):
        register_backbone("new-one", lambda: load_backbone("all-minilm-l6-v2"), reads="audio")


def test_minilm_is_the_packaged_model(plain_backbone) -> None:
    assert plain_backbone.n_layers == 6 and plain_backbone.hidden_size == 384
    assert len(plain_backbone.weights_sha256) == 64
    with pytest.raises(ValueError, match="reads text"):
        plain_backbone.prepare([(0.0,) * 784], 16)


def test_patch_backbone_is_pinned_and_reads_features() -> None:
    a, b = load_backbone("patch-transformer-28"), load_backbone("patch-transformer-28")
    assert a.weights_sha256 == b.weights_sha256
    image = tuple(float(i % 28) / 28 for i in range(784))
    inputs = a.prepare([image, image], 16)
    assert inputs.input_ids.shape == (2, 16, 49)
    hidden = a.run_layers(a.embed(inputs), None, 0, a.n_layers)
    assert hidden.shape == (2, 16, 128) and torch.isfinite(hidden).all()
    with pytest.raises(ValueError, match="784 numeric features"):
        a.prepare(["a text"], 16)


def test_the_minilm_package_folder_trains_the_builtin_checkpoints(
    tmp_path: Path, small_config
) -> None:
    """The generic folder path, on all-MiniLM-L6-v2's own package folder, is that backbone:
    the same config hash (the folder's identity is the built-in's), weights hash and
    checkpoints, byte for byte, as the built-in name."""
    import dataclasses

    from models.adapters import build_encoder
    from models.checkpoints import InMemoryCheckpointStore
    from models.folders import BUILTIN_FOLDERS
    from models.s3t import S3TTrainer, train_shard
    from tests.models.conftest import build_cache, shard_from_items, synthetic_items

    folder = str(BUILTIN_FOLDERS["all-minilm-l6-v2"]())
    items = synthetic_items(18)
    data = shard_from_items(items, small_config.n_slices)
    chains = []
    for i, ref in enumerate(("all-minilm-l6-v2", folder)):
        config = dataclasses.replace(small_config, backbone=ref)
        encoder = build_encoder(config)
        assert encoder.backbone.name == ref
        cache = build_cache(tmp_path / f"c{i}", encoder, items, config.max_length)
        trainer = S3TTrainer(encoder, config, InMemoryCheckpointStore())
        chains.append((config.config_hash(), train_shard(trainer, data, cache, [(0, 1, 2)])))
    assert chains[0] == chains[1]
    other = dataclasses.replace(small_config, backbone=folder, seed=small_config.seed + 1)
    assert other.config_hash() != chains[0][0]
