"""Ensemble inference: shared-prefix and naive paths agree, and depth selects the weights."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from models.checkpoints import InMemoryCheckpointStore
from models.ensemble import EnsemblePredictor, Member, NoLiveShardError
from models.s3t import S3TTrainer, train_shard
from tests.models.conftest import build_cache, shard_from_items, synthetic_items


@pytest.fixture
def trained(tmp_path: Path, small_config, make_encoder):
    encoder = make_encoder(small_config)
    store = InMemoryCheckpointStore()
    trainer = S3TTrainer(encoder, small_config, store)
    chains = {}
    for shard in range(2):
        items = synthetic_items(24, seed=10 + shard)
        items = [(f"s{shard}-{rid}", t, y) for rid, t, y in items]
        cache = build_cache(tmp_path / f"c{shard}", encoder, items, small_config.max_length)
        data = shard_from_items(items, small_config.n_slices, shard=shard)
        chains[shard] = train_shard(trainer, data, cache, [(0, 1, 2)])[0]
    return encoder, store, chains


TEXTS = ["the cast was brilliant", "a tedious and flat story", "score", "the ending was warm film"]


def test_shared_prefix_equals_naive_for_mixed_depths(trained, small_config) -> None:
    encoder, store, chains = trained
    members = [Member(0, chains[0][:3]), Member(1, chains[1][:1])]
    predictor = EnsemblePredictor.from_chains(
        encoder, store, members, n_classes=2, max_length=small_config.max_length
    )
    shared = predictor.logits(TEXTS, batch_size=3, shared_prefix=True)
    naive = predictor.logits(TEXTS, batch_size=3, shared_prefix=False)
    assert shared.shape == (4, 2)
    assert torch.equal(shared, naive)


def test_depth_changes_predictions_and_dead_shards_are_skipped(trained, small_config) -> None:
    encoder, store, chains = trained
    kw = dict(n_classes=2, max_length=small_config.max_length)
    full = EnsemblePredictor.from_chains(encoder, store, [Member(0, chains[0])], **kw).logits(TEXTS)
    cut = EnsemblePredictor.from_chains(encoder, store, [Member(0, chains[0][:1])], **kw).logits(
        TEXTS
    )
    assert not torch.equal(full, cut)
    with_dead = EnsemblePredictor.from_chains(
        encoder, store, [Member(0, chains[0]), Member(1, ())], **kw
    ).logits(TEXTS)
    assert torch.equal(full, with_dead)
    with pytest.raises(NoLiveShardError):
        EnsemblePredictor.from_chains(encoder, store, [Member(1, ())], **kw)


def test_mean_of_members(trained, small_config) -> None:
    encoder, store, chains = trained
    kw = dict(n_classes=2, max_length=small_config.max_length)
    a = EnsemblePredictor.from_chains(encoder, store, [Member(0, chains[0])], **kw).logits(TEXTS)
    b = EnsemblePredictor.from_chains(encoder, store, [Member(1, chains[1][:2])], **kw).logits(
        TEXTS
    )
    both = EnsemblePredictor.from_chains(
        encoder, store, [Member(0, chains[0]), Member(1, chains[1][:2])], **kw
    ).logits(TEXTS)
    torch.testing.assert_close(both, (a + b) / 2)
