"""Content-addressed checkpoint store.

A checkpoint is one safetensors file holding adapter and head weights, with its manifest as
canonical JSON under the single metadata key ``"manifest"`` (one key keeps the file bytes
deterministic). Its address is the sha256 of the file bytes, so identical training gives an
identical address, and sequences that share a prefix share the file.

torch and safetensors load only to encode or decode weights: the store's bookkeeping (exists,
delete, the manifest) serves the model-free commands (``unlearn delete``, ``verify``).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from models.config import canonical_json
from models.errors import ModelsError
from models.files import write_atomic

if TYPE_CHECKING:
    import torch

Tensors = dict[str, "torch.Tensor"]


@dataclass(frozen=True)
class CheckpointManifest:
    """Provenance of one checkpoint.

    ``slice_ids`` is the ordered prefix of slices the weights depend on; ``records_digest`` is
    the sha256 of the sorted ids of every record in those slices at training time.
    """

    kind: str  # "s3t-step", "sisa-step" or "full"
    config_hash: str
    backbone_sha256: str
    shard: int
    step: int
    slice_ids: tuple[int, ...]
    records_digest: str
    n_records: int
    seed: int
    parent: str | None
    groups: tuple[int, ...]

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["slice_ids"] = list(self.slice_ids)
        d["groups"] = list(self.groups)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> CheckpointManifest:
        return cls(**{**d, "slice_ids": tuple(d["slice_ids"]), "groups": tuple(d["groups"])})


class CheckpointError(ModelsError):
    """A checkpoint is missing from its store, or its bytes do not hash to its address."""


def encode_checkpoint(tensors: Tensors, manifest: CheckpointManifest) -> tuple[str, bytes]:
    from safetensors.torch import save as st_save

    data = st_save(
        {k: v.detach().contiguous().cpu() for k, v in tensors.items()},
        metadata={"manifest": canonical_json(manifest.to_dict())},
    )
    return hashlib.sha256(data).hexdigest(), data


def decode_checkpoint(sha256: str, data: bytes) -> tuple[Tensors, CheckpointManifest]:
    actual = hashlib.sha256(data).hexdigest()
    if actual != sha256:
        raise CheckpointError(f"checkpoint {sha256} is corrupt (content hashes to {actual})")
    from safetensors.torch import load as st_load

    return st_load(data), read_manifest(data)


def read_manifest(data: bytes) -> CheckpointManifest:
    """The manifest in a checkpoint file's safetensors header (no tensors decoded)."""
    header_len = int.from_bytes(data[:8], "little")
    try:
        header = json.loads(data[8 : 8 + header_len])
        return CheckpointManifest.from_dict(json.loads(header["__metadata__"]["manifest"]))
    except (ValueError, KeyError, TypeError) as exc:
        raise CheckpointError(f"checkpoint header unreadable: {exc}") from None


class CheckpointStore(Protocol):
    def put(self, tensors: Tensors, manifest: CheckpointManifest) -> str: ...

    def get(self, sha256: str) -> tuple[Tensors, CheckpointManifest]: ...

    def exists(self, sha256: str) -> bool: ...

    def delete(self, sha256: str) -> None: ...


class InMemoryCheckpointStore:
    """A dict-backed store for tests and throwaway runs."""

    def __init__(self) -> None:
        self.blobs: dict[str, bytes] = {}

    def put(self, tensors: Tensors, manifest: CheckpointManifest) -> str:
        sha, data = encode_checkpoint(tensors, manifest)
        self.blobs.setdefault(sha, data)
        return sha

    def get(self, sha256: str) -> tuple[Tensors, CheckpointManifest]:
        try:
            return decode_checkpoint(sha256, self.blobs[sha256])
        except KeyError:
            raise CheckpointError(f"no checkpoint {sha256}") from None

    def exists(self, sha256: str) -> bool:
        return sha256 in self.blobs

    def delete(self, sha256: str) -> None:
        self.blobs.pop(sha256, None)


class LocalCheckpointStore:
    """Files under ``root/<sha[:2]>/<sha>.safetensors``, written atomically."""

    def __init__(self, root: Path) -> None:
        self.root = root
        root.mkdir(parents=True, exist_ok=True)

    def path(self, sha256: str) -> Path:
        return self.root / sha256[:2] / f"{sha256}.safetensors"

    def put(self, tensors: Tensors, manifest: CheckpointManifest) -> str:
        sha, data = encode_checkpoint(tensors, manifest)
        path = self.path(sha)
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            write_atomic(path, data, mode=0o600)
        return sha

    def get(self, sha256: str) -> tuple[Tensors, CheckpointManifest]:
        try:
            data = self.path(sha256).read_bytes()
        except FileNotFoundError:
            raise CheckpointError(f"no checkpoint {sha256} in {self.root}") from None
        return decode_checkpoint(sha256, data)

    def exists(self, sha256: str) -> bool:
        return self.path(sha256).exists()

    def delete(self, sha256: str) -> None:
        self.path(sha256).unlink(missing_ok=True)
