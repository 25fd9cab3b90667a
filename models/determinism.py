"""Determinism switches and seed derivation.

Entry points (CLI commands, workers, benchmarks) call :func:`configure_determinism` once; the
training code derives every seed it uses with :func:`derive_seed`, so a checkpoint's bytes depend
only on its inputs, never on process state.
"""

from __future__ import annotations

import hashlib
import os

import torch

_SEED_BITS = 63


def configure_determinism(threads: int | None = None) -> None:
    """Make torch deterministic for this process (idempotent).

    ``threads`` pins the intra-op thread count; results must not depend on it for the tests we
    run, but pinning keeps timings comparable.
    """
    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    torch.use_deterministic_algorithms(True)
    # Filling fresh tensors with NaN only guards against reading uninitialised memory, which
    # no code path here does; it costs throughput.
    torch.utils.deterministic.fill_uninitialized_memory = False  # type: ignore[attr-defined]
    torch.backends.cudnn.benchmark = False
    if threads is not None:
        torch.set_num_threads(threads)


def derive_seed(*parts: object) -> int:
    """A 63-bit seed from the ``repr`` of its parts (stable across processes and platforms)."""
    text = "\x1f".join(repr(p) for p in parts)
    digest = hashlib.sha256(text.encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") >> (64 - _SEED_BITS)


def generator(seed: int) -> torch.Generator:
    """A CPU generator seeded with ``seed`` (used for every random draw in training)."""
    g = torch.Generator(device="cpu")
    g.manual_seed(seed)
    return g
