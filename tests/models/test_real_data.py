"""Retrain equivalence on real data (Rotten Tomatoes), through the same code the CLI uses."""

from __future__ import annotations

from pathlib import Path

import pytest

from models.cache import ActivationCache
from models.checkpoints import LocalCheckpointStore
from models.config import TrainConfig
from models.data import load_dataset
from models.run import place_shards
from models.s3t import S3TTrainer, retrain_shard, train_shard
from sharding import Placement, SliceAddress, cyclic_sequences, full_depths, plan_deletion


@pytest.mark.slow
def test_real_data_retrain_equals_scratch(tmp_path: Path, make_encoder) -> None:
    config = TrainConfig(n_slices=4, rank=4, epochs=1, batch_size=16, max_length=48)
    records = load_dataset("rotten-tomatoes").subset(160, 1).records
    texts = {r.record_id: r.text for r in records}
    (shard,) = place_shards(_as_dataset(records), Placement(b"test-secret-0123", 1, 4))
    seqs = cyclic_sequences(4, 4)
    encoder = make_encoder(config)
    cache = ActivationCache.build(tmp_path / "live", encoder, texts.items(), max_length=48)
    store = LocalCheckpointStore(tmp_path / "ckpt")
    trainer = S3TTrainer(encoder, config, store)
    chains = train_shard(trainer, shard, cache, seqs)

    erased = {e.record_id for e in shard.slices[3][:3]}
    impact = plan_deletion({0: seqs}, full_depths({0: seqs}), [SliceAddress(0, 3)])
    cache.remove(erased)
    clean = shard.without(erased)
    retrained = retrain_shard(trainer, clean, cache, seqs, chains, impact.retrain)
    assert sorted(t.from_step for t in impact.retrain) == [1, 2, 3, 4]

    fresh = make_encoder(config)
    remaining = {rid: t for rid, t in texts.items() if rid not in erased}
    fresh_cache = ActivationCache.build(tmp_path / "fresh", fresh, remaining.items(), max_length=48)
    scratch = train_shard(
        S3TTrainer(fresh, config, LocalCheckpointStore(tmp_path / "scratch")),
        clean,
        fresh_cache,
        seqs,
    )
    assert retrained == scratch


def _as_dataset(records):
    from models.data import Dataset

    return Dataset("rt-sample", tuple(records), ("rotten", "fresh"))
