from __future__ import annotations

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
