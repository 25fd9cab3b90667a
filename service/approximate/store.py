"""Weights of approximate model versions: one safetensors file each, addressed by sha256."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import TYPE_CHECKING

from models.checkpoints import CheckpointError
from service.files import create_once

if TYPE_CHECKING:  # torch loads to store or load weights, not to check a file
    from torch import Tensor


class VersionStore:
    def __init__(self, root: Path) -> None:
        self.root = root

    def _path(self, sha256: str) -> Path:
        return self.root / f"{sha256}.safetensors"

    def put(self, tensors: dict[str, Tensor]) -> str:
        from safetensors.torch import save as st_save

        data = st_save({k: v.detach().contiguous().cpu() for k, v in sorted(tensors.items())})
        sha = hashlib.sha256(data).hexdigest()
        if not self._path(sha).exists():
            create_once(self._path(sha), data, mode=0o600)
        return sha

    def get(self, sha256: str) -> dict[str, Tensor]:
        from safetensors.torch import load as st_load

        return st_load(self.read(sha256))

    def read(self, sha256: str) -> bytes:
        """The file's bytes, checked against their address."""
        try:
            data = self._path(sha256).read_bytes()
        except FileNotFoundError:
            raise CheckpointError(f"model version weights {sha256} are missing") from None
        actual = hashlib.sha256(data).hexdigest()
        if actual != sha256:
            raise CheckpointError(f"model version weights {sha256} are corrupt (hash {actual})")
        return data

    def exists(self, sha256: str) -> bool:
        return self._path(sha256).exists()

    def delete(self, sha256: str) -> None:
        self._path(sha256).unlink(missing_ok=True)


def version_store(checkpoints_dir: Path) -> VersionStore:
    return VersionStore(checkpoints_dir / "versions")
