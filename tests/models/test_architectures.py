"""Every family of the architecture table keeps S3T's exactness: a tiny random-initialised
model of each (built here, saved as a folder) trains with the activation cache exactly as
the full forward pass computes, leaves frozen groups byte-identical, trains the same
checkpoints twice, and retrains after a deletion to the checkpoints of training from scratch.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest
import torch

from models.adapters import build_encoder
from models.architectures import UnsupportedArchitecture, architecture_of, supported_model_types
from models.backbones import fit_problem, load_backbone
from models.cache import pad_rows
from models.checkpoints import InMemoryCheckpointStore
from models.config import TrainConfig
from models.head import ClassificationHead
from models.s3t import S3TTrainer, train_shard
from tests.models.conftest import build_cache, shard_from_items, synthetic_items
from tests.models.tiny import (
    IMAGE_TYPES,
    MODEL_TYPES,
    assert_retrain_equals_scratch,
    by_family,
    image_items,
    tiny_config,
    tiny_folder,
)

SEQUENCES = [(0, 1, 2), (2, 0, 1)]


@pytest.fixture(scope="module")
def folders(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("tiny-models")


def _setup(folders: Path, model_type: str, **options: object) -> tuple[TrainConfig, list]:
    config = tiny_config(tiny_folder(folders, model_type), **options)
    items = image_items(24) if model_type in IMAGE_TYPES else synthetic_items(24)
    return config, items


def test_the_tiny_models_cover_the_whole_table() -> None:
    assert sorted(MODEL_TYPES) == sorted(supported_model_types())


def test_an_unsupported_architecture_is_refused_naming_the_supported_ones(
    tmp_path: Path,
) -> None:
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "t5"}))
    (tmp_path / "model.safetensors").write_bytes(b"not loaded")
    with pytest.raises(UnsupportedArchitecture, match="'t5' is not supported") as info:
        load_backbone(str(tmp_path))
    for model_type in ("bert", "distilbert", "vit", "gpt2", "llama", "qwen2"):
        assert model_type in str(info.value)
    problem = fit_problem(str(tmp_path), 2, "text", 2)
    assert problem is not None and "not supported" in problem
    with pytest.raises(ValueError, match="does not exist"):
        load_backbone(str(tmp_path / "missing"))


@pytest.mark.parametrize("model_type", MODEL_TYPES)
@torch.no_grad()
def test_cached_training_inputs_equal_the_full_forward_exactly(
    folders: Path, tmp_path: Path, model_type: str
) -> None:
    config, items = _setup(folders, model_type)
    encoder = build_encoder(config)
    cache = build_cache(tmp_path / "c", encoder, items[:8], config.max_length)
    gen = torch.Generator().manual_seed(1)
    for g in range(1, encoder.n_groups + 1):  # adapters on top must not leak into the cache
        state = encoder.group_state(g)
        encoder.load_group_state(
            g, {k: torch.randn(v.shape, generator=gen) for k, v in state.items()}
        )
    backbone = encoder.backbone
    head = ClassificationHead(backbone.hidden_size, 2, backbone.pooling).eval()
    head.reset(torch.Generator().manual_seed(2))
    for depth in range(1, encoder.n_groups + 1):
        encoder.set_active_groups(depth)
        start = encoder.layout.boundary(depth)
        per_example = []
        for rid, item, _ in items[:8]:
            inputs = backbone.prepare([item], config.max_length)
            full = encoder.forward_from(backbone.embed(inputs), None, 0)
            cached = encoder.forward_from(cache.rows(depth, rid).unsqueeze(0), None, start)
            mask = inputs.attention_mask
            assert torch.equal(head(full, mask), head(cached, mask)), f"depth {depth} {rid}"
            per_example.append(cache.rows(depth, rid))
        # the padded batch the trainer reads equals padding the rows itself
        lower, mask = cache.batch(depth, [rid for rid, _, _ in items[:8]])
        padded, mask2 = pad_rows(per_example)
        assert torch.equal(mask, mask2) and torch.equal(lower, padded)


@pytest.mark.parametrize("model_type", by_family(MODEL_TYPES))
def test_isolation_determinism_and_retrain_equivalence(
    folders: Path, tmp_path: Path, model_type: str
) -> None:
    config, items = _setup(folders, model_type)
    data = shard_from_items(items, config.n_slices)
    runs, stores = [], []
    for i in range(2):
        encoder = build_encoder(config)
        cache = build_cache(tmp_path / f"c{i}", encoder, items, config.max_length)
        store = InMemoryCheckpointStore()
        trainer = S3TTrainer(encoder, config, store)  # raises if a step touched a frozen group
        runs.append(train_shard(trainer, data, cache, SEQUENCES))
        stores.append(store)
    assert runs[0] == runs[1], "two trainings of the same data differ"
    for chain in runs[0]:
        for k, sha in enumerate(chain, start=1):
            tensors, manifest = stores[0].get(sha)
            assert {n.split(".")[0] for n in tensors} == {f"group{k}", "head"}
            assert manifest.backbone_sha256 == encoder.backbone.weights_sha256
            lora_b = [t for n, t in tensors.items() if n.endswith("lora_B")]
            assert any(float(t.abs().sum()) > 0 for t in lora_b), f"step {k} trained nothing"

    # retrain after erasing two records of slice 1 == training from scratch without them
    inputs = {rid: item for rid, item, _ in items}
    assert_retrain_equals_scratch(
        tmp_path / "fresh", config, trainer, cache, data, inputs, SEQUENCES, runs[1]
    )


@pytest.mark.parametrize("model_type", ["bert", "distilbert", "gpt2", "llama", "vit"])
def test_all_linear_layers_get_lora_and_train(
    folders: Path, tmp_path: Path, model_type: str
) -> None:
    config, items = _setup(folders, model_type, lora_targets="all-linear")
    encoder = build_encoder(config)
    arch = architecture_of(encoder.backbone.config.model_type)
    group_size = encoder.layout.group_size
    for g in range(1, config.n_slices + 1):
        assert len(encoder.group_parameters(g)) == 2 * len(arch.linear) * group_size
    cache = build_cache(tmp_path / "c", encoder, items, config.max_length)
    data = shard_from_items(items, config.n_slices)
    store = InMemoryCheckpointStore()
    sha = S3TTrainer(encoder, config, store).train_step(data, cache, (0,), [])
    trained = store.get(sha)[0]
    assert len([n for n in trained if n.startswith("group1.")]) == 2 * len(arch.linear) * group_size
    attention_only = dataclasses.replace(config, lora_targets="attention")
    assert attention_only.config_hash() != config.config_hash()


@pytest.mark.parametrize("model_type", MODEL_TYPES)
@torch.no_grad()
def test_layer_by_layer_equals_the_models_own_forward(folders: Path, model_type: str) -> None:
    """Embeddings, masks (padding; causal or not), rotary positions and the final norm as the
    table applies them give what the transformers model computes itself."""
    config, items = _setup(folders, model_type)
    backbone = load_backbone(config.backbone)
    batch = (
        [items[0][1], items[5][1]] if model_type in IMAGE_TYPES else ["a b", "the film was warm"]
    )
    inputs = backbone.prepare(batch, config.max_length)
    ours = backbone.top(
        backbone.run_layers(backbone.embed(inputs), inputs.attention_mask, 0, backbone.n_layers)
    )
    if model_type in IMAGE_TYPES:
        theirs = backbone.model(pixel_values=inputs.input_ids).last_hidden_state
    else:
        assert not bool(inputs.attention_mask.all()), "the batch should need padding"
        theirs = backbone.model(
            input_ids=inputs.input_ids, attention_mask=inputs.attention_mask
        ).last_hidden_state
    real = inputs.attention_mask.bool()
    assert torch.allclose(ours[real], theirs[real], atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("model_type", [t for t in MODEL_TYPES if t not in IMAGE_TYPES])
@torch.no_grad()
def test_causal_families_never_look_ahead_and_encoders_do(folders: Path, model_type: str) -> None:
    config, _ = _setup(folders, model_type)
    backbone = load_backbone(config.backbone)
    a = backbone.prepare(["the film was warm and funny"], config.max_length)
    ids = a.input_ids.clone()
    ids[0, -2] = 2000  # another token near the end
    b = type(a)(ids, a.attention_mask)
    out_a = backbone.run_layers(backbone.embed(a), None, 0, backbone.n_layers)
    out_b = backbone.run_layers(backbone.embed(b), None, 0, backbone.n_layers)
    earlier_same = torch.equal(out_a[0, :-2], out_b[0, :-2])
    assert earlier_same == (architecture_of(backbone.config.model_type).mask == "causal")
