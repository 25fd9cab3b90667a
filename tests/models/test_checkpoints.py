from __future__ import annotations

from pathlib import Path

import pytest
import torch

from models.checkpoints import (
    CheckpointError,
    CheckpointManifest,
    InMemoryCheckpointStore,
    LocalCheckpointStore,
)

MANIFEST = CheckpointManifest(
    kind="s3t-step",
    config_hash="c" * 64,
    backbone_sha256="b" * 64,
    shard=1,
    step=2,
    slice_ids=(3, 0),
    records_digest="d" * 64,
    n_records=10,
    seed=7,
    parent="p" * 64,
    groups=(2,),
)


def tensors() -> dict[str, torch.Tensor]:
    return {
        "group2.layer3.query.lora_A": torch.arange(6.0).reshape(2, 3),
        "head.bias": torch.ones(2),
    }


@pytest.mark.parametrize("kind", ["memory", "local"])
def test_round_trip_and_content_address(kind: str, tmp_path: Path) -> None:
    store = InMemoryCheckpointStore() if kind == "memory" else LocalCheckpointStore(tmp_path)
    sha = store.put(tensors(), MANIFEST)
    assert store.put(dict(reversed(list(tensors().items()))), MANIFEST) == sha
    got, manifest = store.get(sha)
    assert manifest == MANIFEST
    assert set(got) == set(tensors()) and all(torch.equal(got[k], v) for k, v in tensors().items())
    other = CheckpointManifest(**{**MANIFEST.to_dict(), "slice_ids": (0, 3), "groups": (2,)})
    assert store.put(tensors(), other) != sha
    assert store.exists(sha)
    store.delete(sha)
    assert not store.exists(sha)
    with pytest.raises(CheckpointError, match="no checkpoint"):
        store.get(sha)


def test_corruption_is_detected(tmp_path: Path) -> None:
    store = LocalCheckpointStore(tmp_path)
    sha = store.put(tensors(), MANIFEST)
    path = store.path(sha)
    data = bytearray(path.read_bytes())
    data[-1] ^= 1
    path.write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match="corrupt"):
        store.get(sha)
