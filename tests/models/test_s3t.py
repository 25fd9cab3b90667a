"""Exactness properties of slice-wise training: isolation, determinism, retrain equivalence."""

from __future__ import annotations

from pathlib import Path

import pytest

from models import training
from models.checkpoints import InMemoryCheckpointStore
from models.hashing import state_hash
from models.s3t import IsolationError, S3TTrainer, group_tensors, retrain_sequence, train_shard
from tests.models.conftest import build_cache, shard_from_items, synthetic_items

SEQUENCES = [(0, 1, 2), (1, 2, 0)]


@pytest.fixture
def items() -> list[tuple[str, str, int]]:
    return synthetic_items(36)


@pytest.fixture
def shard(tmp_path: Path, items, small_config, make_encoder):
    """A fresh encoder, the shard's activation cache and its examples by slice."""
    encoder = make_encoder(small_config)
    cache = build_cache(tmp_path / "shard-cache", encoder, items, small_config.max_length)
    return encoder, cache, shard_from_items(items, small_config.n_slices)


def test_step_leaves_earlier_groups_byte_identical(
    tmp_path: Path, items, small_config, make_encoder, shard
) -> None:
    encoder, cache, data = shard
    store = InMemoryCheckpointStore()
    trainer = S3TTrainer(encoder, small_config, store)
    seq = (2, 0, 1)
    chain: list[str] = []
    for k in range(1, 4):
        trainer.restore(chain)
        before = {j: encoder.group_hash(j) for j in range(1, k)}
        from_files = {
            j: state_hash(group_tensors(store.get(chain[j - 1])[0], j)) for j in range(1, k)
        }
        assert before == from_files  # restored exactly what the earlier steps saved
        sha = trainer.train_step(data, cache, seq[:k], chain)
        after = {j: encoder.group_hash(j) for j in range(1, k)}
        assert after == before, f"step {k} changed an earlier group"
        # the trained group itself did change, and it is what the checkpoint holds
        saved = group_tensors(store.get(sha)[0], k)
        assert state_hash(saved) == encoder.group_hash(k)
        assert any(float(t.abs().sum()) > 0 for n, t in saved.items() if n.endswith("lora_B"))
        chain.append(sha)
    # every checkpoint k holds group k only (plus its head)
    for k, sha in enumerate(chain, start=1):
        names = {n.split(".")[0] for n in store.get(sha)[0]}
        assert names == {f"group{k}", "head"}


def test_isolation_violation_is_detected(
    tmp_path: Path, items, small_config, make_encoder, monkeypatch, shard
) -> None:
    encoder, cache, data = shard
    trainer = S3TTrainer(encoder, small_config, InMemoryCheckpointStore())
    first = trainer.train_step(data, cache, (0,), [])
    real_fit = training.fit

    def leaky_fit(**kw):  # a buggy trainer that also updates the group above
        kw["trainable_groups"] = (*kw["trainable_groups"], 1)
        return real_fit(**kw)

    monkeypatch.setattr("models.s3t.fit", leaky_fit)
    with pytest.raises(IsolationError, match="changed frozen group"):
        trainer.train_step(data, cache, (0, 1), [first])


def test_training_twice_gives_identical_checkpoints(
    tmp_path: Path, items, small_config, make_encoder
) -> None:
    data = shard_from_items(items, small_config.n_slices)
    runs = []
    for i in range(2):
        encoder = make_encoder(small_config)
        cache = build_cache(tmp_path / f"c{i}", encoder, items, small_config.max_length)
        trainer = S3TTrainer(encoder, small_config, InMemoryCheckpointStore())
        runs.append(train_shard(trainer, data, cache, SEQUENCES))
    assert runs[0] == runs[1]
    assert len({sha for chain in runs[0] for sha in chain}) == 6  # no accidental collisions


def test_seed_changes_checkpoints(tmp_path: Path, items, small_config, make_encoder) -> None:
    from dataclasses import replace

    data = shard_from_items(items, small_config.n_slices)
    encoder = make_encoder(small_config)
    cache = build_cache(tmp_path / "c", encoder, items, small_config.max_length)
    a = S3TTrainer(encoder, small_config, InMemoryCheckpointStore()).train_step(
        data, cache, (0,), []
    )
    other = replace(small_config, seed=1)
    b = S3TTrainer(encoder, other, InMemoryCheckpointStore()).train_step(data, cache, (0,), [])
    assert a != b


def test_retrain_after_deletion_equals_training_from_scratch(
    tmp_path: Path, items, small_config, make_encoder, shard
) -> None:
    encoder, cache, data = shard
    store = InMemoryCheckpointStore()
    trainer = S3TTrainer(encoder, small_config, store)
    chains = train_shard(trainer, data, cache, SEQUENCES)

    # erase two records that sit in slice 1
    erased = {e.record_id for e in data.slices[1][:2]}
    assert data.slices_holding(erased) == {1}
    assert cache.remove(erased) == 2
    clean = data.without(erased)
    retrained = []
    for seq, chain in zip(SEQUENCES, chains, strict=True):
        cut = seq.index(1) + 1
        new = retrain_sequence(trainer, clean, cache, seq, chain, from_step=cut)
        assert new[: cut - 1] == chain[: cut - 1]  # the clean prefix is kept as it was
        assert all(a != b for a, b in zip(new[cut - 1 :], chain[cut - 1 :], strict=True))
        retrained.append(new)

    # from scratch: a new process-like setup that never saw the erased records
    remaining = [it for it in items if it[0] not in erased]
    fresh_encoder = make_encoder(small_config)
    fresh_cache = build_cache(tmp_path / "fresh", fresh_encoder, remaining, small_config.max_length)
    scratch_trainer = S3TTrainer(fresh_encoder, small_config, InMemoryCheckpointStore())
    scratch = train_shard(scratch_trainer, clean, fresh_cache, SEQUENCES)
    assert tuple(retrained) == scratch
    # and none of the new checkpoints was trained on an erased record
    for chain in retrained:
        for sha in chain:
            manifest = store.get(sha)[1]
            assert manifest.n_records == len(clean.examples(manifest.slice_ids))


