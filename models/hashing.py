"""Content hashes of weights: of tensors in memory and of files on disk.

Both are part of provenance (checkpoint manifests, backbone pins), so their canonical forms
must not change.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # file hashes need no torch
    import torch


def state_hash(state: Mapping[str, torch.Tensor]) -> str:
    """sha256 over names, shapes, dtypes and raw bytes, in name order."""
    import torch

    h = hashlib.sha256()
    for key in sorted(state):
        t = state[key].detach().contiguous().cpu()
        h.update(f"{key}|{tuple(t.shape)}|{t.dtype}|".encode())
        h.update(t.view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return h.hexdigest()


@cache
def file_sha256(path: Path) -> str:
    """sha256 of the file's bytes (memoised per path: for weights files that do not change)."""
    h = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()
