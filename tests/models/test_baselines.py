from __future__ import annotations

from pathlib import Path

import numpy as np

from models.baselines import (
    JointTrainer,
    frozen_embeddings,
    probe_accuracy,
    train_full,
    train_sisa_shard,
)
from models.cache import CacheSet
from models.checkpoints import InMemoryCheckpointStore
from models.ensemble import EnsemblePredictor, load_combined
from tests.models.conftest import build_cache, shard_from_items, synthetic_items


def test_sisa_chain_and_full_lora(tmp_path: Path, small_config, make_encoder) -> None:
    encoder = make_encoder(small_config)
    items = synthetic_items(30, seed=8)
    cache = build_cache(tmp_path / "c", encoder, items, small_config.max_length)
    data = shard_from_items(items, small_config.n_slices)
    store = InMemoryCheckpointStore()
    trainer = JointTrainer(encoder, small_config, store)
    chain = train_sisa_shard(trainer, shard=0, slices=data.slices, source=cache)
    assert len(chain) == 3 and len(set(chain)) == 3
    for k, sha in enumerate(chain, start=1):
        manifest = store.get(sha)[1]
        assert manifest.slice_ids == tuple(range(k)) and manifest.groups == (1, 2, 3)
        assert manifest.parent == (chain[k - 2] if k > 1 else None)
        assert manifest.n_records == sum(len(s) for s in data.slices[:k])
    again = train_sisa_shard(
        JointTrainer(encoder, small_config, InMemoryCheckpointStore()),
        shard=0,
        slices=data.slices,
        source=cache,
    )
    assert again == chain

    full = train_full(trainer, examples=data.examples(range(3)), source=CacheSet([cache]))
    member = load_combined(store, full, shard=-1, n_groups=3)
    predictor = EnsemblePredictor(
        encoder, [member], n_classes=2, max_length=small_config.max_length
    )
    logits = predictor.logits([t for _, t, _ in items])
    assert logits.shape == (30, 2)


def test_probe_learns_the_synthetic_signal(small_config, make_encoder) -> None:
    encoder = make_encoder(small_config)
    train = synthetic_items(60, seed=1)
    test = synthetic_items(40, seed=2)
    tx = frozen_embeddings(encoder, [t for _, t, _ in train], max_length=24)
    vx = frozen_embeddings(encoder, [t for _, t, _ in test], max_length=24)
    assert tx.shape == (60, 384) and np.isfinite(tx).all()
    acc = probe_accuracy(tx, [y for *_, y in train], vx, [y for *_, y in test], seed=0)
    assert acc > 0.8
