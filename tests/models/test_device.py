"""Device selection, and on a CUDA machine the determinism and cache properties there."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from models.checkpoints import InMemoryCheckpointStore
from models.device import resolve_device
from models.s3t import S3TTrainer, train_shard
from tests.models.conftest import build_cache, shard_from_items, synthetic_items


def test_resolve_device(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("UNLEARN_DEVICE", raising=False)
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    assert resolve_device().type == expected
    assert resolve_device("cpu") == torch.device("cpu")
    monkeypatch.setenv("UNLEARN_DEVICE", "cpu")
    assert resolve_device() == torch.device("cpu")
    with pytest.raises(ValueError, match="not a device"):
        resolve_device("tpu-9")
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="no CUDA device"):
            resolve_device("cuda")


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_training_is_deterministic_and_stores_cpu_tensors(
    tmp_path: Path, small_config, make_encoder
) -> None:
    items = synthetic_items(36, seed=3)
    data = shard_from_items(items, small_config.n_slices)
    runs = []
    for i in range(2):
        encoder = make_encoder(small_config).to(torch.device("cuda"))
        cache = build_cache(tmp_path / f"c{i}", encoder, items, small_config.max_length)
        store = InMemoryCheckpointStore()
        runs.append(train_shard(S3TTrainer(encoder, small_config, store), data, cache, [(0, 1, 2)]))
        tensors, _ = store.get(runs[-1][0][-1])
        assert all(t.device.type == "cpu" for t in tensors.values())
    assert runs[0] == runs[1]
