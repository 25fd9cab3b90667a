"""The activation cache: exact equality with the full forward, and erasure of rows."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from models.cache import ActivationCache, CacheError, CacheSet, pad_rows
from models.head import ClassificationHead
from tests.models.conftest import build_cache, synthetic_items


def _randomise_adapters(encoder, seed: int) -> None:
    gen = torch.Generator().manual_seed(seed)
    for g in range(1, encoder.n_groups + 1):
        encoder.load_group_state(
            g,
            {
                k: torch.randn(v.shape, generator=gen) * 0.05
                for k, v in encoder.group_state(g).items()
            },
        )


@torch.no_grad()
def test_cached_logits_equal_full_forward_exactly(
    tmp_path: Path, small_config, make_encoder
) -> None:
    items = synthetic_items(12, seed=3)
    encoder = make_encoder(small_config)
    cache = build_cache(tmp_path / "c", encoder, items, small_config.max_length)
    _randomise_adapters(encoder, seed=1)  # adapters on top must not leak into the cache
    head = ClassificationHead(encoder.backbone.hidden_size, 2).eval()
    head.reset(torch.Generator().manual_seed(2))
    backbone = encoder.backbone
    for depth in range(1, encoder.n_groups + 1):
        encoder.set_active_groups(depth)
        start = encoder.layout.boundary(depth)
        full_rows, cached_rows = [], []
        for rid, text, _ in items:
            inputs = backbone.prepare([text], small_config.max_length)
            full = backbone.run_layers(backbone.embed(inputs), None, 0, backbone.n_layers)
            full_rows.append(full[0])
            cached = encoder.forward_from(cache.rows(depth, rid).unsqueeze(0), None, start)
            cached_rows.append(cached[0])
            assert torch.equal(
                head(full, inputs.attention_mask), head(cached, inputs.attention_mask)
            ), f"depth {depth} record {rid}"
        # the padded batch path: lower rows from the cache vs. computed unpadded per example
        ids = [rid for rid, _, _ in items]
        lower, mask = cache.batch(depth, ids)
        via_cache = head(encoder.forward_from(lower, mask, start), mask)
        per_example = []
        for _, text, _ in items:
            inputs = backbone.prepare([text], small_config.max_length)
            encoder.set_active_groups(0)
            plain = backbone.run_layers(backbone.embed(inputs), None, 0, start)
            per_example.append(plain[0])
            encoder.set_active_groups(depth)
        padded, mask2 = pad_rows(per_example)
        assert torch.equal(mask, mask2)
        assert torch.equal(via_cache, head(encoder.forward_from(padded, mask2, start), mask2))


def test_cache_rows_do_not_depend_on_other_records(
    tmp_path: Path, small_config, make_encoder
) -> None:
    items = synthetic_items(10, seed=4)
    encoder = make_encoder(small_config)
    whole = build_cache(tmp_path / "a", encoder, items, small_config.max_length)
    part = build_cache(tmp_path / "b", encoder, items[3:7], small_config.max_length)
    for rid, _, _ in items[3:7]:
        for g in whole.groups:
            assert torch.equal(whole.rows(g, rid), part.rows(g, rid))


def test_remove_purges_rows_from_disk(tmp_path: Path, small_config, make_encoder) -> None:
    items = synthetic_items(9, seed=5)
    encoder = make_encoder(small_config)
    root = tmp_path / "c"
    cache = build_cache(root, encoder, items, small_config.max_length)
    gone = {items[2][0], items[5][0]}
    kept = {
        rid: {g: cache.rows(g, rid).clone() for g in cache.groups}
        for rid, _, _ in items
        if rid not in gone
    }
    erased_bytes = [cache.rows(g, rid).numpy().tobytes() for rid in gone for g in cache.groups]
    old_files = sorted(p.name for p in root.glob("*.f32"))

    assert cache.remove(gone | {"not-there"}) == 2
    assert cache.remove(gone) == 0
    reopened = ActivationCache(root)
    for c in (cache, reopened):
        assert len(c) == len(items) - 2
        for rid in gone:
            assert rid not in c
            with pytest.raises(CacheError):
                c.rows(1, rid)
        for rid, rows in kept.items():
            for g, t in rows.items():
                assert torch.equal(c.rows(g, rid), t)
    assert not any((root / name).exists() for name in old_files)
    blob = b"".join(p.read_bytes() for p in root.iterdir())
    assert all(row not in blob for row in erased_bytes)


def test_cache_set_and_errors(tmp_path: Path, small_config, make_encoder) -> None:
    items = synthetic_items(6, seed=6)
    encoder = make_encoder(small_config)
    a = build_cache(tmp_path / "a", encoder, items[:3], small_config.max_length)
    b = build_cache(tmp_path / "b", encoder, items[3:], small_config.max_length)
    both = CacheSet([a, b])
    hidden, mask = both.batch(1, [items[0][0], items[5][0]])
    assert hidden.shape[0] == 2 and mask.dtype == torch.long
    assert np.array_equal(hidden[1, : int(mask[1].sum())].numpy(), b.rows(1, items[5][0]).numpy())
    with pytest.raises(CacheError, match="none of the activation caches"):
        both.batch(1, ["missing"])
    with pytest.raises(CacheError, match="no activation cache"):
        ActivationCache(tmp_path / "nowhere")
    with pytest.raises(CacheError, match="duplicate"):
        ActivationCache.build(tmp_path / "d", encoder, [("x", "a"), ("x", "b")], max_length=8)


def test_remove_zeroes_rows_a_reader_still_maps(tmp_path: Path, small_config, make_encoder) -> None:
    """A job that mapped the cache before the removal keeps the old files' blocks alive after
    the unlink: the erased rows must be zero there too, the other rows untouched."""
    items = synthetic_items(6, seed=7)
    encoder = make_encoder(small_config)
    root = tmp_path / "c"
    reader = build_cache(root, encoder, items, small_config.max_length)
    reader.open_all()
    gone, kept = items[1][0], items[4][0]
    before = {g: reader.rows(g, kept).clone() for g in reader.groups}
    assert all(reader.rows(g, gone).abs().sum() > 0 for g in reader.groups)

    assert ActivationCache(root).remove({gone}) == 1  # another process's purge
    for g in reader.groups:
        assert torch.count_nonzero(reader.rows(g, gone)) == 0  # the mapping sees zeros
        assert torch.equal(reader.rows(g, kept), before[g])
    assert gone not in ActivationCache(root)