def test_emptied_first_slice_trains_and_equals_training_from_scratch(
    tmp_path: Path, items, small_config, make_encoder, shard
) -> None:
    """Erasing every record of a slice leaves a normal, empty step: no error, a zero LoRA
    for its group, the parent's head, and retrain equivalence as for any deletion."""
    encoder, cache, data = shard
    store = InMemoryCheckpointStore()
    trainer = S3TTrainer(encoder, small_config, store)
    chains = train_shard(trainer, data, cache, SEQUENCES)
    erased = {e.record_id for e in data.slices[1]}
    assert cache.remove(erased) == len(erased)
    clean = data.without(erased)
    assert clean.slices[1] == ()
    # (1, 2, 0) starts with the emptied slice: its step 1 trains on nothing
    retrained = tuple(
        retrain_sequence(trainer, clean, cache, seq, chain, from_step=seq.index(1) + 1)
        for seq, chain in zip(SEQUENCES, chains, strict=True)
    )
    empty_tensors, empty = store.get(retrained[1][0])
    assert empty.n_records == 0 and empty.slice_ids == (1,)
    lora_b = [t for n, t in group_tensors(empty_tensors, 1).items() if n.endswith("lora_B")]
    assert lora_b and all(float(t.abs().sum()) == 0 for t in lora_b)
    second_tensors, second = store.get(retrained[1][1])
    assert second.n_records == len(clean.slices[2]) > 0
    # step 2 trains on top of the empty step and changes the head it inherited
    assert any(
        not bool((second_tensors[n] == t).all())
        for n, t in empty_tensors.items()
        if n.startswith("head")
    )
    remaining = [it for it in items if it[0] not in erased]
    fresh_encoder = make_encoder(small_config)
    fresh_cache = build_cache(tmp_path / "fresh", fresh_encoder, remaining, small_config.max_length)
    scratch = train_shard(
        S3TTrainer(fresh_encoder, small_config, InMemoryCheckpointStore()),
        clean,
        fresh_cache,
        SEQUENCES,
    )
    assert retrained == scratch


def test_a_shard_with_no_record_left_trains_empty_steps(
    tmp_path: Path, items, small_config, make_encoder, shard
) -> None:
    encoder, cache, data = shard
    store = InMemoryCheckpointStore()
    trainer = S3TTrainer(encoder, small_config, store)
    empty = data.without({e.record_id for sl in data.slices for e in sl})
    (chain,) = train_shard(trainer, empty, cache, [(0, 1, 2)])
    assert [store.get(sha)[1].n_records for sha in chain] == [0, 0, 0]


def test_shared_prefixes_share_checkpoints(
    tmp_path: Path, items, small_config, make_encoder, shard
) -> None:
    encoder, cache, data = shard
    store = InMemoryCheckpointStore()
    chains = train_shard(
        S3TTrainer(encoder, small_config, store), data, cache, [(0, 1, 2), (0, 2, 1)]
    )
    assert chains[0][0] == chains[1][0]
    assert chains[0][1] != chains[1][1]
    # the shared checkpoint is a pure function of its prefix: training (0, 2, 1) alone gives it too
    alone = train_shard(
        S3TTrainer(encoder, small_config, InMemoryCheckpointStore()), data, cache, [(0, 2, 1)]
    )
    assert alone[0] == chains[1]
    assert len(store.blobs) == 5


def test_retrain_rejects_foreign_prefix(
    tmp_path: Path, items, small_config, make_encoder, shard
) -> None:
    encoder, cache, data = shard
    trainer = S3TTrainer(encoder, small_config, InMemoryCheckpointStore())
    (chain,) = train_shard(trainer, data, cache, [(0, 1, 2)])
    with pytest.raises(ValueError, match="does not belong"):
        retrain_sequence(trainer, data, cache, (1, 0, 2), chain, from_step=2)


def test_epoch_batches_cover_every_example_once_and_pad_little() -> None:
    import torch

    from models.training import epoch_batches

    lengths = [(i * 7919) % 50 + 1 for i in range(300)]
    a = epoch_batches(lengths, 16, torch.Generator().manual_seed(3))
    b = epoch_batches(lengths, 16, torch.Generator().manual_seed(3))
    assert a == b
    flat = sorted(i for batch in a for i in batch)
    assert flat == list(range(300))
    assert all(len(batch) <= 16 for batch in a)
    padded = sum(len(batch) * max(lengths[i] for i in batch) for batch in a)
    assert padded < 1.3 * sum(lengths)
